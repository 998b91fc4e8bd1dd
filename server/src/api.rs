//! The queries both front doors answer (gRPC and HTTP), with the argument
//! checks and error messages in one place, so the two always agree.

use crate::config::Limits;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use registry_core::service::{check_name, MAX_NAME_LEN};
use registry_core::validate;
use registry_core::{Catalog, Error, GroupSnapshot, Limit, Result, Service};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// Groups that have had at least one member since this server started, so
/// that "no members" can say whether the group never had any or lost its
/// last one. Written by the catalog feeder only.
#[derive(Debug, Default)]
pub struct GroupHistory {
    seen: RwLock<HashSet<String>>,
}

impl GroupHistory {
    /// Records that `group` has (had) members.
    pub fn record(&self, group: &str) {
        let known = self.seen.read().map(|s| s.contains(group)).unwrap_or(false);
        if !known {
            let mut seen = self.seen.write().unwrap_or_else(|e| e.into_inner());
            seen.insert(group.to_string());
        }
    }

    /// True when `group` has had members since this server started.
    pub fn contains(&self, group: &str) -> bool {
        self.seen.read().map(|s| s.contains(group)).unwrap_or(false)
    }
}

/// Which ring an answer came from: the group's version on this registry
/// and the ring's checksum, both read from the one snapshot answered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingStamp {
    /// Version of the snapshot.
    pub version: u64,
    /// Checksum of its ring.
    pub checksum: u64,
}

impl RingStamp {
    /// The stamp of `snap`.
    pub fn of(snap: &GroupSnapshot) -> Self {
        RingStamp {
            version: snap.version(),
            checksum: snap.checksum(),
        }
    }
}

/// Everything a request handler needs: the catalog, the limits, the
/// metrics and the shutdown signal.
pub struct Api {
    catalog: Arc<Catalog>,
    history: Arc<GroupHistory>,
    limits: Limits,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
    /// One permit per Watch stream that may open (`--max-watch-streams`).
    watch_slots: Arc<Semaphore>,
    /// Set while a registry started with `--registries` has not yet
    /// learnt the cluster: queries are refused as `Unavailable` rather
    /// than answered from a partial ring.
    joining: AtomicBool,
}

/// A Watch stream's slot among `--max-watch-streams`; freed when dropped
/// (when the stream ends).
#[derive(Debug)]
pub struct WatchPermit {
    _permit: OwnedSemaphorePermit,
}

impl Api {
    /// An API over `catalog`.
    pub fn new(
        catalog: Arc<Catalog>,
        history: Arc<GroupHistory>,
        limits: Limits,
        metrics: Arc<Metrics>,
        shutdown: Shutdown,
    ) -> Self {
        let slots = limits.max_watch_streams.min(Semaphore::MAX_PERMITS);
        Api {
            catalog,
            history,
            limits,
            metrics,
            shutdown,
            watch_slots: Arc::new(Semaphore::new(slots)),
            joining: AtomicBool::new(false),
        }
    }

    /// Marks the registry as joining (queries refused) or serving.
    pub fn set_joining(&self, joining: bool) {
        self.joining.store(joining, Ordering::Release);
    }

    /// True when queries are answered: joined and not shutting down.
    pub fn is_serving(&self) -> bool {
        !self.joining.load(Ordering::Acquire) && !self.shutdown.is_triggered()
    }

    /// `Unavailable` while joining, so that clients ask another registry.
    fn check_joined(&self) -> Result<()> {
        if self.joining.load(Ordering::Acquire) {
            return Err(Error::Unavailable(
                "this registry is joining the cluster and has not learnt its members yet; \
                 ask another registry or retry in a moment"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The catalog answered from.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The request metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The server's shutdown signal (Watch streams end when it fires).
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// The limits applied to requests.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Checks a group name; one over [`MAX_NAME_LEN`] is counted.
    fn check_group(&self, group: &str) -> Result<()> {
        if group.len() > MAX_NAME_LEN {
            self.metrics.limit_rejected(Limit::NameBytes);
        }
        check_name("group", group)
    }

    fn check_key(&self, key: &str) -> Result<()> {
        validate::key(key)?;
        if key.len() > self.limits.max_key_bytes {
            self.metrics.limit_rejected(Limit::KeyBytes);
            return Err(Error::invalid(format!(
                "key is {} bytes, the limit is {}",
                key.len(),
                self.limits.max_key_bytes
            )));
        }
        Ok(())
    }

    /// The current snapshot of a group that has members, or NotFound
    /// saying whether it never had any or lost its last one.
    fn live_snapshot(&self, group: &str) -> Result<Arc<GroupSnapshot>> {
        self.catalog.snapshot(group).ok_or_else(|| {
            if self.history.contains(group) {
                validate::no_members(group, Some("its last member left"))
            } else {
                validate::no_members(group, Some("none has registered"))
            }
        })
    }

    /// The member of `group` that owns `key`, and the ring's stamp.
    pub fn match_key(&self, group: &str, key: &str) -> Result<(Arc<Service>, RingStamp)> {
        self.check_group(group)?;
        self.check_key(key)?;
        self.check_joined()?;
        let snap = self.live_snapshot(group)?;
        let owner = snap.match_key(key)?.clone();
        Ok((owner, RingStamp::of(&snap)))
    }

    /// Up to `n` distinct members for `key` in preference order, and the
    /// ring's stamp.
    pub fn match_n(&self, group: &str, key: &str, n: u32) -> Result<(Vec<Arc<Service>>, RingStamp)> {
        self.check_group(group)?;
        self.check_key(key)?;
        validate::count(n as usize)?;
        self.check_joined()?;
        let snap = self.live_snapshot(group)?;
        // Never ask the ring for more members than the group has.
        let n = (n as usize).min(snap.members().len());
        let owners = snap.match_n(key, n)?.into_iter().cloned().collect();
        Ok((owners, RingStamp::of(&snap)))
    }

    /// The members of `group` sorted by id; empty (not an error) when the
    /// group has none, whether it never had any or lost its last one.
    pub fn members(&self, group: &str) -> Result<Arc<GroupSnapshot>> {
        self.check_group(group)?;
        self.check_joined()?;
        Ok(self.catalog.snapshot_or_empty(group))
    }

    /// Every group that has at least one member, sorted by name.
    pub fn groups(&self) -> Result<Vec<Arc<GroupSnapshot>>> {
        self.check_joined()?;
        Ok(self.catalog.groups())
    }

    /// Follows `group`: the receiver holds the current snapshot (empty when
    /// the group has no members) and sees every later one. The stream
    /// holds the permit while open; `LimitExceeded` (RESOURCE_EXHAUSTED)
    /// when `--max-watch-streams` are open already.
    pub fn watch(&self, group: &str) -> Result<(watch::Receiver<Arc<GroupSnapshot>>, WatchPermit)> {
        self.check_group(group)?;
        self.check_joined()?;
        if self.shutdown.is_triggered() {
            return Err(Error::Unavailable("the server is shutting down".into()));
        }
        let permit = self.watch_slots.clone().try_acquire_owned().map_err(|_| {
            self.metrics.limit_rejected(Limit::WatchStreams);
            Error::LimitExceeded(format!(
                "too many Watch streams: this server serves at most {} at once (--max-watch-streams); \
                 close one or watch through another registry",
                self.limits.max_watch_streams
            ))
        })?;
        Ok((self.catalog.subscribe(group), WatchPermit { _permit: permit }))
    }
}
