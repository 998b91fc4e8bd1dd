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
//! same [`GroupSnapshot`](crate::catalog::GroupSnapshot) code the server uses, and swaps it in. Lookups
//! load an `Arc` and take no lock a writer can hold. When the stream breaks
//! the view keeps answering from its last snapshot and resubscribes through
//! another registry.

mod failure;
#[cfg(test)]
mod tests;
mod view;

use crate::error::{Error, Result};
use crate::service::{Service, REGISTRY_GROUP};
pub use crate::tls::TlsConfig;
use crate::validate;
use crate::wire::v1::{self, registry_client::RegistryClient};
pub use failure::NOT_RUNNING_HINT;
use failure::{connect_timed_out, exhausted, is_retryable, normalize, note, status_error, Failure};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};
pub use view::{GroupView, ViewChange};

/// How often an open connection to a registry is pinged (HTTP/2); one
/// that gives no answer within `request_timeout` is dropped.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);

/// Settings of a [`Client`]. `ClientConfig::new(addrs)` gives the defaults.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Registry gRPC addresses, `host:port` (an `http://` prefix, or
    /// `https://` with [`ClientConfig::tls`], is optional).
    pub registries: Vec<String>,
    /// Time allowed to open a connection to one registry. Default 1 s: a
    /// registry on the same network answers in milliseconds, and a dead one
    /// should cost little before the next is tried. A registry whose
    /// connect timed out is not tried again for `max_backoff`, so one that
    /// never answers (its accept queue full) costs a call at most one
    /// connect timeout, not one per try.
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
    /// Lookups on a [`GroupView`] fail with `Unavailable` once its
    /// snapshot has gone unconfirmed (no Watch stream open) for longer
    /// than this. Default `None`: a view answers from its last snapshot
    /// however old (see [`GroupView::staleness`]).
    pub max_staleness: Option<Duration>,
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
            max_staleness: None,
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
    /// Checksum of that registry's ring of these members
    /// ([`crate::ring::Ring::checksum`]).
    pub checksum: u64,
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
    /// Checksum of the group's ring on the registry that answered: equal
    /// on registries that agree on the members, whatever their versions.
    pub checksum: u64,
}

/// One known registry and its (lazily connected) channel.
struct Target {
    addr: String,
    channel: Channel,
    /// When a connect here last timed out, and the error: such a try
    /// costs the whole connect timeout, so the registry is not tried again
    /// for `max_backoff` after it (calls report this error instead), and a
    /// registry that does not answer costs a call one connect timeout, not
    /// one per try.
    timed_out: Mutex<Option<(std::time::Instant, Error)>>,
}

impl Target {
    fn new(addr: String, channel: Channel) -> Arc<Target> {
        let timed_out = Mutex::new(None);
        Arc::new(Target {
            addr,
            channel,
            timed_out,
        })
    }

    /// The error of a connect that timed out less than `within` ago.
    fn recent_timeout(&self, within: Duration) -> Option<Error> {
        let last = self.timed_out.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref()
            .filter(|(at, _)| at.elapsed() < within)
            .map(|(_, e)| e.clone())
    }
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
                let channel = Self::channel(&config, &url)?;
                targets.push(Target::new(url, channel));
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
            .tcp_nodelay(true)
            // A registry that stops answering (its host cut off) is found
            // out by its silence to pings, so a view's Watch stream moves
            // to another registry instead of waiting on a dead connection.
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(config.request_timeout);
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
                targets.push(Target::new(url, channel));
                added += 1;
            }
        }
        Ok(added)
    }

    /// One try of `call` on one registry, within the request timeout; the
    /// flag says that nothing could be connected to there. A connect that
    /// timed out is remembered in `target`.
    async fn try_once<T, F, Fut>(&self, call: &F, target: &Target) -> (Result<T>, bool)
    where
        F: Fn(RegistryClient<Channel>) -> Fut,
        Fut: Future<Output = std::result::Result<T, tonic::Status>>,
    {
        let config = &self.inner.config;
        let rpc = call(RegistryClient::new(target.channel.clone()));
        match tokio::time::timeout(config.request_timeout, rpc).await {
            Ok(Ok(v)) => (Ok(v), false),
            Ok(Err(status)) => {
                let timed_out = std::error::Error::source(&status).is_some_and(connect_timed_out);
                let (e, not_running) = status_error(status, config.tls.is_some());
                if timed_out {
                    let now = std::time::Instant::now();
                    *target.timed_out.lock().unwrap_or_else(|e| e.into_inner()) = Some((now, e.clone()));
                }
                (Err(e), not_running)
            }
            Err(_) => (
                Err(Error::Timeout(format!(
                    "no answer within {:?}",
                    config.request_timeout
                ))),
                false,
            ),
        }
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
            let idx = (start + attempt) % n;
            let target = &targets[idx];
            if let Some(error) = target.recent_timeout(self.inner.config.max_backoff) {
                let addr = target.addr.clone();
                note(
                    &mut failures,
                    Failure {
                        addr,
                        error,
                        not_running: true,
                    },
                );
                last = idx;
                continue;
            }
            if attempt > 0 && attempt % n == 0 {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(self.inner.config.max_backoff);
            }
            let (result, not_running) = self.try_once(&call, target).await;
            match result {
                Ok(v) => {
                    self.inner.current.store(idx, Ordering::Relaxed);
                    return Ok(v);
                }
                Err(e) if is_retryable(&e) => {
                    tracing::debug!(registry = %target.addr, error = %e, "client: {what}: trying the next registry");
                    let addr = target.addr.clone();
                    note(
                        &mut failures,
                        Failure {
                            addr,
                            error: e,
                            not_running,
                        },
                    );
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
        validate::group_key(group, key)?;
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
        validate::group_key(group, key)?;
        validate::count(n)?;
        let n = validate::clamp_count(n);
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
        validate::group(group)?;
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
            checksum: resp.checksum,
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
                checksum: g.checksum,
            })
            .collect())
    }

    /// Opens a Watch stream on one registry (with failover for opening):
    /// the group's snapshot now, then one per change. The stream ends when
    /// that registry goes away; [`Client::group`] resubscribes by itself.
    pub async fn watch(&self, group: &str) -> Result<tonic::Streaming<v1::Snapshot>> {
        validate::group(group)?;
        let req = v1::WatchRequest { group: group.into() };
        Ok(self
            .with_failover("watch", |mut c| {
                let req = req.clone();
                async move { c.watch(req).await }
            })
            .await?
            .into_inner())
    }
}
