//! Change notification of a view: a callback on a library thread, and an
//! async iterator for asyncio, both fed by the core's change stream.

use crate::moves::PyMoves;
use crate::ring::PyRing;
use pyo3::prelude::*;
use registry_core::{runtime, GroupView, ViewChange};
use tokio_stream::StreamExt;

/// One change of a view's snapshot: the rings before and after it.
#[pyclass(frozen, module = "registry_client", name = "ViewChange")]
pub struct PyViewChange {
    /// Ring version before the change.
    #[pyo3(get)]
    old_version: u64,
    /// Ring version after it.
    #[pyo3(get)]
    new_version: u64,
    /// Ring checksum before the change.
    #[pyo3(get)]
    old_checksum: u64,
    /// Ring checksum after it.
    #[pyo3(get)]
    new_checksum: u64,
    /// The ring before the change (a `Ring`).
    #[pyo3(get)]
    old_ring: Py<PyRing>,
    /// The ring after it (a `Ring`).
    #[pyo3(get)]
    new_ring: Py<PyRing>,
}

#[pymethods]
impl PyViewChange {
    /// What moved: the key ranges whose owner changed, and to whom.
    fn moves(&self, py: Python<'_>) -> PyMoves {
        let (old, new) = (self.old_ring.get().ring(), self.new_ring.get().ring());
        PyMoves::new(py.detach(|| registry_core::Moves::between(old, new)))
    }

    fn __repr__(&self) -> String {
        format!(
            "ViewChange(old_version={}, new_version={}, old_checksum={:016x}, new_checksum={:016x})",
            self.old_version, self.new_version, self.old_checksum, self.new_checksum
        )
    }
}

impl PyViewChange {
    fn new(py: Python<'_>, change: ViewChange) -> PyResult<Py<PyViewChange>> {
        let c = PyViewChange {
            old_version: change.old.version(),
            new_version: change.new.version(),
            old_checksum: change.old.checksum(),
            new_checksum: change.new.checksum(),
            old_ring: Py::new(py, PyRing::of_snapshot(change.old))?,
            new_ring: Py::new(py, PyRing::of_snapshot(change.new))?,
        };
        Py::new(py, c)
    }
}

/// Follows `view`'s changes on a thread of its own: `deliver` gets each
/// change (with the GIL), in order, merged while it lags; `end` runs once
/// the view is closed.
pub(crate) fn follow(
    view: &GroupView,
    deliver: impl Fn(Python<'_>, Py<PyViewChange>) + Send + 'static,
    end: impl FnOnce(Python<'_>) + Send + 'static,
) -> PyResult<()> {
    let mut changes = view.changes();
    std::thread::Builder::new()
        .name("registry-view-changes".into())
        .spawn(move || {
            while let Ok(Some(change)) = runtime::block_on(changes.next()) {
                Python::attach(|py| match PyViewChange::new(py, change) {
                    Ok(c) => deliver(py, c),
                    Err(e) => e.write_unraisable(py, None),
                });
            }
            Python::attach(end);
        })
        .map_err(|e| {
            pyo3::exceptions::PyRuntimeError::new_err(format!("cannot start the change thread: {e}"))
        })?;
    Ok(())
}
