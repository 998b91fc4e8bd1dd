//! Consistent-hash ring: which member owns a key.
//!
//! An immutable ring built from members `(id, weight)`. [`Ring::locate`]
//! answers the owner of a key, [`Ring::locate_n`] `n` distinct members in
//! preference order (replicas, failover). Pure and deterministic: the
//! answer depends only on the set of `(id, weight)`, never on insertion
//! order, platform or process.
//!
//! # The algorithm, `xxh3-vnode-v2` (what every front door must reproduce)
//!
//! - A key's position is `key_position(key)`: the top 32 bits of
//!   `XXH3_64bits_withSeed(key's UTF-8 bytes, HASH_SEED)`.
//! - Point `i` of member `id` is at `point_position(id, i)`:
//!   `top32(mix64(XXH3_64bits_withSeed(id, HASH_SEED) + i * VNODE_STEP))`,
//!   `mix64` being the splitmix64 finalizer.
//! - A member of weight `w` has points `0 .. ceil(w * V / 2^s)`, with
//!   `V = VNODES_PER_WEIGHT` and `s` the ring's scale level: the smallest
//!   `s >= 0` at which the ring holds at most `UNSCALED_MEAN_WEIGHT * V`
//!   points per member (`sum over members of ceil(w * V / 2^s) <= n * 4 *
//!   V`). A ring whose mean weight is at most 4 is not scaled (`s = 0`:
//!   `w * V` points each, as in `xxh3-vnode-v1`); a heavier one has its
//!   points halved until it fits, so that its memory depends on its member
//!   count, never on the weights ([`RingPlan`] computes `s`).
//! - Points are ordered by (position, id bytes). A key belongs to the first
//!   point whose position is `>=` the key's, wrapping to the first point.
//!   Two members on the same position therefore resolve to the smaller id,
//!   and a member that leaves takes all its points with it.
//! - `locate_n(key, n)` walks on clockwise from that point and returns the
//!   members in the order they first appear, stopping at `n` (all members
//!   when `n` is larger than the ring).
//!
//! `tests/vectors/ring.json` holds answers that pin all of this down.
//!
//! # The checksum
//!
//! [`Ring::checksum`] is `XXH3_64bits_withSeed(bytes, HASH_SEED)` over:
//! `u32` length and bytes of `RING_ALGORITHM`, `u32` member count, then per
//! member in id order `u32` id length, id bytes, `u32` weight and one state
//! byte (`0`, serving; the place for a draining state). Integers are
//! little-endian. Equal checksums mean equal rings; see [`checksum`] for
//! the full definition.
//!
//! # Movement
//!
//! A key's owner is the point that minimises (clockwise distance, id).
//! While the scale level stays the same, movement is exactly minimal:
//! adding a member only adds points, so a key can only move to the new
//! member; removing one only removes points, so only its keys move; a
//! weight change adds or removes the tail of the member's point sequence,
//! so keys move only to or from that member. The level depends only on the
//! members' mean weight, so in a group of equal weights (the usual case)
//! it never changes and every join and leave is minimal.
//!
//! When a change takes the mean weight across a power of two above 4
//! (e.g. a weight-1,000 member joining three of weight 1), the level
//! changes too: every member keeps only the first half of its points (level
//! up) or gains the second half back (level down), so keys also move
//! between members the change is not about. `tests/ring_scale.rs` measures
//! it: four members of weight 4 joined by one of weight 8 (level 0 to 1)
//! move 0.197 of the keys between the four, on top of the third that goes
//! to the newcomer; its leave moves them back; one member going from 4 to
//! 12 moves 0.103 between the other three. A group of equal weights never
//! crosses. That is the price of memory bounded by the member count: any
//! point count that depends on the other members moves their keys at some
//! change, and powers of two make those changes rare and each a cut (or
//! restoration) of every member's sequence at half.
//!
//! Scaling rounds each member's count up, so at level `s` a light member
//! can own up to one point more than its weight's share (a weight-1 member
//! at level 8 beside weight-1,000 ones: 7 points where 7.0 are due; at
//! level 9, 4 where 3.5 are due).

//! # Layout
//!
//! Members are sorted by id and numbered. Each point is one `u32`:
//! `(position << B) | member index`, where the top `B` bits of the position
//! are implied by the bucket the point sits in. Points are sorted (by
//! position, then member index = id order), and an index of `2^B + 1`
//! offsets gives each bucket's points. `B` is chosen from the point count
//! (8 to 16 points per bucket) and the member count; it is an accelerator
//! only, and answers never depend on it (a property test builds every
//! ring with many `B`). A lookup hashes the key, reads two index entries
//! (adjacent, and usually cached) and binary-searches one small bucket
//! (one or two cache lines): about 4.3 bytes per point. The build is O(points): a counting sort on the
//! bucket bits, then a sort of each small bucket.
//!
//! # Why this algorithm (figures from `cargo bench -p registry-core --bench ring -- sweep`)
//!
//! | option | balance (peak/mean) | lookup | memory | movement | verdict |
//! |---|---|---|---|---|---|
//! | **ring with fixed vnodes + bucket index** | 1 + z/sqrt(V) | hash + index read + one bucket read | 4.3 B × V × total weight, at most 4.3 B × 4V per member (scaled) | exactly minimal within a scale level | chosen |
//! | Maglev table | ≈ 1.00–1.01 | 1 table read | table of ≥ 100·n entries | a removal also moves some other members' keys | breaks "removing moves only the removed member's keys" |
//! | multi-probe (21 probes) | ≈ 1.05 | 21 hashes + 21 searches | n points | minimal | ~20× the lookup work |
//! | rendezvous / HRW | ≈ 1 (exact in expectation) | n hashes: ~1–2 µs at 1,000 members | n | minimal | O(n) lookups |
//! | the crc32 ring we replace (10,000 vnodes) | 1.08 / 1.36 / 1.75 at 10 / 100 / 1,000 | 232–791 ns | 277 MB at 1,000 | collisions overwrite | — |
//!
//! (The alternatives were not built: their figures are from the literature
//! and arithmetic; those of the replaced system are from issue 2.)
//!
//! Choosing `V`, the points per unit of weight. Balance is exact (from the
//! ring's shares, no sampling noise); random ids are 32 hex digits; the
//! 1,000-member column is over 30 random id sets, memory at 1,000 members:
//!
//! | V | 10 members: median | p90 | sets > 1.05 | 1,000: median | p90 | max | sets > 1.10 | memory |
//! |---|---|---|---|---|---|---|---|---|
//! | 512 | 1.067 | 1.100 | 77% | 1.145 | 1.181 | 1.201 | 100% | 2.2 MB |
//! | 1024 | 1.047 | 1.072 | 44% | 1.106 | 1.134 | 1.145 | 77% | 4.4 MB |
//! | 1280 | 1.041 | 1.063 | 29% | 1.089 | 1.105 | 1.125 | 23% | 5.7 MB |
//! | 1536 | 1.038 | 1.056 | 19% | 1.085 | 1.094 | 1.128 | 7% | 6.7 MB |
//! | 1600 | 1.037 | 1.055 | 17% | 1.083 | 1.095 | 1.111 | 3% | 7.0 MB |
//! | **1792** | 1.034 | 1.053 | 14% | 1.078 | 1.089 | 1.096 | 0% | 7.7 MB |
//! | 2048 | 1.033 | 1.051 | 11% | 1.073 | 1.084 | 1.095 | 0% | 8.8 MB |
//!
//! 1,792 is the largest count that keeps 1,000 members under 8 MB, and the
//! first where no sampled 1,000-member set exceeds 1.10. With 10 members the
//! median set is at 1.034, but about one id set in seven exceeds 1.05: no
//! affordable V reaches 1.05 for every 10-member set (the spread of the
//! busiest of n members is ~z_n/sqrt(V), z_10 ≈ 1.5); that target is met
//! for the canonical ids, not for all ids. Lookup time hardly depends on V
//! in this range; see BENCHMARKS.md for timings.

mod build;
pub mod checksum;
mod hash;
mod moves;
mod plan;
mod state;

pub use build::Builder;
pub use checksum::{checksum_hex, parse_checksum_hex};
pub use hash::{key_position, point_position, HASH_SEED, VNODE_STEP};
pub use moves::{MovedRange, Moves};
pub use plan::RingPlan;
pub use state::MemberState;

use crate::error::Result;

/// Name of the ring algorithm, sent to clients in every Watch snapshot.
pub const RING_ALGORITHM: &str = "xxh3-vnode-v2";

/// Virtual nodes (points on the ring) per unit of member weight, in a ring
/// that is not scaled.
pub const VNODES_PER_WEIGHT: u32 = 1792;

/// Largest mean weight of a ring that is not scaled: a ring holds at most
/// this many times [`VNODES_PER_WEIGHT`] points per member (about 31 KB
/// per member), whatever the weights.
pub const UNSCALED_MEAN_WEIGHT: u32 = 4;

pub use crate::limits::MAX_MEMBERS;

/// Most points one ring would hold unscaled (about 285 MB). With
/// [`VNODES_PER_WEIGHT`] this caps the members' total weight at 37,449
/// (e.g. 37,449 members of weight 1, or 37 of weight 1,000); scaling keeps
/// the actual count far lower for heavy members.
pub const MAX_POINTS: usize = 1 << 26;

/// Largest total weight of one ring's members: [`MAX_POINTS`] /
/// [`VNODES_PER_WEIGHT`] = 37,449.
pub const MAX_TOTAL_WEIGHT: u64 = (MAX_POINTS / VNODES_PER_WEIGHT as usize) as u64;

/// One member of a ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Member id.
    pub id: Box<str>,
    /// Relative share of the keys (of a serving member).
    pub weight: u32,
    /// Whether it owns its share or, draining, none.
    pub state: MemberState,
}

/// An immutable consistent-hash ring.
#[derive(Clone)]
pub struct Ring {
    /// Members sorted by id; a member's index here is its index in `points`.
    members: Box<[Member]>,
    /// Members that own keys (not draining).
    serving: usize,
    /// Every point as `(position << bucket_bits) | member index`, sorted by
    /// (position, member index); the top `bucket_bits` bits of the position
    /// are implied by the bucket the point sits in.
    points: Box<[u32]>,
    /// `index[k]..index[k + 1]` are the points of bucket `k` (the points
    /// whose position's top `bucket_bits` bits are `k`); `2^bucket_bits + 1`
    /// entries, or none for the empty ring.
    index: Box<[u32]>,
    /// Bits of a position that select its bucket (1 ..= 24; 0 when empty).
    bucket_bits: u32,
    /// Scale level: a member of weight `w` has `ceil(w V / 2^level)` points.
    level: u32,
    /// [`checksum::of_sorted`] of `members`.
    checksum: u64,
}

impl Default for Ring {
    /// The empty ring.
    fn default() -> Self {
        Ring {
            members: Box::default(),
            serving: 0,
            points: Box::default(),
            index: Box::default(),
            bucket_bits: 0,
            level: 0,
            checksum: checksum::of_sorted(&[]),
        }
    }
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("members", &self.members.len())
            .field("points", &self.points.len())
            .field("bucket_bits", &self.bucket_bits)
            .field("level", &self.level)
            .field("checksum", &checksum_hex(self.checksum))
            .finish()
    }
}

impl Ring {
    /// Builds a ring from `(id, weight)` pairs; the order does not matter.
    ///
    /// Errors (`InvalidArgument`): an id that [`crate::validate::ring_id`]
    /// refuses (empty, over 128 bytes, a control character), a duplicate
    /// id, a weight that [`crate::validate::ring_weight`] refuses, more than
    /// [`MAX_MEMBERS`] members or more than [`MAX_POINTS`] points in all.
    pub fn new<'a>(members: impl IntoIterator<Item = (&'a str, u32)>) -> Result<Ring> {
        Builder::new().build(members)
    }

    /// Builds a ring from `(id, weight, state)`: draining members are
    /// listed but own no keys, and the ring answers exactly as the ring of
    /// the serving members alone (same scale level, same owners). Errors as
    /// [`Ring::new`]; the weight cap counts serving members only.
    pub fn with_states<'a>(members: impl IntoIterator<Item = (&'a str, u32, MemberState)>) -> Result<Ring> {
        Builder::new().build_states(members)
    }

    /// Builds a ring whose points come from `hash(id, vnode)` instead of
    /// [`point_position`]; for tests that force collisions.
    #[doc(hidden)]
    pub fn with_point_hash<'a>(
        members: impl IntoIterator<Item = (&'a str, u32)>,
        hash: fn(&str, u32) -> u32,
    ) -> Result<Ring> {
        Builder::new().point_hash(hash).build(members)
    }

    /// Members sorted by id; `locate` returns indexes into this slice.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Checksum of what defines the ring (algorithm, member ids and
    /// weights; see [`checksum`]): equal checksums mean equal answers.
    pub fn checksum(&self) -> u64 {
        self.checksum
    }

    /// Number of members (draining ones included).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Number of members that own keys (not draining).
    pub fn serving(&self) -> usize {
        self.serving
    }

    /// True for the ring with no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Number of points (virtual nodes) on the ring.
    pub fn point_count(&self) -> usize {
        self.points.len()
    }

    /// The scale level: each member of weight `w` has `ceil(w ×
    /// VNODES_PER_WEIGHT / 2^level)` points (0: not scaled).
    pub fn level(&self) -> u32 {
        self.level
    }

    /// Bits of a position that select its index bucket (diagnostics only;
    /// answers never depend on it).
    pub fn bucket_bits(&self) -> u32 {
        self.bucket_bits
    }

    /// Index of the member that owns `key` (never a draining one).
    ///
    /// Errors: `InvalidArgument` for an empty key, `NotFound` on a ring with
    /// no serving member.
    #[inline]
    pub fn locate(&self, key: &str) -> Result<usize> {
        self.check(key)?;
        Ok(self.owner(self.first_point(key_position(key))))
    }

    /// Indexes of `n` distinct members for `key`, in preference order: the
    /// order in which they first appear walking clockwise from the key. The
    /// first is always [`Ring::locate`]. When `n` is larger than the ring,
    /// every serving member is returned (still in preference order);
    /// draining members never are.
    ///
    /// Errors: `InvalidArgument` for an empty key or `n = 0`, `NotFound` on
    /// a ring with no serving member.
    pub fn locate_n(&self, key: &str, n: usize) -> Result<Vec<usize>> {
        crate::validate::count(n)?;
        self.check(key)?;
        let want = n.min(self.serving);
        let start = self.first_point(key_position(key));
        let mut out = Vec::with_capacity(want);
        let points = &self.points;
        let walk = points[start..].iter().chain(&points[..start]);
        if want <= 16 {
            for &p in walk {
                let m = self.owner_of(p);
                if !out.contains(&m) {
                    out.push(m);
                    if out.len() == want {
                        break;
                    }
                }
            }
        } else {
            let mut seen = vec![0u64; self.members.len().div_ceil(64)];
            for &p in walk {
                let m = self.owner_of(p);
                let (word, bit) = (m / 64, 1u64 << (m % 64));
                if seen[word] & bit == 0 {
                    seen[word] |= bit;
                    out.push(m);
                    if out.len() == want {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Each member's exact fraction of the hash space (indexed like
    /// [`Ring::members`]), computed from the points: the arc that ends at a
    /// point belongs to that point's member. Sums to 1 (0 for a draining
    /// member); empty when no member serves.
    pub fn shares(&self) -> Vec<f64> {
        const SPACE: f64 = 4_294_967_296.0;
        let mut arcs = vec![0u64; self.members.len()];
        let Some((last, _)) = self.positions().last() else {
            return Vec::new();
        };
        let mut prev = u64::from(last).wrapping_sub(1u64 << 32);
        for (pos, member) in self.positions() {
            arcs[member] += u64::from(pos).wrapping_sub(prev);
            prev = u64::from(pos);
        }
        arcs.into_iter().map(|a| a as f64 / SPACE).collect()
    }

    /// Every point as `(position, member index)`, in ring order.
    pub(crate) fn positions(&self) -> impl Iterator<Item = (u32, usize)> + '_ {
        let b = self.bucket_bits;
        self.index.windows(2).enumerate().flat_map(move |(k, w)| {
            let high = if b == 0 { 0 } else { (k as u32) << (32 - b) };
            self.points[w[0] as usize..w[1] as usize]
                .iter()
                .map(move |&p| (high | (p >> b), self.owner_of(p)))
        })
    }

    /// Heap and inline bytes this ring occupies.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Ring>()
            + std::mem::size_of_val(&*self.members)
            + self.members.iter().map(|m| m.id.len()).sum::<usize>()
            + std::mem::size_of_val(&*self.points)
            + std::mem::size_of_val(&*self.index)
    }

    /// The shared argument checks of the lookups.
    fn check(&self, key: &str) -> Result<()> {
        crate::validate::key(key)?;
        if self.points.is_empty() {
            return Err(crate::validate::empty_ring(self.members.len()));
        }
        Ok(())
    }

    /// Index in `points` of the first point at or after `pos` (clockwise,
    /// wrapping to point 0). The ring must not be empty.
    #[inline]
    fn first_point(&self, pos: u32) -> usize {
        let b = self.bucket_bits;
        let bucket = (pos >> (32 - b)) as usize;
        let (lo, hi) = (self.index[bucket] as usize, self.index[bucket + 1] as usize);
        // Member index 0 makes this the smallest packed value at `pos`.
        let target = pos << b;
        let i = lo + self.points[lo..hi].partition_point(|&p| p < target);
        // Past the bucket's end, `i` is the first point of the next non-empty
        // bucket, or the end of the ring: wrap.
        if i < self.points.len() {
            i
        } else {
            0
        }
    }

    /// Member index of the point at `points[i]`.
    #[inline]
    fn owner(&self, i: usize) -> usize {
        self.owner_of(self.points[i])
    }

    /// Member index stored in a packed point.
    #[inline]
    fn owner_of(&self, packed: u32) -> usize {
        (packed & ((1u32 << self.bucket_bits) - 1)) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_member_owns_everything() {
        let ring = Ring::new([("only", 3)]).expect("valid members");
        assert_eq!(ring.point_count(), 3 * VNODES_PER_WEIGHT as usize);
        assert_eq!(ring.shares(), vec![1.0]);
        assert_eq!(ring.locate("k"), Ok(0));
        assert_eq!(ring.locate_n("k", 5), Ok(vec![0]));
    }

    #[test]
    fn a_single_point_covers_the_whole_circle() {
        let ring = Builder::new()
            .vnodes_per_weight(1)
            .point_hash(|_, _| 0x8000_0000)
            .build([("a", 1)])
            .expect("valid members");
        assert_eq!(ring.shares(), vec![1.0]);
        for key in ["x", "y", "z"] {
            assert_eq!(ring.locate(key), Ok(0));
        }
    }

    #[test]
    fn positions_recover_full_positions() {
        let ring = Builder::new()
            .vnodes_per_weight(4)
            .point_hash(|id, i| if id == "a" { i << 30 } else { (i << 30) | 7 })
            .build([("b", 1), ("a", 1)])
            .expect("valid members");
        let positions: Vec<(u32, usize)> = ring.positions().collect();
        let expected: Vec<(u32, usize)> = (0..4u32)
            .flat_map(|i| [(i << 30, 0), ((i << 30) | 7, 1)])
            .collect();
        assert_eq!(positions, expected);
        // "b" owns the 7 positions after each of "a"'s points.
        let b = 7.0 * 4.0 / 4_294_967_296.0;
        assert_eq!(ring.shares(), vec![1.0 - b, b]);
    }

    #[test]
    fn memory_counts_points_index_and_ids() {
        let ring = Ring::new([("abc", 1), ("de", 1)]).expect("valid members");
        let floor = 4 * ring.point_count() + 4 * ((1 << ring.bucket_bits()) + 1) + 5;
        assert!(ring.memory_bytes() > floor);
        assert!(ring.memory_bytes() < floor + 256);
        assert!(Ring::default().memory_bytes() < 256);
    }

    #[test]
    fn debug_output_is_a_summary() {
        let ring = Ring::new([("a", 1)]).expect("valid members");
        let text = format!("{ring:?}");
        assert!(text.contains(&format!("points: {VNODES_PER_WEIGHT}")), "{text}");
        assert!(text.len() < 100);
    }
}
