//! Last call: a suspicion's "down" verdict is given only once the suspect
//! had one more chance to answer. A suspicion formed during a partition
//! reaches the suspect only by gossip, and that gossip may have been spent
//! while the partition lasted; if the partition heals just before the
//! suspicion times out, the suspect never learns it is suspected, and a
//! reachable member is declared down (and must rejoin). So when a
//! suspicion times out, this node pings the suspect directly with the
//! suspicion attached: a live, reachable suspect refutes it and answers
//! with its new incarnation, which ends the suspicion; otherwise the
//! verdict is given one probe round trip (`probe_rtt`) later.
//!
//! A suspect that this node heard from directly within the suspicion
//! timeout is alive: its probes went unanswered because this node's own
//! datagrams are not getting out (members cut off together still hear
//! the cluster). The verdict then waits, and the suspect is asked again
//! every probe period, for as long as it is heard and at most
//! `health_hold_max`.

use std::collections::HashMap;

use super::{Machine, MachineTimer};
use crate::gossip::codec::{put_varint, NodeCodec};
use crate::gossip::identity::NodeId;
use crate::gossip::packet::KIND_FOCA;
use foca::{Codec as _, Header, Member, Message, State};

impl Machine {
    /// A suspicion timed out and is not held: ask the suspect directly,
    /// and give the verdict after `probe_rtt` unless it refuted.
    pub(super) fn last_call(&mut self, t: foca::Timer<NodeId>) {
        let foca::Timer::ChangeSuspectToDown {
            member_id,
            incarnation,
            ..
        } = &t
        else {
            return self.foca_timer(t);
        };
        if !self.suspects(member_id, *incarnation) {
            // Refuted or gone meanwhile. Not handed to foca: it would
            // still tell the member it is down (see `on_last_call`).
            return;
        }
        self.ping_with_suspicion(*member_id, *incarnation);
        tracing::debug!(member = %member_id, "gossip: last call to a suspect");
        self.stats.last_calls += 1;
        self.out
            .timers
            .push((self.config.probe_rtt, MachineTimer::LastCall(t, self.clock.tick)));
    }

    /// The last call is over: the verdict stands unless the suspect
    /// refuted. A refuted suspicion's timer never reaches foca: foca
    /// leaves the member alive but still sends it "you are down"
    /// (`notify_down_members`), which would make a live member rejoin.
    /// `since`: the tick of the first call.
    pub(super) fn on_last_call(&mut self, t: foca::Timer<NodeId>, since: u64) {
        if let foca::Timer::ChangeSuspectToDown {
            member_id,
            incarnation,
            ..
        } = &t
        {
            if !self.suspects(member_id, *incarnation) {
                self.stats.last_calls_refuted += 1;
                return;
            }
            let tick = self.clock.tick;
            let timeout = self.clock.ticks(self.config.suspect_to_down_after);
            let cap = self.clock.ticks(self.config.health_hold_max);
            if self.heard.within(member_id, tick, timeout) && tick < since + cap {
                tracing::debug!(member = %member_id, "gossip: a suspect is heard: its verdict waits");
                self.ping_with_suspicion(*member_id, *incarnation);
                self.out
                    .timers
                    .push((self.config.probe_period, MachineTimer::LastCall(t, since)));
                return;
            }
            if self.verdicts_wait() {
                self.out
                    .timers
                    .push((self.clock.every, MachineTimer::HeldDown(t)));
                return;
            }
            tracing::debug!(member = %member_id, "gossip: a suspect did not answer its last call");
        }
        self.foca_timer(t);
    }

    /// Whether foca still suspects `id` at `incarnation`.
    fn suspects(&self, id: &NodeId, incarnation: u16) -> bool {
        self.foca
            .iter_membership_state()
            .any(|m| m.id() == id && m.incarnation() == incarnation && m.state() == State::Suspect)
    }

    /// A ping to `id` carrying the news that it is suspected at
    /// `incarnation`: foca refutes it on arrival and acks with its new
    /// incarnation in the header.
    fn ping_with_suspicion(&mut self, id: NodeId, incarnation: u16) {
        let header = Header {
            src: self.identity(),
            src_incarnation: self.health.incarnation(),
            dst: id,
            message: Message::Ping(0),
        };
        let mut body = vec![KIND_FOCA];
        put_varint(&mut body, self.local.version);
        let news = Member::new(id, incarnation, State::Suspect);
        if NodeCodec.encode_header(&header, &mut body).is_ok() {
            body.extend_from_slice(&1u16.to_be_bytes());
            if NodeCodec.encode_member(&news, &mut body).is_ok() {
                self.send(id.addr, &body);
            }
        }
    }
}

/// When each member was last heard directly (a foca datagram it sent).
#[derive(Default)]
pub(super) struct Heard {
    at: HashMap<NodeId, u64>,
    /// When members silent for longer than `keep` were heard again.
    resumed: HashMap<NodeId, u64>,
    /// Tick of the last pruning.
    pruned: u64,
}

impl Heard {
    /// `id` sent a datagram at `tick`; entries not heard for `remember`
    /// ticks are pruned now and then, and one heard again after a
    /// silence longer than `keep` has resumed.
    pub(super) fn heard(&mut self, id: NodeId, tick: u64, keep: u64, remember: u64) {
        if self.at.insert(id, tick).is_some_and(|at| at + keep < tick) {
            self.resumed.insert(id, tick);
        }
        if tick >= self.pruned + keep {
            self.at.retain(|_, at| *at + remember > tick);
            self.resumed.retain(|_, at| *at + keep > tick);
            self.pruned = tick;
        }
    }

    /// Whether `id`, heard before, was silent (to this node) at some point
    /// in the last `ticks` ticks, for longer than the `keep` it is heard
    /// with. An identity never heard (or forgotten) was not: a forged or
    /// mangled header names one.
    pub(super) fn silent_lately(&self, id: &NodeId, tick: u64, ticks: u64) -> bool {
        self.at
            .get(id)
            .is_some_and(|at| *at + ticks < tick || self.resumed.get(id).is_some_and(|r| *r + ticks >= tick))
    }

    /// Whether `id` was heard in the last `ticks` ticks.
    pub(super) fn within(&self, id: &NodeId, tick: u64, ticks: u64) -> bool {
        self.at.get(id).is_some_and(|at| *at + ticks >= tick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_member_heard_before_can_have_been_silent() {
        let (keep, remember) = (3, 120);
        let a = NodeId::with_gen("10.0.0.1:7370".parse().unwrap(), 1);
        let forged = NodeId::with_gen("10.0.0.1:7370".parse().unwrap(), 2);
        let mut h = Heard::default();
        h.heard(a, 10, keep, remember);
        assert!(!h.silent_lately(&a, 11, keep), "heard just now");
        assert!(h.silent_lately(&a, 20, keep), "not heard for longer than keep");
        assert!(!h.silent_lately(&forged, 20, keep), "never heard: not silent");
        h.heard(a, 40, keep, remember); // after a long silence, kept
        assert!(h.silent_lately(&a, 41, keep), "resumed lately");
        h.heard(a, 42, keep, remember);
        assert!(!h.silent_lately(&a, 44, keep), "heard steadily since");
        h.heard(forged, 200, keep, remember); // prunes `a`, last heard at 42
        assert!(!h.silent_lately(&a, 201, keep), "forgotten past `remember`");
    }
}
