//! Identity conflicts: other live processes that claim this node's
//! service id. Every node keeps the newest start, so the cluster does not
//! flap; the losers are listed and counted.

use crate::gossip::stats::GossipStats;
use std::collections::BTreeSet;
use std::net::SocketAddr;

/// Addresses of the other live claimants of this node's id.
#[derive(Default)]
pub(super) struct Conflicts {
    addrs: BTreeSet<SocketAddr>,
}

impl Conflicts {
    /// The current claimants.
    pub(super) fn list(&self) -> Vec<SocketAddr> {
        self.addrs.iter().copied().collect()
    }

    /// Replaces the claimants of `id` (our own); new ones are logged and
    /// counted.
    pub(super) fn set(&mut self, id: &str, rivals: Vec<SocketAddr>, stats: &mut GossipStats) {
        let new: BTreeSet<SocketAddr> = rivals.into_iter().collect();
        for a in new.difference(&self.addrs) {
            tracing::warn!(id = %id, other = %a, "gossip: another live process claims this service id; the newest start wins everywhere");
            stats.id_conflicts += 1;
        }
        self.addrs = new;
    }
}
