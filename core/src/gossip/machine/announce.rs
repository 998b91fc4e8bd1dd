//! The announce schedule: while alone, announce to every seed each
//! `join_retry_interval`; while connected, to the next seed in turn each
//! `reannounce_interval` (so a partitioned island rejoins). The drivers
//! only hand the seeds over ([`Machine::set_seeds`]) and fire the timer.

use super::{Machine, MachineTimer};
use std::net::SocketAddr;
use std::time::Duration;

/// Seeds and the announce timer's state.
#[derive(Default)]
pub(super) struct Announcer {
    seeds: Vec<SocketAddr>,
    /// Round-robin position among the seeds.
    rr: usize,
    /// Only the timer of this generation counts (a reschedule replaces it).
    gen: u64,
    /// Repair tick of the last announce; `None` until the first, which is
    /// due at once.
    last_tick: Option<u64>,
}

impl Machine {
    /// Sets the seeds (registries) to announce to. The UDP node re-resolves
    /// them before each announce; the first announce is due at once.
    pub fn set_seeds(&mut self, seeds: Vec<SocketAddr>) {
        self.announcer.seeds = seeds;
    }

    /// The seeds last set.
    pub fn seeds(&self) -> &[SocketAddr] {
        &self.announcer.seeds
    }

    /// Replaces the announce timer with one due after `after`.
    pub(super) fn schedule_announce(&mut self, after: Duration) {
        let a = &mut self.announcer;
        a.gen += 1;
        self.out.timers.push((after, MachineTimer::Announce(a.gen)));
    }

    /// The announce period now: `join_retry_interval` while alone,
    /// `reannounce_interval` while connected.
    fn announce_every(&self) -> Duration {
        if self.is_alone() {
            self.config.join_retry_interval
        } else {
            self.config.reannounce_interval
        }
    }

    /// Time since the last announce (since start before the first), in
    /// whole repair ticks.
    fn since_announce(&self) -> Duration {
        let ticks = self
            .clock
            .tick
            .saturating_sub(self.announcer.last_tick.unwrap_or(0));
        self.clock
            .every
            .saturating_mul(u32::try_from(ticks).unwrap_or(u32::MAX))
    }

    /// The announce timer of generation `gen` is due.
    pub(super) fn on_announce_timer(&mut self, gen: u64) {
        if gen != self.announcer.gen || self.left {
            return;
        }
        if *self.claim() == super::Claim::Pending
            && self.announcer.seeds.is_empty()
            && self.config.seeds.is_empty()
        {
            // No seeds (the first registry): nobody to ask about the id.
            self.take_claim();
        }
        // The repair tick may trail this timer by up to one tick: within
        // one tick of the period counts as due.
        let left = self.announce_every().saturating_sub(self.since_announce());
        if self.announcer.last_tick.is_some() && left > self.clock.every {
            // Connected since the timer was set: wait out the longer period.
            self.schedule_announce(left);
            return;
        }
        let seeds = self.announcer.seeds.clone();
        if self.is_alone() || seeds.len() <= 1 {
            self.announce(&seeds);
        } else {
            self.announcer.rr = self.announcer.rr.wrapping_add(1);
            let pick = self.announcer.rr % seeds.len();
            self.announce(&seeds[pick..][..1]);
        }
        self.announcer.last_tick = Some(self.clock.tick);
        self.schedule_announce(self.announce_every());
    }

    /// This node rejoined under a new identity: it announces at once, as
    /// at start, so the cluster's answer tells it who is live.
    pub(super) fn announce_again(&mut self) {
        self.announcer.last_tick = None;
        self.schedule_announce(Duration::ZERO);
    }

    /// foca knows no member any more: announce again `join_retry_interval`
    /// after the last announce (at once if that is past).
    pub(super) fn on_alone(&mut self) {
        if self.left {
            return;
        }
        let after = self
            .config
            .join_retry_interval
            .saturating_sub(self.since_announce());
        self.schedule_announce(after);
    }
}
