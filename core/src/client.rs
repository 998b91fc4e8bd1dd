//! Discovery client: RPC calls with failover, and a local view of a group
//! that answers `match_key` with no round trip.
//!
//! A [`Client`] knows several registry addresses. Each call goes to the
//! registry that answered last; on `Unavailable` or a timeout it moves on to
//! the next one, making at most [`ClientConfig::attempts`] tries with a
//! bounded backoff between full passes. Answers that are final
//! (`NotFound`, `InvalidArgument`, …) are returned at once.
//!
//! [`Client::group`] returns a [`GroupView`]: a background task follows the
//! group through `Watch`, rebuilds the group's ring locally with the very
//! same [`GroupSnapshot`] code the server uses, and swaps it in. Lookups
//! load an `Arc` and take no lock a writer can hold. When the stream breaks
//! the view keeps answering from its last snapshot and resubscribes through
//! another registry.

use crate::catalog::GroupSnapshot;
use crate::error::{Error, Result};
use crate::ring::RING_ALGORITHM;
use crate::service::{check_name, Service, REGISTRY_GROUP};
pub use crate::tls::TlsConfig;
use crate::wire::v1::{self, registry_client::RegistryClient};
use arc_swap::ArcSwap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint};

/// Settings of a [`Client`]. `ClientConfig::new(addrs)` gives the defaults.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Registry gRPC addresses, `host:port` (an `http://` prefix, or
    /// `https://` with [`ClientConfig::tls`], is optional).
    pub registries: Vec<String>,
    /// Time allowed to open a connection to one registry. Default 1 s: a
    /// registry on the same network answers in milliseconds, and a dead one
    /// should cost little before the next is tried.
    pub connect_timeout: Duration,
    /// Time allowed for one call to one registry. Default 2 s.
    pub request_timeout: Duration,
    /// Tries per call, across registries. Default: 2 passes over the list
    /// (at least 3 tries).
    pub attempts: Option<usize>,
    /// Longest pause between passes over the registry list, and between
    /// resubscriptions of a [`GroupView`]. Default 1 s.
    pub max_backoff: Duration,
    /// Also use registries found in the reserved registry group. Default on.
    pub discover_registries: bool,
    /// TLS towards the registries (their `--tls-cert`); `None`: plain
    /// text. Default `None`.
    pub tls: Option<TlsConfig>,
}

impl ClientConfig {
    /// Defaults for the given registry addresses.
    pub fn new<I, S>(registries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ClientConfig {
            registries: registries.into_iter().map(Into::into).collect(),
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(2),
            attempts: None,
            max_backoff: Duration::from_secs(1),
            discover_registries: true,
            tls: None,
        }
    }
}

/// The answer to a `members` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Members {
    /// Members sorted by id; empty for a group with no members.
    pub services: Vec<Service>,
    /// The group's ring version on the registry that answered.
    pub version: u64,
}

/// Summary of one group, from `groups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// Group name.
    pub name: String,
    /// Number of members.
    pub members: u32,
    /// Ring version on the registry that answered.
    pub version: u64,
}

/// One known registry and its (lazily connected) channel.
struct Target {
    addr: String,
    channel: Channel,
}

struct Inner {
    config: ClientConfig,
    targets: Mutex<Vec<Arc<Target>>>,
    /// Index of the registry that answered last.
    current: AtomicUsize,
}

/// A discovery client with failover across several registries.
/// Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("registries", &self.registries())
            .finish()
    }
}

/// What a registry address looks like, for the errors about one.
const ADDRESS_FORM: &str = "expected host:port, e.g. 127.0.0.1:9800";

/// What to do when no registry could be connected to at all: the
/// wording every front door shows after the addresses tried.
pub const NOT_RUNNING_HINT: &str = "is a registry-server running there? (its gRPC port is its --addr)";

/// The URL of a registry address: `https://` with TLS, `http://` without;
/// an explicit scheme that contradicts the TLS settings is an error rather
/// than a silent downgrade or a handshake that cannot succeed. Without a
/// scheme the port is required (a registry has no well-known port).
fn normalize(addr: &str, tls: bool) -> Result<String> {
    let addr = addr.trim();
    if addr.is_empty() {
        return Err(Error::invalid("registry address is empty"));
    }
    let bad = |why: &dyn std::fmt::Display| {
        Error::invalid(format!("bad registry address {addr:?}: {why}; {ADDRESS_FORM}"))
    };
    let (url, explicit_scheme) = match (addr.strip_prefix("http://"), addr.strip_prefix("https://")) {
        (Some(_), _) if tls => {
            return Err(Error::invalid(format!(
                "registry address {addr:?} says http:// but TLS is configured"
            )))
        }
        (_, Some(_)) if !tls => {
            return Err(Error::invalid(format!(
                "registry address {addr:?} says https:// but no TLS settings (CA) are given"
            )))
        }
        (Some(_), _) | (_, Some(_)) => (addr.to_string(), true),
        (None, None) if tls => (format!("https://{addr}"), false),
        (None, None) => (format!("http://{addr}"), false),
    };
    let uri: tonic::codegen::http::Uri = url.parse().map_err(|e| bad(&e))?;
    let authority = uri.authority().ok_or_else(|| bad(&"no host"))?.as_str();
    // The port follows the last ':' after an IPv6 literal's ']'.
    let after_host = authority.rsplit_once(']').map_or(authority, |(_, rest)| rest);
    match after_host.rsplit_once(':').map(|(_, port)| port) {
        Some("") => return Err(bad(&"no port after the ':'")),
        Some(port) if !matches!(port.parse::<u16>(), Ok(1..)) => {
            return Err(bad(&format_args!("port {port:?} is not 1 to 65535")))
        }
        None if !explicit_scheme => return Err(bad(&"no port")),
        _ => {}
    }
    Endpoint::from_shared(url.clone()).map_err(|e| bad(&e))?;
    Ok(url)
}

/// A registry URL as shown in errors: as the user writes it (no
/// `http://`; `https://` stays, it says TLS was used).
fn shown(url: &str) -> &str {
    url.strip_prefix("http://").unwrap_or(url)
}

/// The error of a failed call, and whether the registry could not be
/// connected to at all (nothing listening, host unreachable). [`Error::from`] decides the kind (a status made by our own
/// transport is `Unavailable`); this words the transport's causes for a
/// person: the connection failure alone (`connection refused`), or `TLS:`
/// with what the refusal means, or a hint when a plain-text client got an
/// answer it cannot read.
fn status_error(status: tonic::Status, tls: bool) -> (Error, bool) {
    let source = std::error::Error::source(&status);
    let transport = source.is_some();
    let tls_error = source.and_then(find_tls_error).cloned();
    let connect = source.and_then(connect_failure);
    // tonic's message for a status it made itself is "transport error".
    let error = match Error::from(status) {
        Error::Unavailable(m) => match m.strip_prefix("transport error: ") {
            Some(rest) => Error::Unavailable(rest.to_string()),
            None => Error::Unavailable(m),
        },
        e => e,
    };
    let error = match (error, &connect) {
        // A TLS alert from the registry reaches us inside an h2 error
        // that hides its cause: only the text tells.
        (Error::Unavailable(m), _) if tls_error.is_some() || m.contains("received fatal alert") => {
            let hint = tls_hint(tls_error.as_ref(), &m);
            Error::Unavailable(format!("TLS: {m}{hint}"))
        }
        (Error::Unavailable(_), Some((cause, _))) => Error::Unavailable(cause.clone()),
        // Connected, then the connection failed before any answer (closed,
        // broken, or bytes that are not HTTP/2): what a TLS-only registry
        // does to a plain-text client.
        (Error::Unavailable(m), None) if !tls && transport => Error::Unavailable(format!(
            "{m}; does the registry serve TLS only? then the client needs its CA"
        )),
        // The same for a TLS client: with TLS 1.3 the registry checks the
        // client's certificate after the client's side of the handshake
        // is done, so its refusal often shows only as a closed connection.
        (Error::Unavailable(m), None) if tls && transport => {
            Error::Unavailable(format!("{m}; {CLIENT_CERT_HINT}"))
        }
        (e, _) => e,
    };
    (error, connect.is_some_and(|(_, not_running)| not_running))
}

/// The rustls error among the causes (directly or inside an I/O error).
fn find_tls_error<'a>(
    mut source: &'a (dyn std::error::Error + 'static),
) -> Option<&'a tokio_rustls::rustls::Error> {
    use tokio_rustls::rustls;
    loop {
        if let Some(e) = source.downcast_ref::<rustls::Error>() {
            return Some(e);
        }
        if let Some(e) = source
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(e);
        }
        source = source.source()?;
    }
}

/// What a registry that refuses a TLS client after the handshake most
/// likely wants.
const CLIENT_CERT_HINT: &str =
    "does the registry require a client certificate (its --tls-client-ca)? then give the client one signed by that CA";

/// What a TLS refusal means for the person setting up the client, as
/// `; ...` to append, or "".
fn tls_hint(error: Option<&tokio_rustls::rustls::Error>, message: &str) -> &'static str {
    use tokio_rustls::rustls::{CertificateError, Error as Tls, InvalidMessage};
    match error {
        Some(Tls::InvalidCertificate(CertificateError::UnknownIssuer)) => {
            "; the registry's certificate is not signed by the client's TLS CA"
        }
        Some(Tls::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => "; the registry's certificate does not name the host dialed: set the TLS domain to a name it has",
        Some(Tls::InvalidMessage(InvalidMessage::InvalidContentType)) => {
            "; does the registry serve plain text? then the client needs no TLS settings"
        }
        _ if message.contains("CertificateRequired") => {
            "; the registry asks for a client certificate (its --tls-client-ca): give the client one signed by that CA"
        }
        _ if message.contains("received fatal alert") => {
            "; the registry refused the client's certificate: it must be signed by the registry's --tls-client-ca"
        }
        _ => "",
    }
}

/// When the transport could not open a connection: the cause as a person
/// says it (`connection refused`), and whether it suggests that nothing
/// runs there (not for a name that does not resolve).
fn connect_failure(mut source: &(dyn std::error::Error + 'static)) -> Option<(String, bool)> {
    use std::io::ErrorKind::*;
    loop {
        if let Some(io) = source.downcast_ref::<std::io::Error>() {
            let kind = io.kind();
            if matches!(
                kind,
                ConnectionRefused | AddrNotAvailable | HostUnreachable | NetworkUnreachable | TimedOut
            ) {
                return Some((kind.to_string(), true));
            }
        }
        // hyper's connector names a failed name lookup "dns error".
        if source.to_string() == "dns error" {
            let why = source.source().map(|e| e.to_string()).unwrap_or_default();
            return Some((format!("cannot resolve the host name: {why}"), false));
        }
        source = source.source()?;
    }
}

/// Errors another registry may not give: unreachable, too slow, or full
/// (a registry at its `--max-watch-streams` answers RESOURCE_EXHAUSTED).
fn is_retryable(e: &Error) -> bool {
    matches!(
        e,
        Error::Unavailable(_) | Error::Timeout(_) | Error::LimitExceeded(_)
    )
}

/// The latest failed try on one registry.
struct Failure {
    /// The registry's URL.
    addr: String,
    /// What went wrong there.
    error: Error,
    /// Nothing could be connected to there (see [`status_error`]).
    not_running: bool,
}

/// The error of a call that no registry answered: every registry tried,
/// with its cause, and what to do. The kind is that of the failure on
/// `last` (the registry tried last):
///
/// `no registry reachable: tried 127.0.0.1:1 (connection refused); is a
/// registry-server running there? (its gRPC port is its --addr)`
fn exhausted(failures: &[Failure], last: &str) -> Error {
    let tried = failures
        .iter()
        .map(|f| format!("{} ({})", shown(&f.addr), f.error.message()))
        .collect::<Vec<_>>()
        .join(", ");
    if tried.is_empty() {
        return Error::Unavailable("no registry was tried (attempts is 0)".into());
    }
    match failures.iter().find(|f| f.addr == last).map(|f| &f.error) {
        Some(Error::Timeout(_)) => Error::Timeout(format!("no registry answered in time: tried {tried}")),
        Some(Error::LimitExceeded(_)) => {
            Error::LimitExceeded(format!("every registry refused by a limit: tried {tried}"))
        }
        _ if failures.iter().any(|f| f.not_running) => Error::Unavailable(format!(
            "no registry reachable: tried {tried}; {NOT_RUNNING_HINT}"
        )),
        _ => Error::Unavailable(format!("no registry reachable: tried {tried}")),
    }
}

impl Client {
    /// A client for the given registries (`["127.0.0.1:9800", …]`) with
    /// default settings. Connections open lazily: this fails only on an
    /// empty list or a malformed address (one without a port, too).
    pub async fn connect<I, S>(registries: I) -> Result<Client>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with_config(ClientConfig::new(registries)).await
    }

    /// A client with explicit settings. When `discover_registries` is on,
    /// it asks the first reachable registry for the others (best effort).
    pub async fn with_config(config: ClientConfig) -> Result<Client> {
        if config.registries.is_empty() {
            return Err(Error::invalid("no registry address given"));
        }
        let mut targets = Vec::new();
        for addr in &config.registries {
            let url = normalize(addr, config.tls.is_some())?;
            if !targets.iter().any(|t: &Arc<Target>| t.addr == url) {
                targets.push(Arc::new(Target {
                    channel: Self::channel(&config, &url)?,
                    addr: url,
                }));
            }
        }
        let client = Client {
            inner: Arc::new(Inner {
                config,
                targets: Mutex::new(targets),
                current: AtomicUsize::new(0),
            }),
        };
        if client.inner.config.discover_registries {
            if let Err(e) = client.refresh_registries().await {
                tracing::debug!(error = %e, "client: registry discovery skipped");
            }
        }
        Ok(client)
    }

    fn channel(config: &ClientConfig, url: &str) -> Result<Channel> {
        let ep = Endpoint::from_shared(url.to_string())
            .map_err(|e| Error::invalid(format!("bad registry address {url:?}: {e}")))?
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true);
        let ep = match &config.tls {
            Some(tls) => ep.tls_config(tls.to_tonic()?).map_err(|e| {
                let msg = crate::wire::with_causes(&e.to_string(), std::error::Error::source(&e));
                Error::invalid(format!("TLS settings: {msg}"))
            })?,
            None => ep,
        };
        Ok(ep.connect_lazy())
    }

    /// The registry addresses this client knows, as URLs.
    pub fn registries(&self) -> Vec<String> {
        self.lock_targets().iter().map(|t| t.addr.clone()).collect()
    }

    fn lock_targets(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Target>>> {
        self.inner.targets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds every registry listed in the reserved registry group to the
    /// known addresses. Returns how many were new.
    pub async fn refresh_registries(&self) -> Result<usize> {
        let found = self.members(REGISTRY_GROUP).await?;
        let mut added = 0;
        for svc in found.services {
            let Ok(url) = normalize(&svc.addr, self.inner.config.tls.is_some()) else {
                continue;
            };
            // A registry that advertises a wildcard address cannot be dialed.
            if url.contains("://0.0.0.0:") || url.contains("://[::]:") {
                continue;
            }
            let channel = Self::channel(&self.inner.config, &url)?;
            let mut targets = self.lock_targets();
            if !targets.iter().any(|t| t.addr == url) {
                targets.push(Arc::new(Target { addr: url, channel }));
                added += 1;
            }
        }
        Ok(added)
    }

    /// Runs `call` against the registries in turn until one gives a final
    /// answer. Remembers the registry that answered. When every try fails,
    /// the error names each registry tried with its cause (see
    /// [`exhausted`]); its kind is that of the last failure.
    async fn with_failover<T, F, Fut>(&self, what: &str, call: F) -> Result<T>
    where
        F: Fn(RegistryClient<Channel>) -> Fut,
        Fut: Future<Output = std::result::Result<T, tonic::Status>>,
    {
        let targets: Vec<Arc<Target>> = self.lock_targets().clone();
        let n = targets.len();
        let attempts = self.inner.config.attempts.unwrap_or((2 * n).max(3));
        let start = self.inner.current.load(Ordering::Relaxed);
        let mut backoff = Duration::from_millis(50);
        let mut failures: Vec<Failure> = Vec::new();
        let mut last = start % n;
        for attempt in 0..attempts {
            if attempt > 0 && attempt % n == 0 {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(self.inner.config.max_backoff);
            }
            let idx = (start + attempt) % n;
            let target = &targets[idx];
            let rpc = call(RegistryClient::new(target.channel.clone()));
            let (result, not_running) =
                match tokio::time::timeout(self.inner.config.request_timeout, rpc).await {
                    Ok(Ok(v)) => (Ok(v), false),
                    Ok(Err(status)) => {
                        let (e, not_running) = status_error(status, self.inner.config.tls.is_some());
                        (Err(e), not_running)
                    }
                    Err(_) => (
                        Err(Error::Timeout(format!(
                            "no answer within {:?}",
                            self.inner.config.request_timeout
                        ))),
                        false,
                    ),
                };
            match result {
                Ok(v) => {
                    self.inner.current.store(idx, Ordering::Relaxed);
                    return Ok(v);
                }
                Err(e) if is_retryable(&e) => {
                    tracing::debug!(registry = %target.addr, error = %e, "client: {what}: trying the next registry");
                    let failure = Failure {
                        addr: target.addr.clone(),
                        error: e,
                        not_running,
                    };
                    // One entry per registry, in the order first tried,
                    // with its latest cause.
                    match failures.iter_mut().find(|f| f.addr == failure.addr) {
                        Some(f) => *f = failure,
                        None => failures.push(failure),
                    }
                    last = idx;
                }
                Err(e) => {
                    self.inner.current.store(idx, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        Err(exhausted(&failures, &targets[last].addr))
    }

    /// The member of `group` that owns `key`, asked of a registry.
    pub async fn match_key(&self, group: &str, key: &str) -> Result<Service> {
        check_group_key(group, key)?;
        let req = v1::MatchRequest {
            group: group.into(),
            key: key.into(),
        };
        let resp = self
            .with_failover("match", |mut c| {
                let req = req.clone();
                async move { c.r#match(req).await }
            })
            .await?
            .into_inner();
        resp.service
            .map(Service::from)
            .ok_or_else(|| Error::Internal("registry answered Match without a service".into()))
    }

    /// Up to `n` distinct members for `key`, in preference order.
    pub async fn match_n(&self, group: &str, key: &str, n: usize) -> Result<Vec<Service>> {
        check_group_key(group, key)?;
        if n == 0 {
            return Err(Error::invalid("n must be at least 1"));
        }
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let req = v1::MatchNRequest {
            group: group.into(),
            key: key.into(),
            n,
        };
        let resp = self
            .with_failover("match_n", |mut c| {
                let req = req.clone();
                async move { c.match_n(req).await }
            })
            .await?
            .into_inner();
        Ok(resp.services.into_iter().map(Service::from).collect())
    }

    /// Every member of `group` (empty when it has none).
    pub async fn members(&self, group: &str) -> Result<Members> {
        check_name("group", group)?;
        let req = v1::MembersRequest { group: group.into() };
        let resp = self
            .with_failover("members", |mut c| {
                let req = req.clone();
                async move { c.members(req).await }
            })
            .await?
            .into_inner();
        Ok(Members {
            services: resp.services.into_iter().map(Service::from).collect(),
            version: resp.version,
        })
    }

    /// Every group that has members.
    pub async fn groups(&self) -> Result<Vec<GroupInfo>> {
        let resp = self
            .with_failover(
                "groups",
                |mut c| async move { c.groups(v1::GroupsRequest {}).await },
            )
            .await?
            .into_inner();
        Ok(resp
            .groups
            .into_iter()
            .map(|g| GroupInfo {
                name: g.name,
                members: g.members,
                version: g.version,
            })
            .collect())
    }

    /// Opens a Watch stream on one registry (with failover for opening):
    /// the group's snapshot now, then one per change. The stream ends when
    /// that registry goes away; [`Client::group`] resubscribes by itself.
    pub async fn watch(&self, group: &str) -> Result<tonic::Streaming<v1::Snapshot>> {
        check_name("group", group)?;
        let req = v1::WatchRequest { group: group.into() };
        Ok(self
            .with_failover("watch", |mut c| {
                let req = req.clone();
                async move { c.watch(req).await }
            })
            .await?
            .into_inner())
    }

    /// A local view of `group`, kept current through `Watch`. Waits for the
    /// first snapshot (up to the connect plus request timeout) so that the
    /// view answers at once; fails with `Unavailable` if no registry sends
    /// one in time, and with `LimitExceeded` as soon as every registry
    /// refuses the stream by a limit (`--max-watch-streams`).
    pub async fn group(&self, name: &str) -> Result<GroupView> {
        check_name("group", name)?;
        let shared = Arc::new(ViewShared {
            snapshot: ArcSwap::from_pointee(GroupSnapshot::empty(name, 0)),
            connected: AtomicBool::new(false),
            changed: watch::channel(0).0,
            refused: Mutex::new(None),
            last_error: Mutex::new(None),
        });
        let mut first = shared.changed.subscribe();
        let task = tokio::spawn(follow(self.clone(), name.to_string(), shared.clone()));
        let view = GroupView { shared, task };
        let wait = self.inner.config.connect_timeout + self.inner.config.request_timeout;
        match tokio::time::timeout(wait, first.changed()).await {
            Ok(Ok(())) => {
                let refused = view.shared.refused.lock().ok().and_then(|mut e| e.take());
                match refused {
                    Some(e) => Err(e),
                    None => Ok(view),
                }
            }
            _ => {
                let why = match view.shared.last_error.lock().ok().and_then(|mut e| e.take()) {
                    Some(e) => format!(": {}", e.message()),
                    None => String::new(),
                };
                Err(Error::Unavailable(format!(
                    "no registry sent a snapshot of group {name:?} within {wait:?}{why}"
                )))
            }
        }
    }
}

fn check_group_key(group: &str, key: &str) -> Result<()> {
    check_name("group", group)?;
    if key.is_empty() {
        return Err(Error::invalid("key is empty"));
    }
    Ok(())
}

/// State a [`GroupView`] shares with its background task.
struct ViewShared {
    snapshot: ArcSwap<GroupSnapshot>,
    connected: AtomicBool,
    /// Bumped on every applied snapshot; carries the count of snapshots.
    changed: watch::Sender<u64>,
    /// Set when every registry refused the first subscription by a limit
    /// (RESOURCE_EXHAUSTED), so that [`Client::group`] fails at once.
    refused: Mutex<Option<Error>>,
    /// Why the latest subscription failed, for the error of
    /// [`Client::group`] when no snapshot comes in time.
    last_error: Mutex<Option<Error>>,
}

/// Turns one Watch message into a local snapshot, refusing rings this
/// client cannot reproduce.
fn snapshot_from_wire(msg: v1::Snapshot) -> Result<GroupSnapshot> {
    if !msg.ring.is_empty() && msg.ring != RING_ALGORITHM {
        return Err(Error::Internal(format!(
            "registry uses ring {:?}, this client knows only {RING_ALGORITHM:?}",
            msg.ring
        )));
    }
    let services = msg
        .services
        .into_iter()
        .map(|s| Arc::new(Service::from(s)))
        .collect();
    GroupSnapshot::new(msg.group, msg.version, services)
}

/// Follows a group until the view is dropped (which aborts this task).
async fn follow(client: Client, group: String, shared: Arc<ViewShared>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match client.watch(&group).await {
            Ok(mut stream) => {
                while let Some(msg) = stream.next().await {
                    let applied = msg.map_err(Error::from).and_then(snapshot_from_wire);
                    match applied {
                        Ok(snap) => {
                            shared.snapshot.store(Arc::new(snap));
                            shared.connected.store(true, Ordering::Release);
                            shared.changed.send_modify(|n| *n += 1);
                            backoff = Duration::from_millis(50);
                        }
                        Err(e) => {
                            tracing::warn!(group, error = %e, "view: watch stream failed");
                            break;
                        }
                    }
                }
                // Move on to the next registry for the resubscription.
                client.inner.current.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::debug!(group, error = %e, "view: cannot subscribe");
                if let Ok(mut slot) = shared.last_error.lock() {
                    *slot = Some(e.clone());
                }
                // Before the first snapshot, a refusal by a limit is the
                // answer: wake `Client::group` (the count stays 0).
                if matches!(e, Error::LimitExceeded(_)) && *shared.changed.borrow() == 0 {
                    if let Ok(mut slot) = shared.refused.lock() {
                        *slot = Some(e);
                    }
                    shared.changed.send_modify(|_| {});
                }
            }
        }
        shared.connected.store(false, Ordering::Release);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(client.inner.config.max_backoff);
    }
}

/// A group followed locally: `match_key` and friends answer from a ring
/// built by the same code as the server's, with no round trip.
/// Dropping the view stops following.
pub struct GroupView {
    shared: Arc<ViewShared>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for GroupView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let snap = self.snapshot();
        f.debug_struct("GroupView")
            .field("group", &snap.group())
            .field("version", &snap.version())
            .field("members", &snap.members().len())
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Drop for GroupView {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GroupView {
    /// The current snapshot; hold it to make several lookups agree.
    pub fn snapshot(&self) -> Arc<GroupSnapshot> {
        self.shared.snapshot.load_full()
    }

    /// The member that owns `key` (`NotFound` when the group is empty).
    pub fn match_key(&self, key: &str) -> Result<Arc<Service>> {
        self.shared.snapshot.load().match_key(key).cloned()
    }

    /// Up to `n` distinct members for `key`, in preference order.
    pub fn match_n(&self, key: &str, n: usize) -> Result<Vec<Arc<Service>>> {
        Ok(self
            .shared
            .snapshot
            .load()
            .match_n(key, n)?
            .into_iter()
            .cloned()
            .collect())
    }

    /// Members sorted by id.
    pub fn members(&self) -> Vec<Arc<Service>> {
        self.shared.snapshot.load().members().to_vec()
    }

    /// Ring version of the snapshot in use, as numbered by the registry
    /// that sent it.
    pub fn version(&self) -> u64 {
        self.shared.snapshot.load().version()
    }

    /// True while a Watch stream is open; when false the view answers from
    /// its last snapshot and is resubscribing.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// A receiver that changes on every new snapshot (for `changed().await`).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_follows_the_tls_settings() {
        assert_eq!(normalize("h:1", false).unwrap(), "http://h:1");
        assert_eq!(normalize("h:1", true).unwrap(), "https://h:1");
        assert_eq!(normalize("https://h:1", true).unwrap(), "https://h:1");
        assert!(normalize("http://h:1", true)
            .unwrap_err()
            .to_string()
            .contains("TLS"));
        assert!(normalize("https://h:1", false)
            .unwrap_err()
            .to_string()
            .contains("TLS"));
    }

    #[test]
    fn a_bad_address_says_what_is_wrong_and_the_expected_form() {
        for (addr, why) in [
            ("127.0.0.1", "no port"),
            ("localhost:", "no port after"),
            ("127.0.0.1:99999", "port \"99999\" is not 1 to 65535"),
            ("127.0.0.1:0", "port \"0\""),
            ("[::1]", "no port"),
            ("bad host:1", "bad registry address \"bad host:1\""),
        ] {
            let e = normalize(addr, false).unwrap_err();
            let text = e.to_string();
            assert!(matches!(e, Error::InvalidArgument(_)), "{addr}: {text}");
            assert!(text.contains(why), "{addr}: {text}");
            assert!(text.contains(ADDRESS_FORM), "{addr}: {text}");
        }
        assert_eq!(normalize("[::1]:9800", false).unwrap(), "http://[::1]:9800");
        // With an explicit scheme the scheme's port applies.
        assert_eq!(
            normalize("https://registry.example", true).unwrap(),
            "https://registry.example"
        );
    }

    #[test]
    fn a_refused_connection_is_named_and_marked_not_running() {
        let mut status = tonic::Status::unknown("tcp connect error");
        status.set_source(Arc::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        let (e, not_running) = status_error(status, false);
        assert_eq!(e, Error::Unavailable("connection refused".into()));
        assert!(not_running);
        // Connected, then cut off before an answer: a plain-text client
        // is told about TLS; nothing says the registry is not running.
        let mut status = tonic::Status::unknown("transport error");
        status.set_source(Arc::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe)));
        let (e, not_running) = status_error(status, false);
        assert!(
            matches!(&e, Error::Unavailable(m) if m.contains("does the registry serve TLS only?")),
            "{e}"
        );
        assert!(!not_running);
        // A TLS client cut off after its handshake: most likely its
        // certificate was refused.
        let mut status = tonic::Status::unknown("connection closed");
        status.set_source(Arc::new(std::io::Error::other("connection closed")));
        let (e, _) = status_error(status, true);
        assert!(
            matches!(&e, Error::Unavailable(m) if m.contains(CLIENT_CERT_HINT)),
            "{e}"
        );
        // A status the registry sent is left as it is.
        let (e, not_running) = status_error(tonic::Status::unavailable("joining"), false);
        assert_eq!(e, Error::Unavailable("joining".into()));
        assert!(!not_running);
    }

    #[test]
    fn the_exhausted_error_names_every_registry_tried() {
        let failure = |addr: &str, error: Error, not_running| Failure {
            addr: addr.into(),
            error,
            not_running,
        };
        let refused = || Error::Unavailable("connection refused".into());
        let e = exhausted(
            &[
                failure("http://127.0.0.1:1", refused(), true),
                failure("https://10.0.0.1:2", Error::Unavailable("TLS: x".into()), false),
            ],
            "https://10.0.0.1:2",
        );
        assert_eq!(
            e,
            Error::Unavailable(format!(
                "no registry reachable: tried 127.0.0.1:1 (connection refused), https://10.0.0.1:2 (TLS: x); {NOT_RUNNING_HINT}"
            ))
        );
        // No hint when every registry answered (e.g. all joining).
        let e = exhausted(
            &[failure("http://a:1", Error::Unavailable("joining".into()), false)],
            "http://a:1",
        );
        assert_eq!(
            e.to_string(),
            "unavailable: no registry reachable: tried a:1 (joining)"
        );
        // The kind is the last failure's.
        let e = exhausted(
            &[
                failure("http://a:1", refused(), true),
                failure("http://b:1", Error::Timeout("no answer within 2s".into()), false),
            ],
            "http://b:1",
        );
        assert!(
            matches!(e, Error::Timeout(m) if m.contains("a:1 (connection refused), b:1 (no answer within 2s)"))
        );
        assert!(matches!(exhausted(&[], "x"), Error::Unavailable(_)));
    }
}
