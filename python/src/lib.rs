//! Python bindings of the registry: the native half of `registry_client`.
//! The full API lands with the Python issue.

use pyo3::prelude::*;

/// The native module `registry_client._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
