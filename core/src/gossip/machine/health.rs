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
        self.note_doubt() && self.health.doubt_hold(tick)
    }

    /// Records whether this node's verdicts are doubtful now, and returns
    /// it. Called at every probe's end too, not only when a verdict is
    /// due: a doubt that lasts is one stretch, with one cap, however
    /// unevenly the verdicts come (when most of the cluster crashed at
    /// once, a stretch renewed at each lull between verdicts held them
    /// for over a minute).
    pub(super) fn note_doubt(&mut self) -> bool {
        let tick = self.clock.tick;
        let doubtful = self.doubtful(tick);
        let gap = self.doubt_gap();
        self.health.doubt.note(doubtful, tick, gap);
        doubtful
    }

    /// Doubt or isolation that pauses for less than this many ticks (a
    /// suspicion's timeout and a probe period) is one stretch.
    pub(super) fn doubt_gap(&self) -> u64 {
        self.clock
            .ticks(self.config.suspect_to_down_after + self.config.probe_period)
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
    isolation: Stretch,
    /// Longest hold of verdicts while isolated, in ticks.
    isolation_cap: u64,
    /// Since when this node's verdicts are doubtful ([`Health::doubt_hold`]).
    doubt: Stretch,
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
            isolation: Stretch::default(),
            isolation_cap,
            doubt: Stretch::default(),
            resumed_at: None,
        }
    }

    /// This node started probe `number` of `member` (the previous one is
    /// over).
    pub(super) fn probe_sent(&mut self, number: u8, member: NodeId, tick: u64, gap: u64) {
        if let Some((_, answered, probed)) = self.probe.replace((number, false, member)) {
            if self.outcomes.len() == WINDOW {
                self.outcomes.pop_front();
            }
            self.outcomes.push_back(answered);
            if self.recent.len() == ISOLATION_WINDOW {
                self.recent.pop_front();
            }
            self.recent.push_back((answered, probed, tick));
            self.isolation.note(self.isolated(), tick, gap);
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
    /// most the isolation cap since its stretch of isolation began.
    pub(super) fn isolated_hold(&self, tick: u64) -> bool {
        self.isolated() && self.isolation.within(tick, self.isolation_cap)
    }

    /// Whether verdicts that are doubtful now (see `Machine::note_doubt`)
    /// wait: for at most the isolation cap since the stretch of doubt
    /// began, so a doubt that comes and goes (an even split, or verdicts
    /// trickling in after most of the cluster crashed) is still capped.
    pub(super) fn doubt_hold(&self, tick: u64) -> bool {
        self.doubt.within(tick, self.isolation_cap)
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

/// A stretch of a condition (isolation, doubt) that may pause: pauses
/// shorter than a gap do not end it, so a cap on it cannot be renewed by
/// a condition that flickers.
#[derive(Default)]
pub(super) struct Stretch {
    /// When the stretch began, and when the condition was last seen.
    span: Option<(u64, u64)>,
}

impl Stretch {
    /// The condition is `active` (or not) at `tick`; a pause longer than
    /// `gap` ticks ends the stretch.
    pub(super) fn note(&mut self, active: bool, tick: u64, gap: u64) {
        if active {
            let since = match self.span {
                Some((since, last)) if tick <= last + gap => since,
                _ => tick,
            };
            self.span = Some((since, tick));
        }
    }

    /// Whether the stretch began less than `cap` ticks before `tick`.
    fn within(&self, tick: u64, cap: u64) -> bool {
        self.span.is_some_and(|(since, _)| tick < since + cap)
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
#[path = "health_tests.rs"]
mod tests;
