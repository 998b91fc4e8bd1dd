//! Blocking calls from Python: the core's shared runtime, GIL released.

use crate::errors::to_py_err;
use pyo3::prelude::*;
use registry_core::Error;
use std::future::Future;

pub(crate) use registry_core::runtime::shared as runtime;

/// Runs `fut` to completion on the shared runtime with the GIL released,
/// and maps its error to the Python exception of its kind.
pub(crate) fn block_on<T, F>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = Result<T, Error>> + Send,
    T: Send,
{
    py.detach(|| registry_core::runtime::block_on(fut).and_then(|r| r))
        .map_err(|e| to_py_err(py, e))
}
