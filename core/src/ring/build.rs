//! Building a ring: validation, point generation and the O(P) packed sort.

use super::hash::{id_hash, point_from_id_hash};
use super::plan::{member_points, RingPlan};
use super::{Member, MemberState, Ring, MAX_MEMBERS, MAX_POINTS, VNODES_PER_WEIGHT};
use crate::error::{Error, Result};
use crate::validate;

/// Largest number of bucket bits; at 8 to 16 points per bucket, 2^24
/// buckets serve far more than [`MAX_POINTS`].
pub(crate) const MAX_BUCKET_BITS: u32 = 24;
/// Largest virtual-node count per unit of weight a [`Builder`] accepts.
pub(crate) const MAX_VNODES_PER_WEIGHT: u32 = 1 << 16;
/// Log2 of the largest average number of points per index bucket: buckets
/// then hold 8 to 16 points on average (one or two cache lines), and the
/// index adds 0.25 to 0.5 bytes per point. Measured at 1,000 members: 7
/// to 27 points per bucket gave about the same lookup time, 55 or more
/// were slower.
pub(crate) const BUCKET_LOAD_LOG2: u32 = 4;

/// Builds rings with non-default parameters, for tests, experiments and
/// benchmarks. A ring built with anything but the defaults is not
/// [`super::RING_ALGORITHM`] and must never be served to clients.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Builder {
    vnodes_per_weight: u32,
    bucket_bits: Option<u32>,
    point_hash: Option<fn(&str, u32) -> u32>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// A builder with the production parameters.
    pub fn new() -> Self {
        Builder {
            vnodes_per_weight: VNODES_PER_WEIGHT,
            bucket_bits: None,
            point_hash: None,
        }
    }

    /// Sets the number of virtual nodes per unit of weight (1 ..= 65,536).
    pub fn vnodes_per_weight(mut self, vnodes: u32) -> Self {
        self.vnodes_per_weight = vnodes;
        self
    }

    /// Forces the number of index bucket bits (1 ..= 24); raised if needed to
    /// hold every member index. Answers never depend on it.
    pub fn bucket_bits(mut self, bits: u32) -> Self {
        self.bucket_bits = Some(bits);
        self
    }

    /// Replaces the point hash `(member id, vnode) -> position`, e.g. with one
    /// that forces collisions.
    pub fn point_hash(mut self, hash: fn(&str, u32) -> u32) -> Self {
        self.point_hash = Some(hash);
        self
    }

    /// Builds the ring from `(id, weight)` pairs; the order does not matter.
    pub fn build<'a>(&self, members: impl IntoIterator<Item = (&'a str, u32)>) -> Result<Ring> {
        self.build_states(
            members
                .into_iter()
                .map(|(id, weight)| (id, weight, MemberState::Serving)),
        )
    }

    /// Builds the ring from `(id, weight, state)`; see [`Ring::with_states`].
    pub fn build_states<'a>(
        &self,
        members: impl IntoIterator<Item = (&'a str, u32, MemberState)>,
    ) -> Result<Ring> {
        let v = self.vnodes_per_weight;
        if v == 0 || v > MAX_VNODES_PER_WEIGHT {
            return Err(Error::invalid(format!(
                "vnodes per weight {v} is out of range 1..={MAX_VNODES_PER_WEIGHT}"
            )));
        }
        if let Some(b) = self.bucket_bits {
            if b == 0 || b > MAX_BUCKET_BITS {
                return Err(Error::invalid(format!(
                    "bucket bits {b} is out of range 1..={MAX_BUCKET_BITS}"
                )));
            }
        }
        let (members, plan) = check_members(members, v)?;
        let layout = Layout {
            vnodes: v,
            level: plan.level(),
            points: plan.points(),
            forced_bits: self.bucket_bits,
        };
        match self.point_hash {
            None => {
                let bases: Vec<u64> = members.iter().map(|m| id_hash(&m.id)).collect();
                pack(members, layout, |m, i| point_from_id_hash(bases[m], i))
            }
            Some(hash) => {
                let ids: Vec<Box<str>> = members.iter().map(|m| m.id.clone()).collect();
                pack(members, layout, |m, i| hash(&ids[m], i))
            }
        }
    }
}

/// Collects, sorts and checks the members: ids by [`validate::ring_id`]
/// and [`validate::ring_weight`] (the `i`-th pair is `ids[i]` and
/// `weights[i]`, the names every front door reports), unique
/// ids, and the member and point limits. Returns them with their plan
/// (where draining members hold no points).
fn check_members<'a>(
    members: impl IntoIterator<Item = (&'a str, u32, MemberState)>,
    vnodes: u32,
) -> Result<(Vec<Member>, RingPlan)> {
    let mut out = Vec::new();
    let mut plan = RingPlan::with_vnodes(vnodes);
    for (i, (id, weight, state)) in members.into_iter().enumerate() {
        validate::ring_id(i, id)?;
        validate::ring_weight(i, weight.into())?;
        if out.len() >= MAX_MEMBERS {
            return Err(Error::invalid(format!(
                "a ring holds at most {MAX_MEMBERS} members"
            )));
        }
        plan.add_member(id, weight, state);
        out.push(Member {
            id: id.into(),
            weight,
            state,
        });
    }
    out.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    if let Some(pair) = out.windows(2).find(|p| p[0].id == p[1].id) {
        return Err(validate::duplicate_id(&pair[0].id));
    }
    // Unscaled, as before scaling existed: the cap on the total weight
    // ([`super::MAX_TOTAL_WEIGHT`]) that the catalog enforces too.
    let points = plan.unscaled_points();
    if points > MAX_POINTS as u64 {
        return Err(Error::invalid(format!(
            "the members' total weight {} needs {points} points; a ring holds at most {MAX_POINTS}",
            plan.weight()
        )));
    }
    Ok((out, plan))
}

/// What [`pack`] lays out: points per unit of weight, scale level, point
/// count, and the bucket bits if forced.
#[derive(Clone, Copy)]
struct Layout {
    vnodes: u32,
    level: u32,
    points: usize,
    forced_bits: Option<u32>,
}

/// Bits needed to store every index below `n`.
fn index_bits(n: usize) -> u32 {
    usize::BITS - n.saturating_sub(1).leading_zeros()
}

/// Bucket bits for `points` points and `n` members: 8 to 16 points per
/// bucket, at least 1 and at least enough to hold a member index.
pub(super) fn bucket_bits_for(points: usize, n: usize) -> u32 {
    let load = (usize::BITS - points.leading_zeros()).saturating_sub(BUCKET_LOAD_LOG2);
    load.clamp(1, MAX_BUCKET_BITS).max(index_bits(n))
}

/// Points of each member at `level`: none for a draining one. Each fits
/// in a `u32`: at most the unscaled count, itself at most [`MAX_POINTS`].
fn point_counts(members: &[Member], vnodes: u32, level: u32) -> Vec<u32> {
    members
        .iter()
        .map(|m| match m.state {
            MemberState::Serving => member_points(m.weight, vnodes, level) as u32,
            MemberState::Draining => 0,
        })
        .collect()
}

/// Lays the points out: a counting sort on the top `b` bits of each position
/// into buckets, then a sort of each (small) bucket. O(P) expected. Member
/// `m` has the first `member_points(weight, vnodes, level)` of its points.
fn pack(members: Vec<Member>, layout: Layout, point: impl Fn(usize, u32) -> u32) -> Result<Ring> {
    if members.is_empty() {
        return Ok(Ring::default());
    }
    let Layout {
        vnodes,
        level,
        points: total,
        forced_bits,
    } = layout;
    let n = members.len();
    let b = forced_bits.map_or_else(|| bucket_bits_for(total, n), |f| f.max(index_bits(n)));
    let shift = 32 - b;
    let buckets = 1usize << b;
    let count = point_counts(&members, vnodes, level);

    // Counting pass: index[k + 1] = points in bucket k; then prefix sums.
    let mut index = vec![0u32; buckets + 1];
    for (m, &c) in count.iter().enumerate() {
        for i in 0..c {
            index[(point(m, i) >> shift) as usize + 1] += 1;
        }
    }
    for k in 1..=buckets {
        index[k] += index[k - 1];
    }

    // Scatter pass: each point as (position << b) | member index.
    let mut cursor: Vec<u32> = index[..buckets].to_vec();
    let mut points = vec![0u32; total];
    for (m, &c) in count.iter().enumerate() {
        for i in 0..c {
            let p = point(m, i);
            let slot = &mut cursor[(p >> shift) as usize];
            points[*slot as usize] = (p << b) | m as u32;
            *slot += 1;
        }
    }

    // Within a bucket the packed value orders by (position, member index).
    for k in 0..buckets {
        let (lo, hi) = (index[k] as usize, index[k + 1] as usize);
        if hi - lo > 1 {
            points[lo..hi].sort_unstable();
        }
    }

    Ok(Ring {
        checksum: super::checksum::of_sorted(&members),
        serving: members.iter().filter(|m| !m.state.is_draining()).count(),
        members: members.into_boxed_slice(),
        points: points.into_boxed_slice(),
        index: index.into_boxed_slice(),
        bucket_bits: b,
        level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_bits_holds_every_index() {
        assert_eq!(index_bits(0), 0);
        assert_eq!(index_bits(1), 0);
        assert_eq!(index_bits(2), 1);
        assert_eq!(index_bits(3), 2);
        assert_eq!(index_bits(256), 8);
        assert_eq!(index_bits(257), 9);
        assert_eq!(index_bits(MAX_MEMBERS), 16);
    }

    #[test]
    fn the_default_group_size_fits_a_ring_of_weight_one_members() {
        assert!(crate::limits::DEFAULT_MAX_MEMBERS_PER_GROUP as u64 <= super::super::MAX_TOTAL_WEIGHT);
    }

    #[test]
    fn bucket_bits_follow_the_point_count() {
        assert_eq!(bucket_bits_for(1, 1), 1);
        assert_eq!(bucket_bits_for(1 << 20, 1000), 17);
        assert_eq!(bucket_bits_for(1_600_000, 1000), 17);
        // A tiny ring of many members still holds every index.
        assert_eq!(bucket_bits_for(300, 300), 9);
        assert_eq!(bucket_bits_for(MAX_POINTS, MAX_MEMBERS), 23);
    }
}
