//! The one place where core errors become Python exceptions.
//!
//! The exception classes are plain Python classes defined in
//! `registry_client/_errors.py` (so they can also derive from the matching
//! builtin: `ValueError`, `LookupError`, `ConnectionError`, `TimeoutError`);
//! this module only picks the class for each [`Error`] kind.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use registry_core::Error;

const MODULE: &str = "registry_client._errors";

static REGISTRY: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INVALID_ARGUMENT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static NOT_FOUND: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static ALREADY_EXISTS: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static UNAVAILABLE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TIMEOUT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static LIMIT_EXCEEDED: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Turns a core error into the Python exception of its kind; the message
/// is the core's message without the kind prefix (the class says it).
pub(crate) fn to_py_err(py: Python<'_>, err: Error) -> PyErr {
    let (cell, class, msg) = match err {
        Error::InvalidArgument(m) => (&INVALID_ARGUMENT, "InvalidArgumentError", m),
        Error::NotFound(m) => (&NOT_FOUND, "NotFoundError", m),
        Error::AlreadyExists(m) => (&ALREADY_EXISTS, "AlreadyExistsError", m),
        Error::Unavailable(m) => (&UNAVAILABLE, "UnavailableError", m),
        Error::Timeout(m) => (&TIMEOUT, "RegistryTimeoutError", m),
        Error::LimitExceeded(m) => (&LIMIT_EXCEEDED, "LimitExceededError", m),
        Error::Internal(m) => (&REGISTRY, "RegistryError", format!("internal error: {m}")),
    };
    match cell.import(py, MODULE, class) {
        Ok(ty) => PyErr::from_type(ty.clone(), msg),
        // Only if the package is broken; still never a panic.
        Err(e) => PyRuntimeError::new_err(format!("{msg} (and {MODULE}.{class} is missing: {e})")),
    }
}

/// Shorthand: an `InvalidArgumentError` with this message.
pub(crate) fn invalid(py: Python<'_>, msg: impl Into<String>) -> PyErr {
    to_py_err(py, Error::InvalidArgument(msg.into()))
}

/// Extension trait: `.py_err(py)?` on a core result.
pub(crate) trait IntoPyResult<T> {
    /// Maps the error half through [`to_py_err`].
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, Error> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py_err(py, e))
    }
}
