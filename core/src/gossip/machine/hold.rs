//! The failure hold: a member that went down without a leave record keeps
//! its place for `failure_hold` before `Failed` is emitted, because a
//! leave's record may trail foca's "down" by a hop.

use std::collections::BTreeMap;

/// Service ids whose failure is held, with the tick it is due.
pub(super) struct FailureHold {
    failing: BTreeMap<String, u64>,
    /// `failure_hold` in ticks.
    ticks: u64,
}

impl FailureHold {
    pub(super) fn new(ticks: u64) -> FailureHold {
        FailureHold {
            failing: BTreeMap::new(),
            ticks,
        }
    }

    /// Ids whose hold ends at or before `tick` (to recompute).
    pub(super) fn due(&self, tick: u64) -> impl Iterator<Item = String> + '_ {
        self.failing
            .iter()
            .filter(move |(_, due)| **due <= tick)
            .map(|(id, _)| id.clone())
    }

    /// Starts (or keeps) holding `id`; true while the hold lasts.
    pub(super) fn holding(&mut self, id: &str, tick: u64) -> bool {
        let due = *self.failing.entry(id.to_string()).or_insert(tick + self.ticks);
        tick < due
    }

    /// `id` is live again or its end was reported: no hold.
    pub(super) fn release(&mut self, id: &str) {
        self.failing.remove(id);
    }
}
