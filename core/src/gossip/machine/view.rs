//! The view: foca's membership news and the metadata records turned into
//! one published service per id, and the events that diff it.
//!
//! Per service id the winner is, among live members holding that id, the
//! largest `(gen, addr)`; every node picks the same one.

use super::meta::{lock, MetaTable};
use super::Machine;
use crate::gossip::identity::NodeId;
use crate::gossip::packet::MetaRecord;
use crate::service::{MemberEvent, Service};
use foca::{Member, OwnedNotification};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

/// Live members, the id index of the records and the published view.
#[derive(Default)]
pub(super) struct View {
    /// Members foca reports up.
    pub(super) live: BTreeSet<NodeId>,
    by_id: BTreeMap<String, BTreeSet<SocketAddr>>,
    id_of: BTreeMap<SocketAddr, String>,
    /// The view: per id, the winner's address and service.
    pub(super) published: BTreeMap<String, (SocketAddr, Service)>,
    /// Ids to recompute.
    pub(super) dirty: BTreeSet<String>,
}

impl View {
    /// Addresses whose record holds `id`.
    pub(super) fn holders(&self, id: &str) -> impl Iterator<Item = SocketAddr> + '_ {
        self.by_id.get(id).into_iter().flatten().copied()
    }

    /// Whether a live member listens at `addr`.
    fn is_live_at(&self, addr: SocketAddr) -> bool {
        let lo = NodeId::with_gen(addr, 0);
        let hi = NodeId::with_gen(addr, u64::MAX);
        self.live.range(lo..=hi).next().is_some()
    }

    /// Indexes `rec` under its id (the address may have moved to another id).
    fn index(&mut self, rec: &MetaRecord) {
        let addr = rec.node.addr;
        if let Some(old_id) = self.id_of.insert(addr, rec.service.id.clone()) {
            if old_id != rec.service.id {
                if let Some(addrs) = self.by_id.get_mut(&old_id) {
                    addrs.remove(&addr);
                    if addrs.is_empty() {
                        self.by_id.remove(&old_id);
                    }
                }
                self.dirty.insert(old_id);
            }
        }
        self.by_id.entry(rec.service.id.clone()).or_default().insert(addr);
        self.dirty.insert(rec.service.id.clone());
    }
}

impl Machine {
    /// Live members with their gossip address, this node included, sorted
    /// by id: what a registry remembers to find them again after a restart.
    pub fn members_at(&self) -> Vec<(SocketAddr, Service)> {
        // The view is keyed by id: already sorted.
        self.view.published.values().cloned().collect()
    }

    /// Membership news from foca.
    pub(super) fn on_notification(&mut self, n: OwnedNotification<NodeId>) {
        // foca may track another life of our own address (a previous run,
        // or a forged identity); its news never touches our own record.
        if let OwnedNotification::MemberUp(id)
        | OwnedNotification::MemberDown(id)
        | OwnedNotification::Rename(_, id) = &n
        {
            if id.addr == self.local.node.addr {
                tracing::debug!(identity = %id, "gossip: ignored news of another identity at our own address");
                return;
            }
        }
        match n {
            OwnedNotification::MemberUp(id) => {
                self.view.live.insert(id);
                self.live_changed_at(id.addr);
                self.want_meta(id, (id.gen, 1), self.clock.tick + self.meta.grace_ticks);
            }
            OwnedNotification::MemberDown(id) => {
                tracing::debug!(member = %id, "gossip: member down");
                self.view.live.remove(&id);
                let left = lock(&self.meta.table)
                    .entries
                    .get(&id.addr)
                    .is_some_and(|r| r.node == id && r.leaving);
                if !left {
                    self.verdicts.down(id, self.clock.tick);
                }
                self.live_changed_at(id.addr);
            }
            OwnedNotification::Rename(old, new) => self.on_rename(old, new),
            OwnedNotification::Rejoin(new) => self.on_rejoin(new),
            OwnedNotification::Defunct => {
                // After a graceful leave this is the expected end.
                if self.left {
                    tracing::debug!("gossip: left the cluster");
                } else {
                    tracing::warn!("gossip: this node was declared down and cannot rejoin");
                }
            }
            OwnedNotification::Active => self.on_active(),
            OwnedNotification::Idle => self.on_alone(),
        }
    }

    /// A member restarted at the same address with a new identity.
    fn on_rename(&mut self, old: NodeId, new: NodeId) {
        if self.view.live.remove(&old) {
            self.view.live.insert(new);
        }
        self.live_changed_at(old.addr);
        // Keep serving the old metadata (as version 0 of the new
        // life) until the new record arrives: no flicker on restart.
        let mut t = lock(&self.meta.table);
        if let Some(rec) = t.entries.get_mut(&new.addr) {
            if rec.node.gen < new.gen && !rec.leaving {
                rec.node = new;
                rec.version = 0;
            }
        }
        drop(t);
        self.want_meta(new, (new.gen, 1), self.clock.tick);
    }

    /// The cluster declared this node down; foca rejoined as `new`.
    fn on_rejoin(&mut self, new: NodeId) {
        tracing::info!(identity = %new, "gossip: declared down by the cluster; rejoined");
        self.health.renewed(self.clock.tick);
        // A node that held others down was cut off: the cluster's answer
        // to an announce tells it at once who is live.
        if self.forget_recent_verdicts() {
            self.announce_again();
        }
        lock(&self.meta.table).local = new;
        self.local.node = new;
        self.local.version = 1;
        if let Err(e) = self.publish_local() {
            tracing::warn!(error = %e, "gossip: rebroadcast after rejoin failed");
        }
    }

    /// A record was applied: index it, and tell foca what it proves.
    pub(super) fn on_record(&mut self, rec: MetaRecord, gossip_on: bool) {
        self.view.index(&rec);
        if rec.node == self.identity() {
            return;
        }
        // A record is evidence of life (or of a graceful leave): tell foca.
        let update = if rec.leaving {
            Member::down(rec.node)
        } else {
            Member::alive(rec.node)
        };
        if rec.leaving || !self.view.live.contains(&rec.node) {
            if let Err(e) = self
                .foca
                .apply_many(std::iter::once(update), gossip_on, &mut self.fout)
            {
                tracing::trace!(error = %e, "gossip: apply record");
            }
        }
    }

    /// The liveness of the member at `addr` changed: its id is recomputed,
    /// and the record table learns whether a live member is there.
    fn live_changed_at(&mut self, addr: SocketAddr) {
        let live = self.view.is_live_at(addr);
        let mut table = lock(&self.meta.table);
        if live {
            table.live_addrs.insert(addr);
        } else {
            table.live_addrs.remove(&addr);
        }
        if let Some(rec) = table.entries.get(&addr) {
            self.view.dirty.insert(rec.service.id.clone());
        }
    }

    /// Recomputes the dirty ids and emits the events of the difference.
    pub(super) fn recompute_view(&mut self) {
        if self.view.dirty.is_empty() {
            return;
        }
        let dirty = std::mem::take(&mut self.view.dirty);
        let table = self.meta.table.clone();
        let table = lock(&table);
        for id in dirty {
            let (winner, rivals) = self.winner(&table, &id);
            if id == self.local.service.id && !self.left {
                self.conflicts.set(&id, rivals, &mut self.stats);
            }
            self.publish(&table, id, winner);
        }
    }

    /// The winner for `id` among live holders, and the other live holders
    /// (not this node).
    fn winner<'t>(&self, table: &'t MetaTable, id: &str) -> (Option<&'t MetaRecord>, Vec<SocketAddr>) {
        let me = self.identity();
        let mut winner: Option<&MetaRecord> = None;
        let mut rivals = Vec::new();
        for addr in self.view.by_id.get(id).into_iter().flatten() {
            let Some(rec) = table.entries.get(addr) else {
                continue;
            };
            let alive = if rec.node == me {
                !self.left
            } else {
                self.view.live.contains(&rec.node)
            };
            if !alive || rec.leaving || rec.service.id != id {
                continue;
            }
            if rec.node != me {
                rivals.push(rec.node.addr);
            }
            if winner.is_none_or(|w| (rec.node.gen, rec.node.addr) > (w.node.gen, w.node.addr)) {
                winner = Some(rec);
            }
        }
        (winner, rivals)
    }

    /// Publishes `winner` for `id` and emits the event of the change.
    fn publish(&mut self, table: &MetaTable, id: String, winner: Option<&MetaRecord>) {
        let before = self.view.published.get(&id).cloned();
        match (before, winner) {
            (None, Some(w)) => {
                self.out.events.push(MemberEvent::Joined(w.service.clone()));
                self.view.published.insert(id, (w.node.addr, w.service.clone()));
            }
            (Some((_, old)), Some(w)) => {
                self.hold.release(&id);
                if old != w.service {
                    self.out.events.push(MemberEvent::Updated(w.service.clone()));
                }
                self.view.published.insert(id, (w.node.addr, w.service.clone()));
            }
            (Some((addr, old)), None) => {
                let left = table.entries.get(&addr).is_some_and(|r| r.leaving)
                    || (addr == self.identity().addr && self.left);
                // A leave's record may trail foca's "down" by a hop:
                // hold a failure for a moment before calling it.
                if !left && self.hold.holding(&id, self.clock.tick) {
                    return;
                }
                self.hold.release(&id);
                self.out.events.push(if left {
                    MemberEvent::Left(old)
                } else {
                    MemberEvent::Failed(old)
                });
                self.view.published.remove(&id);
            }
            (None, None) => {}
        }
    }
}
