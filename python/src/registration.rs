//! `Registration`: a Python service joining the cluster so registries see it.

use crate::errors::{invalid, IntoPyResult};
use crate::options::addresses;
use crate::runtime::{block_on, runtime};
use crate::service::{tags_from_py, weight_from_py, PyService};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBytes, PyString};
use registry_core::gossip::keyring::KEY_LEN;
use registry_core::gossip::Keyring;
use registry_core::registration::{Registration, RegistrationConfig, ServiceUpdate};
use registry_core::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Reads a gossip socket address `"ip:port"` by the core's rule and
/// wording; `what` names the argument.
fn socket_addr(py: Python<'_>, what: &str, s: &str) -> PyResult<SocketAddr> {
    registry_core::validate::socket_addr(what, s.trim()).py_err(py)
}

/// Reads one key: 64 hex digits (str) or 32 raw bytes.
fn one_key(py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<[u8; KEY_LEN]> {
    if let Ok(b) = key.cast::<PyBytes>() {
        return <[u8; KEY_LEN]>::try_from(b.as_bytes()).map_err(|_| {
            invalid(
                py,
                format!("an encryption key is {KEY_LEN} bytes, got {}", b.as_bytes().len()),
            )
        });
    }
    let hex: PyBackedStr = key
        .extract()
        .map_err(|_| invalid(py, "encrypt_key must be a hex str, bytes, or a list of them"))?;
    Keyring::parse_hex_key(&hex).py_err(py)
}

/// Reads `encrypt_key`: None, one key, or a sequence whose first key
/// encrypts and whose every key is accepted (for key rotation).
fn keyring(py: Python<'_>, key: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Keyring>> {
    let Some(key) = key.filter(|k| !k.is_none()) else {
        return Ok(None);
    };
    if key.is_instance_of::<PyString>() || key.is_instance_of::<PyBytes>() {
        return Ok(Some(Keyring::new(one_key(py, key)?)));
    }
    let mut keys = Vec::new();
    for k in key
        .try_iter()
        .map_err(|_| invalid(py, "encrypt_key must be a hex str, bytes, or a list of them"))?
    {
        keys.push(one_key(py, &k?)?);
    }
    Keyring::from_keys(keys)
        .map(Some)
        .ok_or_else(|| invalid(py, "encrypt_key is an empty list"))
}

struct State {
    /// What `start()` registers; kept current by `update()`.
    config: RegistrationConfig,
    /// The live registration between `start()` and `stop()`.
    running: Option<Registration>,
}

/// A service instance registered in the cluster between `start()` and
/// `stop()` (or for the body of a `with` block). Thread-safe.
#[pyclass(frozen, module = "registry_client", name = "Registration")]
pub struct PyRegistration {
    state: Arc<Mutex<State>>,
}

fn not_running() -> Error {
    Error::Unavailable("the registration is not started".into())
}

#[pymethods]
impl PyRegistration {
    /// Describes a registration; nothing happens on the network until
    /// `start()`. Every field is checked here (`InvalidArgumentError`).
    #[new]
    #[pyo3(signature = (id, group, addr, bind, advertise = None, registries = None,
                        weight = None, tags = None, encrypt_key = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        id: PyBackedStr,
        group: PyBackedStr,
        addr: PyBackedStr,
        bind: PyBackedStr,
        advertise: Option<PyBackedStr>,
        registries: Option<&Bound<'_, PyAny>>,
        weight: Option<&Bound<'_, PyAny>>,
        tags: Option<&Bound<'_, PyAny>>,
        encrypt_key: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut config = RegistrationConfig::new(&*id, &*group, &*addr);
        config.bind = socket_addr(py, "bind", &bind)?;
        config.advertise = advertise.map(|a| socket_addr(py, "advertise", &a)).transpose()?;
        if let Some(r) = registries.filter(|r| !r.is_none()) {
            config.registries = addresses(py, r)?;
        }
        if let Some(w) = weight.filter(|w| !w.is_none()) {
            config.weight = weight_from_py(py, w)?;
        }
        config.tags = tags_from_py(py, tags)?;
        config.keyring = keyring(py, encrypt_key)?;
        config.service().validate().py_err(py)?;
        Ok(PyRegistration {
            state: Arc::new(Mutex::new(State {
                config,
                running: None,
            })),
        })
    }

    /// Binds the gossip socket, joins through the registries and waits (at
    /// most 2 s) to learn whether the id is free: `AlreadyExistsError`,
    /// naming the holder's address, when a live member holds it. When no
    /// registry answers in that time it returns and joining goes on in the
    /// background (see `joined`). Starting a started registration does
    /// nothing.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        let state = self.state.clone();
        block_on(py, async move {
            // Held across the await: start, update and stop run one at a time.
            let mut st = state.lock().await;
            if st.running.is_none() {
                st.running = Some(Registration::start(st.config.clone()).await?);
            }
            Ok(())
        })
    }

    /// Changes the registered metadata; registries see the update, never a
    /// failure. Only the given fields change; an invalid change changes
    /// nothing. Works before `start()` too (changes what will register).
    /// `draining=True`: listed but owning no keys (hand their state over,
    /// then `stop()` moves no key); `draining=False` takes them back.
    #[pyo3(signature = (*, group = None, addr = None, weight = None, tags = None, draining = None))]
    fn update(
        &self,
        py: Python<'_>,
        group: Option<PyBackedStr>,
        addr: Option<PyBackedStr>,
        weight: Option<&Bound<'_, PyAny>>,
        tags: Option<&Bound<'_, PyAny>>,
        draining: Option<bool>,
    ) -> PyResult<()> {
        let change = ServiceUpdate {
            group: group.map(|g| g.to_string()),
            addr: addr.map(|a| a.to_string()),
            weight: weight
                .filter(|w| !w.is_none())
                .map(|w| weight_from_py(py, w))
                .transpose()?,
            tags: match tags.filter(|t| !t.is_none()) {
                Some(t) => Some(tags_from_py(py, Some(t))?),
                None => None,
            },
            draining,
        };
        let state = self.state.clone();
        block_on(py, async move {
            let mut st = state.lock().await;
            let mut next = st.config.clone();
            next.update(&change)?;
            if let Some(reg) = &st.running {
                reg.update(change).await?;
            }
            st.config = next;
            Ok(())
        })
    }

    /// Leaves the cluster gracefully: registries drop the service at once.
    /// Stopping a stopped registration does nothing; `start()` may follow.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let state = self.state.clone();
        block_on(py, async move {
            let mut st = state.lock().await;
            match st.running.take() {
                Some(reg) => reg.stop().await,
                None => Ok(()),
            }
        })
    }

    /// True between `start()` and `stop()`.
    #[getter]
    fn running(&self, py: Python<'_>) -> bool {
        let state = self.state.clone();
        py.detach(move || state.blocking_lock().running.is_some())
    }

    /// True once a registry (or any other member) knows this instance.
    #[getter]
    fn joined(&self, py: Python<'_>) -> bool {
        let state = self.state.clone();
        py.detach(move || {
            state
                .blocking_lock()
                .running
                .as_ref()
                .is_some_and(|r| r.is_joined())
        })
    }

    /// The metadata registered (or to be registered) as a `Service`.
    #[getter]
    fn service(&self, py: Python<'_>) -> PyService {
        let state = self.state.clone();
        let svc = py.detach(move || {
            let st = state.blocking_lock();
            match &st.running {
                Some(r) => r.service(),
                None => st.config.service(),
            }
        });
        PyService::from_arc(Arc::new(svc))
    }

    /// The local gossip address `"ip:port"` (the real port when bound to
    /// port 0); raises `UnavailableError` when not started.
    #[getter]
    fn local_addr(&self, py: Python<'_>) -> PyResult<String> {
        let state = self.state.clone();
        py.detach(move || {
            state
                .blocking_lock()
                .running
                .as_ref()
                .map(|r| r.local_addr().to_string())
        })
        .ok_or_else(not_running)
        .py_err(py)
    }

    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        slf.get().start(slf.py())?;
        Ok(slf)
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.stop(py)?;
        Ok(false)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let running = self.running(py);
        let svc = Bound::new(py, self.service(py))?;
        Ok(format!(
            "Registration({}, {})",
            svc.repr()?,
            if running { "running" } else { "stopped" }
        ))
    }
}

impl Drop for PyRegistration {
    /// A registration dropped while running leaves without a goodbye:
    /// registries notice it as failed after the gossip timeout. Its task
    /// is torn down inside the runtime.
    fn drop(&mut self) {
        // No method can be running on a value being dropped, so the lock
        // is free; `try_lock` just avoids any chance of blocking here.
        let running = self.state.try_lock().ok().and_then(|mut st| st.running.take());
        if let Some(reg) = running {
            let _guard = runtime().ok().map(|rt| rt.enter());
            drop(reg);
        }
    }
}
