//! Node metadata: the record table shared with foca's broadcast handler,
//! the local record's broadcasts, and repair requests for missing or
//! outdated records.

use super::{Clock, Machine};
use crate::error::{Error, Result};
use crate::gossip::codec::{get_varint, CodecError, NodeCodec};
use crate::gossip::config::GossipConfig;
use crate::gossip::identity::NodeId;
use crate::gossip::packet::{MetaRecord, KIND_META, KIND_META_REQUEST, MAX_RECORD_LEN};
use foca::{BroadcastHandler, Codec, Invalidates};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// Metadata records known, keyed by member address; shared with foca's
/// broadcast handler.
pub(super) struct MetaTable {
    pub(super) local: NodeId,
    pub(super) entries: BTreeMap<SocketAddr, MetaRecord>,
    /// Records applied since the machine last looked, and whether the news
    /// should be gossiped on (false for records that came in a sync).
    pub(super) changed: Vec<(MetaRecord, bool)>,
    pub(super) quiet: bool,
    /// Addresses of the live members (the view's, mirrored for `offer`).
    pub(super) live_addrs: BTreeSet<SocketAddr>,
    /// Source address of the datagram being handled (`None` outside one).
    pub(super) source: Option<SocketAddr>,
    /// Whether a record of that datagram was refused as coming from
    /// outside the cluster.
    pub(super) refused: bool,
}

impl MetaTable {
    /// Applies `rec` if it is newer than what is held for its address.
    ///
    /// A record is evidence of life, so one in a datagram that names an
    /// address where no live member is must come from that address or from
    /// a live member (a relay, a sync answer). From anywhere else, forged
    /// or corrupted, it would make foca take a member where none runs: a
    /// holder of an id that could win it. Such a record is refused
    /// (`refused` is set); the member, if real, is learned from foca's news
    /// and its own reply to a record request.
    pub(super) fn offer(&mut self, rec: MetaRecord, from_local: bool) -> bool {
        if rec.node.addr == self.local.addr && (!from_local || rec.node != self.local) {
            return false; // nobody else speaks for our address
        }
        if let Some(from) = self.source {
            let addr = rec.node.addr;
            if addr != from && !self.live_addrs.contains(&addr) && !self.live_addrs.contains(&from) {
                self.refused = true;
                return false;
            }
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

pub(super) fn lock(t: &Mutex<MetaTable>) -> MutexGuard<'_, MetaTable> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

/// Dedupe key of a record in foca's broadcast backlog.
pub(super) struct MetaKey {
    addr: SocketAddr,
    stamp: (u64, u64),
}

impl Invalidates for MetaKey {
    fn invalidates(&self, other: &Self) -> bool {
        self.addr == other.addr && self.stamp >= other.stamp
    }
}

/// foca's custom broadcast handler: records spread with membership updates.
pub(super) struct MetaHandler {
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

/// A metadata request waiting to be (re)sent.
struct Pending {
    node: NodeId,
    want: (u64, u64),
    due_tick: u64,
}

/// The metadata state: the table and the repair requests.
pub(super) struct Repair {
    pub(super) table: Arc<Mutex<MetaTable>>,
    pending: BTreeMap<SocketAddr, Pending>,
    /// `meta_request_grace` in ticks.
    pub(super) grace_ticks: u64,
    /// `meta_retry` in ticks.
    pub(super) retry_ticks: u64,
    /// `max_meta_requests_per_tick`.
    max_requests: usize,
    last_bulk_sync: u64,
}

impl Repair {
    pub(super) fn new(config: &GossipConfig, clock: &Clock, me: NodeId) -> Repair {
        Repair {
            table: Arc::new(Mutex::new(MetaTable {
                local: me,
                entries: BTreeMap::new(),
                changed: Vec::new(),
                quiet: false,
                live_addrs: BTreeSet::new(),
                source: None,
                refused: false,
            })),
            pending: BTreeMap::new(),
            grace_ticks: clock.ticks(config.meta_request_grace),
            retry_ticks: clock.ticks(config.meta_retry),
            max_requests: config.max_meta_requests_per_tick,
            last_bulk_sync: 0,
        }
    }

    pub(super) fn handler(&self) -> MetaHandler {
        MetaHandler {
            table: self.table.clone(),
        }
    }
}

impl Machine {
    /// Makes this node's record current: a foca broadcast once the id is
    /// held (or when leaving), else into the own table only (the record is
    /// withheld; see `conflict`).
    pub(super) fn publish_local(&mut self) -> Result<()> {
        if self.conflicts.held() || self.local.leaving {
            return self.broadcast_local();
        }
        lock(&self.meta.table).offer(self.local.clone(), true);
        Ok(())
    }

    /// Queues this node's record as a foca broadcast.
    pub(super) fn broadcast_local(&mut self) -> Result<()> {
        let bytes = self.local.encode();
        self.foca
            .add_broadcast(&bytes)
            .map_err(|e| Error::Internal(format!("gossip: cannot queue metadata: {e}")))?;
        Ok(())
    }

    /// Sends this node's record straight to every live member: updates and
    /// leaves are rare and must not depend on gossip luck (one small
    /// datagram per member; gossip and syncs still cover any loss).
    pub(super) fn send_local_to_all(&mut self) {
        if !self.conflicts.held() && !self.local.leaving {
            return;
        }
        let mut body = vec![KIND_META];
        body.extend_from_slice(&self.local.encode());
        let targets: Vec<SocketAddr> = self.view.live.iter().map(|n| n.addr).collect();
        for addr in targets {
            self.send(addr, &body);
        }
    }

    /// A record sent point to point (a reply or an update).
    pub(super) fn on_meta(&mut self, data: &[u8]) {
        match MetaRecord::decode(data) {
            Ok(rec) => {
                self.check_holder(&rec);
                lock(&self.meta.table).offer(rec, false);
            }
            Err(_) => self.stats.dropped_bad_metadata += 1,
        }
    }

    /// A record to spread (sent with an announce). Through foca's handler:
    /// applied and queued for gossip if new. foca hands it over like our
    /// own broadcasts (with no sender), so a record for our address is
    /// refused here: nobody else speaks for it.
    pub(super) fn on_meta_spread(&mut self, data: &[u8]) {
        match MetaRecord::decode(data) {
            Ok(rec) if rec.node.addr == self.identity().addr => self.stats.dropped_rejected += 1,
            Ok(_) => {
                if self.foca.add_broadcast(data).is_err() {
                    self.stats.dropped_bad_metadata += 1;
                }
            }
            Err(_) => self.stats.dropped_bad_metadata += 1,
        }
    }

    /// A foca packet: its header carries the sender's record version.
    pub(super) fn handle_foca(&mut self, mut rest: &[u8]) {
        let Ok(version) = get_varint(&mut rest) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        let Ok(header) = NodeCodec.decode_header(rest) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        let Some(rest) = self.screen_verdicts(&header, rest) else {
            return;
        };
        if let Err(e) = self.foca.handle_data(&rest, &mut self.fout) {
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
        let src = header.src;
        let keep = self.clock.ticks(self.config.suspect_to_down_after);
        let remember = self.clock.ticks(self.config.verdict_window);
        self.heard.heard(src, self.clock.tick, keep, remember);
        match header.message {
            foca::Message::Ack(n) | foca::Message::ForwardedAck { probe_number: n, .. } => {
                self.health.answered(n)
            }
            _ => {}
        }
        if header.message == foca::Message::Feed {
            // foca's news first: a first Feed makes the node active, and
            // the join sync goes to the member that fed it.
            self.process_foca();
            self.on_feed(src);
        }
        // Repair: the sender has a newer record than ours.
        let want = (src.gen, version);
        let held = lock(&self.meta.table).entries.get(&src.addr).map(|r| r.stamp());
        if held.is_none_or(|h| h < want) && self.view.live.contains(&src) {
            self.want_meta(src, want, self.clock.tick);
        }
    }

    /// Asks `node` for its record at stamp `want` from tick `due_tick` on.
    pub(super) fn want_meta(&mut self, node: NodeId, want: (u64, u64), due_tick: u64) {
        let p = self
            .meta
            .pending
            .entry(node.addr)
            .or_insert(Pending { node, want, due_tick });
        if (node.gen, want) > (p.node.gen, p.want) {
            p.node = node;
            p.want = want;
            p.due_tick = p.due_tick.min(due_tick);
        }
    }

    /// Sends the requests that are due, or one sync when too many are.
    pub(super) fn request_missing(&mut self) {
        let tick = self.clock.tick;
        let mut to_send = Vec::new();
        {
            let table = lock(&self.meta.table);
            let live = &self.view.live;
            let retry = self.meta.retry_ticks;
            self.meta.pending.retain(|addr, p| {
                let satisfied = table.entries.get(addr).is_some_and(|r| r.stamp() >= p.want);
                if satisfied || !live.contains(&p.node) {
                    return false;
                }
                if p.due_tick <= tick {
                    to_send.push(*addr);
                    p.due_tick = tick + retry;
                }
                true
            });
        }
        if to_send.len() > self.meta.max_requests {
            // Many records missing at once (a mass start, a healed
            // partition): one sync with a random member is far cheaper
            // than a request to each; at most one per retry period.
            if tick >= self.meta.last_bulk_sync + self.meta.retry_ticks {
                self.meta.last_bulk_sync = tick;
                self.request_sync();
            }
            return;
        }
        for addr in to_send {
            self.stats.meta_requests_sent += 1;
            self.send(addr, &[KIND_META_REQUEST]);
        }
    }
}

/// Refuses a record too large for one datagram.
pub(super) fn check_record_len(rec: &MetaRecord) -> Result<()> {
    let len = rec.encode().len();
    if len > MAX_RECORD_LEN {
        return Err(Error::LimitExceeded(format!(
            "service metadata takes {len} bytes encoded, the gossip limit is {MAX_RECORD_LEN}"
        )));
    }
    Ok(())
}
