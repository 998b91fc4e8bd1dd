//! Holds every recorded answer against the replayed nemesis log and
//! reports each broken guarantee (#16):
//!
//! * **agreement**: registries that are up report the same ring for a
//!   group; a disagreement window (from the first registry's change to the
//!   last one's catching up) lasts at most `agree_within`, counted from
//!   the last heal when a fault was in the way.
//! * **partial ring**: no answer (Members, or a Match that found nothing)
//!   comes from a ring that lacks a service up and linked both ways with
//!   the registry for at least `grace` (its join or heal had time to
//!   arrive). A restarted registry gets no grace of its own: it must not
//!   answer before it knows whom it is missing.
//! * **failover**: a client given every registry sees no failed call while
//!   some registry linked with it has been up for `settle`.
//! * **refusals**: a registry refuses nothing once it has been up for
//!   `settle` since it started (its sync gate) or for `resume` since it
//!   resumed from a pause, and linked with the client for `resume`; a call
//!   over a congested link may time out.
//! * **owners**: two Match answers served from the same ring (the
//!   registry's Members answers just before and just after agree) name
//!   the same owner for a key, on every registry.
//! * **false failures**: a service that was up, not paused, and linked
//!   both ways with every registry for `detect` (its link not congested)
//!   is never declared down (its own log says when it was). One cut off
//!   from a registry in either direction within `detect` before it heard
//!   of its failure was rightly declared, also when the news reached it
//!   only after the heal; a cut between services alone does not count.
//! * **pause**: a service paused for longer than `detect` is dropped by
//!   every registry that answers meanwhile (and, by the partial-ring
//!   check, is back within `grace` after it resumes).
//!
//! Faults count from the earliest time they may have taken effect (when
//! the bed began them), heals from when they were done, so a call racing
//! a kill is the kill's (`Bounds::skew` for logs without that time).

use crate::history::{Answer, Event, Op};
use crate::world::World;
use std::collections::BTreeMap;
use std::fmt;

/// Time bounds of the checks, in ms.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Longest disagreement window between registries once nothing is in
    /// the way (the 1 s, plus the clients' sampling period).
    pub agree_within: u64,
    /// How long a service must have been up and linked to a registry
    /// before that registry's ring must list it.
    pub grace: u64,
    /// How long a registry must have been up before refusing a call is
    /// wrong (its sync gate).
    pub settle: u64,
    /// How long a resumed registry, or one whose link with the client
    /// healed, may take to answer again (the client's reconnect).
    pub resume: u64,
    /// Longest time to drop a crashed or paused member.
    pub detect: u64,
    /// For a log that does not say when the bed began each action: how
    /// long before its logged time a fault may have taken effect (a kill
    /// is logged once the process is reaped; up to 12 ms in a 20-minute
    /// run on 2 cores). Never reaches back past the bed's previous action.
    pub skew: u64,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            agree_within: 1_500,
            grace: 3_000,
            settle: 7_000,
            resume: 2_000,
            detect: 6_000,
            skew: 50,
        }
    }
}

/// Which guarantee a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Guarantee {
    /// Registries disagreed for longer than allowed.
    Agreement,
    /// An answer came from a ring missing a live, reachable member.
    PartialRing,
    /// A failover call failed while a registry was available.
    Failover,
    /// A registry refused a call it should have answered.
    Refusal,
    /// A paused service was not dropped.
    PauseNotDropped,
    /// Two answers from the same ring named different owners for a key.
    OwnerMismatch,
    /// A service that stayed up and reachable was declared down.
    FalseFailure,
}

/// One broken guarantee, with what shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The guarantee.
    pub guarantee: Guarantee,
    /// When (ms since the epoch).
    pub t_ms: u64,
    /// What was seen.
    pub detail: String,
}

/// What the checker found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Faults in the nemesis' log.
    pub faults: usize,
    /// Answers looked at.
    pub answers: usize,
    /// Every violation, by time.
    pub violations: Vec<Violation>,
    /// Every disagreement window, ms (sorted), counted as it is bounded:
    /// from the last heal or restart when a fault was in the way, else
    /// from its start.
    pub windows: Vec<u64>,
    /// The same windows from the first disagreement seen (sorted): with a
    /// fault in the way, they include the fault.
    pub raw_windows: Vec<u64>,
}

impl Report {
    /// Violations of one guarantee.
    pub fn of(&self, g: Guarantee) -> Vec<&Violation> {
        self.violations.iter().filter(|v| v.guarantee == g).collect()
    }

    /// The `p`-th percentile (0..=100) of the disagreement windows.
    pub fn window_percentile(&self, p: u64) -> Option<u64> {
        if self.windows.is_empty() {
            return None;
        }
        let i = ((self.windows.len() - 1) as u64 * p).div_ceil(100) as usize;
        Some(self.windows[i])
    }

    /// Every violation, one line each, by time (the summary shows at most
    /// five per guarantee).
    pub fn all_violations(&self) -> String {
        self.violations
            .iter()
            .map(|v| format!("{:?} at {}: {}\n", v.guarantee, v.t_ms, v.detail))
            .collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |p| {
            self.window_percentile(p)
                .map_or("-".to_string(), |w| format!("{w} ms"))
        };
        writeln!(
            f,
            "chaos report: {} faults injected, {} answers checked, {} violations, \
             disagreement windows: {} (p50 {}, p99 {}, max {}; from the first disagreement, max {} ms)",
            self.faults,
            self.answers,
            self.violations.len(),
            self.windows.len(),
            pct(50),
            pct(99),
            pct(100),
            self.raw_windows.last().copied().unwrap_or(0)
        )?;
        let mut by: BTreeMap<Guarantee, Vec<&Violation>> = BTreeMap::new();
        for v in &self.violations {
            by.entry(v.guarantee).or_default().push(v);
        }
        for (g, list) in by {
            writeln!(f, "  {g:?}: {} violations", list.len())?;
            for v in list.iter().take(5) {
                writeln!(f, "    at {}: {}", v.t_ms, v.detail)?;
            }
            if list.len() > 5 {
                writeln!(
                    f,
                    "    ... and {} more (registry-chaos-check DIR lists them all)",
                    list.len() - 5
                )?;
            }
        }
        Ok(())
    }
}

/// What decides that two registries hold the same ring: the ring
/// checksum the answer carries (equal checksums, equal answers); for an
/// answer without one (a recorded run from before checksums), the member
/// ids it lists.
pub fn ring_identity(a: &Answer) -> Option<String> {
    match &a.checksum {
        Some(c) => Some(c.clone()),
        None => a.members.as_ref().map(|m| m.join(",")),
    }
}

/// Checks `answers` against the nemesis log `events`.
pub fn check(events: &[Event], answers: &[Answer], bounds: Bounds) -> Report {
    let world = World::replay(events, bounds.skew);
    let mut answers: Vec<&Answer> = answers.iter().collect();
    answers.sort_by_key(|a| a.t_ms);
    let mut report = Report {
        faults: world.faults,
        answers: answers.len(),
        ..Report::default()
    };
    let client_host = client_host(&world);
    for a in &answers {
        partial_ring(&world, a, bounds, &mut report.violations);
        refusals(&world, a, client_host, bounds, &mut report.violations);
    }
    agreement(&world, &answers, bounds, &mut report);
    owners(&answers, &mut report.violations);
    false_failures(&world, events, bounds, &mut report.violations);
    pauses(&world, events, &answers, bounds, &mut report.violations);
    report.violations.sort_by_key(|v| v.t_ms);
    report.windows.sort_unstable();
    report.raw_windows.sort_unstable();
    report
}

fn client_host(world: &World) -> usize {
    world
        .nodes
        .values()
        .find(|l| l.role == crate::history::Role::Client)
        .and_then(|l| l.up.first().map(|(_, h)| *h))
        .unwrap_or(usize::MAX)
}

/// Services of `group` that registry `reg` must list at `t`: up and
/// linked with it both ways for at least `grace`.
fn required(world: &World, reg_host: usize, group: &str, t: u64, grace: u64) -> Vec<String> {
    world
        .services(group)
        .into_iter()
        .filter(|s| {
            let Some((host, up_since)) = world.up_at(s, t) else {
                return false;
            };
            let Some(linked) = world.linked_since(reg_host, host, t) else {
                return false;
            };
            up_since.max(linked) + grace <= t
        })
        .map(str::to_string)
        .collect()
}

fn partial_ring(world: &World, a: &Answer, bounds: Bounds, out: &mut Vec<Violation>) {
    if a.op == Op::Failover {
        return;
    }
    let Some(reg_host) = world.host_at(&a.registry, a.start_ms) else {
        return;
    };
    // The registry's ring at some moment in [start, t]: it must list every
    // service required over that whole span.
    let need_start = required(world, reg_host, &a.group, a.start_ms, bounds.grace);
    let need_end = required(world, reg_host, &a.group, a.t_ms, bounds.grace);
    let need: Vec<&String> = need_start.iter().filter(|s| need_end.contains(s)).collect();
    if need.is_empty() {
        return;
    }
    let missing: Vec<&&String> = match (&a.members, a.not_found()) {
        (Some(m), _) => need.iter().filter(|s| !m.contains(s)).collect(),
        (None, true) => need.iter().collect(),
        _ => return,
    };
    if !missing.is_empty() {
        out.push(Violation {
            guarantee: Guarantee::PartialRing,
            t_ms: a.t_ms,
            detail: format!(
                "{} answered {:?} for {} from a ring missing {:?} (listed: {:?})",
                a.registry, a.op, a.group, missing, a.members
            ),
        });
    }
}

/// Whether registry `reg` was up and linked with the client over the
/// whole call of `a`, for `settle` since it started (or `resume` since it
/// resumed), and for `resume` since its link with the client healed.
fn available(world: &World, reg: &str, client: usize, a: &Answer, bounds: Bounds) -> bool {
    let Some((host, since)) = world.up_at(reg, a.start_ms) else {
        return false;
    };
    let Some((_, since_end)) = world.up_at(reg, a.t_ms) else {
        return false;
    };
    let Some(linked) = world.linked_since(client, host, a.start_ms) else {
        return false;
    };
    if world.linked_since(client, host, a.t_ms).is_none() || since != since_end {
        return false;
    }
    // A congested path may time the call out (TCP retransmits outlast the
    // congestion a little): the network's fault, not the registry's.
    if world.congested(client, host, a.start_ms.saturating_sub(2_000), a.t_ms) {
        return false;
    }
    // A started process passes its sync gate first; a resumed one has
    // nothing to wait for.
    let started = world.nodes.get(reg).is_some_and(|l| l.starts.contains(&since));
    let need = if started { bounds.settle } else { bounds.resume };
    since + need <= a.start_ms && linked + bounds.resume <= a.start_ms
}

fn refusals(world: &World, a: &Answer, client: usize, bounds: Bounds, out: &mut Vec<Violation>) {
    if !a.refused() {
        return;
    }
    if a.op == Op::Failover {
        let up: Vec<&str> = world
            .registries()
            .into_iter()
            .filter(|r| available(world, r, client, a, bounds))
            .collect();
        if !up.is_empty() {
            out.push(Violation {
                guarantee: Guarantee::Failover,
                t_ms: a.t_ms,
                detail: format!("failover call failed ({:?}) while {up:?} were available", a.error),
            });
        }
    } else if available(world, &a.registry, client, a, bounds) {
        out.push(Violation {
            guarantee: Guarantee::Refusal,
            t_ms: a.t_ms,
            detail: format!("{} refused {:?}: {:?}", a.registry, a.op, a.error),
        });
    }
}

/// Disagreement windows per group between the registries that are up,
/// from their latest Members answers.
fn agreement(world: &World, answers: &[&Answer], bounds: Bounds, report: &mut Report) {
    let mut groups: BTreeMap<&str, Vec<&Answer>> = BTreeMap::new();
    for a in answers
        .iter()
        .filter(|a| a.op == Op::Members && a.error.is_none())
    {
        groups.entry(a.group.as_str()).or_default().push(a);
    }
    for (group, list) in groups {
        let mut latest: BTreeMap<&str, (u64, String)> = BTreeMap::new();
        let mut open: Option<u64> = None;
        for a in list {
            let Some(id) = ring_identity(a) else { continue };
            latest.insert(a.registry.as_str(), (a.t_ms, id));
            // Registries up now whose last answer is recent.
            let current: Vec<&String> = latest
                .iter()
                .filter(|(r, (t, _))| world.up_at(r, a.t_ms).is_some() && a.t_ms.saturating_sub(*t) <= 2_000)
                .map(|(_, (_, id))| id)
                .collect();
            let agree = current.windows(2).all(|w| w[0] == w[1]);
            match (open, agree) {
                (None, false) => open = Some(a.t_ms),
                (Some(from), true) => {
                    close_window(world, group, from, a.t_ms, bounds, report);
                    open = None;
                }
                _ => {}
            }
        }
        if let Some(from) = open {
            report.violations.push(Violation {
                guarantee: Guarantee::Agreement,
                t_ms: from,
                detail: format!("registries still disagree on {group} at the end of the run"),
            });
        }
    }
}

fn close_window(world: &World, group: &str, from: u64, to: u64, bounds: Bounds, report: &mut Report) {
    // A fault in the way: count from the last heal or restart before the end.
    let last_heal = world
        .heals
        .iter()
        .copied()
        .filter(|&h| h <= to)
        .max()
        .unwrap_or(0);
    let last_start = world
        .nodes
        .values()
        .flat_map(|l| l.starts.iter().copied())
        .filter(|&s| s <= to)
        .max()
        .unwrap_or(0);
    let blocked = world.disturbed_between(from, to);
    let paused_or_down = world.registries().into_iter().any(|r| {
        let a = world.up_at(r, from).map(|x| x.1);
        let b = world.up_at(r, to).map(|x| x.1);
        a.is_none() || a != b
    });
    let start = if blocked || paused_or_down {
        from.max(last_heal).max(last_start)
    } else {
        from
    };
    report.raw_windows.push(to - from);
    report.windows.push(to.saturating_sub(start));
    if to.saturating_sub(start) > bounds.agree_within {
        report.violations.push(Violation {
            guarantee: Guarantee::Agreement,
            t_ms: to,
            detail: format!(
                "registries disagreed on {group} for {} ms (from {from}, counted from {start})",
                to - from
            ),
        });
    }
}

/// Same ring, same key: same owner, whichever registry answered.
fn owners(answers: &[&Answer], out: &mut Vec<Violation>) {
    let mut by_registry: BTreeMap<&str, Vec<&Answer>> = BTreeMap::new();
    for a in answers
        .iter()
        .filter(|a| a.op != Op::Failover && a.error.is_none())
    {
        by_registry.entry(a.registry.as_str()).or_default().push(a);
    }
    let mut seen: Seen = BTreeMap::new();
    for list in by_registry.values() {
        let mut prev: Option<String> = None;
        for (i, a) in list.iter().enumerate() {
            if a.op == Op::Members {
                prev = ring_identity(a);
                continue;
            }
            let (Some(key), Some(owner)) = (a.key.as_deref(), a.owner.as_deref()) else {
                continue;
            };
            // A Match that carries its ring's checksum names its ring.
            if let Some(ring) = a.checksum.clone() {
                check_owner(&mut seen, ring, key, owner, a, out);
                continue;
            }
            let Some(ring) = prev.clone() else { continue };
            let next = list[i + 1..]
                .iter()
                .find(|b| b.op == Op::Members)
                .and_then(|b| ring_identity(b));
            if next.as_ref() != Some(&ring) {
                continue;
            }
            check_owner(&mut seen, ring, key, owner, a, out);
        }
    }
}

/// Owners seen per (ring, key), with the answer that first named each.
type Seen<'a> = BTreeMap<(String, &'a str), (&'a str, &'a Answer)>;

fn check_owner<'a>(
    seen: &mut Seen<'a>,
    ring: String,
    key: &'a str,
    owner: &'a str,
    a: &'a Answer,
    out: &mut Vec<Violation>,
) {
    match seen.get(&(ring.clone(), key)) {
        Some((first, b)) if *first != owner => out.push(Violation {
            guarantee: Guarantee::OwnerMismatch,
            t_ms: a.t_ms,
            detail: format!(
                "{} says {key} is owned by {owner}, {} said {first}, both from ring [{ring}]",
                a.registry, b.registry
            ),
        }),
        Some(_) => {}
        None => {
            seen.insert((ring, key), (owner, a));
        }
    }
}

fn false_failures(world: &World, events: &[Event], bounds: Bounds, out: &mut Vec<Violation>) {
    use crate::history::{Action, Role};
    for e in events {
        let Action::DeclaredDown { node } = &e.action else {
            continue;
        };
        if !matches!(world.role(node), Some(Role::Service { .. })) {
            continue;
        }
        let t = e.t_ms;
        let from = t.saturating_sub(bounds.detect);
        let Some((host, since)) = world.up_at(node, t) else {
            continue;
        };
        if since > from || world.congested(host, host, from, t) {
            continue;
        }
        let reachable = world.registries().iter().all(|r| {
            world.host_at(r, t).is_some_and(|rh| {
                world.linked_since(host, rh, t).is_some_and(|l| l <= from)
                    && !world.congested(rh, rh, from, t)
            })
        });
        if reachable {
            let heal = world.heals.iter().copied().filter(|&h| h <= t).max();
            let after = heal.map_or(String::new(), |h| format!("; {} ms after the last heal", t - h));
            out.push(Violation {
                guarantee: Guarantee::FalseFailure,
                t_ms: t,
                detail: format!(
                    "{node} (host {host}) was declared down though it stayed up and reachable \
                     from every registry{after}"
                ),
            });
        }
    }
}

fn pauses(world: &World, events: &[Event], answers: &[&Answer], bounds: Bounds, out: &mut Vec<Violation>) {
    use crate::history::{Action, Role};
    for e in events {
        let Action::Stop { node } = &e.action else {
            continue;
        };
        let Some(Role::Service { group }) = world.role(node) else {
            continue;
        };
        let cont = events
            .iter()
            .filter(|c| c.t_ms >= e.t_ms && matches!(&c.action, Action::Cont { node: n } if n == node))
            .map(|c| c.t_ms)
            .min()
            .unwrap_or(u64::MAX);
        let from = e.t_ms + bounds.detect;
        if cont <= from {
            continue;
        }
        for reg in world.registries() {
            let seen: Vec<&&Answer> = answers
                .iter()
                .filter(|a| a.registry == reg && &a.group == group && a.members.is_some())
                .filter(|a| a.start_ms >= from && a.t_ms <= cont)
                .collect();
            let dropped = seen
                .iter()
                .any(|a| !a.members.as_ref().is_some_and(|m| m.contains(node)));
            if !seen.is_empty() && !dropped {
                out.push(Violation {
                    guarantee: Guarantee::PauseNotDropped,
                    t_ms: cont,
                    detail: format!("{reg} still listed {node}, paused from {} to {cont}", e.t_ms),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
