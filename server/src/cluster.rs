//! Cluster membership (gossip) → catalog.
//!
//! The registry runs a [`GossipNode`] whose metadata is its own entry in
//! [`REGISTRY_GROUP`] (its gRPC address), so clients can find every
//! registry from any one of them. The node's events go through one queue
//! to one feeder task, which drains it in batches: it waits for one event,
//! takes every event already queued (up to [`MAX_BATCH`]), and applies them
//! with one `apply_batch`, so a burst of joins rebuilds each touched ring
//! once.

use crate::api::GroupHistory;
use crate::config::Settings;
use registry_core::gossip::{GossipConfig, GossipNode, GossipStats};
use registry_core::{Catalog, MemberEvent, Service, REGISTRY_GROUP};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

/// Most events applied in one catalog batch.
pub const MAX_BATCH: usize = 4096;
/// Capacity of the event queue between membership and the catalog.
pub const QUEUE: usize = 16 * 1024;
/// How often the node is checked for another live process using our id.
const CONFLICT_CHECK: Duration = Duration::from_secs(1);

/// Applies one batch, then records the groups it changed as having had
/// members. Only groups the catalog accepted a member into are recorded
/// (a member refused by a limit does not make its group "left"); a group
/// is recorded before any later batch can empty it.
pub fn apply(catalog: &Catalog, history: &GroupHistory, events: Vec<MemberEvent>) {
    let touched = catalog.apply_batch(events);
    for group in &touched {
        history.record(group);
    }
    if !touched.is_empty() {
        tracing::debug!(groups = ?touched, "catalog updated");
    }
}

/// Spawns the task that drains `rx` into `catalog` until every sender is
/// dropped, adding the number of events applied (accepted or refused) to
/// `applied` after each batch.
pub fn spawn_feeder(
    catalog: Arc<Catalog>,
    history: Arc<GroupHistory>,
    mut rx: mpsc::Receiver<MemberEvent>,
    applied: Arc<AtomicU64>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(64);
        while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let n = batch.len() as u64;
            apply(&catalog, &history, std::mem::take(&mut batch));
            applied.fetch_add(n, Ordering::Release);
        }
    })
}

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

/// State shared with the forwarding task.
struct Shared {
    /// `None` once left.
    node: Mutex<Option<GossipNode>>,
    /// Last counters read, kept for `/metrics` after the node is gone.
    last_stats: Mutex<GossipStats>,
}

impl Shared {
    fn with_node<T>(&self, f: impl FnOnce(&GossipNode) -> T) -> Option<T> {
        let node = self.node.lock().unwrap_or_else(|e| e.into_inner());
        node.as_ref().map(f)
    }
}

/// This server's cluster membership: the gossip node, the event queue
/// feeding the catalog and the registry's own entry.
pub struct Cluster {
    me: Service,
    shared: Arc<Shared>,
    events: mpsc::Sender<MemberEvent>,
    applied: Arc<AtomicU64>,
    gossip_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Cluster {
    /// Starts gossip as this registry (id, gRPC address `advertise`) and
    /// feeds `catalog` from it. Fails (one line) when the gossip address
    /// cannot be bound or the metadata is invalid; nothing keeps running
    /// then.
    pub async fn start(
        settings: &Settings,
        advertise: &str,
        catalog: Arc<Catalog>,
        history: Arc<GroupHistory>,
    ) -> Result<Cluster, String> {
        let me = Service::new(settings.id.clone(), REGISTRY_GROUP, advertise);
        me.validate()
            .map_err(|e| format!("this registry's own entry: {e}"))?;
        let config = GossipConfig {
            bind: settings.bind,
            advertise: settings.bind_advertise,
            seeds: settings.registries.clone(),
            keyring: settings.keyring.clone(),
            ..GossipConfig::lan()
        };
        let node = GossipNode::start(config, me.clone())
            .await
            .map_err(|e| format!("cannot start gossip on {} (--bind): {e}", settings.bind))?;
        let gossip_addr = node.local_addr();
        let (members, mut rx) = node.subscribe();
        // The current members at once (this registry included), so it
        // lists itself as soon as it is ready.
        apply(
            &catalog,
            &history,
            members.into_iter().map(MemberEvent::Joined).collect(),
        );

        let shared = Arc::new(Shared {
            node: Mutex::new(Some(node)),
            last_stats: Mutex::new(GossipStats::default()),
        });
        let (events, queue) = mpsc::channel(QUEUE);
        let applied = Arc::new(AtomicU64::new(0));
        let feeder = spawn_feeder(catalog.clone(), history, queue, applied.clone());

        let forwarder = {
            let shared = shared.clone();
            let tx = events.clone();
            tokio::spawn(async move {
                loop {
                    match rx.recv().await {
                        Ok(event) => {
                            if tx.send(event).await.is_err() {
                                break;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            // Resubscribe atomically and replace the state.
                            let Some((members, fresh)) = shared.with_node(GossipNode::subscribe) else {
                                break;
                            };
                            tracing::warn!(missed, "membership events lagged; resyncing the catalog");
                            rx = fresh;
                            for e in resync_events(&catalog, members) {
                                if tx.send(e).await.is_err() {
                                    return;
                                }
                            }
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    }
                }
            })
        };

        let conflicts = {
            let shared = shared.clone();
            let id = me.id.clone();
            tokio::spawn(async move {
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
            })
        };

        Ok(Cluster {
            me,
            shared,
            events,
            applied,
            gossip_addr,
            tasks: vec![feeder, forwarder, conflicts],
        })
    }

    /// This registry's entry in [`REGISTRY_GROUP`].
    pub fn me(&self) -> &Service {
        &self.me
    }

    /// The local gossip (UDP) address.
    pub fn gossip_addr(&self) -> SocketAddr {
        self.gossip_addr
    }

    /// A sender into the catalog's event queue, for tests that inject
    /// membership next to gossip.
    pub fn events(&self) -> mpsc::Sender<MemberEvent> {
        self.events.clone()
    }

    /// How many events from [`Cluster::events`] the catalog has applied
    /// (accepted or refused by a limit): a sender waits for its count to
    /// know its events are in.
    pub fn events_applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// True once this registry has had a push-pull sync answer and the
    /// catalog has taken in every member gossip knows (same metadata;
    /// published, or waiting for room under a limit): it answers from the
    /// cluster's view, not from the part it learnt first.
    pub fn synced(&self, catalog: &Catalog) -> bool {
        let Some((stats, members)) = self.shared.with_node(|n| (n.stats(), n.members())) else {
            return false;
        };
        stats.syncs_received > 0 && members.iter().all(|m| catalog.holds(m))
    }

    /// Gossip counters (the last ones read once the node has left).
    pub fn stats(&self) -> GossipStats {
        match self.shared.with_node(GossipNode::stats) {
            Some(s) => {
                *self.shared.last_stats.lock().unwrap_or_else(|e| e.into_inner()) = s.clone();
                s
            }
            None => self
                .shared
                .last_stats
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// Appends the gossip counters in Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        let s = self.stats();
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {v}");
        };
        counter(
            out,
            "registry_gossip_packets_sent_total",
            "Gossip datagrams sent.",
            s.packets_sent,
        );
        counter(
            out,
            "registry_gossip_bytes_sent_total",
            "Gossip bytes sent.",
            s.bytes_sent,
        );
        counter(
            out,
            "registry_gossip_send_errors_total",
            "Gossip datagrams the socket failed to send.",
            s.send_errors,
        );
        counter(
            out,
            "registry_gossip_packets_received_total",
            "Gossip datagrams received.",
            s.packets_received,
        );
        counter(
            out,
            "registry_gossip_bytes_received_total",
            "Gossip bytes received.",
            s.bytes_received,
        );
        let _ = writeln!(
            out,
            "# HELP registry_gossip_packets_dropped_total Gossip datagrams dropped, by reason."
        );
        let _ = writeln!(out, "# TYPE registry_gossip_packets_dropped_total counter");
        for (reason, v) in [
            ("too_large", s.dropped_too_large),
            ("bad_envelope", s.dropped_bad_envelope),
            ("unencrypted", s.dropped_unencrypted),
            ("unexpected_encrypted", s.dropped_unexpected_encrypted),
            ("decrypt_failed", s.dropped_decrypt_failed),
            ("malformed", s.dropped_malformed),
            ("bad_metadata", s.dropped_bad_metadata),
            ("from_self", s.dropped_from_self),
            ("rejected", s.dropped_rejected),
        ] {
            let _ = writeln!(
                out,
                "registry_gossip_packets_dropped_total{{reason=\"{reason}\"}} {v}"
            );
        }
        counter(
            out,
            "registry_gossip_syncs_received_total",
            "Push-pull sync answers applied.",
            s.syncs_received,
        );
        counter(
            out,
            "registry_gossip_id_conflicts_total",
            "Times another live process claimed this registry's id.",
            s.id_conflicts,
        );
        let _ = writeln!(
            out,
            "# HELP registry_gossip_live_members Live cluster members known, this node excluded."
        );
        let _ = writeln!(out, "# TYPE registry_gossip_live_members gauge");
        let _ = writeln!(out, "registry_gossip_live_members {}", s.live_members);
    }

    /// Leaves the cluster gracefully: every member is told, and drops this
    /// registry at once. Later calls do nothing.
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

impl Drop for Cluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resync_removes_the_gone_and_keeps_the_live() {
        let catalog = Catalog::new();
        catalog.apply_batch([
            MemberEvent::Joined(Service::new("a", "web", "127.0.0.1:1")),
            MemberEvent::Joined(Service::new("b", "web", "127.0.0.1:2")),
            MemberEvent::Joined(Service::new("c", "api", "127.0.0.1:3")),
        ]);
        let live = vec![
            Service::new("b", "web", "127.0.0.1:2"),
            Service::new("d", "api", "127.0.0.1:4"),
        ];
        catalog.apply_batch(resync_events(&catalog, live));
        let ids = |g: &str| -> Vec<String> {
            catalog
                .snapshot_or_empty(g)
                .members()
                .iter()
                .map(|s| s.id.clone())
                .collect()
        };
        assert_eq!(ids("web"), ["b"]);
        assert_eq!(ids("api"), ["d"]);
    }
}
