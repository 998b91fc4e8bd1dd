//! The sans-IO gossip state machine: foca plus service metadata.
//!
//! [`Machine`] never touches a socket or a clock. It takes datagrams
//! ([`Machine::handle_packet`]) and due timers ([`Machine::handle_timer`]),
//! and leaves datagrams to send, timers to schedule and membership events in
//! an [`Output`] that the driver drains: the tokio runtime
//! ([`super::GossipNode`]) or the simulated network ([`super::sim`]).
//!
//! Metadata. Each member owns one [`MetaRecord`] stamped `(gen, version)`.
//! A record is a foca custom broadcast (so it spreads with membership
//! updates) and is also sent point to point on request. A node asks a
//! member for its record when the member comes up without one (late
//! joiner, lost broadcast), or when a foca packet from it announces a
//! newer version than the one held. A record is applied only if its stamp
//! is larger than the one held for that address: stale records never win.
//!
//! View. Events are computed by diffing, per service id, the published
//! service against the current winner: among live members holding that id,
//! the largest `(gen, addr)`. All nodes pick the same winner, so two live
//! processes with one id do not flap; the loser is reported
//! ([`GossipStats::id_conflicts`], `conflicts()`), and a restart on a new
//! address replaces the old instance with an `Updated` event.

use super::codec::{get_varint, put_varint, CodecError, NodeCodec};
use super::config::GossipConfig;
use super::identity::NodeId;
use super::keyring::Keyring;
use super::packet::{
    MetaRecord, ENVELOPE_OVERHEAD, KIND_FOCA, KIND_META, KIND_META_BATCH, KIND_META_REQUEST,
    KIND_META_SPREAD, KIND_SYNC_REQUEST, MAX_RECORD_LEN, WIRE_PLAIN, WIRE_SEALED,
};
use super::stats::GossipStats;
use crate::error::{Error, Result};
use crate::service::{MemberEvent, Service};
use foca::{BroadcastHandler, Codec, Foca, Invalidates, Member, OwnedNotification};
use rand_foca::rngs::SmallRng;
use rand_foca::SeedableRng;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// A timer the driver must hand back to [`Machine::handle_timer`] when due.
#[derive(Debug, Clone)]
pub enum MachineTimer {
    /// A foca protocol timer.
    Foca(foca::Timer<NodeId>),
    /// The metadata repair tick.
    Tick,
}

/// What the machine wants done after an input.
#[derive(Debug, Default)]
pub struct Output {
    /// Datagrams to send: destination and complete wire bytes.
    pub packets: Vec<(SocketAddr, Vec<u8>)>,
    /// Timers to schedule: delay from now and the timer.
    pub timers: Vec<(Duration, MachineTimer)>,
    /// Membership events, in order.
    pub events: Vec<MemberEvent>,
}

/// Metadata records known, keyed by member address; shared with foca's
/// broadcast handler.
struct MetaTable {
    local: NodeId,
    entries: BTreeMap<SocketAddr, MetaRecord>,
    /// Records applied since the machine last looked, and whether the news
    /// should be gossiped on (false for records that came in a sync).
    changed: Vec<(MetaRecord, bool)>,
    quiet: bool,
}

impl MetaTable {
    /// Applies `rec` if it is newer than what is held for its address.
    fn offer(&mut self, rec: MetaRecord, from_local: bool) -> bool {
        if rec.node.addr == self.local.addr && (!from_local || rec.node != self.local) {
            return false; // nobody else speaks for our address
        }
        let newer = self
            .entries
            .get(&rec.node.addr)
            .is_none_or(|cur| rec.stamp() > cur.stamp());
        if newer {
            self.entries.insert(rec.node.addr, rec.clone());
            let gossip_on = !self.quiet;
            self.changed.push((rec, gossip_on));
        }
        newer
    }
}

fn lock(t: &Mutex<MetaTable>) -> MutexGuard<'_, MetaTable> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

/// Dedupe key of a record in foca's broadcast backlog.
struct MetaKey {
    addr: SocketAddr,
    stamp: (u64, u64),
}

impl Invalidates for MetaKey {
    fn invalidates(&self, other: &Self) -> bool {
        self.addr == other.addr && self.stamp >= other.stamp
    }
}

struct MetaHandler {
    table: Arc<Mutex<MetaTable>>,
}

impl BroadcastHandler<NodeId> for MetaHandler {
    type Key = MetaKey;
    type Error = CodecError;

    fn receive_item(
        &mut self,
        data: &[u8],
        sender: Option<&NodeId>,
    ) -> std::result::Result<Option<MetaKey>, CodecError> {
        let rec = MetaRecord::decode(data)?;
        let key = MetaKey {
            addr: rec.node.addr,
            stamp: rec.stamp(),
        };
        Ok(lock(&self.table).offer(rec, sender.is_none()).then_some(key))
    }
}

/// Collects what foca asks for during one call.
#[derive(Default)]
struct FocaOut {
    notes: Vec<OwnedNotification<NodeId>>,
    sends: Vec<(NodeId, Vec<u8>)>,
    timers: Vec<(Duration, foca::Timer<NodeId>)>,
}

impl foca::Runtime<NodeId> for FocaOut {
    fn notify(&mut self, n: foca::Notification<'_, NodeId>) {
        self.notes.push(n.to_owned());
    }
    fn send_to(&mut self, to: NodeId, data: &[u8]) {
        self.sends.push((to, data.to_vec()));
    }
    fn submit_after(&mut self, event: foca::Timer<NodeId>, after: Duration) {
        self.timers.push((after, event));
    }
}

type FocaT = Foca<NodeId, NodeCodec, SmallRng, MetaHandler>;

/// A metadata request waiting to be (re)sent.
struct Pending {
    node: NodeId,
    want: (u64, u64),
    due_tick: u64,
}

/// The gossip state machine of one member. See the module docs.
pub struct Machine {
    foca: FocaT,
    table: Arc<Mutex<MetaTable>>,
    fout: FocaOut,
    out: Output,
    keyring: Option<Keyring>,
    max_packet: usize,
    local: MetaRecord,
    live: BTreeSet<NodeId>,
    by_id: BTreeMap<String, BTreeSet<SocketAddr>>,
    id_of: BTreeMap<SocketAddr, String>,
    published: BTreeMap<String, (SocketAddr, Service)>,
    dirty: BTreeSet<String>,
    pending: BTreeMap<SocketAddr, Pending>,
    tick: u64,
    tick_every: Duration,
    grace_ticks: u64,
    retry_ticks: u64,
    hold_ticks: u64,
    max_requests: usize,
    conflicts: BTreeSet<SocketAddr>,
    sync_rr: u64,
    join_sync: bool,
    last_bulk_sync: u64,
    failing: BTreeMap<String, u64>,
    next_sync_tick: u64,
    sync_ticks: u64,
    left: bool,
    stats: GossipStats,
}

impl Machine {
    /// A machine for `local` at identity `me`. `seed` seeds foca's RNG.
    /// Emits `Joined(local)` in the first output.
    pub fn new(config: &GossipConfig, me: NodeId, local: Service, seed: u64) -> Result<Machine> {
        config.validate()?;
        local.validate()?;
        let local = MetaRecord {
            node: me,
            version: 1,
            leaving: false,
            service: local,
        };
        check_record_len(&local)?;
        let table = Arc::new(Mutex::new(MetaTable {
            local: me,
            entries: BTreeMap::new(),
            changed: Vec::new(),
            quiet: false,
        }));
        let foca = Foca::with_custom_broadcast(
            me,
            config.to_foca(),
            SmallRng::seed_from_u64(seed),
            NodeCodec,
            MetaHandler { table: table.clone() },
        );
        let ticks = |d: Duration| (d.as_micros() / config.meta_tick.as_micros().max(1)).max(1) as u64;
        let mut m = Machine {
            foca,
            table,
            fout: FocaOut::default(),
            out: Output::default(),
            keyring: config.keyring.clone(),
            max_packet: config.max_packet_size,
            local,
            live: BTreeSet::new(),
            by_id: BTreeMap::new(),
            id_of: BTreeMap::new(),
            published: BTreeMap::new(),
            dirty: BTreeSet::new(),
            pending: BTreeMap::new(),
            tick: 0,
            tick_every: config.meta_tick,
            grace_ticks: ticks(config.meta_request_grace),
            retry_ticks: ticks(config.meta_retry),
            hold_ticks: ticks(config.failure_hold),
            max_requests: config.max_meta_requests_per_tick,
            conflicts: BTreeSet::new(),
            sync_rr: seed,
            join_sync: false,
            last_bulk_sync: 0,
            failing: BTreeMap::new(),
            next_sync_tick: u64::MAX,
            sync_ticks: ticks(config.sync_interval),
            left: false,
            stats: GossipStats::default(),
        };
        m.broadcast_local()?;
        m.out.timers.push((m.tick_every, MachineTimer::Tick));
        m.process();
        Ok(m)
    }

    /// This node's current identity.
    pub fn identity(&self) -> NodeId {
        *self.foca.identity()
    }

    /// The service this node registers, as last set.
    pub fn local_service(&self) -> &Service {
        &self.local.service
    }

    /// Live members with their metadata, this node included, sorted by id.
    pub fn members(&self) -> Vec<Service> {
        let mut v: Vec<Service> = self.published.values().map(|(_, s)| s.clone()).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Number of members in the view, this node included.
    pub fn member_count(&self) -> usize {
        self.published.len()
    }

    /// True when the view holds `id` with exactly this metadata.
    pub fn knows(&self, service: &Service) -> bool {
        self.published.get(&service.id).is_some_and(|(_, s)| s == service)
    }

    /// True when the view holds a member with this id.
    pub fn knows_id(&self, id: &str) -> bool {
        self.published.contains_key(id)
    }

    /// Addresses of other live processes that claim this node's service id.
    pub fn conflicts(&self) -> Vec<SocketAddr> {
        self.conflicts.iter().copied().collect()
    }

    /// Counters since start.
    pub fn stats(&self) -> GossipStats {
        let mut s = self.stats.clone();
        s.live_members = self.live.len() as u64;
        s
    }

    /// True when foca knows no live member (the node is alone).
    pub fn is_alone(&self) -> bool {
        self.foca.num_members() == 0
    }

    /// True after [`Machine::leave`].
    pub fn has_left(&self) -> bool {
        self.left
    }

    /// Takes what the machine wants done.
    pub fn drain(&mut self) -> Output {
        std::mem::take(&mut self.out)
    }

    /// Asks each address (a seed) to let this node join.
    pub fn announce(&mut self, seeds: &[SocketAddr]) {
        if self.left {
            return;
        }
        let me = self.identity().addr;
        let mut record = vec![KIND_META_SPREAD];
        record.extend_from_slice(&self.local.encode());
        for &addr in seeds {
            if addr != me {
                // Our record first, so the seed can spread it together with
                // the membership update the announce creates.
                self.send(addr, &record);
                // foca accepts an announce addressed to any identity at its address.
                if let Err(e) = self.foca.announce(NodeId::with_gen(addr, 0), &mut self.fout) {
                    tracing::debug!(error = %e, %addr, "gossip: announce failed");
                }
            }
        }
        self.process();
    }

    /// Changes this node's metadata; every member sees `Updated`, never a
    /// failure. The id cannot change.
    pub fn update(&mut self, service: Service) -> Result<()> {
        if self.left {
            return Err(Error::Unavailable("the gossip node has left".into()));
        }
        service.validate()?;
        if service.id != self.local.service.id {
            return Err(Error::invalid(format!(
                "the id cannot change (is {:?}); start a new node instead",
                self.local.service.id
            )));
        }
        let mut rec = self.local.clone();
        rec.service = service;
        rec.version += 1;
        check_record_len(&rec)?;
        self.local = rec;
        self.broadcast_local()?;
        self.send_local_to_all();
        self.process();
        Ok(())
    }

    /// Leaves gracefully: tells every live member directly and through
    /// gossip, then stops taking part. Emits `Left(local)`.
    pub fn leave(&mut self) -> Result<()> {
        if self.left {
            return Ok(());
        }
        self.local.version += 1;
        self.local.leaving = true;
        self.broadcast_local()?;
        self.send_local_to_all();
        if let Err(e) = self.foca.leave_cluster(&mut self.fout) {
            tracing::debug!(error = %e, "gossip: leave failed");
        }
        self.left = true;
        self.process();
        Ok(())
    }

    /// Replaces the keyring (or turns encryption on/off) at runtime, for
    /// key rotation: see [`Keyring`].
    pub fn set_keyring(&mut self, keyring: Option<Keyring>) {
        self.keyring = keyring;
    }

    /// Sends this node's record straight to every live member: updates and
    /// leaves are rare and must not depend on gossip luck (one small
    /// datagram per member; gossip and syncs still cover any loss).
    fn send_local_to_all(&mut self) {
        let mut body = vec![KIND_META];
        body.extend_from_slice(&self.local.encode());
        let targets: Vec<SocketAddr> = self.live.iter().map(|n| n.addr).collect();
        for addr in targets {
            self.send(addr, &body);
        }
    }

    /// Handles a due timer.
    pub fn handle_timer(&mut self, timer: MachineTimer) {
        match timer {
            MachineTimer::Foca(t) => {
                if let Err(e) = self.foca.handle_timer(t, &mut self.fout) {
                    tracing::trace!(error = %e, "gossip: timer");
                }
            }
            MachineTimer::Tick => {
                self.tick += 1;
                let tick = self.tick;
                for (id, due) in &self.failing {
                    if *due <= tick {
                        self.dirty.insert(id.clone());
                    }
                }
                if !self.left {
                    self.request_missing();
                    if self.tick >= self.next_sync_tick {
                        self.next_sync_tick = self.tick + self.sync_ticks;
                        self.request_sync();
                    }
                    self.out.timers.push((self.tick_every, MachineTimer::Tick));
                }
            }
        }
        self.process();
    }

    /// Handles one datagram from `from`. Bad input is dropped and counted.
    pub fn handle_packet(&mut self, from: SocketAddr, data: &[u8]) {
        self.stats.packets_received += 1;
        self.stats.bytes_received += data.len() as u64;
        if data.len() > self.max_packet {
            self.stats.dropped_too_large += 1;
            return;
        }
        let opened;
        let body: &[u8] = match (data.first(), &self.keyring) {
            (Some(&WIRE_PLAIN), None) => &data[1..],
            (Some(&WIRE_PLAIN), Some(_)) => {
                self.stats.dropped_unencrypted += 1;
                return;
            }
            (Some(&WIRE_SEALED), None) => {
                self.stats.dropped_unexpected_encrypted += 1;
                return;
            }
            (Some(&WIRE_SEALED), Some(k)) => match k.open(data) {
                Some(b) => {
                    opened = b;
                    &opened
                }
                None => {
                    self.stats.dropped_decrypt_failed += 1;
                    return;
                }
            },
            _ => {
                self.stats.dropped_bad_envelope += 1;
                return;
            }
        };
        if self.left {
            return;
        }
        match body.first() {
            Some(&KIND_FOCA) => self.handle_foca(&body[1..]),
            Some(&KIND_META_REQUEST) if body.len() == 1 => {
                let mut reply = vec![KIND_META];
                reply.extend_from_slice(&self.local.encode());
                self.send(from, &reply);
            }
            Some(&KIND_SYNC_REQUEST) => {
                match MetaRecord::decode(&body[1..]) {
                    Ok(rec) => {
                        lock(&self.table).offer(rec, false);
                    }
                    Err(_) => {
                        self.stats.dropped_bad_metadata += 1;
                        return;
                    }
                }
                self.send_sync(from);
            }
            Some(&KIND_META_BATCH) => {
                let mut rest = &body[1..];
                let mut table = lock(&self.table);
                table.quiet = true;
                let mut whole = !rest.is_empty();
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
                }
            }
            Some(&KIND_META_SPREAD) => {
                // Through foca's handler: applied and queued for gossip if
                // new. foca hands it over like our own broadcasts (with no
                // sender), so a record for our address is refused here:
                // nobody else speaks for it.
                match MetaRecord::decode(&body[1..]) {
                    Ok(rec) if rec.node.addr == self.identity().addr => self.stats.dropped_rejected += 1,
                    Ok(_) => {
                        if self.foca.add_broadcast(&body[1..]).is_err() {
                            self.stats.dropped_bad_metadata += 1;
                        }
                    }
                    Err(_) => self.stats.dropped_bad_metadata += 1,
                }
            }
            Some(&KIND_META) => match MetaRecord::decode(&body[1..]) {
                Ok(rec) => {
                    lock(&self.table).offer(rec, false);
                }
                Err(_) => self.stats.dropped_bad_metadata += 1,
            },
            _ => self.stats.dropped_bad_envelope += 1,
        }
        self.process();
    }

    fn handle_foca(&mut self, mut rest: &[u8]) {
        let Ok(version) = get_varint(&mut rest) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        let Ok(header) = NodeCodec.decode_header(rest) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        match self.foca.handle_data(rest, &mut self.fout) {
            Ok(()) => {}
            Err(e) => {
                use foca::Error as E;
                match e {
                    E::DataFromOurselves => self.stats.dropped_from_self += 1,
                    E::Decode(_) | E::MalformedPacket | E::DataTooBig => self.stats.dropped_malformed += 1,
                    E::CustomBroadcast(_) => self.stats.dropped_bad_metadata += 1,
                    _ => self.stats.dropped_rejected += 1,
                }
                tracing::trace!(error = %e, "gossip: packet refused");
                return;
            }
        }
        let src = header.src;
        if self.join_sync && header.message == foca::Message::Feed {
            // Just joined through `src`: pull everything it knows.
            self.join_sync = false;
            self.next_sync_tick = self.tick + self.sync_ticks;
            self.sync_with(src.addr);
        }
        // Repair: the sender has a newer record than ours.
        let want = (src.gen, version);
        let held = lock(&self.table).entries.get(&src.addr).map(|r| r.stamp());
        if held.is_none_or(|h| h < want) && self.live.contains(&src) {
            self.want_meta(src, want, self.tick);
        }
    }

    fn want_meta(&mut self, node: NodeId, want: (u64, u64), due_tick: u64) {
        let p = self
            .pending
            .entry(node.addr)
            .or_insert(Pending { node, want, due_tick });
        if (node.gen, want) > (p.node.gen, p.want) {
            p.node = node;
            p.want = want;
            p.due_tick = p.due_tick.min(due_tick);
        }
    }

    fn request_missing(&mut self) {
        let tick = self.tick;
        let mut to_send = Vec::new();
        {
            let table = lock(&self.table);
            self.pending.retain(|addr, p| {
                let satisfied = table.entries.get(addr).is_some_and(|r| r.stamp() >= p.want);
                let alive = self.live.contains(&p.node);
                if satisfied || !alive {
                    return false;
                }
                if p.due_tick <= tick {
                    to_send.push(*addr);
                    p.due_tick = tick + self.retry_ticks;
                }
                true
            });
        }
        if to_send.len() > self.max_requests {
            // Many records missing at once (a mass start, a healed
            // partition): one sync with a random member is far cheaper
            // than a request to each; at most one per retry period.
            if tick >= self.last_bulk_sync + self.retry_ticks {
                self.last_bulk_sync = tick;
                self.request_sync();
            }
            return;
        }
        for addr in to_send {
            self.stats.meta_requests_sent += 1;
            self.send(addr, &[KIND_META_REQUEST]);
        }
    }

    /// Sends `to` every live record held (this node's included), packed
    /// into as few datagrams as fit.
    fn send_sync(&mut self, to: SocketAddr) {
        let budget = self.max_packet.saturating_sub(ENVELOPE_OVERHEAD);
        let mut batches: Vec<Vec<u8>> = Vec::new();
        let mut cur = vec![KIND_META_BATCH];
        {
            let table = lock(&self.table);
            let me = table.local;
            for rec in table.entries.values() {
                let live = rec.node == me || self.live.contains(&rec.node);
                if !live || rec.leaving || rec.version == 0 || rec.node.addr == to {
                    continue;
                }
                let bytes = rec.encode();
                let mut item = Vec::with_capacity(bytes.len() + 2);
                put_varint(&mut item, bytes.len() as u64);
                item.extend_from_slice(&bytes);
                if cur.len() + item.len() > budget && cur.len() > 1 {
                    batches.push(std::mem::replace(&mut cur, vec![KIND_META_BATCH]));
                }
                cur.extend_from_slice(&item);
            }
        }
        if cur.len() > 1 {
            batches.push(cur);
        }
        for b in batches {
            self.send(to, &b);
        }
    }

    /// Push-pull with one random live member: send our record, get all of
    /// theirs. Done on joining and every `sync_interval`.
    fn request_sync(&mut self) {
        let n = self.live.len();
        if n == 0 || self.left {
            return;
        }
        self.sync_rr = self.sync_rr.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let pick = (self.sync_rr % n as u64) as usize;
        self.join_sync = false;
        if let Some(peer) = self.live.iter().nth(pick).copied() {
            self.sync_with(peer.addr);
        }
    }

    fn sync_with(&mut self, addr: SocketAddr) {
        let mut body = vec![KIND_SYNC_REQUEST];
        body.extend_from_slice(&self.local.encode());
        self.stats.syncs_requested += 1;
        self.send(addr, &body);
    }

    fn broadcast_local(&mut self) -> Result<()> {
        let bytes = self.local.encode();
        self.foca
            .add_broadcast(&bytes)
            .map_err(|e| Error::Internal(format!("gossip: cannot queue metadata: {e}")))?;
        Ok(())
    }

    /// Wraps a body into a datagram (sealed if a keyring is set) and queues it.
    fn send(&mut self, to: SocketAddr, body: &[u8]) {
        let dgram = match &self.keyring {
            Some(k) => match k.seal(body) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "gossip: seal failed");
                    self.stats.send_errors += 1;
                    return;
                }
            },
            None => {
                let mut d = Vec::with_capacity(body.len() + 1);
                d.push(WIRE_PLAIN);
                d.extend_from_slice(body);
                d
            }
        };
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += dgram.len() as u64;
        self.out.packets.push((to, dgram));
    }

    /// Turns foca's output and new records into datagrams, timers and
    /// events, until nothing is left to do.
    fn process(&mut self) {
        loop {
            let fout = std::mem::take(&mut self.fout);
            let changed = std::mem::take(&mut lock(&self.table).changed);
            if fout.notes.is_empty() && fout.sends.is_empty() && fout.timers.is_empty() && changed.is_empty()
            {
                break;
            }
            for (to, data) in fout.sends {
                let mut body = Vec::with_capacity(data.len() + 11);
                body.push(KIND_FOCA);
                put_varint(&mut body, self.local.version);
                body.extend_from_slice(&data);
                self.send(to.addr, &body);
            }
            for (after, t) in fout.timers {
                self.out.timers.push((after, MachineTimer::Foca(t)));
            }
            for n in fout.notes {
                self.on_notification(n);
            }
            for (rec, gossip_on) in changed {
                self.on_record(rec, gossip_on);
            }
        }
        self.recompute_view();
    }

    fn on_notification(&mut self, n: OwnedNotification<NodeId>) {
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
                self.live.insert(id);
                self.mark_addr_dirty(id.addr);
                self.want_meta(id, (id.gen, 1), self.tick + self.grace_ticks);
            }
            OwnedNotification::MemberDown(id) => {
                self.live.remove(&id);
                self.mark_addr_dirty(id.addr);
            }
            OwnedNotification::Rename(old, new) => {
                if self.live.remove(&old) {
                    self.live.insert(new);
                }
                self.mark_addr_dirty(old.addr);
                // Keep serving the old metadata (as version 0 of the new
                // life) until the new record arrives: no flicker on restart.
                let mut t = lock(&self.table);
                if let Some(rec) = t.entries.get_mut(&new.addr) {
                    if rec.node.gen < new.gen && !rec.leaving {
                        rec.node = new;
                        rec.version = 0;
                    }
                }
                drop(t);
                self.want_meta(new, (new.gen, 1), self.tick);
            }
            OwnedNotification::Rejoin(new) => {
                tracing::info!(identity = %new, "gossip: declared down by the cluster; rejoined");
                lock(&self.table).local = new;
                self.local.node = new;
                self.local.version = 1;
                if let Err(e) = self.broadcast_local() {
                    tracing::warn!(error = %e, "gossip: rebroadcast after rejoin failed");
                }
            }
            OwnedNotification::Defunct => {
                // After a graceful leave this is the expected end.
                if self.left {
                    tracing::debug!("gossip: left the cluster");
                } else {
                    tracing::warn!("gossip: this node was declared down and cannot rejoin");
                }
            }
            OwnedNotification::Active => {
                // Sync with whoever fed us (see handle_foca); fall back to a
                // random member if no Feed comes soon.
                self.join_sync = true;
                self.next_sync_tick = self.tick + self.grace_ticks;
            }
            OwnedNotification::Idle => {}
        }
    }

    fn on_record(&mut self, rec: MetaRecord, gossip_on: bool) {
        let addr = rec.node.addr;
        // Re-index: the address may have moved to another service id.
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
        if rec.node == self.identity() {
            return;
        }
        // A record is evidence of life (or of a graceful leave): tell foca.
        let update = if rec.leaving {
            Member::down(rec.node)
        } else {
            Member::alive(rec.node)
        };
        if rec.leaving || !self.live.contains(&rec.node) {
            if let Err(e) = self
                .foca
                .apply_many(std::iter::once(update), gossip_on, &mut self.fout)
            {
                tracing::trace!(error = %e, "gossip: apply record");
            }
        }
    }

    fn mark_addr_dirty(&mut self, addr: SocketAddr) {
        if let Some(rec) = lock(&self.table).entries.get(&addr) {
            self.dirty.insert(rec.service.id.clone());
        }
    }

    fn recompute_view(&mut self) {
        if self.dirty.is_empty() {
            return;
        }
        let dirty = std::mem::take(&mut self.dirty);
        let me = self.identity();
        let table = lock(&self.table);
        for id in dirty {
            let mut winner: Option<&MetaRecord> = None;
            let mut rivals = Vec::new();
            for addr in self.by_id.get(&id).into_iter().flatten() {
                let Some(rec) = table.entries.get(addr) else {
                    continue;
                };
                let alive = if rec.node == me {
                    !self.left
                } else {
                    self.live.contains(&rec.node)
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
            if id == self.local.service.id && !self.left {
                let new: BTreeSet<SocketAddr> = rivals.into_iter().collect();
                for a in new.difference(&self.conflicts) {
                    tracing::warn!(id = %id, other = %a, "gossip: another live process claims this service id; the newest start wins everywhere");
                    self.stats.id_conflicts += 1;
                }
                self.conflicts = new;
            }
            let before = self.published.get(&id).cloned();
            match (before, winner) {
                (None, Some(w)) => {
                    self.out.events.push(MemberEvent::Joined(w.service.clone()));
                    self.published.insert(id, (w.node.addr, w.service.clone()));
                }
                (Some((_, old)), Some(w)) => {
                    self.failing.remove(&id);
                    if old != w.service {
                        self.out.events.push(MemberEvent::Updated(w.service.clone()));
                    }
                    self.published.insert(id, (w.node.addr, w.service.clone()));
                }
                (Some((addr, old)), None) => {
                    let left =
                        table.entries.get(&addr).is_some_and(|r| r.leaving) || (addr == me.addr && self.left);
                    if !left {
                        // A leave's record may trail foca's "down" by a hop:
                        // hold a failure for a moment before calling it.
                        let due = *self
                            .failing
                            .entry(id.clone())
                            .or_insert(self.tick + self.hold_ticks);
                        if self.tick < due {
                            continue;
                        }
                    }
                    self.failing.remove(&id);
                    let s = old;
                    self.out.events.push(if left {
                        MemberEvent::Left(s)
                    } else {
                        MemberEvent::Failed(s)
                    });
                    self.published.remove(&id);
                }
                (None, None) => {}
            }
        }
    }
}

fn check_record_len(rec: &MetaRecord) -> Result<()> {
    let len = rec.encode().len();
    if len > MAX_RECORD_LEN {
        return Err(Error::LimitExceeded(format!(
            "service metadata takes {len} bytes encoded, the gossip limit is {MAX_RECORD_LEN}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A metadata record for `node` carrying `service` at `version`, as a
    /// plain `KIND_META_SPREAD` datagram.
    fn spread(node: NodeId, version: u64, service: &Service) -> Vec<u8> {
        let rec = MetaRecord {
            node,
            version,
            leaving: false,
            service: service.clone(),
        };
        let mut d = vec![WIRE_PLAIN, KIND_META_SPREAD];
        d.extend_from_slice(&rec.encode());
        d
    }

    /// Found while writing the gossip fuzz targets' invariants: a spread
    /// record went through foca's handler as if it were our own broadcast,
    /// so a record naming our identity replaced our own metadata (input
    /// `fuzz/corpus/gossip_plain/seed-regress-own-address`).
    #[test]
    fn a_spread_record_for_our_address_is_refused() {
        let me = NodeId::with_gen("127.0.0.1:7001".parse().unwrap(), 5);
        let peer: SocketAddr = "127.0.0.1:7002".parse().unwrap();
        let local = Service::new("me", "g", "10.0.0.1:80");
        let mut m = Machine::new(&GossipConfig::lan(), me, local.clone(), 1).unwrap();
        m.drain();
        assert!(m.knows(&local));

        let mut forged = local.clone();
        forged.weight = 9;
        m.handle_packet(peer, &spread(me, 7, &forged));
        let other = Service::new("intruder", "g", "10.0.0.2:80");
        m.handle_packet(peer, &spread(me, 8, &other));
        m.handle_packet(peer, &spread(NodeId::with_gen(me.addr, 6), 1, &other));
        assert_eq!(m.members(), vec![local.clone()]);
        assert_eq!(m.stats().dropped_rejected, 3);
        let events = m.drain().events;
        assert!(events.is_empty(), "{events:?}");

        // A spread record of another member is still applied.
        let peer_id = NodeId::with_gen(peer, 3);
        m.handle_packet(peer, &spread(peer_id, 1, &other));
        assert_eq!(m.stats().dropped_rejected, 3);
        assert_eq!(m.stats().dropped_bad_metadata, 0);
    }

    /// Found by the `gossip_sealed` fuzz target: foca renamed another
    /// identity at our own address, and the rename handler moved our own
    /// record to that identity; once a rival claiming our id went down, our
    /// service left our own view (input
    /// `fuzz/corpus/gossip_sealed/seed-regress-own-rename`).
    #[test]
    fn news_of_another_identity_at_our_address_leaves_our_record_alone() {
        let me = NodeId::with_gen("127.0.0.1:7001".parse().unwrap(), 1001);
        let local = Service::new("me", "g", "10.0.0.1:80");
        let mut m = Machine::new(&GossipConfig::lan(), me, local.clone(), 1).unwrap();
        m.drain();

        let older = NodeId::with_gen(me.addr, 489);
        let newer = NodeId::with_gen(me.addr, 1641);
        m.on_notification(OwnedNotification::MemberUp(older));
        m.on_notification(OwnedNotification::Rename(older, newer));
        m.on_notification(OwnedNotification::MemberDown(newer));
        m.recompute_view();
        assert_eq!(lock(&m.table).entries[&me.addr].node, me, "our record was moved");
        assert_eq!(m.members(), vec![local.clone()]);
        assert!(m.drain().events.is_empty());

        // Our record is still ours when the view is recomputed later.
        m.dirty.insert(local.id.clone());
        m.recompute_view();
        assert!(m.knows(&local));
    }
}
