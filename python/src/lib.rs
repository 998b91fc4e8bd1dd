//! Python bindings of the registry: the native half of `registry_client`.
//!
//! A thin skin over `registry-core`: every blocking call runs on one global
//! tokio runtime with the GIL released, every asyncio call is a task on
//! that runtime ([`aio`]), and every core error becomes a Python exception
//! in exactly one place ([`errors::to_py_err`]).

mod aio;
mod changes;
mod client;
mod errors;
mod moves;
mod options;
mod registration;
mod ring;
mod runtime;
mod service;

use pyo3::prelude::*;

/// The native module `registry_client._native`; users import
/// `registry_client`, which re-exports everything from here.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("RING_ALGORITHM", registry_core::ring::RING_ALGORITHM)?;
    m.add_class::<service::PyService>()?;
    m.add_class::<ring::PyRing>()?;
    m.add_class::<moves::PyMoves>()?;
    m.add_class::<moves::PyMovedRange>()?;
    m.add_class::<client::PyClient>()?;
    m.add_class::<client::PyGroupView>()?;
    m.add_class::<changes::PyViewChange>()?;
    m.add_class::<client::PyGroupInfo>()?;
    m.add_class::<registration::PyRegistration>()?;
    m.add_function(wrap_pyfunction!(aio::connect, m)?)?;
    m.add_function(wrap_pyfunction!(aio::match_key, m)?)?;
    m.add_function(wrap_pyfunction!(aio::match_n, m)?)?;
    m.add_function(wrap_pyfunction!(aio::members, m)?)?;
    m.add_function(wrap_pyfunction!(aio::groups, m)?)?;
    m.add_function(wrap_pyfunction!(aio::group, m)?)?;
    Ok(())
}
