//! The joining gate with remembered members: after a restart, a registry
//! that kept the last membership (a data directory) waits until every
//! member it remembers is back in the catalog, or has not answered
//! within [`REMEMBERED_WAIT`] (taken as down), on top of
//! [`Bridge::joined`]. It asks each missing one to let it join every
//! [`REMEMBERED_ANNOUNCE`], so it does not depend on its seeds alone.

use super::{Bridge, JOIN_POLL};
use crate::gossip::GossipNode;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// How long a remembered member has to come back (to answer this node's
/// announces) before the gate takes it as down: a live member answers an
/// announce within a round trip; 3 s also covers another registry
/// restarting at the same time whose process starts a little later.
pub const REMEMBERED_WAIT: Duration = Duration::from_secs(3);
/// How often the missing remembered members are announced to.
pub const REMEMBERED_ANNOUNCE: Duration = Duration::from_millis(500);

/// A member remembered from before a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    /// Its service id.
    pub id: String,
    /// The gossip address it was reached at.
    pub gossip: SocketAddr,
}

/// How the joining gate ended (see [`Bridge::wait_open`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GateReport {
    /// The cluster is learnt: a member that had joined itself answered a
    /// sync, the catalog holds every member gossip knows and every
    /// remembered member is back or taken as down. False: the timeout
    /// came first.
    pub joined: bool,
    /// Remembered members back in the catalog.
    pub rejoined: Vec<String>,
    /// Remembered members that did not come back within [`REMEMBERED_WAIT`].
    pub down: Vec<String>,
    /// Remembered members still awaited when the timeout came.
    pub missing: Vec<String>,
    /// How long the gate stayed closed.
    pub waited: Duration,
}

impl Bridge {
    /// Waits until [`Bridge::joined`] and every one of `remembered` (this
    /// node's own entry aside) is in the catalog or has not come back
    /// within [`REMEMBERED_WAIT`], at most `timeout`. Announces to the
    /// missing ones meanwhile. Does not open the gate: see
    /// [`Bridge::set_open`].
    pub async fn wait_open(&self, remembered: &[Remembered], timeout: Duration) -> GateReport {
        let start = Instant::now();
        let mut awaited: Vec<&Remembered> = remembered.iter().filter(|r| r.id != self.id).collect();
        awaited.sort_by(|a, b| a.id.cmp(&b.id));
        awaited.dedup_by(|a, b| a.id == b.id);
        let mut report = GateReport::default();
        let mut last_announce: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let present: BTreeSet<String> = self
                .shared
                .with_node(GossipNode::members)
                .unwrap_or_default()
                .into_iter()
                .filter(|s| self.shared.catalog.holds(s))
                .map(|s| s.id)
                .collect();
            let (back, missing): (Vec<&Remembered>, Vec<&Remembered>) =
                awaited.iter().partition(|r| present.contains(&r.id));
            let overdue = now >= start + REMEMBERED_WAIT;
            report.rejoined = back.iter().map(|r| r.id.clone()).collect();
            report.down = if overdue {
                missing.iter().map(|r| r.id.clone()).collect()
            } else {
                Vec::new()
            };
            report.waited = now - start;
            if self.joined() && (missing.is_empty() || overdue) {
                report.joined = true;
                return report;
            }
            if now >= start + timeout {
                report.missing = if overdue {
                    Vec::new()
                } else {
                    missing.iter().map(|r| r.id.clone()).collect()
                };
                return report;
            }
            if !overdue && !missing.is_empty() && last_announce.is_none_or(|t| now >= t + REMEMBERED_ANNOUNCE)
            {
                last_announce = Some(now);
                let addrs = missing.iter().map(|r| r.gossip).collect();
                self.shared.with_node(|n| n.announce_to(addrs));
            }
            tokio::time::sleep(JOIN_POLL).await;
        }
    }

    /// Opens the gate: from now on this node's sync answers count as a
    /// sync with the cluster for joining members (until then they say it
    /// is still joining, when its gossip was started `joining`).
    pub fn set_open(&self) {
        self.shared.with_node(GossipNode::set_joined);
    }

    /// Members this node knows live with their gossip address (itself
    /// included), sorted by id: what a registry remembers.
    pub fn members_at(&self) -> Vec<Remembered> {
        self.shared
            .with_node(GossipNode::members_at)
            .unwrap_or_default()
            .into_iter()
            .map(|(gossip, s)| Remembered { id: s.id, gossip })
            .collect()
    }
}
