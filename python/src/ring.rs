//! `Ring`: the core consistent-hash ring on its own, for tests and tools,
//! or a group view's ring at one snapshot.

use crate::errors::{invalid, IntoPyResult};
use crate::moves::PyMoves;
use crate::service::int_from_py;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyList, PyString, PyTuple};
use registry_core::ring::MemberState;
use registry_core::{validate, GroupSnapshot, Ring};
use std::sync::Arc;

/// A consistent-hash ring over `(id, weight)` members, some of them
/// perhaps draining: exactly the ring the registry servers and every other
/// front door build.
#[pyclass(frozen, module = "registry_client", name = "Ring")]
pub struct PyRing {
    source: Source,
}

/// Where a `Ring`'s ring lives: its own, or a group snapshot's (shared,
/// so a view's ring costs no copy of the points).
enum Source {
    Own(Ring),
    Snapshot(Arc<GroupSnapshot>),
}

impl PyRing {
    /// The ring of a group view's snapshot, kept alive by this object.
    pub(crate) fn of_snapshot(snapshot: Arc<GroupSnapshot>) -> Self {
        PyRing {
            source: Source::Snapshot(snapshot),
        }
    }

    /// The core ring.
    pub(crate) fn ring(&self) -> &Ring {
        match &self.source {
            Source::Own(ring) => ring,
            Source::Snapshot(snapshot) => snapshot.ring(),
        }
    }
}

/// Reads the `i`-th member's id: a str, valid UTF-8 (no lone surrogate).
fn id_from_py(py: Python<'_>, i: usize, id: &Bound<'_, PyAny>) -> PyResult<PyBackedStr> {
    let id = id
        .cast::<PyString>()
        .map_err(|_| invalid(py, format!("ids[{i}] must be a str")))?;
    PyBackedStr::try_from(id.clone()).map_err(|e| invalid(py, format!("ids[{i}] is not valid UTF-8: {e}")))
}

/// Reads one member: a bare id (weight 1, serving), an `(id, weight)`
/// pair or an `(id, weight, draining)` triple; `i` is its place, as the
/// ring names it in its errors (`weights[i]`).
fn member_from_py(
    py: Python<'_>,
    i: usize,
    item: &Bound<'_, PyAny>,
) -> PyResult<(PyBackedStr, u32, MemberState)> {
    if item.is_instance_of::<PyString>() {
        return Ok((id_from_py(py, i, item)?, 1, MemberState::Serving));
    }
    let tuple = item
        .cast::<PyTuple>()
        .ok()
        .filter(|t| matches!(t.len(), 2 | 3))
        .ok_or_else(|| {
            invalid(
                py,
                "each member must be an id, an (id, weight) pair or an (id, weight, draining) triple",
            )
        })?;
    let id = id_from_py(py, i, &tuple.get_item(0)?)?;
    // A Python int may not fit the ring's u32: the ring's own rule and
    // wording (`weights[i]: ...`) refuse it here.
    let weight = int_from_py(py, "weight", &tuple.get_item(1)?)?;
    let weight = validate::ring_weight(i, weight).py_err(py)?;
    let draining = tuple.len() == 3
        && tuple
            .get_item(2)?
            .extract::<bool>()
            .map_err(|_| invalid(py, format!("members[{i}]: draining must be a bool")))?;
    Ok((id, weight, MemberState::draining(draining)))
}

/// Reads a count given as a Python int (`what` names it: `n`,
/// `attempts`); below 1 is invalid, worded by the core's validation.
pub(crate) fn count_from_py(py: Python<'_>, what: &str, n: &Bound<'_, PyAny>) -> PyResult<usize> {
    let n = int_from_py(py, what, n)?;
    registry_core::validate::signed_count(what, n).py_err(py)
}

#[pymethods]
impl PyRing {
    /// Builds a ring from an iterable of bare ids (weight 1), `(id,
    /// weight)` pairs or `(id, weight, draining)` triples: a draining
    /// member is listed but owns no keys.
    #[new]
    fn new(py: Python<'_>, members: &Bound<'_, PyAny>) -> PyResult<Self> {
        if members.is_instance_of::<PyString>() {
            return Err(invalid(
                py,
                "members must be an iterable of ids or (id, weight[, draining]) tuples, not a str",
            ));
        }
        let iter = members.try_iter().map_err(|_| {
            invalid(
                py,
                "members must be an iterable of ids or (id, weight[, draining]) tuples",
            )
        })?;
        let parsed = iter
            .enumerate()
            .map(|(i, item)| member_from_py(py, i, &item?))
            .collect::<PyResult<Vec<_>>>()?;
        // The ring checks each id as `ids[i]` and each weight as
        // `weights[i]`, as every front door reports them.
        let ring = Ring::with_states(parsed.iter().map(|(id, w, state)| (&**id, *w, *state))).py_err(py)?;
        Ok(PyRing {
            source: Source::Own(ring),
        })
    }

    /// Id of the member that owns `key`.
    fn locate<'py>(&self, py: Python<'py>, key: PyBackedStr) -> PyResult<Bound<'py, PyString>> {
        let i = self.ring().locate(&key).py_err(py)?;
        let m = self
            .ring()
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
        let idx = self.ring().locate_n(&key, n).py_err(py)?;
        let members = self.ring().members();
        let ids = idx
            .into_iter()
            .filter_map(|i| members.get(i).map(|m| PyString::new(py, &m.id)));
        PyList::new(py, ids)
    }

    /// The members as `(id, weight)` pairs, sorted by id (draining ones
    /// included: see `draining`).
    #[getter]
    fn members<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = self
            .ring()
            .members()
            .iter()
            .map(|m| (PyString::new(py, &m.id), m.weight).into_pyobject(py))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// Ids of the draining members (listed, owning no keys), sorted.
    #[getter]
    fn draining<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let ids = self
            .ring()
            .members()
            .iter()
            .filter(|m| m.state.is_draining())
            .map(|m| PyString::new(py, &m.id));
        PyList::new(py, ids)
    }

    /// What moved from this ring to `newer`: the key ranges whose owner
    /// changed, with the old and the new owner (a `Moves`).
    fn moves_to(&self, py: Python<'_>, newer: &Bound<'_, PyRing>) -> PyMoves {
        let (old, new) = (self.ring(), newer.get().ring());
        // A walk over every point of both rings: no Python involved.
        PyMoves::new(py.detach(|| registry_core::Moves::between(old, new)))
    }

    /// The ring's checksum (algorithm, member ids, weights and states):
    /// the same a registry reports for a group with these members.
    #[getter]
    fn checksum(&self) -> u64 {
        self.ring().checksum()
    }

    fn __len__(&self) -> usize {
        self.ring().members().len()
    }

    fn __repr__(&self) -> String {
        let ring = self.ring();
        match ring.len() - ring.serving() {
            0 => format!("Ring(<{} members>)", ring.len()),
            draining => format!("Ring(<{} members, {draining} draining>)", ring.len()),
        }
    }
}
