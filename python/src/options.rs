//! Python arguments of a client: registry addresses, timeouts, TLS PEMs,
//! and the `ClientConfig` they make (shared by `Client` and `AsyncClient`).

use crate::errors::{invalid, IntoPyResult};
use crate::ring::count_from_py;
use pyo3::prelude::*;
use pyo3::pybacked::{PyBackedBytes, PyBackedStr};
use registry_core::{ClientConfig, Pem, TlsConfig};
use std::path::PathBuf;
use std::time::Duration;

/// Reads a timeout in seconds (a positive, finite float).
pub(crate) fn seconds(py: Python<'_>, what: &str, secs: f64) -> PyResult<Duration> {
    if !(secs.is_finite() && secs > 0.0) {
        return Err(invalid(
            py,
            format!("{what} must be a positive number of seconds, got {secs}"),
        ));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| invalid(py, format!("{what}: {e}")))
}

/// Reads registry addresses (gRPC for a client, gossip for a
/// registration): one `"host:port"` str or an iterable of them.
pub(crate) fn addresses(py: Python<'_>, registries: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(one) = registries.extract::<PyBackedStr>() {
        return Ok(vec![one.to_string()]);
    }
    let iter = registries
        .try_iter()
        .map_err(|_| invalid(py, "registries must be a str or an iterable of str"))?;
    iter.map(|a| {
        a?.extract::<PyBackedStr>()
            .map(|s| s.to_string())
            .map_err(|_| invalid(py, "each registry address must be a str"))
    })
    .collect()
}

/// Settings of a client from its Python arguments: `Client(...)` and
/// `AsyncClient.connect(...)` share them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn client_config(
    py: Python<'_>,
    registries: &Bound<'_, PyAny>,
    connect_timeout: Option<f64>,
    request_timeout: Option<f64>,
    attempts: Option<&Bound<'_, PyAny>>,
    discover_registries: bool,
    tls_ca: Option<PemArg>,
    tls_cert: Option<PemArg>,
    tls_key: Option<PemArg>,
    tls_domain: Option<String>,
    max_staleness: Option<f64>,
) -> PyResult<ClientConfig> {
    let mut config = ClientConfig::new(addresses(py, registries)?);
    config.tls = TlsConfig::from_sources(
        tls_ca.as_ref().map(PemArg::pem),
        tls_cert.as_ref().map(PemArg::pem),
        tls_key.as_ref().map(PemArg::pem),
        tls_domain.as_deref(),
        ["tls_ca", "tls_cert", "tls_key", "tls_domain"],
    )
    .py_err(py)?;
    // None keeps the core's defaults (ClientConfig): not restated here.
    if let Some(secs) = connect_timeout {
        config.connect_timeout = seconds(py, "connect_timeout", secs)?;
    }
    if let Some(secs) = request_timeout {
        config.request_timeout = seconds(py, "request_timeout", secs)?;
    }
    if let Some(secs) = max_staleness {
        config.max_staleness = Some(seconds(py, "max_staleness", secs)?);
    }
    config.discover_registries = discover_registries;
    if let Some(a) = attempts.filter(|a| !a.is_none()) {
        config.attempts = Some(count_from_py(py, "attempts", a)?);
    }
    Ok(config)
}

/// A PEM option: the PEM itself (`bytes`, `bytearray`) or a file (`str`,
/// `os.PathLike`).
#[derive(FromPyObject)]
pub(crate) enum PemArg {
    /// The PEM text itself.
    Contents(PyBackedBytes),
    /// A file holding it.
    File(PathBuf),
}

impl PemArg {
    /// The core's view of it.
    fn pem(&self) -> Pem<'_> {
        match self {
            PemArg::Contents(b) => Pem::Contents(b),
            PemArg::File(p) => Pem::File(p),
        }
    }
}
