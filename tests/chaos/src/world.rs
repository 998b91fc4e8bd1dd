//! The truth the checker holds answers against, replayed from the
//! nemesis' log: when each node was up (started, not killed, not paused)
//! and on which host, and when each link between two hosts was blocked.

use crate::history::{Action, Event, Role};
use std::collections::BTreeMap;

/// A half-open time interval `[from, to)` in ms; `to == u64::MAX`: still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Start.
    pub from: u64,
    /// End (exclusive).
    pub to: u64,
}

impl Span {
    fn contains(&self, t: u64) -> bool {
        self.from <= t && t < self.to
    }
}

/// One node: its role, and the spans it was up, each with its host.
#[derive(Debug, Clone)]
pub struct NodeLife {
    /// What it is.
    pub role: Role,
    /// Up spans (running and not paused) with the host of each.
    pub up: Vec<(Span, usize)>,
    /// Start times of its processes (a restart starts a new one).
    pub starts: Vec<u64>,
}

/// The replayed log.
#[derive(Debug, Clone, Default)]
pub struct World {
    /// Every node by name.
    pub nodes: BTreeMap<String, NodeLife>,
    /// Blocked spans of each directed link (from host, to host).
    pub blocked: BTreeMap<(usize, usize), Vec<Span>>,
    /// Spans during which some host's link was congested.
    pub slowed: BTreeMap<usize, Vec<Span>>,
    /// Heal times: when a block was lifted or a paused node resumed.
    pub heals: Vec<u64>,
    /// Number of faults in the log.
    pub faults: usize,
}

impl World {
    /// Replays `events` (in any order; sorted by time here). A fault
    /// (kill, pause, block, congestion) counts from the earliest time it
    /// may have taken effect, a heal or start from when it was done (the
    /// logged time), so that every span of trouble covers the real one;
    /// `skew` is for logs without `begun_ms` (see [`effective_times`]).
    pub fn replay(events: &[Event], skew: u64) -> World {
        let ev = effective_times(events, skew);
        let mut w = World::default();
        // node -> (host, running, paused, up since)
        let mut state: BTreeMap<String, (usize, bool, bool, u64)> = BTreeMap::new();
        let mut open_blocks: BTreeMap<(usize, usize), u64> = BTreeMap::new();
        let mut open_slow: BTreeMap<usize, u64> = BTreeMap::new();
        for (t, e) in ev {
            if e.action.is_fault() {
                w.faults += 1;
            }
            match &e.action {
                Action::Start { node, role, host } => {
                    close_up(&mut w, &state, node, t);
                    let life = w.nodes.entry(node.clone()).or_insert_with(|| NodeLife {
                        role: role.clone(),
                        up: Vec::new(),
                        starts: Vec::new(),
                    });
                    life.starts.push(t);
                    state.insert(node.clone(), (*host, true, false, t));
                }
                Action::Kill { node } => {
                    close_up(&mut w, &state, node, t);
                    if let Some(s) = state.get_mut(node) {
                        s.1 = false;
                    }
                }
                Action::Stop { node } => {
                    close_up(&mut w, &state, node, t);
                    if let Some(s) = state.get_mut(node) {
                        s.2 = true;
                    }
                }
                Action::Cont { node } => {
                    if let Some(s) = state.get_mut(node) {
                        if s.2 {
                            s.2 = false;
                            s.3 = t;
                            w.heals.push(t);
                        }
                    }
                }
                Action::Block { from, to } => {
                    open_blocks.entry((*from, *to)).or_insert(t);
                }
                Action::Unblock { from, to } => {
                    if let Some(f) = open_blocks.remove(&(*from, *to)) {
                        w.blocked
                            .entry((*from, *to))
                            .or_default()
                            .push(Span { from: f, to: t });
                        w.heals.push(t);
                    }
                }
                Action::DeclaredDown { .. } => {}
                Action::Slow { host, .. } => {
                    open_slow.entry(*host).or_insert(t);
                }
                Action::Unslow { host } => {
                    if let Some(f) = open_slow.remove(host) {
                        w.slowed.entry(*host).or_default().push(Span { from: f, to: t });
                        w.heals.push(t);
                    }
                }
            }
        }
        for (host, from) in open_slow {
            w.slowed
                .entry(host)
                .or_default()
                .push(Span { from, to: u64::MAX });
        }
        let names: Vec<String> = state.keys().cloned().collect();
        for n in names {
            close_up(&mut w, &state, &n, u64::MAX);
        }
        for ((f, t), from) in open_blocks {
            w.blocked
                .entry((f, t))
                .or_default()
                .push(Span { from, to: u64::MAX });
        }
        w.heals.sort_unstable();
        w
    }

    /// Role of `node`, if the log started it.
    pub fn role(&self, node: &str) -> Option<&Role> {
        self.nodes.get(node).map(|n| &n.role)
    }

    /// Host and up-since time of `node` if it is up at `t`.
    pub fn up_at(&self, node: &str, t: u64) -> Option<(usize, u64)> {
        let life = self.nodes.get(node)?;
        life.up
            .iter()
            .find(|(s, _)| s.contains(t))
            .map(|(s, h)| (*h, s.from))
    }

    /// Host of `node` at `t` (up or not: the host of its last process).
    pub fn host_at(&self, node: &str, t: u64) -> Option<usize> {
        let life = self.nodes.get(node)?;
        life.up.iter().rev().find(|(s, _)| s.from <= t).map(|(_, h)| *h)
    }

    /// Since when packets flow both ways between hosts `a` and `b`
    /// without a break up to `t`; `None` if a link is blocked at `t`.
    pub fn linked_since(&self, a: usize, b: usize, t: u64) -> Option<u64> {
        if a == b {
            return Some(0);
        }
        let mut since = 0;
        for key in [(a, b), (b, a)] {
            for s in self.blocked.get(&key).map(|v| v.as_slice()).unwrap_or(&[]) {
                if s.contains(t) {
                    return None;
                }
                if s.to <= t {
                    since = since.max(s.to);
                }
            }
        }
        Some(since)
    }

    /// Whether a link was blocked or congested at some time in `(from, to)`.
    pub fn disturbed_between(&self, from: u64, to: u64) -> bool {
        self.blocked
            .values()
            .flatten()
            .chain(self.slowed.values().flatten())
            .any(|s| s.from < to && s.to > from)
    }

    /// Whether host `a`'s or `b`'s link was congested at some time in
    /// `(from, to)`: a call between them may time out on the network.
    pub fn congested(&self, a: usize, b: usize, from: u64, to: u64) -> bool {
        [a, b]
            .iter()
            .filter_map(|h| self.slowed.get(h))
            .flatten()
            .any(|s| s.from < to && s.to > from)
    }

    /// Services of `group` as of the log.
    pub fn services(&self, group: &str) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|(_, l)| matches!(&l.role, Role::Service { group: g } if g == group))
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Registries as of the log.
    pub fn registries(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|(_, l)| l.role == Role::Registry)
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

/// Events by the time each counts from. A fault took effect between
/// when the bed began it and when it logged it done (`t_ms`): it counts
/// from `begun_ms`, or, in a log without it, from `skew` before `t_ms`
/// but never before the bed's previous action was done (the bed acts one
/// thing at a time, so the order of its actions is kept). Anything else
/// counts from `t_ms`.
pub fn effective_times(events: &[Event], skew: u64) -> Vec<(u64, &Event)> {
    let mut ev: Vec<&Event> = events.iter().collect();
    ev.sort_by_key(|e| e.t_ms);
    let mut prev_done = 0;
    let mut out: Vec<(u64, &Event)> = Vec::with_capacity(ev.len());
    for e in ev {
        let observed = matches!(e.action, Action::DeclaredDown { .. });
        let t = if !e.action.is_fault() {
            e.t_ms
        } else {
            match e.begun_ms {
                Some(b) => b.min(e.t_ms),
                None => e.t_ms.saturating_sub(skew).max(prev_done),
            }
        };
        if !observed {
            prev_done = e.t_ms;
        }
        out.push((t, e));
    }
    // Stable: events counted from the same time keep the bed's order.
    out.sort_by_key(|(t, _)| *t);
    out
}

fn close_up(w: &mut World, state: &BTreeMap<String, (usize, bool, bool, u64)>, node: &str, t: u64) {
    if let Some(&(host, running, paused, since)) = state.get(node) {
        if running && !paused && since < t {
            if let Some(life) = w.nodes.get_mut(node) {
                life.up.push((Span { from: since, to: t }, host));
            }
        }
    }
}
