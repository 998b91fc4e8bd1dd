//! Starting and stopping the daemon: open the data directory and bind
//! every listener first (so a bad file or address fails before anything
//! starts), then membership, then serve; on shutdown save the membership,
//! leave the cluster, end Watch streams and drain requests.

use crate::api::{Api, GroupHistory};
use crate::cluster::Cluster;
use crate::config::Settings;
use crate::datadir::{DataDir, SAVE_DEBOUNCE};
use crate::grpc;
use crate::http;
use crate::listener::{self, Listener};
use crate::metrics::{Metrics, RequestCollector};
use crate::shutdown::Shutdown;
use crate::tls::Tls;
use prometheus_client::registry::Registry;
use registry_core::bridge::Remembered;
use registry_core::{Catalog, MemberEvent};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic_health::server::HealthReporter;
use tower_layer::{Identity, Stack};

/// Longest wait for in-flight requests to finish on shutdown.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// With a data directory, how often the membership is compared with the
/// file even without a change notice (a member that moved its gossip
/// address with the same metadata).
const SAVE_CHECK: Duration = Duration::from_secs(30);

/// An open data directory and the membership it remembered at start.
type Data = (Arc<DataDir>, Vec<Remembered>);

/// A server whose listeners are bound but that serves nothing yet.
pub struct Bound {
    settings: Settings,
    grpc: TcpListener,
    http: TcpListener,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    tls: Option<Arc<Tls>>,
    data: Option<Data>,
}

/// Binds the gRPC and HTTP listeners. The error is one line naming the
/// flag, e.g. `cannot bind the gRPC address 0.0.0.0:9800 (--addr): Address
/// already in use (os error 98)`.
pub async fn bind(settings: Settings) -> Result<Bound, String> {
    // Certificates first: a bad file fails before any port is taken.
    let tls = match &settings.tls {
        Some(files) => Some(Arc::new(Tls::load(files)?)),
        None => None,
    };
    // The data directory too (locked: one registry per directory).
    let data = match &settings.data_dir {
        Some(dir) => {
            let d = DataDir::open(dir)?;
            let remembered = d.load()?;
            Some((Arc::new(d), remembered))
        }
        None => None,
    };
    let grpc = TcpListener::bind(settings.grpc_addr).await.map_err(|e| {
        format!(
            "cannot bind the gRPC address {} (--addr): {e}",
            settings.grpc_addr
        )
    })?;
    let http = TcpListener::bind(settings.http_addr).await.map_err(|e| {
        format!(
            "cannot bind the HTTP address {} (--http-addr): {e}",
            settings.http_addr
        )
    })?;
    let grpc_addr = grpc.local_addr().map_err(|e| format!("gRPC listener: {e}"))?;
    let http_addr = http.local_addr().map_err(|e| format!("HTTP listener: {e}"))?;
    Ok(Bound {
        settings,
        grpc,
        http,
        grpc_addr,
        http_addr,
        tls,
        data,
    })
}

impl Bound {
    /// The bound gRPC address (the real port when 0 was asked for).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Joins the cluster and serves; logs "ready" once both listeners
    /// serve.
    pub async fn start(self) -> Result<Running, String> {
        let Bound {
            settings,
            grpc,
            http,
            grpc_addr,
            http_addr,
            tls,
            data,
        } = self;
        let advertise = settings.grpc_advertise(grpc_addr);
        let catalog = Arc::new(Catalog::with_limits(settings.limits.catalog));
        let history = Arc::new(GroupHistory::default());
        let metrics = Arc::new(Metrics::new());
        let shutdown = Shutdown::new();
        let api = Arc::new(Api::new(
            catalog.clone(),
            history.clone(),
            settings.limits,
            metrics.clone(),
            shutdown.clone(),
        ));
        let (routes, health) = grpc::routes(api.clone()).await?;
        // With seeds or remembered members, refuse queries until the
        // cluster is learnt (below).
        let remembered: Vec<Remembered> = data.as_ref().map(|d| d.1.clone()).unwrap_or_default();
        let others = remembered.iter().filter(|r| r.id != settings.id).count();
        let gated = (!settings.registries.is_empty() || others > 0) && !settings.sync_timeout.is_zero();
        if gated {
            api.set_joining(true);
            grpc::set_not_serving(&health).await;
        }
        // Gossip last among the things that can fail, so that a bad address
        // never leaves a half-started member in the cluster.
        let cluster = Arc::new(Cluster::start(&settings, &advertise, catalog, history, gated).await?);

        let limits = settings.connections;
        let accept = |listener| listener::Accept {
            listener,
            limits,
            tls: tls.clone(),
            metrics: metrics.clone(),
        };
        let grpc_incoming = listener::incoming(grpc, accept(Listener::Grpc));
        let http_incoming = listener::incoming(http, accept(Listener::Http));

        let grpc_server = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(limits.keepalive()))
            .http2_keepalive_timeout(Some(limits.keepalive()))
            .layer(grpc::CountOversizedLayer(metrics.clone()))
            .add_routes(routes);
        let grpc_task = tokio::spawn(serve_grpc(
            grpc_server,
            grpc_incoming.into_stream(),
            shutdown.wait(),
        ));

        // One registry of collectors, each reading its atomics at scrape
        // time: requests and catalog, gossip, TLS handshakes.
        let mut registry = Registry::default();
        registry.register_collector(Box::new(RequestCollector::new(metrics, api.catalog().clone())));
        registry.register_collector(Box::new(cluster.clone()));
        if let Some(tls) = &tls {
            registry.register_collector(Box::new(tls.clone()));
        }
        let router = http::router(api.clone(), Arc::new(registry));
        let http_task = tokio::spawn(serve_http(http_incoming, router, shutdown.wait()));

        let ready = Ready {
            id: settings.id.clone(),
            grpc: grpc_addr,
            http: http_addr,
            gossip: cluster.gossip_addr(),
            advertise,
            tls: tls.is_some(),
        };
        let keeper = data.map(|(dir, _)| Keeper {
            dir,
            cluster: cluster.clone(),
            id: settings.id.clone(),
        });
        let gate = if gated {
            tracing::info!(
                timeout = ?settings.sync_timeout,
                remembered = others,
                "joining: queries wait for a sync with a member that is not joining itself and for every remembered member"
            );
            let gate = Gate {
                api: api.clone(),
                cluster: cluster.clone(),
                health: health.clone(),
                timeout: settings.sync_timeout,
                remembered,
            };
            Some(tokio::spawn(gate.open_when_synced(ready, keeper.clone())))
        } else {
            ready.log(false);
            keeper.clone().map(|k| tokio::spawn(k.run()))
        };
        Ok(Running {
            grpc_addr,
            http_addr,
            api,
            cluster,
            health,
            shutdown,
            grpc_task,
            http_task,
            gate,
            keeper,
        })
    }
}

/// What the "ready" log line reports.
struct Ready {
    id: String,
    grpc: SocketAddr,
    http: SocketAddr,
    gossip: SocketAddr,
    advertise: String,
    tls: bool,
}

impl Ready {
    /// Logs "ready": from here on every query is answered. `synced`: a
    /// sync with the cluster came first (false without seeds, or when
    /// none answered in time).
    fn log(&self, synced: bool) {
        tracing::info!(
            id = %self.id,
            grpc = %self.grpc,
            http = %self.http,
            gossip = %self.gossip,
            advertise = %self.advertise,
            tls = self.tls,
            synced,
            "ready"
        );
    }
}

/// The joining gate's parts.
struct Gate {
    api: Arc<Api>,
    cluster: Arc<Cluster>,
    health: HealthReporter,
    timeout: Duration,
    remembered: Vec<Remembered>,
}

impl Gate {
    /// Refuses queries until the cluster is learnt: a push-pull sync
    /// answer from a member that is not joining itself is in, the catalog
    /// holds every member gossip knows and every remembered member is
    /// back or found down; or, at the latest, after `timeout` (serve what
    /// is known, logged). Then keeps the membership in the data directory
    /// (`keeper`).
    async fn open_when_synced(self, ready: Ready, keeper: Option<Keeper>) {
        let r = self.cluster.wait_open(&self.remembered, self.timeout).await;
        if r.joined {
            tracing::info!(
                waited_ms = r.waited.as_millis() as u64,
                rejoined = ?r.rejoined,
                down = ?r.down,
                "joining: learnt the cluster (remembered members back or not answering within 3 s)"
            );
        } else {
            tracing::warn!(
                timeout = ?self.timeout,
                missing = ?r.missing,
                rejoined = ?r.rejoined,
                "not synced with the cluster within --sync-timeout (no member that is not joining itself answered, remembered members missing, or membership kept changing); serving what this registry knows"
            );
        }
        self.cluster.set_open();
        self.api.set_joining(false);
        grpc::set_serving(&self.health).await;
        ready.log(r.joined);
        if let Some(k) = keeper {
            k.run().await;
        }
    }
}

/// Keeps the membership in the data directory once the gate is open
/// (before, the file's remembered membership is what the gate waits for).
#[derive(Clone)]
struct Keeper {
    dir: Arc<DataDir>,
    cluster: Arc<Cluster>,
    id: String,
}

impl Keeper {
    /// Writes the membership now, and again [`SAVE_DEBOUNCE`] after each
    /// change (at least every [`SAVE_CHECK`] if it differs), until aborted.
    async fn run(self) {
        let mut last: Option<Vec<Remembered>> = None;
        loop {
            let members = self.cluster.members_at();
            if last.as_ref() != Some(&members) {
                let (dir, id, m) = (self.dir.clone(), self.id.clone(), members.clone());
                match tokio::task::spawn_blocking(move || dir.save(&id, &m)).await {
                    Ok(Ok(())) => last = Some(members),
                    Ok(Err(e)) => tracing::warn!(error = %e, "data directory: membership not saved"),
                    Err(e) => tracing::warn!(error = %e, "data directory: save task failed"),
                }
            }
            tokio::select! {
                _ = self.cluster.changed().notified() => {}
                _ = tokio::time::sleep(SAVE_CHECK) => {}
            }
            tokio::time::sleep(SAVE_DEBOUNCE).await;
        }
    }

    /// Writes the membership once (on a clean shutdown).
    fn save_now(&self) {
        if let Err(e) = self.dir.save(&self.id, &self.cluster.members_at()) {
            tracing::warn!(error = %e, "data directory: membership not saved at shutdown");
        }
    }
}

/// A serving registry.
pub struct Running {
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    api: Arc<Api>,
    cluster: Arc<Cluster>,
    health: HealthReporter,
    shutdown: Shutdown,
    grpc_task: JoinHandle<Result<(), String>>,
    http_task: JoinHandle<Result<(), String>>,
    /// The joining gate, while it waits (then the data directory's keeper).
    gate: Option<JoinHandle<()>>,
    /// The data directory's keeper, if any.
    keeper: Option<Keeper>,
}

impl Running {
    /// The gRPC address served.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The HTTP address served.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The catalog answered from.
    pub fn catalog(&self) -> &Arc<Catalog> {
        self.api.catalog()
    }

    /// The request metrics.
    pub fn metrics(&self) -> &Metrics {
        self.api.metrics()
    }

    /// A sender of membership events into the catalog (what gossip feeds).
    pub fn events(&self) -> mpsc::Sender<MemberEvent> {
        self.cluster.events()
    }

    /// The local gossip (UDP) address.
    pub fn gossip_addr(&self) -> SocketAddr {
        self.cluster.gossip_addr()
    }

    /// True when queries are answered (joined and not shutting down).
    pub fn is_serving(&self) -> bool {
        self.api.is_serving()
    }

    /// The cluster membership (gossip counters, own entry).
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Completes when a server task stops by itself (an error), when
    /// another live registry holds this one's `--id`, or when the
    /// membership feeder stopped (the registry would serve a frozen view).
    pub async fn failed(&mut self) -> String {
        tokio::select! {
            r = &mut self.grpc_task => describe(r),
            r = &mut self.http_task => describe(r),
            e = self.cluster.refused() => e,
            e = self.cluster.stalled() => e,
        }
    }

    /// Graceful shutdown: NOT_SERVING, leave the cluster, end Watch
    /// streams, finish in-flight requests (at most [`DRAIN_TIMEOUT`]).
    pub async fn shutdown(self) {
        if let Some(gate) = &self.gate {
            gate.abort();
        }
        // The membership as it stands, unless still joining (the file
        // then keeps what the gate was waiting for).
        if let Some(k) = &self.keeper {
            if self.api.is_serving() {
                k.save_now();
            }
        }
        grpc::set_not_serving(&self.health).await;
        self.cluster.leave().await;
        self.shutdown.trigger();
        let drain = async {
            let (g, h) = tokio::join!(self.grpc_task, self.http_task);
            for r in [g, h] {
                if let Err(e) = r.map_err(|e| e.to_string()).and_then(|r| r) {
                    tracing::warn!(error = %e, "server stopped with an error");
                }
            }
        };
        if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
            tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?}; stopping anyway");
        }
        tracing::info!("stopped");
    }
}

/// Serves the gRPC routes on `incoming` connections (plain TCP or TLS)
/// until `shutdown` completes.
async fn serve_grpc<I, IO, IE>(
    server: tonic::transport::server::Router<Stack<grpc::CountOversizedLayer, Identity>>,
    incoming: I,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), String>
where
    I: tokio_stream::Stream<Item = Result<IO, IE>>,
    IO: tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + tonic::transport::server::Connected
        + Unpin
        + Send
        + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    server
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| format!("gRPC server: {e}"))
}

/// Serves the HTTP router on `listener` (plain TCP or TLS) until
/// `shutdown` completes.
async fn serve_http<L>(
    listener: L,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| format!("HTTP server: {e}"))
}

fn describe(r: Result<Result<(), String>, tokio::task::JoinError>) -> String {
    match r {
        Ok(Ok(())) => "a server stopped".to_string(),
        Ok(Err(e)) => e,
        Err(e) => format!("a server task failed: {e}"),
    }
}
