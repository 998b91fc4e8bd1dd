//! The sans-IO gossip state machine: foca plus service metadata.
//!
//! [`Machine`] never touches a socket or a clock. It takes datagrams
//! ([`Machine::handle_packet`]) and due timers ([`Machine::handle_timer`]),
//! and leaves datagrams to send, timers to schedule and membership events in
//! an [`Output`] that the driver drains: the tokio runtime
//! ([`super::GossipNode`]) or the simulated network (`gossip::sim`, feature `sim`).
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
//! address replaces the old instance with an `Updated` event. A node only
//! publishes its record once it holds its id ([`Claim`]): a newcomer never
//! displaces a live holder.
//!
//! One module per concern, each with its own state: `announce` (the
//! announce schedule), `meta` (records,
//! foca's broadcast handler, repair requests), `sync` (push-pull),
//! `view` (membership news and the view diff), `hold` (the failure
//! hold), `conflict` (the claim on the id, two processes with one id),
//! `health` and `verdict` (verdicts formed while this node was unheard),
//! `confirm` (a suspect's last chance to answer before a verdict),
//! `envelope` (plain or sealed datagrams).

mod announce;
mod confirm;
mod conflict;
mod envelope;
mod health;
mod hold;
mod meta;
mod sync;
#[cfg(test)]
mod tests;
mod verdict;
mod view;

use super::codec::{put_varint, NodeCodec};
use super::config::GossipConfig;
use super::identity::NodeId;
use super::keyring::Keyring;
use super::packet::{
    MetaRecord, KIND_FOCA, KIND_META, KIND_META_BATCH, KIND_META_BATCH_JOINING, KIND_META_REQUEST,
    KIND_META_SPREAD, KIND_SYNC_REQUEST,
};
use super::stats::GossipStats;
use crate::error::{Error, Result};
use crate::service::{MemberEvent, Service};
pub use conflict::Claim;
use foca::{Codec as _, Foca, OwnedNotification};
use meta::{check_record_len, lock, MetaHandler, Repair};
use rand_foca::rngs::SmallRng;
use rand_foca::SeedableRng;
use std::net::SocketAddr;
use std::time::Duration;

/// A timer the driver must hand back to [`Machine::handle_timer`] when due.
#[derive(Debug, Clone)]
pub enum MachineTimer {
    /// A foca protocol timer.
    Foca(foca::Timer<NodeId>),
    /// A suspicion's "down" verdict held while this node could not be
    /// heard (see the health module): dropped once it is heard again.
    HeldDown(foca::Timer<NodeId>),
    /// A suspicion's "down" verdict after the suspect was asked directly
    /// (see the confirm module), with the tick of the first call: given
    /// unless it refuted meanwhile or is still heard.
    LastCall(foca::Timer<NodeId>, u64),
    /// The metadata repair tick.
    Tick,
    /// The announce schedule (see [`Machine::set_seeds`]); a driver that
    /// resolves seeds by name does so before handing this timer back.
    Announce(u64),
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

/// The machine's clock: repair ticks since start and their period.
struct Clock {
    tick: u64,
    every: Duration,
}

impl Clock {
    /// `d` in whole ticks (at least one).
    fn ticks(&self, d: Duration) -> u64 {
        (d.as_micros() / self.every.as_micros().max(1)).max(1) as u64
    }
}

/// The gossip state machine of one member. See the module docs.
pub struct Machine {
    /// The settings it was started with (the keyring in use is `keyring`).
    config: GossipConfig,
    foca: FocaT,
    fout: FocaOut,
    out: Output,
    keyring: Option<Keyring>,
    max_packet: usize,
    local: MetaRecord,
    left: bool,
    /// This node's joining gate is closed (see [`Machine::set_joined`]).
    joining: bool,
    clock: Clock,
    stats: GossipStats,
    meta: Repair,
    sync: sync::SyncState,
    view: view::View,
    hold: hold::FailureHold,
    conflicts: conflict::Conflicts,
    announcer: announce::Announcer,
    health: health::Health,
    verdicts: verdict::Verdicts,
    heard: confirm::Heard,
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
        let clock = Clock {
            tick: 0,
            every: config.meta_tick,
        };
        let meta = Repair::new(config, &clock, me);
        let foca = Foca::with_custom_broadcast(
            me,
            config.to_foca(),
            SmallRng::seed_from_u64(seed),
            NodeCodec,
            meta.handler(),
        );
        let mut m = Machine {
            foca,
            fout: FocaOut::default(),
            out: Output::default(),
            keyring: config.keyring.clone(),
            max_packet: config.max_packet_size,
            local,
            left: false,
            joining: config.joining,
            stats: GossipStats::default(),
            meta,
            sync: sync::SyncState::new(config, &clock, seed),
            view: view::View::default(),
            hold: hold::FailureHold::new(clock.ticks(config.failure_hold)),
            conflicts: conflict::Conflicts::new(clock.ticks(config.claim_timeout)),
            announcer: announce::Announcer::default(),
            health: health::Health::new(
                clock.ticks(config.health_hold_max),
                clock.ticks(health::ISOLATION_HOLD),
            ),
            verdicts: verdict::Verdicts::new(clock.ticks(config.verdict_window)),
            heard: confirm::Heard::default(),
            config: config.clone(),
            clock,
        };
        m.publish_local()?;
        m.out.timers.push((m.clock.every, MachineTimer::Tick));
        m.schedule_announce(Duration::ZERO);
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
        let mut v: Vec<Service> = self.view.published.values().map(|(_, s)| s.clone()).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Number of members in the view, this node included.
    pub fn member_count(&self) -> usize {
        self.view.published.len()
    }

    /// True when the view holds `id` with exactly this metadata.
    pub fn knows(&self, service: &Service) -> bool {
        self.view
            .published
            .get(&service.id)
            .is_some_and(|(_, s)| s == service)
    }

    /// True when the view holds a member with this id.
    pub fn knows_id(&self, id: &str) -> bool {
        self.view.published.contains_key(id)
    }

    /// Addresses of other live processes that claim this node's service id.
    pub fn conflicts(&self) -> Vec<SocketAddr> {
        self.conflicts.list()
    }

    /// Counters since start.
    pub fn stats(&self) -> GossipStats {
        let mut s = self.stats.clone();
        s.live_members = self.view.live.len() as u64;
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
                // Our record first (once we hold our id), so the seed can
                // spread it together with the membership update the
                // announce creates.
                if self.conflicts.held() {
                    self.send(addr, &record);
                }
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
        self.publish_local()?;
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

    /// Handles a due timer.
    pub fn handle_timer(&mut self, timer: MachineTimer) {
        match timer {
            MachineTimer::Foca(t @ foca::Timer::ChangeSuspectToDown { .. }) => {
                self.on_suspect_timeout(t, false)
            }
            MachineTimer::HeldDown(t) => self.on_suspect_timeout(t, true),
            MachineTimer::LastCall(t, since) => self.on_last_call(t, since),
            MachineTimer::Foca(t) => self.foca_timer(t),
            MachineTimer::Tick => self.on_tick(),
            MachineTimer::Announce(gen) => self.on_announce_timer(gen),
        }
        self.process();
    }

    /// Hands a due timer to foca.
    fn foca_timer(&mut self, t: foca::Timer<NodeId>) {
        if let Err(e) = self.foca.handle_timer(t, &mut self.fout) {
            tracing::trace!(error = %e, "gossip: timer");
        }
    }

    /// The repair tick: held failures that are due, missing records,
    /// the periodic sync.
    fn on_tick(&mut self) {
        self.clock.tick += 1;
        let tick = self.clock.tick;
        self.view.dirty.extend(self.hold.due(tick));
        if !self.left {
            self.request_missing();
            self.sync_if_due();
            self.claim_tick();
            self.out.timers.push((self.clock.every, MachineTimer::Tick));
        }
    }

    /// The driver did not run this node for `gap` (the process was stopped
    /// or starved of CPU): called before anything that waited meanwhile.
    /// A gap as long as a suspicion's timeout may have had this node
    /// declared down, by verdicts formed where it could not be heard (see
    /// `verdict`, rule 6).
    pub fn resumed_after(&mut self, gap: Duration) {
        if gap >= self.config.suspect_to_down_after {
            tracing::info!(?gap, "gossip: resumed from a pause");
            self.health.paused(self.clock.tick);
        }
    }

    /// Handles one datagram from `from`. Bad input is dropped and counted.
    pub fn handle_packet(&mut self, from: SocketAddr, data: &[u8]) {
        self.stats.packets_received += 1;
        self.stats.bytes_received += data.len() as u64;
        if data.len() > self.max_packet {
            self.stats.dropped_too_large += 1;
            return;
        }
        let Some(body) = self.open(data) else { return };
        if self.left {
            return;
        }
        lock(&self.meta.table).source = Some(from);
        self.dispatch(from, &body);
        let refused = {
            let mut table = lock(&self.meta.table);
            table.source = None;
            std::mem::take(&mut table.refused)
        };
        if refused {
            self.stats.dropped_rejected += 1;
        }
        self.process();
    }

    /// Hands an opened body to the concern its kind belongs to.
    fn dispatch(&mut self, from: SocketAddr, body: &[u8]) {
        let rest = body.get(1..).unwrap_or_default();
        match body.first() {
            Some(&KIND_FOCA) => self.handle_foca(rest),
            // Withheld while the id is not ours (see `conflict`).
            Some(&KIND_META_REQUEST) if rest.is_empty() && self.conflicts.held() => {
                let mut reply = vec![KIND_META];
                reply.extend_from_slice(&self.local.encode());
                self.send(from, &reply);
            }
            Some(&KIND_SYNC_REQUEST) => self.on_sync_request(from, rest),
            Some(&KIND_META_BATCH) => self.on_meta_batch(from, rest, true),
            Some(&KIND_META_BATCH_JOINING) => self.on_meta_batch(from, rest, false),
            Some(&KIND_META_SPREAD) => self.on_meta_spread(rest),
            Some(&KIND_META) => self.on_meta(rest),
            Some(&KIND_META_REQUEST) if rest.is_empty() => {}
            _ => self.stats.dropped_bad_envelope += 1,
        }
    }

    /// Turns foca's output and new records into datagrams, timers and
    /// events, until nothing is left to do.
    fn process(&mut self) {
        loop {
            self.process_foca();
            self.recompute_view();
            if !self.advance_claim() {
                break;
            }
        }
    }

    /// Turns foca's output and new records into datagrams, timers and
    /// view changes, until nothing is left to do.
    fn process_foca(&mut self) {
        loop {
            let fout = std::mem::take(&mut self.fout);
            let changed = std::mem::take(&mut lock(&self.meta.table).changed);
            if fout.notes.is_empty() && fout.sends.is_empty() && fout.timers.is_empty() && changed.is_empty()
            {
                break;
            }
            for (to, data) in fout.sends {
                if let Ok(h) = NodeCodec.decode_header(&data[..]) {
                    self.health.sent(h.src_incarnation, self.clock.tick);
                    if let foca::Message::Ping(n) = h.message {
                        let gap = self.doubt_gap();
                        self.health.probe_sent(n, h.dst, self.clock.tick, gap);
                        self.note_doubt();
                    }
                }
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
    }
}
