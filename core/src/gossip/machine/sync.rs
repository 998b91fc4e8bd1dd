//! Push-pull state sync: send our record, get every live record the peer
//! holds. Done on joining (with the member that fed us), when many records
//! are missing at once, and every `sync_interval`. A node that does not
//! hold its id yet sends a request without a record (pull only), and an
//! answer with no record is an empty batch (still an answer).
//!
//! Joining. A registry whose joining gate is closed ([`GossipConfig::joining`])
//! answers with the joining kind of batch: its records are applied, and
//! count for the claim on an id, but a receiver counts only answers from
//! members that had joined themselves in [`GossipStats::syncs_from_joined`]
//! (what a gate waits for). While it is joining and has no such answer, a
//! node asks another live member every `meta_retry`, those not known to
//! be joining first (at the next tick after a joining answer, when there
//! is one): a whole-cluster restart of the registries is answered by the
//! first member that did not restart (a service) they reach.
//!
//! [`GossipStats::syncs_from_joined`]: crate::gossip::GossipStats::syncs_from_joined

use super::meta::lock;
use super::{Clock, Machine};
use crate::gossip::codec::{get_varint, put_varint};
use crate::gossip::config::GossipConfig;
use crate::gossip::identity::NodeId;
use crate::gossip::packet::{
    MetaRecord, ENVELOPE_OVERHEAD, KIND_META_BATCH, KIND_META_BATCH_JOINING, KIND_SYNC_REQUEST,
    MAX_RECORD_LEN,
};
use std::collections::BTreeSet;
use std::net::SocketAddr;

/// When and with whom to sync.
pub(super) struct SyncState {
    /// Round-robin state of the random peer pick.
    rr: u64,
    /// Just became active: sync with the first member that feeds us.
    join_sync: bool,
    next_tick: u64,
    /// `sync_interval` in ticks.
    every_ticks: u64,
    /// Members whose last sync answer said they were still joining.
    joining_peers: BTreeSet<SocketAddr>,
    /// Tick of the last sync asked for while joining without a joined answer.
    last_joining_ask: u64,
    /// A joining answer came in: ask a member not known to be joining at
    /// the next tick rather than a `meta_retry` later.
    expedite: bool,
}

impl SyncState {
    pub(super) fn new(config: &GossipConfig, clock: &Clock, seed: u64) -> SyncState {
        SyncState {
            rr: seed,
            join_sync: false,
            next_tick: u64::MAX,
            every_ticks: clock.ticks(config.sync_interval),
            joining_peers: BTreeSet::new(),
            last_joining_ask: 0,
            expedite: false,
        }
    }
}

impl Machine {
    /// The periodic sync, on the repair tick; while joining with no
    /// answer from a joined member, one every `meta_retry`.
    pub(super) fn sync_if_due(&mut self) {
        let tick = self.clock.tick;
        if tick >= self.sync.next_tick {
            self.sync.next_tick = tick + self.sync.every_ticks;
            self.request_sync();
        } else if self.joining && self.stats.syncs_from_joined == 0 && self.stats.syncs_received > 0 {
            let expedite = std::mem::take(&mut self.sync.expedite)
                && self
                    .view
                    .live
                    .iter()
                    .any(|p| !self.sync.joining_peers.contains(&p.addr));
            if expedite || tick >= self.sync.last_joining_ask + self.meta.retry_ticks {
                self.sync.last_joining_ask = tick;
                self.request_sync();
            }
        }
    }

    /// True while this node's joining gate is closed: its sync answers say
    /// so (see the module docs).
    pub fn is_joining(&self) -> bool {
        self.joining
    }

    /// The joining gate opened: from now on sync answers count as a sync
    /// with the cluster for their receivers.
    pub fn set_joined(&mut self) {
        self.joining = false;
    }

    /// foca became active: sync with whoever feeds us (see
    /// [`Machine::on_feed`]); fall back to a random member if no Feed
    /// comes within `meta_request_grace`.
    pub(super) fn on_active(&mut self) {
        self.sync.join_sync = true;
        self.sync.next_tick = self.clock.tick + self.meta.grace_ticks;
    }

    /// A foca Feed from `src`: just joined through it, pull everything it knows.
    pub(super) fn on_feed(&mut self, src: NodeId) {
        if self.sync.join_sync {
            self.sync.join_sync = false;
            self.sync.next_tick = self.clock.tick + self.sync.every_ticks;
            self.sync_with(src.addr);
        }
    }

    /// Push-pull with one random live member.
    pub(super) fn request_sync(&mut self) {
        let n = self.view.live.len();
        if n == 0 || self.left {
            return;
        }
        self.sync.rr = self.sync.rr.wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.sync.join_sync = false;
        // Members not known to be joining first: their answer counts.
        let joined: Vec<SocketAddr> = self
            .view
            .live
            .iter()
            .map(|p| p.addr)
            .filter(|a| !self.sync.joining_peers.contains(a))
            .collect();
        let peer = if joined.is_empty() {
            self.view
                .live
                .iter()
                .nth((self.sync.rr % n as u64) as usize)
                .map(|p| p.addr)
        } else {
            joined.get((self.sync.rr % joined.len() as u64) as usize).copied()
        };
        if let Some(addr) = peer {
            self.sync_with(addr);
        }
    }

    fn sync_with(&mut self, addr: SocketAddr) {
        let mut body = vec![KIND_SYNC_REQUEST];
        if self.conflicts.held() {
            body.extend_from_slice(&self.local.encode());
        }
        self.stats.syncs_requested += 1;
        self.send(addr, &body);
    }

    /// A peer's sync request: apply its record (if any), send it all of
    /// ours.
    pub(super) fn on_sync_request(&mut self, from: SocketAddr, data: &[u8]) {
        if data.is_empty() {
            self.send_sync(from);
            return;
        }
        match MetaRecord::decode(data) {
            Ok(rec) => {
                lock(&self.meta.table).offer(rec, false);
            }
            Err(_) => {
                self.stats.dropped_bad_metadata += 1;
                return;
            }
        }
        self.send_sync(from);
    }

    /// A batch of records from a sync: applied quietly (not gossiped on).
    /// `joined`: the sender had learnt the cluster itself.
    pub(super) fn on_meta_batch(&mut self, from: SocketAddr, mut rest: &[u8], joined: bool) {
        let last = self.ends_answer(rest.len());
        let mut table = lock(&self.meta.table);
        table.quiet = true;
        let mut whole = true;
        while !rest.is_empty() {
            let rec = get_varint(&mut rest)
                .ok()
                .and_then(|len| usize::try_from(len).ok())
                .filter(|&len| len <= rest.len())
                .and_then(|len| {
                    let r = MetaRecord::decode(&rest[..len]).ok();
                    rest = &rest[len..];
                    r
                });
            match rec {
                Some(rec) => {
                    table.offer(rec, false);
                }
                None => {
                    self.stats.dropped_bad_metadata += 1;
                    whole = false;
                    break;
                }
            }
        }
        table.quiet = false;
        if whole {
            self.stats.syncs_received += 1;
            self.conflicts.answer_complete |= last;
            if joined {
                self.stats.syncs_from_joined += 1;
                self.sync.joining_peers.remove(&from);
            } else {
                self.sync.joining_peers.insert(from);
                self.sync.expedite = true;
            }
        }
    }

    /// Whether a batch of `body` bytes of records ends its answer: it has
    /// room for one more record of any size, so the sender, which fills
    /// each datagram before starting the next, had none left.
    fn ends_answer(&self, body: usize) -> bool {
        body + 1 + ENVELOPE_OVERHEAD + MAX_RECORD_LEN + 2 <= self.max_packet
    }

    /// Sends `to` every live record held (this node's included once it
    /// holds its id), packed into as few datagrams as fit; an empty batch
    /// when there is none.
    fn send_sync(&mut self, to: SocketAddr) {
        let budget = self.max_packet.saturating_sub(ENVELOPE_OVERHEAD);
        let kind = if self.joining {
            KIND_META_BATCH_JOINING
        } else {
            KIND_META_BATCH
        };
        let mut batches: Vec<Vec<u8>> = Vec::new();
        let mut cur = vec![kind];
        {
            let table = lock(&self.meta.table);
            let me = table.local;
            let mine = self.conflicts.held();
            for rec in table.entries.values() {
                let live = if rec.node == me {
                    mine
                } else {
                    self.view.live.contains(&rec.node)
                };
                if !live || rec.leaving || rec.version == 0 || rec.node.addr == to {
                    continue;
                }
                let bytes = rec.encode();
                let mut item = Vec::with_capacity(bytes.len() + 2);
                put_varint(&mut item, bytes.len() as u64);
                item.extend_from_slice(&bytes);
                if cur.len() + item.len() > budget && cur.len() > 1 {
                    batches.push(std::mem::replace(&mut cur, vec![kind]));
                }
                cur.extend_from_slice(&item);
            }
        }
        if cur.len() > 1 || batches.is_empty() {
            batches.push(cur);
        }
        // A last batch too full to say so is followed by an empty one, so a
        // pending node decides on the answer at once, not a tick later.
        if batches.last().is_some_and(|b| !self.ends_answer(b.len() - 1)) {
            batches.push(vec![kind]);
        }
        for b in batches {
            self.send(to, &b);
        }
    }
}
