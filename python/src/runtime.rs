//! The one tokio runtime behind every blocking call of the module.

use crate::errors::to_py_err;
use once_cell::sync::OnceCell;
use pyo3::prelude::*;
use registry_core::Error;
use std::future::Future;
use tokio::runtime::Runtime;

static RUNTIME: OnceCell<Runtime> = OnceCell::new();

/// The global runtime, started on first use (two worker threads: the
/// client's work is I/O, and the host process owns the CPU).
pub(crate) fn runtime() -> Result<&'static Runtime, Error> {
    RUNTIME.get_or_try_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("registry-client")
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the tokio runtime: {e}")))
    })
}

/// Runs `fut` to completion on the runtime with the GIL released, and maps
/// its error to the Python exception of its kind.
pub(crate) fn block_on<T, F>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = Result<T, Error>> + Send,
    T: Send,
{
    py.detach(|| runtime()?.block_on(fut))
        .map_err(|e| to_py_err(py, e))
}
