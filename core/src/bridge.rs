//! Gossip → catalog: what any embedder of a registry runs between its
//! [`GossipNode`] and its [`Catalog`].
//!
//! One feeder task reads the node's event subscription itself (one
//! channel hop) and applies events in batches: it waits for one event,
//! takes every event already delivered (up to [`MAX_BATCH`]) and applies
//! them with one [`Catalog::apply_batch`], so a burst of joins rebuilds
//! each touched ring once. When it falls behind the subscription
//! (lagged), it resyncs the catalog from the node's members
//! ([`resync_events`]). Events can also be injected next to gossip
//! ([`Bridge::events`], for tests and tools).
//!
//! The joining gate lives here too: [`Bridge::joined`] says when a
//! registry has learnt the cluster (a push-pull sync answer from a member
//! that is not itself joining is in, and the catalog holds every member
//! gossip knows), [`Bridge::wait_joined`] waits for it up to a timeout,
//! [`Bridge::wait_open`] also for the members remembered from before a
//! restart ([`gate`]), and [`Bridge::set_open`] tells the cluster the
//! gate is open. The bridge also watches for another live process using
//! this node's id and logs it.

pub use gate::{GateReport, Remembered};

use crate::catalog::Catalog;
use crate::error::Error;
use crate::gossip::{Claim, GossipNode, GossipStats};
use crate::service::{MemberEvent, Service};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

/// Most events applied in one catalog batch.
pub const MAX_BATCH: usize = 4096;
/// Capacity of the queue of events injected with [`Bridge::events`].
pub const QUEUE: usize = 16 * 1024;
/// How often the node is checked for another live process using its id.
const CONFLICT_CHECK: Duration = Duration::from_secs(1);
/// How often the joining gate and the id claim look at the cluster.
const JOIN_POLL: Duration = Duration::from_millis(20);

/// Called with the groups each applied batch changed (groups the catalog
/// accepted a member into, or removed one from).
pub type OnTouched = Arc<dyn Fn(&[String]) + Send + Sync>;

/// The events that turn the catalog's current members into `members`:
/// `Left` for every member no longer live, `Joined` for every live one
/// (the catalog ignores a `Joined` that changes nothing).
pub fn resync_events(catalog: &Catalog, members: Vec<Service>) -> Vec<MemberEvent> {
    let live: HashSet<&str> = members.iter().map(|s| s.id.as_str()).collect();
    let mut events: Vec<MemberEvent> = catalog
        .groups()
        .iter()
        .flat_map(|g| g.members().iter())
        .filter(|s| !live.contains(s.id.as_str()))
        .map(|s| MemberEvent::Left((**s).clone()))
        .collect();
    events.extend(members.into_iter().map(MemberEvent::Joined));
    events
}

/// State shared by the bridge and its tasks.
struct Shared {
    catalog: Arc<Catalog>,
    on_touched: OnTouched,
    /// `None` once left.
    node: Mutex<Option<GossipNode>>,
    /// Last counters read, kept after the node is gone.
    last_stats: Mutex<GossipStats>,
    /// Set once the feeder stopped on a panic: the catalog no longer
    /// follows gossip.
    stalled: watch::Sender<Option<String>>,
}

impl Shared {
    fn new(catalog: Arc<Catalog>, on_touched: OnTouched, node: GossipNode) -> Shared {
        Shared {
            catalog,
            on_touched,
            node: Mutex::new(Some(node)),
            last_stats: Mutex::new(GossipStats::default()),
            stalled: watch::channel(None).0,
        }
    }

    fn with_node<T>(&self, f: impl FnOnce(&GossipNode) -> T) -> Option<T> {
        let node = self.node.lock().unwrap_or_else(|e| e.into_inner());
        node.as_ref().map(f)
    }

    /// Applies one batch and reports the groups it changed.
    fn apply(&self, events: Vec<MemberEvent>) {
        let touched = self.catalog.apply_batch(events);
        if !touched.is_empty() {
            (self.on_touched)(&touched);
            tracing::debug!(groups = ?touched, "catalog updated");
        }
    }
}

/// A gossip node feeding a catalog.
pub struct Bridge {
    shared: Arc<Shared>,
    injected: mpsc::Sender<MemberEvent>,
    applied: Arc<AtomicU64>,
    gossip_addr: SocketAddr,
    /// This node's id.
    id: String,
    tasks: Vec<JoinHandle<()>>,
}

impl Bridge {
    /// Feeds `catalog` from `node`: the current members at once (this
    /// node included, so it lists itself as soon as this returns), then
    /// every event. `on_touched` is called with the groups each batch
    /// changed. `id` is this node's id (named when another live process
    /// claims it). Must be called inside a tokio runtime.
    pub fn start(node: GossipNode, id: String, catalog: Arc<Catalog>, on_touched: OnTouched) -> Bridge {
        let gossip_addr = node.local_addr();
        let (members, rx) = node.subscribe();
        let shared = Arc::new(Shared::new(catalog, on_touched, node));
        shared.apply(members.into_iter().map(MemberEvent::Joined).collect());
        let (injected, queue) = mpsc::channel(QUEUE);
        let applied = Arc::new(AtomicU64::new(0));
        let feeder = tokio::spawn(supervise(
            shared.clone(),
            feed(shared.clone(), rx, queue, applied.clone()),
        ));
        let conflicts = tokio::spawn(watch_conflicts(shared.clone(), id.clone()));
        Bridge {
            shared,
            injected,
            applied,
            gossip_addr,
            id,
            tasks: vec![feeder, conflicts],
        }
    }

    /// The local gossip (UDP) address.
    pub fn gossip_addr(&self) -> SocketAddr {
        self.gossip_addr
    }

    /// A sender into the catalog next to gossip (tests and tools inject
    /// membership with it).
    pub fn events(&self) -> mpsc::Sender<MemberEvent> {
        self.injected.clone()
    }

    /// How many events from [`Bridge::events`] the catalog has applied
    /// (accepted or refused by a limit): a sender waits for its count to
    /// know its events are in.
    pub fn events_applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// The joining gate: true once the node has had a push-pull sync
    /// answer from a member that had learnt the cluster itself (a sync
    /// with a member that is still joining, e.g. another registry of a
    /// cluster restarted whole, does not count) and the catalog has taken
    /// in every member gossip knows (same metadata; published, or waiting
    /// for room under a limit): the registry answers from the cluster's
    /// view, not from the part it learnt first. False once the node has
    /// left.
    pub fn joined(&self) -> bool {
        let Some((stats, members)) = self.shared.with_node(|n| (n.stats(), n.members())) else {
            return false;
        };
        stats.syncs_from_joined > 0 && members.iter().all(|m| self.shared.catalog.holds(m))
    }

    /// Waits until [`Bridge::joined`], at most `timeout`; returns whether
    /// it joined (false: no member answered in time, or membership kept
    /// changing).
    pub async fn wait_joined(&self, timeout: Duration) -> bool {
        self.wait_open(&[], timeout).await.joined
    }

    /// Completes with the error when this node's claim on its id is
    /// refused (a live member holds it; see [`crate::gossip::Claim`]);
    /// never completes once the id is held or the node has left. A
    /// registry stops on it rather than run unseen by the cluster.
    pub async fn refused(&self) -> Error {
        loop {
            match self.shared.with_node(GossipNode::claim) {
                Some(Claim::Pending) => tokio::time::sleep(JOIN_POLL).await,
                Some(decided) => match decided.error() {
                    Some(e) => return e,
                    None => std::future::pending::<()>().await,
                },
                None => std::future::pending::<()>().await,
            }
        }
    }

    /// Completes, with the reason, when the feeder stopped on a panic: the
    /// catalog would no longer follow gossip, so a registry stops on it
    /// rather than serve a frozen view. Never completes otherwise.
    pub async fn stalled(&self) -> String {
        let mut rx = self.shared.stalled.subscribe();
        let reason = match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        };
        reason
    }

    /// Gossip counters (the last ones read once the node has left).
    pub fn stats(&self) -> GossipStats {
        let mut last = self.shared.last_stats.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = self.shared.with_node(GossipNode::stats) {
            *last = s;
        }
        last.clone()
    }

    /// Leaves the cluster gracefully (every member is told). Later calls
    /// do nothing; injected events are still applied.
    pub async fn leave(&self) {
        let _ = self.stats();
        let node = self.shared.node.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(node) = node {
            if let Err(e) = node.leave().await {
                tracing::warn!(error = %e, "gossip: leave failed");
            }
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Runs the feeder as a task of its own and records a panic of it in
/// `shared.stalled`. Aborting this future aborts the feeder too.
async fn supervise(shared: Arc<Shared>, feeder: impl std::future::Future<Output = ()> + Send + 'static) {
    struct AbortOnDrop(tokio::task::AbortHandle);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let task = tokio::spawn(feeder);
    let _guard = AbortOnDrop(task.abort_handle());
    if let Err(e) = task.await {
        if e.is_panic() {
            let payload = e.into_panic();
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            let reason = format!("the membership feeder stopped: {what}");
            tracing::error!("{reason}");
            shared.stalled.send_replace(Some(reason));
        }
    }
}

/// The feeder: gossip events straight from the node's subscription and
/// injected ones from `queue`, in batches, until both are closed (`queue`
/// becomes `None` once every injecting sender is gone).
async fn feed(
    shared: Arc<Shared>,
    mut gossip: broadcast::Receiver<MemberEvent>,
    queue: mpsc::Receiver<MemberEvent>,
    applied: Arc<AtomicU64>,
) {
    let mut queue = Some(queue);
    let mut open = true;
    let mut batch = Vec::with_capacity(64);
    let mut injected = Vec::with_capacity(64);
    while open || queue.is_some() {
        tokio::select! {
            got = gossip.recv(), if open => match got {
                Ok(event) => {
                    batch.push(event);
                    open = take_ready(&shared, &mut gossip, &mut batch);
                    shared.apply(std::mem::take(&mut batch));
                }
                Err(RecvError::Lagged(missed)) => open = resync(&shared, &mut gossip, missed),
                Err(RecvError::Closed) => open = false,
            },
            n = recv_injected(&mut queue, &mut injected) => {
                if n == 0 {
                    queue = None;
                    continue;
                }
                shared.apply(std::mem::take(&mut injected));
                applied.fetch_add(n as u64, Ordering::Release);
            }
        }
    }
}

/// The next injected events (up to [`MAX_BATCH`]) into `buf`; 0 when every
/// sender is gone. Never completes once the queue is `None`.
async fn recv_injected(queue: &mut Option<mpsc::Receiver<MemberEvent>>, buf: &mut Vec<MemberEvent>) -> usize {
    match queue {
        Some(q) => q.recv_many(buf, MAX_BATCH).await,
        None => std::future::pending().await,
    }
}

/// Moves the events already delivered into `batch` (up to [`MAX_BATCH`]).
/// On lag, applies `batch` and resyncs. False when the subscription is
/// closed (or the node has left).
fn take_ready(
    shared: &Shared,
    gossip: &mut broadcast::Receiver<MemberEvent>,
    batch: &mut Vec<MemberEvent>,
) -> bool {
    while batch.len() < MAX_BATCH {
        match gossip.try_recv() {
            Ok(event) => batch.push(event),
            Err(TryRecvError::Empty) => return true,
            Err(TryRecvError::Lagged(missed)) => {
                // Apply what came before the gap in order, then resync.
                shared.apply(std::mem::take(batch));
                return resync(shared, gossip, missed);
            }
            Err(TryRecvError::Closed) => return false,
        }
    }
    true
}

/// Resubscribes (atomically with the node's members) and brings the
/// catalog to those members. False when the node has left.
fn resync(shared: &Shared, gossip: &mut broadcast::Receiver<MemberEvent>, missed: u64) -> bool {
    let Some((members, fresh)) = shared.with_node(GossipNode::subscribe) else {
        return false;
    };
    tracing::warn!(missed, "membership events lagged; resyncing the catalog");
    *gossip = fresh;
    shared.apply(resync_events(&shared.catalog, members));
    true
}

/// Logs, each time the set changes, other live processes using this
/// node's id.
async fn watch_conflicts(shared: Arc<Shared>, id: String) {
    let mut reported: Vec<SocketAddr> = Vec::new();
    loop {
        tokio::time::sleep(CONFLICT_CHECK).await;
        let Some(now) = shared.with_node(GossipNode::conflicts) else {
            break;
        };
        if !now.is_empty() && now != reported {
            tracing::error!(
                id = %id,
                others = ?now,
                "another live process uses this registry's id; stop it or give one of them another --id"
            );
        }
        reported = now;
    }
}

pub mod gate;
#[cfg(test)]
mod tests;
