//! `Client` (RPC calls with failover) and `GroupView` (the local view).

use crate::errors::{to_py_err, IntoPyResult};
use crate::options::{client_config, seconds, PemArg};
use crate::ring::{count_from_py, PyRing};
use crate::runtime::{block_on, runtime};
use crate::service::PyService;
use arc_swap::ArcSwapOption;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyList, PyString};
use registry_core::{Client, Error, GroupView};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// The error of every call on a closed client.
pub(crate) fn closed() -> Error {
    Error::Unavailable("the client is closed".into())
}

/// Wraps core services into a Python list of `Service`.
pub(crate) fn service_list<'py, I>(py: Python<'py>, services: I) -> PyResult<Bound<'py, PyList>>
where
    I: IntoIterator<Item = Arc<registry_core::Service>>,
{
    let items = services
        .into_iter()
        .map(|s| Bound::new(py, PyService::from_arc(s)))
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

/// Summary of one group, as returned by `Client.groups()`.
#[pyclass(frozen, module = "registry_client", name = "GroupInfo", get_all)]
pub struct PyGroupInfo {
    /// Group name.
    name: String,
    /// Number of members.
    members: u32,
    /// Ring version on the registry that answered.
    version: u64,
    /// Checksum of the group's ring on the registry that answered.
    checksum: u64,
}

#[pymethods]
impl PyGroupInfo {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "GroupInfo(name={}, members={}, version={}, checksum=0x{:016x})",
            PyString::new(py, &self.name).repr()?,
            self.members,
            self.version,
            self.checksum
        ))
    }
}

/// A discovery client with failover across several registries.
/// Thread-safe: share one per process.
#[pyclass(frozen, module = "registry_client", name = "Client")]
pub struct PyClient {
    /// `None` once closed.
    client: ArcSwapOption<Client>,
    /// Views opened through this client, closed with it.
    views: Mutex<Vec<Weak<ArcSwapOption<GroupView>>>>,
}

impl From<registry_core::GroupInfo> for PyGroupInfo {
    fn from(g: registry_core::GroupInfo) -> Self {
        PyGroupInfo {
            name: g.name,
            members: g.members,
            version: g.version,
            checksum: g.checksum,
        }
    }
}

impl PyClient {
    /// Wraps a connected core client.
    pub(crate) fn wrap(client: Client) -> Self {
        PyClient {
            client: ArcSwapOption::from_pointee(client),
            views: Mutex::new(Vec::new()),
        }
    }

    /// The core client (`Unavailable` once closed).
    pub(crate) fn get(&self) -> Result<Arc<Client>, Error> {
        self.client.load_full().ok_or_else(closed)
    }

    /// Takes a view opened through this client into its care, so that
    /// `close()` closes it too; `Unavailable` (and the view closed) if the
    /// client was closed meanwhile.
    pub(crate) fn adopt(&self, view: GroupView) -> Result<PyGroupView, Error> {
        let seen = AtomicU64::new(*view.subscribe().borrow());
        let slot = Arc::new(ArcSwapOption::from_pointee(view));
        let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        views.retain(|w| w.strong_count() > 0);
        views.push(Arc::downgrade(&slot));
        // Checked after the push, under the lock `close()` takes: either
        // `close()` finds the view in the list, or the view sees it closed.
        if self.client.load().is_none() {
            let _guard = runtime().ok().map(|rt| rt.enter());
            slot.store(None);
            return Err(closed());
        }
        Ok(PyGroupView { view: slot, seen })
    }
}

#[pymethods]
impl PyClient {
    /// A client for `registries` (`"host:port"` or a list of them).
    /// Connections open lazily; bad addresses raise `InvalidArgumentError`.
    /// `tls_ca` (PEM: a file path, or the PEM itself as `bytes`) turns TLS
    /// on; `tls_cert` and `tls_key` (the same) add a client certificate;
    /// `tls_domain` overrides the expected name. `max_staleness`
    /// (seconds): a view's lookups raise `UnavailableError` once its
    /// snapshot has gone unconfirmed for longer (None: never).
    #[new]
    #[pyo3(signature = (registries, *, connect_timeout = None, request_timeout = None,
                        attempts = None, discover_registries = true,
                        tls_ca = None, tls_cert = None, tls_key = None, tls_domain = None,
                        max_staleness = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
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
    ) -> PyResult<Self> {
        let config = client_config(
            py,
            registries,
            connect_timeout,
            request_timeout,
            attempts,
            discover_registries,
            tls_ca,
            tls_cert,
            tls_key,
            tls_domain,
            max_staleness,
        )?;
        Ok(PyClient::wrap(block_on(py, Client::with_config(config))?))
    }

    /// The member of `group` that owns `key`, asked of a registry.
    #[pyo3(name = "match")]
    fn match_key(&self, py: Python<'_>, group: PyBackedStr, key: PyBackedStr) -> PyResult<PyService> {
        let client = self.get().py_err(py)?;
        let svc = block_on(py, async move { client.match_key(&group, &key).await })?;
        Ok(PyService::from_arc(Arc::new(svc)))
    }

    /// Up to `n` distinct members of `group` for `key`, in preference order.
    fn match_n<'py>(
        &self,
        py: Python<'py>,
        group: PyBackedStr,
        key: PyBackedStr,
        n: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let n = count_from_py(py, "n", n)?;
        let client = self.get().py_err(py)?;
        let svcs = block_on(py, async move { client.match_n(&group, &key, n).await })?;
        service_list(py, svcs.into_iter().map(Arc::new))
    }

    /// Every member of `group`, sorted by id (empty when it has none).
    fn members<'py>(&self, py: Python<'py>, group: PyBackedStr) -> PyResult<Bound<'py, PyList>> {
        let client = self.get().py_err(py)?;
        let m = block_on(py, async move { client.members(&group).await })?;
        service_list(py, m.services.into_iter().map(Arc::new))
    }

    /// Every group that has members.
    fn groups(&self, py: Python<'_>) -> PyResult<Vec<PyGroupInfo>> {
        let client = self.get().py_err(py)?;
        let groups = block_on(py, async move { client.groups().await })?;
        Ok(groups.into_iter().map(PyGroupInfo::from).collect())
    }

    /// A local view of `group`, kept current through Watch. Waits for the
    /// first snapshot; raises `UnavailableError` if none comes in time.
    fn group(&self, py: Python<'_>, name: PyBackedStr) -> PyResult<PyGroupView> {
        let client = self.get().py_err(py)?;
        let view = block_on(py, async move { client.group(&name).await })?;
        self.adopt(view).py_err(py)
    }

    /// The registry addresses this client knows (including discovered ones).
    #[getter]
    fn registries(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        Ok(self.get().py_err(py)?.registries())
    }

    /// True once `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.client.load().is_none()
    }

    /// Closes the client and every view opened through it. Idempotent;
    /// later calls raise `UnavailableError`.
    fn close(&self, py: Python<'_>) {
        let client = self.client.swap(None);
        let views = std::mem::take(&mut *self.views.lock().unwrap_or_else(|e| e.into_inner()));
        // Dropping channels and aborting view tasks wants the runtime around.
        py.detach(move || {
            let _guard = runtime().ok().map(|rt| rt.enter());
            for v in views.iter().filter_map(Weak::upgrade) {
                v.store(None);
            }
            drop(client);
        });
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyAny>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        match self.client.load_full() {
            Some(c) => format!("Client({:?})", c.registries()),
            None => "Client(<closed>)".to_string(),
        }
    }
}

/// A group followed locally: `match` and friends answer from a ring built
/// by the same code as the server's, with no round trip. Thread-safe.
#[pyclass(frozen, module = "registry_client", name = "GroupView")]
pub struct PyGroupView {
    /// `None` once closed (by itself or by its client).
    view: Arc<ArcSwapOption<GroupView>>,
    /// The snapshot count `wait_for_change` last reported, so a snapshot
    /// that arrives between two calls is reported by the next one.
    seen: AtomicU64,
}

impl PyGroupView {
    fn get(&self) -> Result<Arc<GroupView>, Error> {
        self.view
            .load_full()
            .ok_or_else(|| Error::Unavailable("the group view is closed".into()))
    }

    /// Records `count` as reported; true if it is newer than the last.
    fn report(&self, count: u64) -> bool {
        self.seen.fetch_max(count, Ordering::AcqRel) < count
    }
}

#[pymethods]
impl PyGroupView {
    /// The member that owns `key` (`NotFoundError` when the group is empty).
    #[pyo3(name = "match")]
    fn match_key(&self, py: Python<'_>, key: PyBackedStr) -> PyResult<PyService> {
        let guard = self.view.load();
        let view = guard
            .as_ref()
            .ok_or_else(|| to_py_err(py, Error::Unavailable("the group view is closed".into())))?;
        let svc = view.match_key(&key).py_err(py)?;
        Ok(PyService::from_arc(svc))
    }

    /// Handle-or-forward for the member `self_id`: `None` when it owns
    /// `key` (handle it here), else the owner to forward to. A draining
    /// member owns no key, so it forwards every request.
    fn route(&self, py: Python<'_>, key: PyBackedStr, self_id: PyBackedStr) -> PyResult<Option<PyService>> {
        let route = self.get().py_err(py)?.route(&key, &self_id).py_err(py)?;
        Ok(match route {
            registry_core::Route::Here => None,
            registry_core::Route::Forward(owner) => Some(PyService::from_arc(owner)),
        })
    }

    /// Up to `n` distinct members for `key`, in preference order.
    fn match_n<'py>(
        &self,
        py: Python<'py>,
        key: PyBackedStr,
        n: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let n = count_from_py(py, "n", n)?;
        let svcs = self.get().py_err(py)?.match_n(&key, n).py_err(py)?;
        service_list(py, svcs)
    }

    /// Members sorted by id.
    fn members<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let svcs = self.get().py_err(py)?.members();
        service_list(py, svcs)
    }

    /// The ring of the snapshot in use, as a `Ring` that later snapshots
    /// do not change: take one before and one after a change, and
    /// `moves_to` says which keys moved. Shares the snapshot, no copy.
    fn ring(&self, py: Python<'_>) -> PyResult<PyRing> {
        Ok(PyRing::of_snapshot(self.get().py_err(py)?.snapshot()))
    }

    /// Name of the group followed.
    #[getter]
    fn name(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.get().py_err(py)?.snapshot().group().to_string())
    }

    /// Ring version of the snapshot in use, as numbered by the registry.
    #[getter]
    fn version(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.get().py_err(py)?.version())
    }

    /// Ring checksum of the snapshot in use: that of the ring built
    /// locally, equal to the one the registry reported (a mismatch is
    /// refused).
    #[getter]
    fn checksum(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.get().py_err(py)?.checksum())
    }

    /// True while a Watch stream is open; when False the view answers from
    /// its last snapshot and is resubscribing.
    #[getter]
    fn connected(&self) -> bool {
        self.view.load().as_ref().is_some_and(|v| v.is_connected())
    }

    /// Seconds the snapshot has gone unconfirmed: 0.0 while a Watch
    /// stream is open, else the time since the last one closed (0.0 once
    /// the view is closed).
    #[getter]
    fn staleness(&self) -> f64 {
        self.view
            .load()
            .as_ref()
            .map_or(0.0, |v| v.staleness().as_secs_f64())
    }

    /// Calls `callback(change)` (a `ViewChange`) once per change of the
    /// snapshot from now on, on a library thread of its own with the GIL
    /// held, in order; a callback slower than the changes gets them
    /// merged (each from the last snapshot it was given to the newest).
    /// Exceptions go to `sys.unraisablehook`. Stops when the view closes.
    fn on_change(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<()> {
        let view = self.get().py_err(py)?;
        crate::changes::follow(
            &view,
            move |py, change| {
                if let Err(e) = callback.call1(py, (change,)) {
                    e.write_unraisable(py, None);
                }
            },
            |_| {},
        )
    }

    /// The changes of the snapshot from now on, as an async iterator for
    /// the running event loop (`async for change in view.changes()`); it
    /// ends when the view closes. Each await costs no thread.
    fn changes(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let view = self.get().py_err(py)?;
        let asyncio = py.import("asyncio")?;
        let event_loop = asyncio.call_method0("get_running_loop")?.unbind();
        let queue = asyncio.call_method0("Queue")?.unbind();
        let put = move |py: Python<'_>, item: Py<PyAny>, event_loop: &Py<PyAny>, queue: &Py<PyAny>| {
            // A closed loop refuses: nobody is iterating any more.
            if let Ok(put_nowait) = queue.getattr(py, "put_nowait") {
                let _ = event_loop.call_method1(py, "call_soon_threadsafe", (put_nowait, item));
            }
        };
        let (loop2, queue2, iterated) = (event_loop.clone_ref(py), queue.clone_ref(py), queue.clone_ref(py));
        crate::changes::follow(
            &view,
            move |py, change| put(py, change.into_any(), &event_loop, &queue),
            move |py| put(py, py.None(), &loop2, &queue2),
        )?;
        Ok(py
            .import("registry_client._aio")?
            .getattr("ViewChanges")?
            .call1((iterated,))?
            .unbind())
    }

    /// Waits until a snapshot newer than the last one this call reported
    /// (or than the view's first) has arrived; True if one did within
    /// `timeout` seconds (None: wait forever), at once if one arrived
    /// between two calls. Ctrl-C interrupts it.
    #[pyo3(signature = (timeout = None))]
    fn wait_for_change(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let limit = timeout.map(|t| seconds(py, "timeout", t)).transpose()?;
        let mut rx = self.get().py_err(py)?.subscribe();
        if self.report(*rx.borrow_and_update()) {
            return Ok(true);
        }
        let start = std::time::Instant::now();
        let slice = Duration::from_millis(100);
        loop {
            let wait = match limit {
                Some(l) => match l.checked_sub(start.elapsed()) {
                    Some(left) if !left.is_zero() => left.min(slice),
                    _ => return Ok(false),
                },
                None => slice,
            };
            let changed = block_on(py, async {
                match tokio::time::timeout(wait, rx.changed()).await {
                    // Another caller may have reported it already: wait on.
                    Ok(Ok(())) => Ok(self.report(*rx.borrow_and_update()).then_some(true)),
                    // The view was closed: nothing will change any more.
                    Ok(Err(_)) => Ok(Some(false)),
                    Err(_) => Ok(None),
                }
            })?;
            if let Some(c) = changed {
                return Ok(c);
            }
            py.check_signals()?;
        }
    }

    /// Stops following the group. Idempotent; later lookups raise
    /// `UnavailableError`.
    fn close(&self, py: Python<'_>) {
        let view = self.view.swap(None);
        py.detach(move || {
            let _guard = runtime().ok().map(|rt| rt.enter());
            drop(view);
        });
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyAny>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        match self.view.load_full() {
            Some(v) => {
                let s = v.snapshot();
                format!(
                    "GroupView(name={:?}, version={}, members={}, connected={})",
                    s.group(),
                    s.version(),
                    s.members().len(),
                    if v.is_connected() { "True" } else { "False" }
                )
            }
            None => "GroupView(<closed>)".to_string(),
        }
    }
}
