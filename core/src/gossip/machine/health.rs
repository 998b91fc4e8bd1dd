//! Local health: a node that cannot send (a one-way partition, a full
//! send queue) still hears its peers but gets no answer to its probes, so
//! it suspects them all and, left alone, declares them down. Those
//! verdicts are wrong, and once the node is back they spread and force
//! healthy members to rejoin. The rule here is Lifeguard's local health
//! awareness in a simple form: a score rises on each probe that got no
//! answer and falls on each answered one; a node that had to refute a
//! suspicion of itself (the cluster cannot hear it) and whose score is at
//! [`UNHEALTHY`] or more holds its "down" verdicts, and drops those it
//! held once it is heard again (they were never spread, so nobody could
//! refute them). A node that nobody suspects (its peers really crashed)
//! is never held, and a cap bounds any hold.

use super::{Machine, MachineTimer};
use crate::gossip::identity::NodeId;

impl Machine {
    /// A suspicion's timeout (`held`: one held before): the "down" verdict
    /// waits while this node cannot be heard, and one that waited is
    /// dropped once it is heard again (formed while nobody heard this node
    /// and never spread, so the suspect could not refute; it is probed
    /// anew).
    pub(super) fn on_suspect_timeout(&mut self, t: foca::Timer<NodeId>, held: bool) {
        if self.health.holds_verdicts(self.clock.tick) {
            self.out
                .timers
                .push((self.clock.every, MachineTimer::HeldDown(t)));
        } else if held && self.health.is_heard() {
            tracing::debug!(timer = ?t, "gossip: dropped a suspicion formed while unheard");
        } else {
            self.foca_timer(t);
        }
    }
}

/// Score at which this node holds its verdicts.
const UNHEALTHY: u32 = 2;
/// Highest score: answered probes bring it down one by one.
const MAX_SCORE: u32 = 8;

/// What this node knows about its own link, in machine ticks.
pub(super) struct Health {
    score: u32,
    /// The probe in flight: its number and whether it was answered.
    probe: Option<(u8, bool)>,
    /// The incarnation of this node's last outgoing header.
    incarnation: u16,
    /// Since when the score is at [`UNHEALTHY`] or more.
    unhealthy_since: Option<u64>,
    /// When this node last refuted a suspicion of itself.
    refuted_at: Option<u64>,
    /// Longest hold of verdicts, in ticks.
    cap: u64,
}

impl Health {
    /// `cap`: the longest hold of verdicts, in ticks.
    pub(super) fn new(cap: u64) -> Health {
        Health {
            score: 0,
            probe: None,
            incarnation: 0,
            unhealthy_since: None,
            refuted_at: None,
            cap,
        }
    }

    /// This node started probe `number` (the previous one is over).
    pub(super) fn probe_sent(&mut self, number: u8, tick: u64) {
        if let Some((_, answered)) = self.probe.replace((number, false)) {
            self.add(if answered { -1 } else { 1 }, tick);
        }
    }

    /// An answer to probe `number` (direct or forwarded) arrived.
    pub(super) fn answered(&mut self, number: u8) {
        if let Some((n, answered)) = &mut self.probe {
            *answered |= *n == number;
        }
    }

    /// This node sent a header at `incarnation`: a rise means it refuted
    /// a suspicion of itself.
    pub(super) fn sent(&mut self, incarnation: u16, tick: u64) {
        if incarnation > self.incarnation {
            self.refuted_at = Some(tick);
            self.add(1, tick);
        }
        self.incarnation = incarnation;
    }

    /// The incarnation of this node's last outgoing header.
    pub(super) fn incarnation(&self) -> u16 {
        self.incarnation
    }

    /// This node's identity changed (it rejoined): its incarnation starts
    /// again.
    pub(super) fn renewed(&mut self) {
        self.incarnation = 0;
    }

    /// Whether "down" verdicts wait now: this node refuted a suspicion
    /// of itself and its probes go unanswered, for at most the cap.
    pub(super) fn holds_verdicts(&self, tick: u64) -> bool {
        let refuted = self.refuted_at.is_some_and(|at| tick < at + self.cap);
        refuted && self.unhealthy_since.is_some_and(|since| tick < since + self.cap)
    }

    /// Whether this node's probes are answered again (a held verdict is
    /// then dropped rather than given).
    pub(super) fn is_heard(&self) -> bool {
        self.unhealthy_since.is_none()
    }

    fn add(&mut self, delta: i32, tick: u64) {
        self.score = self.score.saturating_add_signed(delta).min(MAX_SCORE);
        if self.score < UNHEALTHY {
            self.unhealthy_since = None;
        } else if self.unhealthy_since.is_none() {
            self.unhealthy_since = Some(tick);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node that refuted a suspicion of itself at tick 1.
    fn suspected() -> Health {
        let mut h = Health::new(240);
        h.sent(0, 0);
        h.sent(1, 1);
        h
    }

    #[test]
    fn unanswered_probes_of_a_suspected_node_hold_verdicts_until_it_is_heard() {
        let mut h = suspected(); // score 1
        h.probe_sent(1, 2);
        h.answered(1);
        h.probe_sent(2, 10); // probe 1 answered: 0
        assert!(!h.holds_verdicts(11) && h.is_heard());
        h.probe_sent(3, 20); // probe 2 unanswered: 1
        assert!(!h.holds_verdicts(21), "one failed probe is a dead peer, not us");
        h.answered(2); // late: probe 2 is over
        h.probe_sent(4, 30); // 2
        assert!(h.holds_verdicts(31) && !h.is_heard());
        h.probe_sent(5, 40); // 3
        h.answered(5);
        h.probe_sent(6, 50); // 2
        assert!(h.holds_verdicts(51));
        h.answered(6);
        h.probe_sent(7, 60); // 1
        assert!(!h.holds_verdicts(61) && h.is_heard());
    }

    #[test]
    fn a_node_nobody_suspects_is_never_held() {
        let mut h = Health::new(240);
        for n in 0..20 {
            h.probe_sent(n, u64::from(n) * 10); // every peer crashed
        }
        assert!(!h.holds_verdicts(200));
    }

    #[test]
    fn the_hold_is_capped_and_a_renewal_is_no_answer() {
        let mut h = suspected();
        h.probe_sent(1, 2);
        h.probe_sent(2, 5); // 2: unhealthy since 5
        h.renewed();
        h.sent(0, 6);
        assert!(h.holds_verdicts(240));
        assert!(!h.holds_verdicts(241), "past the cap since the refutation");
        assert!(!h.is_heard());
    }
}
