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
use std::time::Duration;
use tokio::sync::watch;
use tokio_stream::StreamExt;

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
                            shared.connected.store(true, Ordering::Release);
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

    /// The member that owns `key` (`NotFound` when the group is empty).
    pub fn match_key(&self, key: &str) -> Result<Arc<Service>> {
        self.shared.snapshot.load().match_key(key).cloned()
    }

    /// Handle-or-forward for the member `me` (its id), from the local
    /// snapshot with no round trip: see [`GroupSnapshot::route`].
    pub fn route(&self, key: &str, me: &str) -> Result<crate::catalog::Route> {
        self.shared.snapshot.load().route(key, me)
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

    /// A receiver that changes on every new snapshot (for `changed().await`).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }
}
