//! Native asyncio calls of `AsyncClient`: each one is the core's future,
//! spawned on the shared runtime, resolving an asyncio future of the
//! running event loop.
//!
//! An await holds no thread: the call is a task on the runtime's two
//! workers until it ends. The workers never take the GIL (a busy event
//! loop must not stall the runtime's other work, such as gossip): they
//! hand each outcome to one delivery thread, which turns a batch of them
//! into Python objects under one GIL hold and passes them to their loops
//! with `call_soon_threadsafe`. Cancelling the asyncio future (the task
//! awaiting it cancelled, or `asyncio.wait_for` timing out) aborts the
//! runtime task, which drops the core's future: its RPC is reset and no
//! more work is done for it.

use crate::client::{service_list, PyClient, PyGroupInfo};
use crate::errors::{to_py_err, IntoPyResult};
use crate::options::{client_config, PemArg};
use crate::ring::count_from_py;
use crate::runtime::runtime;
use crate::service::PyService;
use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use registry_core::{Client, Error};
use std::future::Future;
use std::sync::mpsc;
use std::sync::Arc;
use tokio::task::AbortHandle;

/// Turns a call's outcome into its Python result (with the GIL).
type Outcome = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// A finished call on its way to its event loop.
struct Delivery {
    event_loop: Py<PyAny>,
    future: Py<PyAny>,
    outcome: Outcome,
}

/// The delivery thread's inbox, started on first use.
static DELIVERIES: PyOnceLock<mpsc::Sender<Delivery>> = PyOnceLock::new();

/// `asyncio.get_running_loop`, looked up once.
static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The inbox of the delivery thread (started here the first time).
fn deliveries(py: Python<'_>) -> PyResult<&'static mpsc::Sender<Delivery>> {
    DELIVERIES.get_or_try_init(py, || {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("registry-aio".into())
            .spawn(move || deliver(rx))
            .map_err(|e| PyRuntimeError::new_err(format!("cannot start the asyncio delivery thread: {e}")))?;
        Ok(tx)
    })
}

/// The delivery thread: takes whatever has finished, converts it under
/// one GIL hold, and schedules one callback per event loop and batch.
fn deliver(rx: mpsc::Receiver<Delivery>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let delivered = Python::try_attach(|py| {
            let mut per_loop: Vec<(Py<PyAny>, Vec<Settled>)> = Vec::new();
            for d in batch {
                let settled = match (d.outcome)(py) {
                    Ok(value) => Settled {
                        future: d.future,
                        ok: true,
                        value,
                    },
                    Err(e) => Settled {
                        future: d.future,
                        ok: false,
                        value: e.into_value(py).into_any(),
                    },
                };
                match per_loop.iter_mut().find(|(l, _)| l.is(&d.event_loop)) {
                    Some((_, items)) => items.push(settled),
                    None => per_loop.push((d.event_loop, vec![settled])),
                }
            }
            for (event_loop, items) in per_loop {
                // A closed loop refuses: nobody awaits these any more.
                let _ = event_loop.call_method1(py, intern!(py, "call_soon_threadsafe"), (Settle { items },));
            }
        });
        if delivered.is_none() {
            // The interpreter is shutting down: nothing to deliver to.
            return;
        }
    }
}

/// One future's result (`ok`) or exception.
struct Settled {
    future: Py<PyAny>,
    ok: bool,
    value: Py<PyAny>,
}

/// Called on the event loop: resolves a batch of futures, skipping those
/// cancelled meanwhile.
#[pyclass(frozen)]
struct Settle {
    items: Vec<Settled>,
}

#[pymethods]
impl Settle {
    fn __call__(&self, py: Python<'_>) {
        for s in &self.items {
            let future = s.future.bind(py);
            if future
                .call_method0(intern!(py, "done"))
                .and_then(|d| d.is_truthy())
                .unwrap_or(true)
            {
                continue;
            }
            let method = if s.ok {
                intern!(py, "set_result")
            } else {
                intern!(py, "set_exception")
            };
            if let Err(e) = future.call_method1(method, (s.value.bind(py),)) {
                e.write_unraisable(py, Some(future));
            }
        }
    }
}

/// A future's done callback: aborts the runtime task behind it (a no-op
/// once the task has finished), so cancelling the await drops the call.
#[pyclass(frozen)]
struct AbortOnDone(AbortHandle);

#[pymethods]
impl AbortOnDone {
    fn __call__(&self, _future: &Bound<'_, PyAny>) {
        self.0.abort();
    }
}

/// An asyncio future of the running loop that resolves with `fut`'s
/// value turned into Python by `convert`, or with the exception of its
/// error. Raises `RuntimeError` outside a running event loop.
pub(crate) fn awaitable<'py, T, F, C>(py: Python<'py>, fut: F, convert: C) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Result<T, Error>> + Send + 'static,
    T: Send + 'static,
    C: FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
{
    let inbox = deliveries(py)?;
    let event_loop = GET_RUNNING_LOOP
        .import(py, "asyncio", "get_running_loop")?
        .call0()?;
    let future = event_loop.call_method0(intern!(py, "create_future"))?;
    let rt = runtime().py_err(py)?;
    let (event_loop, resolved) = (event_loop.unbind(), future.clone().unbind());
    let task = rt.spawn(async move {
        let result = fut.await;
        let outcome: Outcome = Box::new(move |py| match result {
            Ok(value) => convert(py, value),
            Err(e) => Err(to_py_err(py, e)),
        });
        // Only fails once the delivery thread is gone (the interpreter is
        // shutting down): nobody awaits any more.
        let _ = inbox.send(Delivery {
            event_loop,
            future: resolved,
            outcome,
        });
    });
    future.call_method1(
        intern!(py, "add_done_callback"),
        (AbortOnDone(task.abort_handle()),),
    )?;
    Ok(future)
}

/// The core client of `client` (`UnavailableError` once closed).
fn core(py: Python<'_>, client: &Bound<'_, PyClient>) -> PyResult<Arc<Client>> {
    client.get().get().py_err(py)
}

/// `await`: a `Client` for `registries`, created (and its other
/// registries discovered) without blocking the event loop. The options
/// are those of `Client`.
#[pyfunction]
#[pyo3(name = "_connect_async",
       signature = (registries, *, connect_timeout = None, request_timeout = None,
                    attempts = None, discover_registries = true,
                    tls_ca = None, tls_cert = None, tls_key = None, tls_domain = None,
                    max_staleness = None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn connect<'py>(
    py: Python<'py>,
    registries: &Bound<'py, PyAny>,
    connect_timeout: Option<f64>,
    request_timeout: Option<f64>,
    attempts: Option<&Bound<'py, PyAny>>,
    discover_registries: bool,
    tls_ca: Option<PemArg>,
    tls_cert: Option<PemArg>,
    tls_key: Option<PemArg>,
    tls_domain: Option<String>,
    max_staleness: Option<f64>,
) -> PyResult<Bound<'py, PyAny>> {
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
    awaitable(py, Client::with_config(config), |py, client| {
        Ok(Py::new(py, PyClient::wrap(client))?.into_any())
    })
}

/// `await`: the member of `group` that owns `key`, asked of a registry.
#[pyfunction]
#[pyo3(name = "_match_async")]
pub(crate) fn match_key<'py>(
    py: Python<'py>,
    client: &Bound<'py, PyClient>,
    group: String,
    key: String,
) -> PyResult<Bound<'py, PyAny>> {
    let client = core(py, client)?;
    awaitable(
        py,
        async move { client.match_key(&group, &key).await },
        |py, svc| Ok(Py::new(py, PyService::from_arc(Arc::new(svc)))?.into_any()),
    )
}

/// `await`: up to `n` distinct members of `group` for `key`, in
/// preference order.
#[pyfunction]
#[pyo3(name = "_match_n_async")]
pub(crate) fn match_n<'py>(
    py: Python<'py>,
    client: &Bound<'py, PyClient>,
    group: String,
    key: String,
    n: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let n = count_from_py(py, "n", n)?;
    let client = core(py, client)?;
    awaitable(
        py,
        async move { client.match_n(&group, &key, n).await },
        |py, svcs| {
            Ok(service_list(py, svcs.into_iter().map(Arc::new))?
                .into_any()
                .unbind())
        },
    )
}

/// `await`: every member of `group`, sorted by id.
#[pyfunction]
#[pyo3(name = "_members_async")]
pub(crate) fn members<'py>(
    py: Python<'py>,
    client: &Bound<'py, PyClient>,
    group: String,
) -> PyResult<Bound<'py, PyAny>> {
    let client = core(py, client)?;
    awaitable(py, async move { client.members(&group).await }, |py, m| {
        Ok(service_list(py, m.services.into_iter().map(Arc::new))?
            .into_any()
            .unbind())
    })
}

/// `await`: every group that has members.
#[pyfunction]
#[pyo3(name = "_groups_async")]
pub(crate) fn groups<'py>(py: Python<'py>, client: &Bound<'py, PyClient>) -> PyResult<Bound<'py, PyAny>> {
    let client = core(py, client)?;
    awaitable(py, async move { client.groups().await }, |py, groups| {
        let infos = groups.into_iter().map(PyGroupInfo::from).collect::<Vec<_>>();
        Ok(infos.into_pyobject(py)?.into_any().unbind())
    })
}

/// `await`: a local view of group `name`, once its first snapshot has
/// come; closed with `client`.
#[pyfunction]
#[pyo3(name = "_group_async")]
pub(crate) fn group<'py>(
    py: Python<'py>,
    client: &Bound<'py, PyClient>,
    name: String,
) -> PyResult<Bound<'py, PyAny>> {
    let owner = client.clone().unbind();
    let client = core(py, client)?;
    awaitable(py, async move { client.group(&name).await }, move |py, view| {
        let view = owner.get().adopt(view).py_err(py)?;
        Ok(Py::new(py, view)?.into_any())
    })
}
