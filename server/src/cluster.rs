//! Cluster membership: the server's wiring of core's gossip → catalog
//! [`Bridge`].
//!
//! The registry runs a [`GossipNode`] whose metadata is its own entry in
//! [`REGISTRY_GROUP`] (its gRPC address), so clients can find every
//! registry from any one of them. The bridge (registry-core) feeds the
//! catalog from it in batches, resyncs after lag, watches for id
//! conflicts and holds the joining gate; this module turns the settings
//! into a node, records the groups each batch touched in the API's
//! [`GroupHistory`], and collects the gossip counters for `/metrics`.

use crate::api::GroupHistory;
use crate::config::Settings;
use crate::metrics::{self, NO_LABELS};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use registry_core::bridge::{Bridge, GateReport, Remembered};
use registry_core::gossip::{GossipConfig, GossipNode, GossipStats};
use registry_core::{Catalog, MemberEvent, Service, REGISTRY_GROUP};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// This server's cluster membership: the gossip node feeding the catalog
/// (through the bridge) and the registry's own entry.
pub struct Cluster {
    me: Service,
    bridge: Bridge,
    /// Notified after each batch that changed the catalog.
    changed: Arc<Notify>,
}

impl Cluster {
    /// Starts gossip as this registry (id, gRPC address `advertise`) and
    /// feeds `catalog` from it. `joining`: the joining gate is closed
    /// (sync answers say so until [`Cluster::set_open`]). Fails (one line)
    /// when the gossip address cannot be bound or the metadata is invalid;
    /// nothing keeps running then.
    pub async fn start(
        settings: &Settings,
        advertise: &str,
        catalog: Arc<Catalog>,
        history: Arc<GroupHistory>,
        joining: bool,
    ) -> Result<Cluster, String> {
        let me = Service::new(settings.id.clone(), REGISTRY_GROUP, advertise);
        me.validate()
            .map_err(|e| format!("this registry's own entry: {e}"))?;
        let config = GossipConfig {
            bind: settings.bind,
            advertise: settings.bind_advertise,
            seeds: settings.registries.clone(),
            keyring: settings.keyring.clone(),
            joining,
            ..GossipConfig::lan()
        };
        let node = GossipNode::start(config, me.clone())
            .await
            .map_err(|e| format!("cannot start gossip on {} (--bind): {e}", settings.bind))?;
        // Only groups the catalog accepted a member into are recorded (a
        // member refused by a limit does not make its group "left"); a
        // group is recorded before any later batch can empty it.
        let changed = Arc::new(Notify::new());
        let notify = changed.clone();
        let record = Arc::new(move |groups: &[String]| {
            for group in groups {
                history.record(group);
            }
            notify.notify_one();
        });
        let bridge = Bridge::start(node, me.id.clone(), catalog, record);
        Ok(Cluster { me, bridge, changed })
    }

    /// Notified after each batch of membership changes the catalog took.
    pub fn changed(&self) -> &Notify {
        &self.changed
    }

    /// The joining gate with members remembered from before a restart:
    /// see [`Bridge::wait_open`].
    pub async fn wait_open(&self, remembered: &[Remembered], timeout: Duration) -> GateReport {
        self.bridge.wait_open(remembered, timeout).await
    }

    /// The gate opened: this registry's sync answers now count for
    /// joining members.
    pub fn set_open(&self) {
        self.bridge.set_open();
    }

    /// Live members with their gossip address: what the data directory
    /// keeps.
    pub fn members_at(&self) -> Vec<Remembered> {
        self.bridge.members_at()
    }

    /// This registry's entry in [`REGISTRY_GROUP`].
    pub fn me(&self) -> &Service {
        &self.me
    }

    /// The local gossip (UDP) address.
    pub fn gossip_addr(&self) -> SocketAddr {
        self.bridge.gossip_addr()
    }

    /// A sender into the catalog next to gossip, for tests that inject
    /// membership.
    pub fn events(&self) -> mpsc::Sender<MemberEvent> {
        self.bridge.events()
    }

    /// How many events from [`Cluster::events`] the catalog has applied
    /// (accepted or refused by a limit): a sender waits for its count to
    /// know its events are in.
    pub fn events_applied(&self) -> u64 {
        self.bridge.events_applied()
    }

    /// Completes, with a message for the operator, when another live
    /// member holds this registry's `--id` (its entry is then never
    /// published); never completes once the id is held.
    pub async fn refused(&self) -> String {
        let e = self.bridge.refused().await;
        format!("this registry's --id is taken: {}", e.message())
    }

    /// Completes, with a message for the operator, when the membership
    /// feeder stopped on a panic ([`Bridge::stalled`]): the catalog would
    /// no longer follow gossip.
    pub async fn stalled(&self) -> String {
        self.bridge.stalled().await
    }

    /// Gossip counters (the last ones read once the node has left).
    pub fn stats(&self) -> GossipStats {
        self.bridge.stats()
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("id", &self.me.id)
            .finish_non_exhaustive()
    }
}

/// The gossip counters of `/metrics`, read at each scrape.
impl Collector for Cluster {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let s = self.stats();
        let mut counter =
            |name: &str, help: &str, v: u64| metrics::counter(&mut enc, name, help, [(NO_LABELS, v)]);
        counter(
            "registry_gossip_packets_sent",
            "Gossip datagrams sent.",
            s.packets_sent,
        )?;
        counter("registry_gossip_bytes_sent", "Gossip bytes sent.", s.bytes_sent)?;
        counter(
            "registry_gossip_send_errors",
            "Gossip datagrams the socket failed to send.",
            s.send_errors,
        )?;
        counter(
            "registry_gossip_packets_received",
            "Gossip datagrams received.",
            s.packets_received,
        )?;
        counter(
            "registry_gossip_bytes_received",
            "Gossip bytes received.",
            s.bytes_received,
        )?;
        let dropped = [
            ("too_large", s.dropped_too_large),
            ("bad_envelope", s.dropped_bad_envelope),
            ("unencrypted", s.dropped_unencrypted),
            ("unexpected_encrypted", s.dropped_unexpected_encrypted),
            ("decrypt_failed", s.dropped_decrypt_failed),
            ("malformed", s.dropped_malformed),
            ("bad_metadata", s.dropped_bad_metadata),
            ("from_self", s.dropped_from_self),
            ("rejected", s.dropped_rejected),
        ];
        metrics::counter(
            &mut enc,
            "registry_gossip_packets_dropped",
            "Gossip datagrams dropped, by reason.",
            dropped.map(|(reason, v)| ([("reason", reason)], v)),
        )?;
        let mut counter =
            |name: &str, help: &str, v: u64| metrics::counter(&mut enc, name, help, [(NO_LABELS, v)]);
        counter(
            "registry_gossip_syncs_received",
            "Push-pull sync answers applied.",
            s.syncs_received,
        )?;
        counter(
            "registry_gossip_syncs_from_joined",
            "Push-pull sync answers from members not joining themselves (what the joining gate waits for).",
            s.syncs_from_joined,
        )?;
        counter(
            "registry_gossip_id_conflicts",
            "Times another live process claimed this registry's id.",
            s.id_conflicts,
        )?;
        counter(
            "registry_gossip_stale_verdicts_refused",
            "Verdicts refused after a partition healed: a member declared down saying a live member is down.",
            s.stale_verdicts_refused,
        )?;
        counter(
            "registry_gossip_last_calls",
            "Suspicions that timed out and were put to the suspect directly before a down verdict.",
            s.last_calls,
        )?;
        counter(
            "registry_gossip_last_calls_refuted",
            "Last calls the suspect answered by refuting: reachable members not declared down.",
            s.last_calls_refuted,
        )?;
        metrics::gauge(
            &mut enc,
            "registry_gossip_live_members",
            "Live cluster members known, this node excluded.",
            [(NO_LABELS, s.live_members)],
        )
    }
}

impl Cluster {
    /// Leaves the cluster gracefully: every member is told, and drops this
    /// registry at once. Later calls do nothing.
    pub async fn leave(&self) {
        self.bridge.leave().await;
    }
}
