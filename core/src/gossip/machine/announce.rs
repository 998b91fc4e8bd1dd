//! The announce schedule: while alone, announce to every seed each
//! `join_retry_interval`; while connected, to the next seed in turn each
//! `reannounce_interval` (so a partitioned island rejoins). The drivers
//! only hand the seeds over ([`Machine::set_seeds`]) and fire the timer.

use super::{Machine, MachineTimer};
use crate::gossip::config::GossipConfig;
use std::net::SocketAddr;
use std::time::Duration;

/// Seeds and the announce timer's state.
pub(super) struct Announcer {
    seeds: Vec<SocketAddr>,
    /// Round-robin position among the seeds.
    rr: usize,
    join_every: Duration,
    reannounce_every: Duration,
    /// Only the timer of this generation counts (a reschedule replaces it).
    gen: u64,
    /// Delay of the current timer.
    scheduled: Duration,
    /// Time waited since the last announce, timers before the current one.
    waited: Duration,
    /// Repair tick of the last announce (for rescheduling on going
    /// alone); `None` until the first, which is due at once.
    last_tick: Option<u64>,
}

impl Announcer {
    pub(super) fn new(config: &GossipConfig) -> Announcer {
        Announcer {
            seeds: Vec::new(),
            rr: 0,
            join_every: config.join_retry_interval,
            reannounce_every: config.reannounce_interval,
            gen: 0,
            scheduled: Duration::ZERO,
            waited: Duration::ZERO,
            last_tick: None,
        }
    }
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
        a.scheduled = after;
        self.out.timers.push((after, MachineTimer::Announce(a.gen)));
    }

    fn announce_every(&self) -> Duration {
        if self.is_alone() {
            self.announcer.join_every
        } else {
            self.announcer.reannounce_every
        }
    }

    /// The announce timer of generation `gen` is due.
    pub(super) fn on_announce_timer(&mut self, gen: u64) {
        if gen != self.announcer.gen || self.left {
            return;
        }
        self.announcer.waited += self.announcer.scheduled;
        let every = self.announce_every();
        if self.announcer.last_tick.is_some() && self.announcer.waited < every {
            // Connected since the timer was set: wait out the longer period.
            self.schedule_announce(every - self.announcer.waited);
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
        self.announcer.waited = Duration::ZERO;
        self.announcer.last_tick = Some(self.clock.tick);
        self.schedule_announce(self.announce_every());
    }

    /// foca knows no member any more: announce again `join_retry_interval`
    /// after the last announce (at once if that is past).
    pub(super) fn on_alone(&mut self) {
        if self.left {
            return;
        }
        let ticks = self
            .clock
            .tick
            .saturating_sub(self.announcer.last_tick.unwrap_or(0));
        let since = self
            .clock
            .every
            .saturating_mul(u32::try_from(ticks).unwrap_or(u32::MAX));
        // The timer adds its own delay to `waited` when it fires.
        self.announcer.waited = since;
        self.schedule_announce(self.announcer.join_every.saturating_sub(since));
    }
}
