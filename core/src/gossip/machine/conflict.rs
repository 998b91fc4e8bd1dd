//! Identity conflicts: one service id, one live holder.
//!
//! The claim. A node starts [`Claim::Pending`]: its record stays in its own
//! view but goes to nobody (no broadcast, no spread with the announce, no
//! reply to a record request, not in its sync answers), so no member can
//! pick it over a running holder of the same id. It asks for a push-pull
//! sync (a request without a record), and once an answer is in (at once
//! when a datagram of it had room for another record, so was its last: a
//! sender whose last datagram is full follows it with an empty one; else,
//! if that one is lost, a full repair tick after its first datagram, so
//! that every datagram of a large answer has arrived):
//!
//! * no other live member holds the id: the node takes it
//!   ([`Claim::Held`]) and publishes its record;
//! * another member at another address holds it: that holder is asked for
//!   its record every repair tick. A live holder answers within a round
//!   trip: the node is [`Claim::Refused`] and never publishes. A crashed
//!   holder (the cluster has not noticed yet) cannot answer: after
//!   `claim_timeout` the node takes the id, and its later start wins
//!   everywhere at once (the view's rule), as a restart must.
//!
//! A holder at this node's own address is its previous life (a restart on
//! the same port): never a rival. A node with no seeds (the first
//! registry) has nobody to ask and takes its id at its first announce.
//!
//! Two processes that each took the id without seeing the other (started
//! within a round trip of each other, or on both sides of a partition)
//! both stay live: every node keeps the newest start, so the cluster does
//! not flap, and both list the other as a conflict.

use super::meta::lock;
use super::Machine;
use crate::error::Error;
use crate::gossip::packet::{MetaRecord, KIND_META_REQUEST};
use crate::gossip::stats::GossipStats;
use crate::service::Service;
use std::collections::BTreeSet;
use std::net::SocketAddr;

/// Where a node's claim on its service id stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Not decided yet: the record is withheld (see the module docs).
    Pending,
    /// The node holds its id: its record is published.
    Held,
    /// Another live member holds the id; this node's record is never
    /// published.
    Refused {
        /// The holder's service.
        holder: Service,
        /// The holder's gossip address.
        gossip: SocketAddr,
    },
}

impl Claim {
    /// The error a refused claim is reported with (`None` otherwise).
    pub fn error(&self) -> Option<Error> {
        match self {
            Claim::Refused { holder, gossip } => Some(Error::AlreadyExists(format!(
                "id {:?} is already registered by a live member at {} (gossip {gossip}); stop it or use another id",
                holder.id, holder.addr
            ))),
            _ => None,
        }
    }
}

/// The claim and the other live claimants of this node's id.
pub(super) struct Conflicts {
    addrs: BTreeSet<SocketAddr>,
    pub(super) claim: Claim,
    /// Tick of the first probe of the current holders.
    probing_since: Option<u64>,
    /// Tick the first sync answer was seen at.
    synced_at: Option<u64>,
    /// A sync answer's last datagram came in.
    pub(super) answer_complete: bool,
    /// Tick of the last sync asked for while pending.
    last_sync_ask: u64,
    /// `claim_timeout` in ticks.
    timeout_ticks: u64,
}

impl Conflicts {
    pub(super) fn new(timeout_ticks: u64) -> Conflicts {
        Conflicts {
            addrs: BTreeSet::new(),
            claim: Claim::Pending,
            probing_since: None,
            synced_at: None,
            answer_complete: false,
            last_sync_ask: 0,
            timeout_ticks,
        }
    }

    /// The current claimants.
    pub(super) fn list(&self) -> Vec<SocketAddr> {
        self.addrs.iter().copied().collect()
    }

    /// True when the record may leave this node.
    pub(super) fn held(&self) -> bool {
        self.claim == Claim::Held
    }

    /// Replaces the claimants of `id` (our own); new ones are logged and
    /// counted once the id is held (before, they are the holders the
    /// claim is about: see [`Machine::claim`]).
    pub(super) fn set(&mut self, id: &str, rivals: Vec<SocketAddr>, stats: &mut GossipStats) {
        let new: BTreeSet<SocketAddr> = rivals.into_iter().collect();
        if self.held() {
            for a in new.difference(&self.addrs) {
                tracing::warn!(id = %id, other = %a, "gossip: another live process claims this service id; the newest start wins everywhere");
                stats.id_conflicts += 1;
            }
        }
        self.addrs = new;
    }
}

impl Machine {
    /// Where this node's claim on its service id stands.
    pub fn claim(&self) -> &Claim {
        &self.conflicts.claim
    }

    /// Takes the id when nobody else can hold it any more; true when the
    /// record was published (there is output to process).
    pub(super) fn advance_claim(&mut self) -> bool {
        if self.conflicts.claim != Claim::Pending || self.left || self.stats.syncs_received == 0 {
            return false;
        }
        // The answer may span datagrams: decide a full tick after its first.
        let synced_at = *self.conflicts.synced_at.get_or_insert(self.clock.tick);
        if !self.conflicts.answer_complete && self.clock.tick < synced_at + 2 {
            return false;
        }
        let timed_out = self
            .conflicts
            .probing_since
            .is_some_and(|t| self.clock.tick >= t + self.conflicts.timeout_ticks);
        if !timed_out && !self.other_holders().is_empty() {
            return false;
        }
        self.take_claim();
        true
    }

    /// Publishes the record: the id is ours.
    pub(super) fn take_claim(&mut self) {
        self.conflicts.claim = Claim::Held;
        // A newer version, so foca's handler takes it as news to spread.
        self.local.version += 1;
        if let Err(e) = self.publish_local() {
            tracing::warn!(error = %e, "gossip: cannot publish this node's record");
        }
        self.send_local_to_all();
        self.view.dirty.insert(self.local.service.id.clone());
        tracing::debug!(id = %self.local.service.id, "gossip: id claimed");
    }

    /// The repair tick while pending: ask for a sync until one answers,
    /// then probe the other holders of the id.
    pub(super) fn claim_tick(&mut self) {
        if self.conflicts.claim != Claim::Pending || self.left {
            return;
        }
        let tick = self.clock.tick;
        if self.stats.syncs_received == 0 {
            if !self.view.live.is_empty() && tick >= self.conflicts.last_sync_ask + self.meta.retry_ticks {
                self.conflicts.last_sync_ask = tick;
                self.request_sync();
            }
            return;
        }
        let holders = self.other_holders();
        if holders.is_empty() {
            return;
        }
        self.conflicts.probing_since.get_or_insert(tick);
        for rec in holders {
            self.send(rec.node.addr, &[KIND_META_REQUEST]);
        }
    }

    /// A record sent point to point: while pending, one of our id from
    /// another address proves a live holder (it was just sent).
    pub(super) fn check_holder(&mut self, rec: &MetaRecord) {
        if self.conflicts.claim != Claim::Pending
            || self.left
            || rec.leaving
            || rec.service.id != self.local.service.id
            || rec.node.addr == self.identity().addr
        {
            return;
        }
        let claim = Claim::Refused {
            holder: rec.service.clone(),
            gossip: rec.node.addr,
        };
        if let Some(e) = claim.error() {
            tracing::error!(error = %e, "gossip: this node's id is taken; its record is not published");
        }
        self.conflicts.claim = claim;
        self.conflicts.addrs.insert(rec.node.addr);
        self.stats.id_conflicts += 1;
    }

    /// Live members at other addresses whose record holds our id.
    fn other_holders(&self) -> Vec<MetaRecord> {
        let table = lock(&self.meta.table);
        let (me, id) = (self.identity().addr, &self.local.service.id);
        self.view
            .holders(id)
            .filter_map(|a| table.entries.get(&a))
            .filter(|r| {
                r.node.addr != me && !r.leaving && &r.service.id == id && self.view.live.contains(&r.node)
            })
            .cloned()
            .collect()
    }
}
