//! How many points a ring holds, and its bytes, from its members' weights
//! alone: the scale level rule, shared by the build and by the catalog's
//! memory accounting (which keeps a plan per group up to date as members
//! come and go, without building anything).

use super::build::bucket_bits_for;
use super::{Member, MemberState, Ring, UNSCALED_MEAN_WEIGHT, VNODES_PER_WEIGHT};

/// Scale levels a plan tracks. With weights of at most
/// [`crate::limits::MAX_WEIGHT`] (1,000) the level never exceeds 10: at
/// level 10 a member has at most `1000 v / 1024 + 1 < 4 v` points.
pub(crate) const LEVELS: usize = 11;

/// Points of a member of weight `weight` at scale level `level`, with `vnodes`
/// points per unit of weight unscaled: `ceil(weight × vnodes / 2^level)`.
#[inline]
pub(crate) fn member_points(weight: u32, vnodes: u32, level: u32) -> u64 {
    let unscaled = u64::from(weight) * u64::from(vnodes);
    (unscaled + (1 << level) - 1) >> level
}

/// The size of the ring a set of members gets, kept up to date by
/// [`RingPlan::add`] and [`RingPlan::remove`] in constant time: its scale
/// level, point count and bytes ([`Ring::memory_bytes`] of the ring
/// [`Ring::new`] builds from the same members, exactly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingPlan {
    /// Points per unit of weight at level 0.
    vnodes: u32,
    /// Members added and not removed (draining ones included).
    members: usize,
    /// Of those, the serving ones (they hold the points).
    serving: usize,
    /// Bytes of their ids.
    id_bytes: usize,
    /// Sum of the serving members' weights.
    weight: u64,
    /// `points[s]`: the ring's points at scale level `s`.
    points: [u64; LEVELS],
}

impl Default for RingPlan {
    fn default() -> Self {
        RingPlan::new()
    }
}

impl RingPlan {
    /// The plan of the empty ring, with the production parameters.
    pub fn new() -> Self {
        Self::with_vnodes(VNODES_PER_WEIGHT)
    }

    /// The plan of the empty ring with `vnodes` points per unit of weight.
    pub(crate) fn with_vnodes(vnodes: u32) -> Self {
        RingPlan {
            vnodes,
            members: 0,
            serving: 0,
            id_bytes: 0,
            weight: 0,
            points: [0; LEVELS],
        }
    }

    /// Counts a serving member `id` of `weight` in.
    pub fn add(&mut self, id: &str, weight: u32) {
        self.add_member(id, weight, MemberState::Serving);
    }

    /// Counts a member out; it must have been added with this `id` and
    /// `weight`, serving.
    pub fn remove(&mut self, id: &str, weight: u32) {
        self.remove_member(id, weight, MemberState::Serving);
    }

    /// Counts a member in: listed either way, its points only when serving.
    pub fn add_member(&mut self, id: &str, weight: u32, state: MemberState) {
        self.members += 1;
        self.id_bytes += id.len();
        if state.is_draining() {
            return;
        }
        self.serving += 1;
        self.weight += u64::from(weight);
        for (level, p) in self.points.iter_mut().enumerate() {
            *p += member_points(weight, self.vnodes, level as u32);
        }
    }

    /// Counts a member out; it must have been added with these values.
    pub fn remove_member(&mut self, id: &str, weight: u32, state: MemberState) {
        self.members -= 1;
        self.id_bytes -= id.len();
        if state.is_draining() {
            return;
        }
        self.serving -= 1;
        self.weight -= u64::from(weight);
        for (level, p) in self.points.iter_mut().enumerate() {
            *p -= member_points(weight, self.vnodes, level as u32);
        }
    }

    /// Number of members (draining ones included).
    pub fn members(&self) -> usize {
        self.members
    }

    /// The serving members' total weight.
    pub fn weight(&self) -> u64 {
        self.weight
    }

    /// Points the ring holds at level 0 (`total weight × vnodes`).
    pub fn unscaled_points(&self) -> u64 {
        self.points[0]
    }

    /// The scale level: the smallest `s` at which the ring holds at most
    /// [`UNSCALED_MEAN_WEIGHT`] × vnodes points per serving member (so
    /// draining members change no one's points).
    pub fn level(&self) -> u32 {
        let budget = self.serving as u64 * u64::from(UNSCALED_MEAN_WEIGHT) * u64::from(self.vnodes);
        let fits = self.points.iter().position(|&p| p <= budget);
        fits.unwrap_or(LEVELS - 1) as u32
    }

    /// Points the ring holds (at its level).
    pub fn points(&self) -> usize {
        self.points[self.level() as usize] as usize
    }

    /// Bytes of the ring: [`Ring::memory_bytes`] of the ring built from
    /// these members.
    pub fn memory_bytes(&self) -> usize {
        let ring = std::mem::size_of::<Ring>();
        if self.members == 0 {
            return ring;
        }
        let points = self.points();
        let buckets = 1usize << bucket_bits_for(points, self.members);
        ring + self.members * std::mem::size_of::<Member>()
            + self.id_bytes
            + points * std::mem::size_of::<u32>()
            + (buckets + 1) * std::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MAX_WEIGHT;

    #[test]
    fn points_round_up_and_never_vanish() {
        assert_eq!(member_points(1, 1792, 0), 1792);
        assert_eq!(member_points(1000, 1792, 8), 7000);
        assert_eq!(member_points(1, 1792, 9), 4);
        assert_eq!(member_points(1, 1, 10), 1);
    }

    #[test]
    fn a_light_ring_is_not_scaled_and_a_heavy_one_is() {
        let mut plan = RingPlan::new();
        for (id, w) in [("a", 4), ("b", 4), ("c", 4)] {
            plan.add(id, w);
        }
        assert_eq!((plan.level(), plan.points()), (0, 12 * 1792));
        plan.add("d", 5);
        assert_eq!(plan.level(), 1);
        assert_eq!(plan.points(), 17 * 1792 / 2);
        plan.remove("d", 5);
        assert_eq!((plan.level(), plan.points()), (0, 12 * 1792));
    }

    #[test]
    fn the_level_stays_below_the_tracked_levels() {
        for vnodes in [1, 2, 7, 11, 1792, 1 << 16] {
            let mut plan = RingPlan::with_vnodes(vnodes);
            plan.add("heavy", MAX_WEIGHT);
            let budget = u64::from(UNSCALED_MEAN_WEIGHT * vnodes);
            assert!(plan.points[LEVELS - 1] <= budget, "vnodes {vnodes}");
            plan.add("light", 1);
            assert!(plan.points[LEVELS - 1] <= 2 * budget, "vnodes {vnodes}");
        }
    }
}
