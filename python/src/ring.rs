//! `Ring`: the core consistent-hash ring on its own, for tests and tools.

use crate::errors::{invalid, IntoPyResult};
use crate::service::int_from_py;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyList, PyString, PyTuple};
use registry_core::{validate, Ring};

/// A consistent-hash ring over `(id, weight)` members: exactly the ring
/// the registry servers and every other front door build.
#[pyclass(frozen, module = "registry_client", name = "Ring")]
pub struct PyRing {
    ring: Ring,
}

/// Reads a count given as a Python int (`what` names it: `n`,
/// `attempts`); below 1 is invalid, worded by the core's validation.
pub(crate) fn count_from_py(py: Python<'_>, what: &str, n: &Bound<'_, PyAny>) -> PyResult<usize> {
    let n = int_from_py(py, what, n)?;
    registry_core::validate::signed_count(what, n).py_err(py)
}

#[pymethods]
impl PyRing {
    /// Builds a ring from an iterable of `(id, weight)` pairs or bare ids
    /// (weight 1).
    #[new]
    fn new(py: Python<'_>, members: &Bound<'_, PyAny>) -> PyResult<Self> {
        if members.is_instance_of::<PyString>() {
            return Err(invalid(
                py,
                "members must be an iterable of (id, weight) pairs, not a str",
            ));
        }
        let iter = members
            .try_iter()
            .map_err(|_| invalid(py, "members must be an iterable of (id, weight) pairs"))?;
        let mut parsed: Vec<(PyBackedStr, u32)> = Vec::new();
        for item in iter {
            let item = item?;
            if let Ok(id) = item.extract::<PyBackedStr>() {
                parsed.push((id, 1));
                continue;
            }
            let pair = item
                .cast::<PyTuple>()
                .ok()
                .filter(|t| t.len() == 2)
                .ok_or_else(|| invalid(py, "each member must be an id or an (id, weight) pair"))?;
            let id: PyBackedStr = pair
                .get_item(0)?
                .extract()
                .map_err(|_| invalid(py, "a member id must be a str"))?;
            // A Python int may not fit the ring's u32: the ring's own rule
            // and wording (`weights[i]: ...`) refuse it here.
            let weight = int_from_py(py, "weight", &pair.get_item(1)?)?;
            let weight = validate::ring_weight(parsed.len(), weight).py_err(py)?;
            parsed.push((id, weight));
        }
        // The ring checks each id as `ids[i]` and each weight as
        // `weights[i]`, as every front door reports them.
        let ring = Ring::new(parsed.iter().map(|(id, w)| (&**id, *w))).py_err(py)?;
        Ok(PyRing { ring })
    }

    /// Id of the member that owns `key`.
    fn locate<'py>(&self, py: Python<'py>, key: PyBackedStr) -> PyResult<Bound<'py, PyString>> {
        let i = self.ring.locate(&key).py_err(py)?;
        let m = self
            .ring
            .members()
            .get(i)
            .ok_or_else(|| invalid(py, "ring returned an index out of range"))?;
        Ok(PyString::new(py, &m.id))
    }

    /// Ids of up to `n` distinct members for `key`, in preference order.
    fn locate_n<'py>(
        &self,
        py: Python<'py>,
        key: PyBackedStr,
        n: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let n = count_from_py(py, "n", n)?;
        let idx = self.ring.locate_n(&key, n).py_err(py)?;
        let members = self.ring.members();
        let ids = idx
            .into_iter()
            .filter_map(|i| members.get(i).map(|m| PyString::new(py, &m.id)));
        PyList::new(py, ids)
    }

    /// The members as `(id, weight)` pairs, sorted by id.
    #[getter]
    fn members<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = self
            .ring
            .members()
            .iter()
            .map(|m| (PyString::new(py, &m.id), m.weight).into_pyobject(py))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// The ring's checksum (algorithm, member ids and weights): the same
    /// a registry reports for a group with these members.
    #[getter]
    fn checksum(&self) -> u64 {
        self.ring.checksum()
    }

    fn __len__(&self) -> usize {
        self.ring.members().len()
    }

    fn __repr__(&self) -> String {
        format!("Ring(<{} members>)", self.ring.members().len())
    }
}
