//! The local view of a group: a background task follows `Watch` and
//! swaps in each snapshot; lookups answer from it with no round trip.

use super::Client;
use crate::catalog::GroupSnapshot;
use crate::error::{Error, Result};
use crate::ring::{checksum_hex, RING_ALGORITHM};
use crate::service::Service;
use crate::validate;
use crate::wire::v1;
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;
use tokio_stream::{Stream, StreamExt};

impl Client {
    /// A local view of `group`, kept current through `Watch`. Waits for the
    /// first snapshot (up to the connect plus request timeout) so that the
    /// view answers at once; fails with `Unavailable` if no registry sends
    /// one in time, and with `LimitExceeded` as soon as every registry
    /// refuses the stream by a limit (`--max-watch-streams`).
    pub async fn group(&self, name: &str) -> Result<GroupView> {
        validate::group(name)?;
        let shared = Arc::new(ViewShared {
            snapshot: ArcSwap::from_pointee(GroupSnapshot::empty(name, 0)),
            connected: AtomicBool::new(false),
            changed: watch::channel(0).0,
            refused: Mutex::new(None),
            last_error: Mutex::new(None),
            unconfirmed_since: Mutex::new(Some(Instant::now())),
            max_staleness: self.inner.config.max_staleness,
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
    /// When the last Watch stream closed (or the view began), while none
    /// is open; `None` while one is.
    unconfirmed_since: Mutex<Option<Instant>>,
    /// `ClientConfig::max_staleness`.
    max_staleness: Option<Duration>,
}

impl ViewShared {
    /// A snapshot arrived on an open stream.
    fn confirmed(&self) {
        if let Ok(mut since) = self.unconfirmed_since.lock() {
            *since = None;
        }
        self.connected.store(true, Ordering::Release);
    }

    /// The stream closed: the snapshot is unconfirmed from now on.
    fn unconfirmed(&self) {
        if let Ok(mut since) = self.unconfirmed_since.lock() {
            since.get_or_insert_with(Instant::now);
        }
        self.connected.store(false, Ordering::Release);
    }
}

/// Turns one Watch message into a local snapshot, refusing rings this
/// client cannot reproduce: another algorithm, or a locally built ring
/// whose checksum differs from the one the registry sent (0: a registry
/// that does not send one, not checked).
pub(crate) fn snapshot_from_wire(msg: v1::Snapshot) -> Result<GroupSnapshot> {
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
    let snap = GroupSnapshot::new(msg.group, msg.version, services)?;
    if msg.checksum != 0 && snap.checksum() != msg.checksum {
        return Err(Error::Internal(format!(
            "ring checksum mismatch for group {:?} at version {}: the registry's ring is {}, \
             this client's ring of the same members is {}; the two would give different owners \
             (a ring algorithm drift), so the snapshot is refused",
            snap.group(),
            snap.version(),
            checksum_hex(msg.checksum),
            checksum_hex(snap.checksum())
        )));
    }
    Ok(snap)
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
                            shared.confirmed();
                            shared.changed.send_modify(|n| *n += 1);
                            backoff = Duration::from_millis(50);
                        }
                        Err(e) => {
                            tracing::warn!(group, error = %e, "view: watch stream failed");
                            if let Ok(mut slot) = shared.last_error.lock() {
                                *slot = Some(e);
                            }
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
        shared.unconfirmed();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(client.inner.config.max_backoff);
    }
}

/// One change of a view's snapshot: from the snapshot its subscriber
/// saw last to the one now in use (see [`GroupView::changes`]).
#[derive(Debug, Clone)]
pub struct ViewChange {
    /// The snapshot before the change.
    pub old: Arc<GroupSnapshot>,
    /// The snapshot after it, in use by the view.
    pub new: Arc<GroupSnapshot>,
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
            .field("checksum", &checksum_hex(snap.checksum()))
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

    /// The member that owns `key` (`NotFound` when the group is empty;
    /// `Unavailable` when the snapshot is staler than
    /// `ClientConfig::max_staleness`, as every lookup below).
    pub fn match_key(&self, key: &str) -> Result<Arc<Service>> {
        self.check_fresh()?;
        self.shared.snapshot.load().match_key(key).cloned()
    }

    /// Handle-or-forward for the member `me` (its id), from the local
    /// snapshot with no round trip: see [`GroupSnapshot::route`].
    pub fn route(&self, key: &str, me: &str) -> Result<crate::catalog::Route> {
        self.check_fresh()?;
        self.shared.snapshot.load().route(key, me)
    }

    /// Up to `n` distinct members for `key`, in preference order.
    pub fn match_n(&self, key: &str, n: usize) -> Result<Vec<Arc<Service>>> {
        self.check_fresh()?;
        Ok(self
            .shared
            .snapshot
            .load()
            .match_n(key, n)?
            .into_iter()
            .cloned()
            .collect())
    }

    /// Members sorted by id (of the last snapshot, however stale: see
    /// [`GroupView::staleness`]).
    pub fn members(&self) -> Vec<Arc<Service>> {
        self.shared.snapshot.load().members().to_vec()
    }

    /// Ring version of the snapshot in use, as numbered by the registry
    /// that sent it.
    pub fn version(&self) -> u64 {
        self.shared.snapshot.load().version()
    }

    /// Checksum of the snapshot in use: the ring this view built, equal to
    /// the one the registry reported for it (a mismatch is refused).
    pub fn checksum(&self) -> u64 {
        self.shared.snapshot.load().checksum()
    }

    /// True while a Watch stream is open; when false the view answers from
    /// its last snapshot and is resubscribing.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// How long the snapshot has gone unconfirmed: zero while a Watch
    /// stream is open (the registry sends every change on it), else the
    /// time since the last stream closed. A registry that stops answering
    /// without closing the stream is found out by HTTP/2 pings within
    /// about 5 s plus the request timeout.
    pub fn staleness(&self) -> Duration {
        if self.is_connected() {
            return Duration::ZERO;
        }
        let since = self.shared.unconfirmed_since.lock().ok().and_then(|s| *s);
        since.map_or(Duration::ZERO, |t| t.elapsed())
    }

    /// `Ok` unless `ClientConfig::max_staleness` is set and the snapshot
    /// has gone unconfirmed for longer (`Unavailable`). Lookups call it;
    /// callers that read [`GroupView::snapshot`] may too.
    pub fn check_fresh(&self) -> Result<()> {
        let Some(max) = self.shared.max_staleness else {
            return Ok(());
        };
        let stale = self.staleness();
        if stale <= max {
            return Ok(());
        }
        let why = match self.shared.last_error.lock().ok().and_then(|e| e.clone()) {
            Some(e) => format!(": {}", e.message()),
            None => String::new(),
        };
        Err(Error::Unavailable(format!(
            "the view of group {:?} has had no registry for {stale:?}, over max_staleness {max:?}{why}",
            self.shared.snapshot.load().group()
        )))
    }

    /// The view's changes, as a stream of [`ViewChange`] from the snapshot
    /// in use now on: one per new snapshot (a resubscription that brings
    /// the same version and checksum is none). A consumer slower than the
    /// changes gets them merged: each event goes from the last snapshot it
    /// saw to the newest, so `new.moves_since(&old)` is exactly what moved
    /// meanwhile. Ends once the view is dropped.
    pub fn changes(&self) -> impl Stream<Item = ViewChange> + Send + Unpin + 'static {
        let shared = Arc::downgrade(&self.shared);
        let mut last = self.snapshot();
        WatchStream::from_changes(self.shared.changed.subscribe()).filter_map(move |_| {
            let now = shared.upgrade()?.snapshot.load_full();
            if now.version() == last.version() && now.checksum() == last.checksum() {
                return None;
            }
            let old = std::mem::replace(&mut last, now.clone());
            Some(ViewChange { old, new: now })
        })
    }

    /// A receiver that changes on every new snapshot (for `changed().await`).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }
}
