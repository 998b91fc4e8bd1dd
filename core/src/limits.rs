//! Every limit of the registry, declared once: its name, default, the
//! server flag that sets it (if any), its metric label and what it is for;
//! the counters of the refusals they cause; the catalog's count limits.
//!
//! Every limit a server enforces has a [`Limit`] name (the `limit` label of
//! `registry_limit_rejections_total`), so a refusal is counted the same way
//! whichever front door or membership path met it. [`Limit::spec`] is the
//! one table: the server takes its flags' defaults from it, and tests check
//! the server's flags and README against it. Fixed bounds that are not
//! counted (such as [`MAX_MEMBERS`] and [`MAX_WAITING`]) live here too.
//! The ring's own caps stay in [`crate::ring`] (`MAX_POINTS`,
//! `VNODES_PER_WEIGHT`); [`MAX_TOTAL_WEIGHT`] restates their quotient for
//! the table and `core/tests/limits_table.rs` checks the two agree.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Longest id, group or addr accepted, in bytes: names are labels, not
/// data, and a member's metadata must fit one gossip packet.
pub const MAX_NAME_LEN: usize = 128;

/// Largest total size of a service's tags (keys plus values), in bytes;
/// small enough that a member's metadata always fits in one gossip packet.
pub const MAX_TAGS_BYTES: usize = 512;

/// Largest weight a service may have (a weight-1 member owns 1 share of
/// the keys); with the ring's points per unit of weight it bounds what one
/// member costs.
pub const MAX_WEIGHT: u32 = 1000;

/// Most members one ring holds: a ring packs each point's member index in
/// 16 bits. Count limits never exceed it.
pub const MAX_MEMBERS: usize = 1 << 16;

/// Largest total weight of one group's members, as the ring enforces it:
/// `ring::MAX_POINTS / ring::VNODES_PER_WEIGHT` (2^26 / 1,792). The ring
/// computes its own `MAX_TOTAL_WEIGHT` from its internals; this is that
/// value for the table, and `core/tests/limits_table.rs` keeps the two equal.
pub const MAX_TOTAL_WEIGHT: u64 = 37_449;

/// Default largest key accepted by Match (64 KiB): far above any real key,
/// small enough that a request cannot make the server hash megabytes.
pub const DEFAULT_MAX_KEY_BYTES: usize = 64 * 1024;

/// Default most groups a catalog holds: far above any real deployment
/// (each group costs a ring and a map entry), low enough that a flood of
/// one-member groups cannot grow a registry's memory without bound.
pub const DEFAULT_MAX_GROUPS: usize = 10_000;

/// Default most members one group holds: 10,000 weight-1 members need a
/// 77 MB ring, well under the ring's own cap of [`MAX_TOTAL_WEIGHT`].
pub const DEFAULT_MAX_MEMBERS_PER_GROUP: usize = 10_000;

/// Default most Watch streams open at once: each costs a task and a
/// channel (a few KiB), so 10,000 stay under ~50 MB; beyond that clients
/// should share views.
pub const DEFAULT_MAX_WATCH_STREAMS: usize = 10_000;

// The default members per group fit a ring, by count and by weight.
const _: () = assert!(DEFAULT_MAX_MEMBERS_PER_GROUP <= MAX_MEMBERS);
const _: () = assert!(DEFAULT_MAX_MEMBERS_PER_GROUP as u64 <= MAX_TOTAL_WEIGHT);

/// Default most connections open at once per listener: far above the
/// registries' clients (one connection per client process), and, for both
/// listeners together, under the usual `ulimit -n` hard limits.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Largest gRPC request message a server decodes (tonic's default limit,
/// 4 MiB): a request is a key or a group name, far smaller.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Default ring-memory budget of a registry, in MiB: the bytes of every
/// group's ring together. A ring holds at most ~31 KB per member whatever
/// the weights, so 1 GiB holds over 30,000 members, or 10,000 one-member
/// groups of any weight (300 MB); a flood beyond it is refused.
pub const DEFAULT_MAX_RING_MEMORY_MIB: usize = 1024;

/// Most refused members a catalog remembers, to admit when room frees;
/// one refused beyond this is admitted only when it announces itself again.
pub const MAX_WAITING: usize = 16_384;

/// A named limit; [`Limit::spec`] says everything about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// A Match/MatchN key longer than the server's `--max-key-bytes`.
    KeyBytes,
    /// An id, group or addr longer than [`MAX_NAME_LEN`].
    NameBytes,
    /// Tags larger than [`MAX_TAGS_BYTES`].
    TagsBytes,
    /// A weight of 0 or above [`MAX_WEIGHT`].
    Weight,
    /// A new group while the catalog holds [`CatalogLimits::max_groups`].
    Groups,
    /// A new member of a group holding [`CatalogLimits::max_members_per_group`].
    MembersPerGroup,
    /// A member whose weight would take its group's ring over
    /// [`MAX_TOTAL_WEIGHT`].
    RingWeight,
    /// A Watch stream while the server has its maximum open.
    WatchStreams,
    /// A connection to a server listener holding its maximum open.
    Connections,
    /// A gRPC request message over the server's decoding limit (4 MiB).
    MessageBytes,
    /// A member whose group's ring would take the registry's rings over
    /// [`CatalogLimits::max_ring_memory`] bytes.
    RingMemory,
}

/// The server flag that sets a limit, and its environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    /// Long flag name, without the leading `--` (`max-key-bytes`).
    pub long: &'static str,
    /// Environment variable that sets it too (`REGISTRY_MAX_KEY_BYTES`).
    pub env: &'static str,
}

/// One row of the limits table: see [`Limit::spec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSpec {
    /// The `limit` label of `registry_limit_rejections_total`.
    pub label: &'static str,
    /// The value used unless a flag sets another (the fixed value when
    /// there is no flag).
    pub default: u64,
    /// The server flag that sets it; `None`: fixed.
    pub flag: Option<Flag>,
    /// One line saying what it bounds (the flag's help text).
    pub doc: &'static str,
}

/// The [`Flag`] `--long`, also set by the environment variable `env`.
const fn set_by(long: &'static str, env: &'static str) -> Option<Flag> {
    Some(Flag { long, env })
}

impl Limit {
    /// Every limit, in label order of the metric.
    pub const ALL: [Limit; 11] = [
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
        Limit::RingMemory,
    ];

    /// The limits table: name, default, flag and doc of each limit (each
    /// column an exhaustive match below, so a new limit needs all four).
    pub const fn spec(self) -> LimitSpec {
        LimitSpec {
            label: self.label(),
            default: self.default_value(),
            flag: self.flag(),
            doc: self.describe(),
        }
    }

    /// The `limit` label of `registry_limit_rejections_total`.
    pub const fn label(self) -> &'static str {
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
            Limit::RingMemory => "ring_memory",
        }
    }

    /// The value used unless a server flag sets another (the fixed value
    /// when there is no flag).
    pub const fn default_value(self) -> u64 {
        match self {
            Limit::KeyBytes => DEFAULT_MAX_KEY_BYTES as u64,
            Limit::NameBytes => MAX_NAME_LEN as u64,
            Limit::TagsBytes => MAX_TAGS_BYTES as u64,
            Limit::Weight => MAX_WEIGHT as u64,
            Limit::Groups => DEFAULT_MAX_GROUPS as u64,
            Limit::MembersPerGroup => DEFAULT_MAX_MEMBERS_PER_GROUP as u64,
            Limit::RingWeight => MAX_TOTAL_WEIGHT,
            Limit::WatchStreams => DEFAULT_MAX_WATCH_STREAMS as u64,
            Limit::Connections => DEFAULT_MAX_CONNECTIONS as u64,
            Limit::MessageBytes => MAX_MESSAGE_BYTES as u64,
            Limit::RingMemory => DEFAULT_MAX_RING_MEMORY_MIB as u64,
        }
    }

    /// The server flag that sets this limit; `None`: fixed.
    pub const fn flag(self) -> Option<Flag> {
        match self {
            Limit::KeyBytes => set_by("max-key-bytes", "REGISTRY_MAX_KEY_BYTES"),
            Limit::NameBytes => None,
            Limit::TagsBytes => None,
            Limit::Weight => None,
            Limit::Groups => set_by("max-groups", "REGISTRY_MAX_GROUPS"),
            Limit::MembersPerGroup => set_by("max-members-per-group", "REGISTRY_MAX_MEMBERS_PER_GROUP"),
            Limit::RingWeight => None,
            Limit::WatchStreams => set_by("max-watch-streams", "REGISTRY_MAX_WATCH_STREAMS"),
            Limit::Connections => set_by("max-connections", "REGISTRY_MAX_CONNECTIONS"),
            Limit::MessageBytes => None,
            Limit::RingMemory => set_by("max-ring-memory", "REGISTRY_MAX_RING_MEMORY"),
        }
    }

    /// One line saying what this limit bounds (the flag's help text).
    pub const fn describe(self) -> &'static str {
        match self {
            Limit::KeyBytes => "Largest key accepted by Match and MatchN, in bytes.",
            Limit::NameBytes => "Longest id, group or addr, in bytes.",
            Limit::TagsBytes => "Largest total size of a service's tags (keys plus values), in bytes.",
            Limit::Weight => "Largest weight of a service (the smallest is 1).",
            Limit::Groups => {
                "Most groups the registry holds; members of further groups are refused until one empties."
            }
            Limit::MembersPerGroup => {
                "Most members in one group (at most 65536); further members are refused until one leaves."
            }
            Limit::RingWeight => "Largest total weight of one group's members (what one ring holds).",
            Limit::WatchStreams => "Most Watch streams open at once; more get RESOURCE_EXHAUSTED.",
            Limit::Connections => {
                "Most connections open at once on each listener (gRPC, HTTP); one more is closed at once."
            }
            Limit::MessageBytes => "Largest gRPC request message, in bytes; a larger one gets OUT_OF_RANGE.",
            Limit::RingMemory => "Most memory all groups' rings take together, in MiB; a member that would need more is refused until room frees.",
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
    /// Most bytes all groups' rings take together
    /// ([`DEFAULT_MAX_RING_MEMORY_MIB`] MiB). The registries' own group is
    /// never refused (its ring counts towards the total).
    pub max_ring_memory: usize,
}

impl Default for CatalogLimits {
    fn default() -> Self {
        CatalogLimits {
            max_groups: DEFAULT_MAX_GROUPS,
            max_members_per_group: DEFAULT_MAX_MEMBERS_PER_GROUP,
            max_ring_memory: DEFAULT_MAX_RING_MEMORY_MIB << 20,
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
    fn the_table_is_consistent() {
        for l in Limit::ALL {
            let spec = l.spec();
            assert!(spec.default > 0, "{l:?}");
            assert!(spec.doc.ends_with('.') && !spec.doc.contains('\n'), "{l:?}");
            if let Some(f) = spec.flag {
                assert!(f.long.starts_with("max-") && !f.long.starts_with("--"), "{l:?}");
                let env = format!("REGISTRY_{}", f.long.replace('-', "_").to_uppercase());
                assert_eq!(f.env, env, "{l:?}");
            }
        }
        assert_eq!(Limit::KeyBytes.default_value(), 65_536);
        assert_eq!(Limit::NameBytes.flag(), None);
        assert_eq!(Limit::Weight.default_value(), u64::from(MAX_WEIGHT));
        assert!(Limit::WatchStreams.describe().contains("Watch"));
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
            max_ring_memory: 1,
        };
        assert_eq!(l.members_per_group(), MAX_MEMBERS);
        assert_eq!(CatalogLimits::default().members_per_group(), 10_000);
    }
}
