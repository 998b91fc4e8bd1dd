//! Local health: a node that cannot send (a one-way partition, a full
//! send queue) still hears its peers but gets no answer to its probes, so
//! it suspects them all and, left alone, declares them down. Those
//! verdicts are wrong, and once the node is back they spread and force
//! healthy members to rejoin. The rule here is Lifeguard's local health
//! awareness in a simple form: a node that had to refute a suspicion of
//! itself, or was declared down (the cluster cannot hear it), holds its
//! "down" verdicts until it is heard again: until most of the probes it
//! sent since (of the last [`WINDOW`], and at least [`HEARD`]) were
//! answered.
//! It then drops the verdicts it held (they were never spread, so nobody
//! could refute them). Answers before the refutation do not count, and a
//! majority is asked for, not a running score: members cut off together
//! (services on one host that cannot send) answer each other's probes,
//! and would otherwise call each other heard while the rest of the
//! cluster cannot hear them. A node that nobody suspects (its peers
//! really crashed) is not held that way, and a cap bounds any hold.
//!
//! A node cut off both ways is not suspected where it can hear, so it
//! never refutes; it sees only its own probes fail. A node whose probes
//! mostly fail, to several members, is *isolated* and holds its verdicts
//! too, for at most [`ISOLATION_HOLD`] (when most of
//! the cluster really crashed at once, every survivor is isolated); once
//! its probes are answered again, each held suspect gets the last call
//! (see `confirm`) and answers it. A cut too recent for that window
//! (which still holds the answers from before it) is seen sooner: at
//! least [`LATELY_FAILED`] of the probes that ended within a suspicion's
//! span failed, most of them, to several members. That and being
//! outnumbered by suspects make verdicts doubtful (see `verdict`): they
//! wait, also at the last call, for at most the isolation cap.

use super::{Machine, MachineTimer};
use crate::gossip::identity::NodeId;
use std::collections::VecDeque;
use std::time::Duration;

impl Machine {
    /// A suspicion's timeout (`held`: one held before): the "down" verdict
    /// waits while this node cannot be heard, and one that waited is
    /// dropped once it is heard again (formed while nobody heard this node
    /// and never spread, so the suspect could not refute; it is probed
    /// anew).
    pub(super) fn on_suspect_timeout(&mut self, t: foca::Timer<NodeId>, held: bool) {
        if self.verdicts_wait() {
            self.out
                .timers
                .push((self.clock.every, MachineTimer::HeldDown(t)));
        } else if held && self.health.is_heard() {
            tracing::debug!(timer = ?t, "gossip: dropped a suspicion formed while unheard");
        } else {
            self.last_call(t);
        }
    }

    /// Whether "down" verdicts wait now: this node refuted a suspicion
    /// of itself and is not heard yet, or its verdicts are doubtful (see
    /// `verdict`), each for at most its cap.
    pub(super) fn verdicts_wait(&mut self) -> bool {
        let tick = self.clock.tick;
        if self.health.holds_verdicts(tick) || self.health.isolated_hold(tick) {
            return true;
        }
        let doubtful = self.doubtful(tick);
        let gap = self
            .clock
            .ticks(self.config.suspect_to_down_after + self.config.probe_period);
        self.health.doubt_hold(doubtful, tick, gap)
    }
}

/// Probes whose outcome counts: the last ones, one per member in a
/// small cluster (probes go round the members).
const WINDOW: usize = 8;

/// Answered probes (of the window) that make this node heard again: more
/// than a few members cut off with it can give in one round of probes.
const HEARD: usize = 5;

/// Probes that tell whether this node is isolated: one per member in a
/// small cluster, few enough that a cut is seen before its suspicions
/// time out (4 missed more of the sweeps' cuts).
const ISOLATION_WINDOW: usize = 8;

/// Failed probes, ended within a suspicion's span, that make this node
/// doubt its verdicts: one member cut off both ways has failed three by
/// the time its first suspicion times out, while two members of seven
/// crashing fail at most two.
const LATELY_FAILED: usize = 3;

/// Longest hold of verdicts while this node is isolated: when most
/// members really crashed at once, every survivor's probes fail too, and
/// their verdicts must not wait long; a cut-off node whose hold ends
/// before its cut heals gives them (10 s renewed reachable members after
/// 12 s cuts in the simulator). A time, not a count of probe periods: the
/// cuts it must outlast do not get shorter when probes get more frequent.
pub(super) const ISOLATION_HOLD: Duration = Duration::from_secs(20);

/// What this node knows about its own link, in machine ticks.
pub(super) struct Health {
    /// Outcomes of the last [`WINDOW`] probes, oldest first: answered?
    /// Cleared when this node is doubted.
    outcomes: VecDeque<bool>,
    /// The last [`ISOLATION_WINDOW`] outcomes, members probed and ticks
    /// the probes ended, never cleared: whether this node's probes fail
    /// now.
    recent: VecDeque<(bool, NodeId, u64)>,
    /// The probe in flight: its number, whether it was answered, and the
    /// member probed.
    probe: Option<(u8, bool, NodeId)>,
    /// The incarnation of this node's last outgoing header.
    incarnation: u16,
    /// Since when this node is not heard (see [`Health::update`]).
    unhealthy_since: Option<u64>,
    /// When this node last refuted a suspicion of itself.
    refuted_at: Option<u64>,
    /// Longest hold of verdicts, in ticks.
    cap: u64,
    /// Since when most probes fail ([`Health::isolated`]).
    isolated_since: Option<u64>,
    /// Longest hold of verdicts while isolated, in ticks.
    isolation_cap: u64,
    /// Since when this node's verdicts are doubtful, and when they last
    /// were ([`Health::doubt_hold`]).
    doubt: Option<(u64, u64)>,
    /// When this node last resumed from a pause long enough for the
    /// cluster to declare it down ([`Health::paused`]).
    resumed_at: Option<u64>,
}

impl Health {
    /// `cap`: the longest hold of verdicts, `isolation_cap` the longest
    /// while isolated, in ticks.
    pub(super) fn new(cap: u64, isolation_cap: u64) -> Health {
        Health {
            outcomes: VecDeque::with_capacity(WINDOW),
            recent: VecDeque::with_capacity(ISOLATION_WINDOW),
            probe: None,
            incarnation: 0,
            unhealthy_since: None,
            refuted_at: None,
            cap,
            isolated_since: None,
            isolation_cap,
            doubt: None,
            resumed_at: None,
        }
    }

    /// This node started probe `number` of `member` (the previous one is
    /// over).
    pub(super) fn probe_sent(&mut self, number: u8, member: NodeId, tick: u64) {
        if let Some((_, answered, probed)) = self.probe.replace((number, false, member)) {
            if self.outcomes.len() == WINDOW {
                self.outcomes.pop_front();
            }
            self.outcomes.push_back(answered);
            if self.recent.len() == ISOLATION_WINDOW {
                self.recent.pop_front();
            }
            self.recent.push_back((answered, probed, tick));
            if self.isolated() {
                self.isolated_since.get_or_insert(tick);
            } else {
                self.isolated_since = None;
            }
            self.update(tick);
        }
    }

    /// An answer to probe `number` (direct or forwarded) arrived.
    pub(super) fn answered(&mut self, number: u8) {
        if let Some((n, answered, _)) = &mut self.probe {
            *answered |= *n == number;
        }
    }

    /// This node sent a header at `incarnation`: a rise means it refuted
    /// a suspicion of itself.
    pub(super) fn sent(&mut self, incarnation: u16, tick: u64) {
        if incarnation > self.incarnation {
            self.doubted(tick);
        }
        self.incarnation = incarnation;
    }

    /// The cluster could not hear this node: only answers to later
    /// probes count, and until most are answered it is not heard.
    fn doubted(&mut self, tick: u64) {
        tracing::debug!("gossip: not heard by the cluster");
        self.refuted_at = Some(tick);
        self.outcomes.clear();
        self.unhealthy_since.get_or_insert(tick);
    }

    /// This process did not run for a while (stopped, or starved of CPU)
    /// and resumed at `tick`: the cluster heard nothing from it, and the
    /// verdicts it gave on this node meanwhile were formed where this node
    /// could not be heard.
    pub(super) fn paused(&mut self, tick: u64) {
        self.resumed_at = Some(tick);
    }

    /// Whether this node resumed from such a pause in the last `span`
    /// ticks.
    pub(super) fn resumed_lately(&self, tick: u64, span: u64) -> bool {
        self.resumed_at.is_some_and(|at| tick <= at + span)
    }

    /// The incarnation of this node's last outgoing header.
    pub(super) fn incarnation(&self) -> u16 {
        self.incarnation
    }

    /// The cluster declared this node down and it rejoined at `tick`: its
    /// incarnation starts again, and it is not heard yet.
    pub(super) fn renewed(&mut self, tick: u64) {
        self.incarnation = 0;
        self.doubted(tick);
    }

    /// Whether "down" verdicts wait now: this node refuted a suspicion
    /// of itself and is not heard yet, for at most the cap.
    pub(super) fn holds_verdicts(&self, tick: u64) -> bool {
        let refuted = self.refuted_at.is_some_and(|at| tick < at + self.cap);
        refuted && self.unhealthy_since.is_some_and(|since| tick < since + self.cap)
    }

    /// Whether this node's probes are answered again (a held verdict is
    /// then dropped rather than given).
    pub(super) fn is_heard(&self) -> bool {
        self.unhealthy_since.is_none()
    }

    /// Whether most of this node's last probes went unanswered, by at
    /// least two members: it cannot reach most of the cluster, so its own
    /// verdicts are suspect. Members that really crashed fail probes too,
    /// but a node still reaching most of the cluster is not isolated, nor
    /// one whose only peer is gone.
    pub(super) fn isolated(&self) -> bool {
        let (failed, several) = failures(self.recent.iter());
        several && 2 * failed > self.recent.len()
    }

    /// Whether at least [`LATELY_FAILED`] probes that ended in the last
    /// `span` ticks failed, most of them, to several members: a cut
    /// begun too recently for [`Health::isolated`], whose window still
    /// holds the answers from before it.
    pub(super) fn failing_lately(&self, tick: u64, span: u64) -> bool {
        let from = tick.saturating_sub(span);
        let lately = self.recent.iter().filter(|(_, _, at)| *at >= from);
        let total = lately.clone().count();
        let (failed, several) = failures(lately);
        several && failed >= LATELY_FAILED && 2 * failed > total
    }

    /// Whether "down" verdicts wait because this node is isolated, for at
    /// most the isolation cap.
    pub(super) fn isolated_hold(&self, tick: u64) -> bool {
        self.isolated_since
            .is_some_and(|since| tick < since + self.isolation_cap)
    }

    /// Whether verdicts wait because they are `doubtful` now (see
    /// `Machine::doubtful`), for at most the isolation cap since they
    /// became so; doubts less than `gap` ticks apart are one stretch, so
    /// a doubt that comes and goes (an even split) is still capped.
    pub(super) fn doubt_hold(&mut self, doubtful: bool, tick: u64, gap: u64) -> bool {
        if !doubtful {
            return false;
        }
        let since = match self.doubt {
            Some((since, last)) if tick <= last + gap => since,
            _ => tick,
        };
        self.doubt = Some((since, tick));
        tick < since + self.isolation_cap
    }

    /// Heard: at least [`HEARD`] of the probes counted were answered,
    /// and more than went unanswered.
    fn update(&mut self, tick: u64) {
        let answered = self.outcomes.iter().filter(|a| **a).count();
        if answered >= HEARD && 2 * answered > self.outcomes.len() {
            if self.unhealthy_since.take().is_some() {
                tracing::debug!(outcomes = ?self.outcomes, "gossip: heard again");
            }
        } else {
            self.unhealthy_since.get_or_insert(tick);
        }
    }
}

/// How many of `probes` failed, and whether to more than one member.
fn failures<'a>(probes: impl Iterator<Item = &'a (bool, NodeId, u64)>) -> (usize, bool) {
    let mut failed = probes.filter(|(a, _, _)| !*a).map(|(_, m, _)| m);
    let Some(first) = failed.next() else {
        return (0, false);
    };
    let (mut count, mut several) = (1, false);
    for m in failed {
        count += 1;
        several |= m != first;
    }
    (count, several)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    /// Member `i`'s identity.
    fn peer(i: u8) -> NodeId {
        NodeId::with_gen(SocketAddr::from(([10, 0, 0, i], 7370)), 1)
    }

    /// A node that refuted a suspicion of itself at tick 1.
    fn suspected() -> Health {
        let mut h = Health::new(240, 80);
        h.sent(0, 0);
        h.sent(1, 1);
        h
    }

    /// Ends probe `n` (started at tick `n`) and starts the next.
    fn probe(h: &mut Health, n: u8, answered: bool) {
        if answered {
            h.answered(n);
        }
        h.probe_sent(n + 1, peer(n + 1), u64::from(n) + 1);
    }

    #[test]
    fn a_suspected_node_holds_verdicts_until_most_later_probes_are_answered() {
        let mut h = Health::new(240, 80);
        h.sent(0, 0);
        h.probe_sent(1, peer(1), 0);
        for n in 1..8 {
            probe(&mut h, n, true); // heard before the suspicion
        }
        h.sent(1, 9); // refuted: answers so far do not count
        assert!(h.holds_verdicts(9) && !h.is_heard());
        for n in 8..12 {
            probe(&mut h, n, true);
        }
        assert!(h.holds_verdicts(13), "four answers are not enough");
        probe(&mut h, 12, false);
        probe(&mut h, 13, false);
        probe(&mut h, 14, true);
        assert!(!h.holds_verdicts(16) && h.is_heard(), "five of seven answered");
        for n in 15..18 {
            probe(&mut h, n, false);
        }
        assert!(h.holds_verdicts(19), "three of the last eight answered");
        h.answered(17); // late: probe 17 is over
        for n in 18..21 {
            probe(&mut h, n, true);
        }
        assert!(!h.is_heard(), "four of eight");
        probe(&mut h, 21, true);
        assert!(h.is_heard(), "five of eight");
    }

    /// Services on one host that cannot send answer each other's probes
    /// (two of seven peers here) and nobody else's: they are not heard.
    #[test]
    fn answers_from_members_cut_off_together_do_not_make_a_node_heard() {
        let mut h = suspected();
        h.probe_sent(1, peer(1), 1);
        for n in 1..60u8 {
            probe(&mut h, n, n % 7 < 2);
            if n >= 3 {
                assert!(h.holds_verdicts(u64::from(n) + 2), "probe {n}");
            }
        }
        // The cut heals: every peer answers, and a majority soon does.
        let heard = (60..80u8).find(|&n| {
            probe(&mut h, n, true);
            h.is_heard()
        });
        assert!(heard.is_some_and(|n| n <= 65), "heard at probe {heard:?}");
    }

    #[test]
    fn a_node_nobody_suspects_is_never_held() {
        let mut h = Health::new(240, 80);
        for n in 0..20 {
            h.probe_sent(n, peer(n), u64::from(n) * 10); // every peer crashed
        }
        assert!(!h.holds_verdicts(200));
    }

    #[test]
    fn the_hold_is_capped_and_a_renewal_is_no_answer() {
        let mut h = suspected(); // unheard since 1
        h.probe_sent(1, peer(1), 2);
        h.probe_sent(2, peer(2), 5);
        h.renewed(6);
        h.sent(0, 7);
        assert!(h.holds_verdicts(240));
        assert!(!h.holds_verdicts(241), "past the cap since it was first unheard");
        assert!(!h.is_heard());
    }

    #[test]
    fn most_probes_failing_over_several_members_is_isolation_with_a_capped_hold() {
        let mut h = Health::new(240, 80);
        // Probes of peers 1..=3 answered, then of 4..=9 not (a cut).
        for n in 1..=9u8 {
            if n <= 3 {
                h.answered(n - 1);
            }
            h.probe_sent(n, peer(n), u64::from(n));
        }
        assert!(h.isolated(), "five of eight failed, to five members");
        assert!(h.isolated_hold(10) && h.isolated_hold(80));
        assert!(!h.isolated_hold(120), "past the isolation cap");
        assert!(!h.holds_verdicts(10), "nobody suspected it: no refutation hold");
        // The cut heals: answers again.
        for n in 10..=14u8 {
            h.answered(n - 1);
            h.probe_sent(n, peer(n), u64::from(n));
        }
        assert!(!h.isolated() && !h.isolated_hold(15));
    }

    #[test]
    fn probes_failing_lately_are_seen_before_the_window_turns() {
        let mut h = Health::new(240, 80);
        for n in 1..=8u8 {
            h.answered(n - 1);
            h.probe_sent(n, peer(n), u64::from(n) * 10); // every probe answered
        }
        h.answered(8);
        for n in 9..=11u8 {
            h.probe_sent(n, peer(n), u64::from(n) * 10); // then a cut
        }
        assert!(!h.failing_lately(110, 35), "two failed");
        h.probe_sent(12, peer(12), 120);
        assert!(
            h.failing_lately(120, 35),
            "three of four ended in the span failed"
        );
        assert!(!h.isolated(), "three of eight: the window still holds answers");
        assert!(!h.failing_lately(120, 15), "two ended in a shorter span");
        let mut lone = Health::new(240, 80);
        for n in 1..=4u8 {
            lone.probe_sent(n, peer(1), u64::from(n) * 10); // one peer gone
        }
        assert!(!lone.failing_lately(40, 35), "a lone peer gone is no cut");
    }

    #[test]
    fn a_lone_peer_gone_is_not_isolation() {
        let mut h = Health::new(240, 80);
        for n in 1..=12u8 {
            h.probe_sent(n, peer(1), u64::from(n));
        }
        assert!(!h.isolated() && !h.isolated_hold(13));
    }
}
