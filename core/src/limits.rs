//! The registry's limits by name, counters of the refusals they cause, and
//! the catalog's count limits with their defaults.
//!
//! Every limit a server enforces has a [`Limit`] name (the `limit` label of
//! `registry_limit_rejections_total`), so a refusal is counted the same way
//! whichever front door or membership path met it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Largest weight a service may have (a weight-1 member owns 1 share of
/// the keys); with the ring's points per unit of weight it bounds what one
/// member costs.
pub const MAX_WEIGHT: u32 = 1000;

/// Most members one ring holds: a ring packs each point's member index in
/// 16 bits. Count limits never exceed it.
pub const MAX_MEMBERS: usize = 1 << 16;

/// Default most groups a catalog holds: far above any real deployment
/// (each group costs a ring and a map entry), low enough that a flood of
/// one-member groups cannot grow a registry's memory without bound.
pub const DEFAULT_MAX_GROUPS: usize = 10_000;

/// Default most members one group holds: 10,000 weight-1 members need a
/// 77 MB ring, well under the ring's own cap of [`MAX_TOTAL_WEIGHT`](crate::ring::MAX_TOTAL_WEIGHT).
pub const DEFAULT_MAX_MEMBERS_PER_GROUP: usize = 10_000;

/// A named limit; [`Limit::label`] is its metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// A Match/MatchN key longer than the server's `--max-key-bytes`.
    KeyBytes,
    /// An id, group or addr longer than [`crate::service::MAX_NAME_LEN`].
    NameBytes,
    /// Tags larger than [`crate::service::MAX_TAGS_BYTES`].
    TagsBytes,
    /// A weight of 0 or above [`crate::service::MAX_WEIGHT`].
    Weight,
    /// A new group while the catalog holds [`CatalogLimits::max_groups`].
    Groups,
    /// A new member of a group holding [`CatalogLimits::max_members_per_group`].
    MembersPerGroup,
    /// A member whose weight would take its group's ring over
    /// [`MAX_TOTAL_WEIGHT`](crate::ring::MAX_TOTAL_WEIGHT).
    RingWeight,
    /// A Watch stream while the server has its maximum open.
    WatchStreams,
    /// A connection to a server listener holding its maximum open.
    Connections,
    /// A gRPC request message over the server's decoding limit (4 MiB).
    MessageBytes,
}

impl Limit {
    /// Every limit, in label order of the metric.
    pub const ALL: [Limit; 10] = [
        Limit::KeyBytes,
        Limit::NameBytes,
        Limit::TagsBytes,
        Limit::Weight,
        Limit::Groups,
        Limit::MembersPerGroup,
        Limit::RingWeight,
        Limit::WatchStreams,
        Limit::Connections,
        Limit::MessageBytes,
    ];

    /// The `limit` label of `registry_limit_rejections_total`.
    pub fn label(self) -> &'static str {
        match self {
            Limit::KeyBytes => "key_bytes",
            Limit::NameBytes => "name_bytes",
            Limit::TagsBytes => "tags_bytes",
            Limit::Weight => "weight",
            Limit::Groups => "groups",
            Limit::MembersPerGroup => "members_per_group",
            Limit::RingWeight => "ring_weight",
            Limit::WatchStreams => "watch_streams",
            Limit::Connections => "connections",
            Limit::MessageBytes => "message_bytes",
        }
    }
}

/// Refusals per [`Limit`] since start; lock-free.
#[derive(Debug, Default)]
pub struct LimitCounters {
    counts: [AtomicU64; Limit::ALL.len()],
}

impl LimitCounters {
    /// Counts one refusal by `limit`.
    pub fn record(&self, limit: Limit) {
        self.counts[limit as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Refusals by `limit` so far.
    pub fn get(&self, limit: Limit) -> u64 {
        self.counts[limit as usize].load(Ordering::Relaxed)
    }
}

/// Count limits of a [`crate::Catalog`], applied to membership events.
///
/// An event that would exceed one is refused: it changes nothing, is
/// counted, and is logged at most once a minute per limit. Members already
/// in the catalog keep working; a refused member is admitted when a slot
/// frees (see [`crate::Catalog`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogLimits {
    /// Most groups with at least one member ([`DEFAULT_MAX_GROUPS`]).
    pub max_groups: usize,
    /// Most members in one group ([`DEFAULT_MAX_MEMBERS_PER_GROUP`]; never
    /// more than the ring's [`MAX_MEMBERS`]). The registries' own group,
    /// [`crate::REGISTRY_GROUP`], is exempt: clients find registries there.
    pub max_members_per_group: usize,
}

impl Default for CatalogLimits {
    fn default() -> Self {
        CatalogLimits {
            max_groups: DEFAULT_MAX_GROUPS,
            max_members_per_group: DEFAULT_MAX_MEMBERS_PER_GROUP,
        }
    }
}

impl CatalogLimits {
    /// The members-per-group limit as enforced: never above what one ring
    /// can index ([`MAX_MEMBERS`]).
    pub fn members_per_group(&self) -> usize {
        self.max_members_per_group.min(MAX_MEMBERS)
    }
}

/// How often a limit's refusals are logged at most.
pub const LOG_EVERY: Duration = Duration::from_secs(60);

/// Rate-limits the warning a refusal logs: the first at once, then at most
/// one per [`LOG_EVERY`] per limit, saying how many were not logged.
#[derive(Debug, Default)]
pub struct RefusalLog {
    /// Per limit: when it was last logged, and refusals since then.
    last: [Option<(Instant, u64)>; Limit::ALL.len()],
}

impl RefusalLog {
    /// Logs a refusal by `limit` (unless one was logged less than
    /// [`LOG_EVERY`] ago); `what` says what was refused and why.
    pub fn refused(&mut self, limit: Limit, what: &str) {
        let now = Instant::now();
        let slot = &mut self.last[limit as usize];
        match slot {
            Some((at, unlogged)) if now.duration_since(*at) < LOG_EVERY => *unlogged += 1,
            _ => {
                let unlogged = slot.map_or(0, |(_, n)| n);
                tracing::warn!(
                    limit = limit.label(),
                    not_logged_since_last = unlogged,
                    "refused: {what}"
                );
                *slot = Some((now, 0));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct_and_counters_count() {
        let mut labels: Vec<_> = Limit::ALL.iter().map(|l| l.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Limit::ALL.len());
        for (i, l) in Limit::ALL.iter().enumerate() {
            assert_eq!(*l as usize, i);
        }
        let c = LimitCounters::default();
        c.record(Limit::Groups);
        c.record(Limit::Groups);
        assert_eq!(c.get(Limit::Groups), 2);
        assert_eq!(c.get(Limit::KeyBytes), 0);
    }

    #[test]
    fn refusals_are_logged_once_per_interval() {
        let mut log = RefusalLog::default();
        log.refused(Limit::Groups, "x");
        log.refused(Limit::Groups, "y");
        log.refused(Limit::Groups, "z");
        assert_eq!(log.last[Limit::Groups as usize].map(|(_, n)| n), Some(2));
        assert!(log.last[Limit::Weight as usize].is_none());
    }

    #[test]
    fn members_per_group_never_exceeds_the_ring() {
        let l = CatalogLimits {
            max_groups: 1,
            max_members_per_group: usize::MAX,
        };
        assert_eq!(l.members_per_group(), MAX_MEMBERS);
        assert_eq!(CatalogLimits::default().members_per_group(), 10_000);
    }
}
