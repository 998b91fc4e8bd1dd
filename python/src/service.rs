//! `Service`: one instance of a service group, as discovered.

use crate::errors::{invalid, IntoPyResult};
use pyo3::basic::CompareOp;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyDict, PyString};
use registry_core::Service;
use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

/// An immutable service instance: `id`, `group`, `addr`, `weight`, `tags`,
/// `draining`.
/// Shares the core's `Arc`, so handing one to Python copies no strings.
#[pyclass(frozen, module = "registry_client", name = "Service")]
pub struct PyService {
    pub(crate) inner: Arc<Service>,
}

impl PyService {
    /// Wraps a core service.
    pub(crate) fn from_arc(inner: Arc<Service>) -> Self {
        PyService { inner }
    }
}

/// Reads a Python `dict[str, str]` (or `None`) into tags.
pub(crate) fn tags_from_py(
    py: Python<'_>,
    tags: Option<&Bound<'_, PyAny>>,
) -> PyResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let Some(tags) = tags else { return Ok(out) };
    if tags.is_none() {
        return Ok(out);
    }
    let dict = tags
        .cast::<PyDict>()
        .map_err(|_| invalid(py, "tags must be a dict of str to str"))?;
    for (k, v) in dict.iter() {
        let (Ok(k), Ok(v)) = (k.extract::<PyBackedStr>(), v.extract::<PyBackedStr>()) else {
            return Err(invalid(py, "tags must be a dict of str to str"));
        };
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// Reads a Python int (`what` names the argument); any other type is
/// invalid. Its range is the core's to check.
pub(crate) fn int_from_py(py: Python<'_>, what: &str, value: &Bound<'_, PyAny>) -> PyResult<i64> {
    value
        .extract()
        .map_err(|_| invalid(py, format!("{what} must be an int")))
}

/// Reads a weight given as a Python int, checked by the core's weight rule.
pub(crate) fn weight_from_py(py: Python<'_>, weight: &Bound<'_, PyAny>) -> PyResult<u32> {
    let w = int_from_py(py, "weight", weight)?;
    registry_core::validate::signed_weight(w).py_err(py)
}

#[pymethods]
impl PyService {
    /// A service value (checked like a registration would be).
    #[new]
    #[pyo3(signature = (id, group, addr, weight = None, tags = None))]
    fn new(
        py: Python<'_>,
        id: PyBackedStr,
        group: PyBackedStr,
        addr: PyBackedStr,
        weight: Option<&Bound<'_, PyAny>>,
        tags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut svc = Service::new(&*id, &*group, &*addr);
        if let Some(w) = weight {
            svc.weight = weight_from_py(py, w)?;
        }
        svc.tags = tags_from_py(py, tags)?;
        svc.validate().py_err(py)?;
        Ok(PyService::from_arc(Arc::new(svc)))
    }

    /// Unique id of the instance.
    #[getter]
    fn id<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, &self.inner.id)
    }

    /// Group the instance belongs to.
    #[getter]
    fn group<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, &self.inner.group)
    }

    /// Address clients use to reach the instance.
    #[getter]
    fn addr<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, &self.inner.addr)
    }

    /// Relative share of keys.
    #[getter]
    fn weight(&self) -> u32 {
        self.inner.weight
    }

    /// True while the instance drains: listed, but owning no keys.
    #[getter]
    fn draining(&self) -> bool {
        self.inner.draining
    }

    /// Metadata, as a new dict on every access.
    #[getter]
    fn tags<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in &self.inner.tags {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let s = &self.inner;
        let r = |v: &str| -> PyResult<String> { Ok(PyString::new(py, v).repr()?.to_string()) };
        let mut out = format!(
            "Service(id={}, group={}, addr={}, weight={}",
            r(&s.id)?,
            r(&s.group)?,
            r(&s.addr)?,
            s.weight
        );
        if !s.tags.is_empty() {
            out.push_str(", tags=");
            out.push_str(&self.tags(py)?.repr()?.to_string());
        }
        if s.draining {
            out.push_str(", draining=True");
        }
        out.push(')');
        Ok(out)
    }

    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<Py<PyAny>> {
        let py = other.py();
        let Ok(other) = other.cast::<PyService>() else {
            return Ok(py.NotImplemented());
        };
        let eq = *self.inner == *other.get().inner;
        match op {
            CompareOp::Eq => Ok(eq.into_pyobject(py)?.to_owned().into_any().unbind()),
            CompareOp::Ne => Ok((!eq).into_pyobject(py)?.to_owned().into_any().unbind()),
            _ => Ok(py.NotImplemented()),
        }
    }

    fn __hash__(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.inner.hash(&mut h);
        h.finish()
    }
}
