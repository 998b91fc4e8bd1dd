//! Gossip configuration: one struct, every knob with its default and why.
//!
//! Defaults ([`GossipConfig::lan`], also `Default`) target a LAN or a
//! laptop. Figures with these defaults, from the simulation bench
//! (`cargo bench -p registry-core --bench gossip --features sim`, recorded in
//! BENCHMARKS.md, "Gossip"), cluster of 100: a join is known to all in
//! 206 ms p99; a crash is known to all in 1.9 s median / 3.1 s p99 (2.7 s,
//! the median of 30 seeds' p99); a graceful leave in ~1 ms; 0 false
//! failures in 600 s at 5% loss or with 5 members descheduled 500 ms at a
//! time; 726 B/s per member at rest. Ten of 50 members crashing at once
//! are dropped by every registry in 3.3 s at most. At 1,000 members: join
//! 262 ms / 306 ms (all, p50 / p99), crash 1.9 s / 2.3 s, 2.8 KB/s per
//! member at rest (mostly the 30 s sync).
//!
//! | knob | default | why |
//! |------|---------|-----|
//! | `probe_period` | 250 ms | each member probes one other per period; a crash is seen after the first probe of it (a wait of ~3.6 periods at p99) + suspicion + last call. A sweep over 30 seeds (BENCHMARKS.md) gave, with the suspicion and transmissions below, crash p99 2.7 s at 100 members (500 ms / 1.2 s / 12: 4.1 s) and no false failure at 5% loss or under CPU starvation, for 726 B/s per member at rest instead of 610 |
//! | `probe_rtt` | 150 ms | LAN RTT p99 is far below; leaves time for the indirect round inside the period |
//! | `num_indirect_probes` | 3 | with 5% loss a false suspicion needs the direct and all 3 indirect paths to fail (~1e-3 per probe) |
//! | `suspect_to_down_after` | 1.0 s | long enough for a suspected live member to hear and refute (gossip reaches it in ~0.2 s; the last call asks it directly), short enough for crash detection ≤ 3 s at p99 |
//! | `gossip_interval` / `gossip_fanout` | 50 ms / 4 | sent only while there is news; spreads a join to 100 members in ~4 rounds |
//! | `max_transmissions` | 16 | times each update/record is piggybacked per node. Only the member whose probe failed times a suspicion out; the others learn of the crash from its news, and a member misses every relay with a chance of about e^-max_transmissions: at 12, one member of 100 learned of a crash 22 s late (from its own probe) |
//! | `max_packet_size` | 1,400 B | under a 1,500-byte Ethernet MTU with IP/UDP headers, so no fragmentation |
//! | `join_retry_interval` | 1 s | a node with no peers re-announces to the seeds this often (registries not up yet, restarts) |
//! | `reannounce_interval` | 10 s | a connected node re-announces to one seed this often, so a partitioned island rejoins |
//! | `announce_interval` | 10 s | foca asks one random member for its member list, to learn the full roster |
//! | `announce_down_interval` | 500 ms | foca announces to 2 members it believes down; heals partitions (at 3 s, a host cut off both ways for 3-7 s took up to 3 s to be listed again by every member; at 500 ms, 0.5 s) |
//! | `meta_tick` | 50 ms | how often missing metadata is requested |
//! | `meta_retry` | 500 ms | a metadata request that got no answer is repeated after this |
//! | `meta_request_grace` | 200 ms | a member that comes up is asked for its record only after this: its own broadcast usually arrives first (no request at all); also how long a fresh join waits for the seed's Feed before syncing with a random member instead |
//! | `max_meta_requests_per_tick` | 16 | above this many missing records in one tick (a mass start, a healed partition) one sync with a random member is far cheaper than a request to each |
//! | `failure_hold` | 100 ms | a member that went down without a leave record keeps its place this long before `Failed` is emitted: a leave's record may trail foca's "down" by a hop (2 ticks of `meta_tick`) |
//! | `claim_timeout` | 250 ms | a new node that finds another member holding its service id asks it for its record every `meta_tick`; a live holder answers within a round trip and the newcomer is refused, a crashed one cannot, and the newcomer (a restart) takes the id after this (see `machine::conflict`) |
//! | `sync_interval` | 30 s | push-pull of all metadata with one random member (also done on joining): heals partitions and anything gossip missed |
//! | `remove_down_after` | 1 h | how long a down identity is remembered (stops stale updates resurrecting it) |
//! | `health_hold_max` | 60 s | a node whose probes go unanswered and that had to refute a suspicion of itself (it cannot be heard, e.g. a one-way partition) holds its "down" verdicts, at most this long (as `verdict_window`); a node that nobody suspects is never held, so crashes are declared as before, and a held node still applies the verdicts the cluster sends it. At 12 s a one-way cut of 10 s or more declared reachable members down |
//! | `verdict_window` | 60 s | after a two-way partition heals, a member declared down in this window and heard again (so not crashed) cannot get a live member declared down (its "you are down" is refused unless this node is on the cut-off side, its news of live members being down is stripped), and a node that rejoins forgets the verdicts of this window; past it foca's own rule (both sides rejoin) applies |
//! | `joining` | false | a registry starts with it while its joining gate is closed: its sync answers then say so, and a joining peer does not count them as a sync with the cluster (services never join in that sense and leave it off) |
//! | `event_capacity` | 4,096 | events buffered per subscriber before it lags and must resync with `members()`; the channel preallocates every slot (~140 bytes each), so 65,536 cost 9 MB of RSS in every node, services included |

use super::keyring::Keyring;
use super::packet::{ENVELOPE_OVERHEAD, MAX_RECORD_LEN};
use crate::error::{Error, Result};
use std::net::SocketAddr;
use std::num::{NonZeroU8, NonZeroUsize};
use std::time::Duration;

/// Default UDP port of the gossip protocol.
pub const DEFAULT_PORT: u16 = 7370;

/// Settings of one gossip node. Start from [`GossipConfig::lan`] (the
/// `Default`) and change what you need.
#[derive(Debug, Clone, PartialEq)]
pub struct GossipConfig {
    /// Local UDP address to bind. Default `0.0.0.0:7370`; port 0 picks a
    /// free port.
    pub bind: SocketAddr,
    /// Address other members use to reach this node (NAT, containers).
    /// Default `None`: the bound address, or, when bound to `0.0.0.0`, the
    /// local IP that routes to the first seed (loopback if no seed).
    pub advertise: Option<SocketAddr>,
    /// `host:port` of members to join through (registries). Re-resolved on
    /// every retry, so a registry that moves is found again. Default empty.
    pub seeds: Vec<String>,
    /// Encryption keys; `None` (default) sends plain datagrams. All members
    /// of a cluster must agree; see [`Keyring`] for rotation.
    pub keyring: Option<Keyring>,
    /// How often each member probes one other member. Default 250 ms.
    pub probe_period: Duration,
    /// How long to wait for a direct ack before asking others to probe.
    /// Default 150 ms; must be below `probe_period`.
    pub probe_rtt: Duration,
    /// Members asked to probe indirectly after a missed ack. Default 3.
    pub num_indirect_probes: usize,
    /// How long a suspected member has to refute before it is declared
    /// down. Default 1.0 s.
    pub suspect_to_down_after: Duration,
    /// Times each membership update and metadata record is piggybacked by
    /// each node. Default 16.
    pub max_transmissions: u8,
    /// How often to gossip pending updates (only while there are some).
    /// Default 50 ms.
    pub gossip_interval: Duration,
    /// Members each gossip round is sent to. Default 4.
    pub gossip_fanout: usize,
    /// Largest datagram sent or accepted, envelope and encryption included.
    /// Default 1,400 bytes.
    pub max_packet_size: usize,
    /// Re-announce period to the seeds while the node knows no member.
    /// Default 1 s.
    pub join_retry_interval: Duration,
    /// Re-announce period to one seed while connected. Default 10 s.
    pub reannounce_interval: Duration,
    /// Period of foca's announce to a random member (roster discovery).
    /// Default 10 s.
    pub announce_interval: Duration,
    /// Period of foca's announce to members believed down (partition
    /// healing). Default 500 ms.
    pub announce_down_interval: Duration,
    /// Period of the metadata repair tick. Default 50 ms.
    pub meta_tick: Duration,
    /// Delay before a metadata request is repeated. Default 500 ms.
    pub meta_retry: Duration,
    /// Delay before a member that came up is asked for its metadata (and
    /// before a fresh join syncs with a random member if no seed fed it).
    /// Default 200 ms.
    pub meta_request_grace: Duration,
    /// Most metadata requests sent in one tick; above it one sync is done
    /// instead. Default 16.
    pub max_meta_requests_per_tick: usize,
    /// How long a member that went down without a leave record stays in the
    /// view before `Failed` (rounded to whole `meta_tick`s). Default 100 ms.
    pub failure_hold: Duration,
    /// How long another member holding this node's service id has to
    /// answer before this node (a restart) takes the id. Default 250 ms.
    pub claim_timeout: Duration,
    /// Period of the push-pull metadata sync with one random member (one is
    /// also done on joining). Default 30 s.
    pub sync_interval: Duration,
    /// How long a down identity is remembered. Default 1 h.
    pub remove_down_after: Duration,
    /// Longest a node that cannot be heard holds its "down" verdicts
    /// (local health, see `machine::health`). Default 60 s, as
    /// `verdict_window`: a one-way partition up to that long heals with no
    /// reachable member declared down (at 12 s, cuts of 10 s and more did).
    pub health_hold_max: Duration,
    /// How long a verdict counts as recent after a partition heals (see
    /// `machine::verdict`). Default 60 s.
    pub verdict_window: Duration,
    /// Capacity of the event channel of each subscriber. Default 4,096.
    pub event_capacity: usize,
    /// Starts as joining: sync answers say this node has not learnt the
    /// cluster itself yet, until [`crate::gossip::GossipNode::set_joined`].
    /// Default false (services, and registries without a joining gate).
    pub joining: bool,
}

impl Default for GossipConfig {
    fn default() -> Self {
        GossipConfig::lan()
    }
}

impl GossipConfig {
    /// Defaults tuned for a LAN (see the module docs for the figures).
    pub fn lan() -> Self {
        GossipConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            advertise: None,
            seeds: Vec::new(),
            keyring: None,
            probe_period: Duration::from_millis(250),
            probe_rtt: Duration::from_millis(150),
            num_indirect_probes: 3,
            suspect_to_down_after: Duration::from_millis(1000),
            max_transmissions: 16,
            gossip_interval: Duration::from_millis(50),
            gossip_fanout: 4,
            max_packet_size: 1400,
            join_retry_interval: Duration::from_secs(1),
            reannounce_interval: Duration::from_secs(10),
            announce_interval: Duration::from_secs(10),
            announce_down_interval: Duration::from_millis(500),
            meta_tick: Duration::from_millis(50),
            meta_retry: Duration::from_millis(500),
            meta_request_grace: Duration::from_millis(200),
            max_meta_requests_per_tick: 16,
            failure_hold: Duration::from_millis(100),
            claim_timeout: Duration::from_millis(250),
            sync_interval: Duration::from_secs(30),
            remove_down_after: Duration::from_secs(3600),
            health_hold_max: Duration::from_secs(60),
            verdict_window: Duration::from_secs(60),
            event_capacity: 4_096,
            joining: false,
        }
    }

    /// [`GossipConfig::lan`] bound to `127.0.0.1:0` (a free loopback port):
    /// for tests and laptops.
    pub fn local() -> Self {
        GossipConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..GossipConfig::lan()
        }
    }

    /// Checks that the settings make sense together; the error names the knob.
    pub fn validate(&self) -> Result<()> {
        let nonzero = [
            ("probe_period", self.probe_period),
            ("probe_rtt", self.probe_rtt),
            ("suspect_to_down_after", self.suspect_to_down_after),
            ("gossip_interval", self.gossip_interval),
            ("join_retry_interval", self.join_retry_interval),
            ("reannounce_interval", self.reannounce_interval),
            ("announce_interval", self.announce_interval),
            ("announce_down_interval", self.announce_down_interval),
            ("meta_tick", self.meta_tick),
            ("meta_retry", self.meta_retry),
            ("meta_request_grace", self.meta_request_grace),
            ("failure_hold", self.failure_hold),
            ("claim_timeout", self.claim_timeout),
            ("sync_interval", self.sync_interval),
            ("remove_down_after", self.remove_down_after),
            ("health_hold_max", self.health_hold_max),
            ("verdict_window", self.verdict_window),
        ];
        for (name, d) in nonzero {
            if d.is_zero() {
                return Err(Error::invalid(format!("gossip {name} must be above zero")));
            }
        }
        if self.probe_rtt >= self.probe_period {
            return Err(Error::invalid(
                "gossip probe_rtt must be shorter than probe_period",
            ));
        }
        if self.num_indirect_probes == 0 || self.gossip_fanout == 0 || self.max_transmissions == 0 {
            return Err(Error::invalid(
                "gossip num_indirect_probes, gossip_fanout and max_transmissions must be at least 1",
            ));
        }
        let min = MAX_RECORD_LEN + ENVELOPE_OVERHEAD + 100;
        if self.max_packet_size < min || self.max_packet_size > 65_000 {
            return Err(Error::invalid(format!(
                "gossip max_packet_size must be in {min}..=65000, got {}",
                self.max_packet_size
            )));
        }
        if self.event_capacity == 0 {
            return Err(Error::invalid("gossip event_capacity must be at least 1"));
        }
        Ok(())
    }

    /// The foca configuration these settings translate to.
    pub(crate) fn to_foca(&self) -> foca::Config {
        let nz = |n: usize| NonZeroUsize::new(n.max(1)).unwrap_or(NonZeroUsize::MIN);
        foca::Config {
            probe_period: self.probe_period,
            probe_rtt: self.probe_rtt,
            num_indirect_probes: nz(self.num_indirect_probes),
            max_transmissions: NonZeroU8::new(self.max_transmissions.max(1)).unwrap_or(NonZeroU8::MIN),
            suspect_to_down_after: self.suspect_to_down_after,
            remove_down_after: Some(self.remove_down_after),
            max_packet_size: nz(self.max_packet_size.saturating_sub(ENVELOPE_OVERHEAD)),
            notify_down_members: true,
            periodic_announce: Some(foca::PeriodicParams {
                frequency: self.announce_interval,
                num_members: nz(1),
            }),
            periodic_announce_to_down_members: Some(foca::PeriodicParams {
                frequency: self.announce_down_interval,
                num_members: nz(2),
            }),
            periodic_gossip: Some(foca::PeriodicParams {
                frequency: self.gossip_interval,
                num_members: nz(self.gossip_fanout),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_knobs_are_named() {
        GossipConfig::lan().validate().unwrap();
        let mut c = GossipConfig::lan();
        c.probe_rtt = c.probe_period;
        assert!(matches!(c.validate(), Err(Error::InvalidArgument(m)) if m.contains("probe_rtt")));
        let mut c = GossipConfig::lan();
        c.max_packet_size = 100;
        assert!(matches!(c.validate(), Err(Error::InvalidArgument(m)) if m.contains("max_packet_size")));
    }
}
