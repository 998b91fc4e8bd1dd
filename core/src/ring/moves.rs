//! What moved between two rings: the ranges of key positions whose owner
//! changed, with the old and the new owner.
//!
//! A key at position `p` ([`super::key_position`]) belongs to the first
//! point at or after `p`. Between two consecutive point positions of
//! either ring, every key therefore has the same owner in each ring, so
//! the walk over the merged positions of both rings visits each arc once
//! and finds every change exactly: O(points of both rings), no sampling.
//! Ranges are inclusive `first ..= last`, sorted, never wrapping (an arc
//! across position 0 is cut in two), and adjacent ranges with the same
//! old and new owner are merged.

use super::{key_position, Ring};
use crate::error::Result;

/// Key positions `first ..= last` whose owner changed from `from` to `to`.
/// `None` is "no owner": the ring had (or has) no serving member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedRange {
    /// First key position of the range.
    pub first: u32,
    /// Last key position of the range (inclusive).
    pub last: u32,
    /// Owner id before the change.
    pub from: Option<Box<str>>,
    /// Owner id after the change.
    pub to: Option<Box<str>>,
}

impl MovedRange {
    /// Whether `position` is in the range.
    pub fn contains(&self, position: u32) -> bool {
        (self.first..=self.last).contains(&position)
    }

    /// Number of key positions in the range (at most 2^32).
    pub fn positions(&self) -> u64 {
        u64::from(self.last - self.first) + 1
    }
}

/// Every range whose owner changed between an old and a new ring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moves {
    ranges: Vec<MovedRange>,
}

impl Moves {
    /// The ranges whose owner differs between `old` and `new` (draining
    /// members own nothing, as in the rings' answers).
    pub fn between(old: &Ring, new: &Ring) -> Moves {
        // Old member index -> new member index of the same id (both sorted
        // by id), so that comparing owners compares integers.
        let same: Vec<Option<usize>> = old
            .members
            .iter()
            .map(|m| new.members.binary_search_by(|n| n.id.cmp(&m.id)).ok())
            .collect();
        let (mut a, mut b) = (old.positions().peekable(), new.positions().peekable());
        // Owner of the arc ending at a boundary in each ring: its first
        // point at or after the boundary, wrapping to the ring's first point.
        let (a0, b0) = (
            old.positions().next().map(|p| p.1),
            new.positions().next().map(|p| p.1),
        );
        let mut walk = Walk {
            old,
            new,
            same,
            moves: Moves::default(),
            last: None,
        };
        let mut first = 0u64;
        while let Some(next) = [a.peek(), b.peek()].into_iter().flatten().map(|p| p.0).min() {
            let (from, to) = (a.peek().map(|p| p.1), b.peek().map(|p| p.1));
            walk.arc(first, next, from.or(a0), to.or(b0));
            while a.next_if(|p| p.0 == next).is_some() {}
            while b.next_if(|p| p.0 == next).is_some() {}
            first = u64::from(next) + 1;
        }
        if first <= u64::from(u32::MAX) {
            walk.arc(first, u32::MAX, a0, b0);
        }
        walk.moves
    }

    /// The moved ranges, sorted by position.
    pub fn ranges(&self) -> &[MovedRange] {
        &self.ranges
    }

    /// True when no key changed owner.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The range holding `position`, if the key there moved.
    pub fn at(&self, position: u32) -> Option<&MovedRange> {
        let i = self.ranges.partition_point(|r| r.last < position);
        self.ranges.get(i).filter(|r| r.contains(position))
    }

    /// Did `key` move, and from whom to whom: its range, or `None` when its
    /// owner is the same. Errors (`InvalidArgument`): an empty key.
    pub fn of_key(&self, key: &str) -> Result<Option<&MovedRange>> {
        crate::validate::key(key)?;
        Ok(self.at(key_position(key)))
    }

    /// Ranges `id` owned before and no longer owns: the keys it must hand
    /// off (each range says to whom).
    pub fn lost_by<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a MovedRange> + 'a {
        self.ranges.iter().filter(move |r| r.from.as_deref() == Some(id))
    }

    /// Ranges `id` owns now and did not before: the keys it takes over.
    pub fn gained_by<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a MovedRange> + 'a {
        self.ranges.iter().filter(move |r| r.to.as_deref() == Some(id))
    }

    /// Fraction of the key space that changed owner (0 to 1).
    pub fn fraction(&self) -> f64 {
        self.ranges.iter().map(MovedRange::positions).sum::<u64>() as f64 / 4_294_967_296.0
    }
}

/// The state of [`Moves::between`]'s walk.
struct Walk<'r> {
    old: &'r Ring,
    new: &'r Ring,
    /// For each old member, the index of the same id in `new`.
    same: Vec<Option<usize>>,
    moves: Moves,
    /// Old and new owner indexes of the last range pushed.
    last: Option<(Option<usize>, Option<usize>)>,
}

impl Walk<'_> {
    /// The arc `first ..= last` owned by old member `from` and new member
    /// `to` (indexes; `None` for an empty ring): a range when they differ,
    /// merged with the range before it when that one ends just before and
    /// has the same owners.
    fn arc(&mut self, first: u64, last: u32, from: Option<usize>, to: Option<usize>) {
        let unmoved = match (from, to) {
            (Some(f), Some(t)) => self.same[f] == Some(t),
            (None, None) => true,
            _ => false,
        };
        if unmoved {
            return;
        }
        let first = first as u32;
        let ranges = &mut self.moves.ranges;
        if let Some(prev) = ranges.last_mut() {
            if u64::from(prev.last) + 1 == u64::from(first) && self.last == Some((from, to)) {
                prev.last = last;
                return;
            }
        }
        self.last = Some((from, to));
        ranges.push(MovedRange {
            first,
            last,
            from: from.map(|i| self.old.members[i].id.clone()),
            to: to.map(|i| self.new.members[i].id.clone()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{Builder, MemberState};

    /// Owner id of `position` in `ring`, from the ring's own lookup.
    fn owner_at(ring: &Ring, position: u32) -> Option<Box<str>> {
        (!ring.points.is_empty()).then(|| ring.members[ring.owner(ring.first_point(position))].id.clone())
    }

    /// Every position next to a point of either ring (where an error would
    /// show) agrees with the two rings' own lookups.
    fn check_exact(old: &Ring, new: &Ring) -> Moves {
        let moves = Moves::between(old, new);
        let edges = old
            .positions()
            .chain(new.positions())
            .flat_map(|(p, _)| [p.wrapping_sub(1), p, p.wrapping_add(1)]);
        for pos in edges.chain([0, u32::MAX]) {
            let (from, to) = (owner_at(old, pos), owner_at(new, pos));
            match moves.at(pos) {
                Some(r) => assert_eq!((&r.from, &r.to), (&from, &to), "position {pos}"),
                None => assert_eq!(from, to, "position {pos} moved but has no range"),
            }
        }
        for w in moves.ranges().windows(2) {
            assert!(w[0].last < w[1].first, "ranges overlap or are unsorted");
            let touching = u64::from(w[0].last) + 1 == u64::from(w[1].first);
            assert!(
                !touching || (&w[0].from, &w[0].to) != (&w[1].from, &w[1].to),
                "unmerged"
            );
        }
        moves
    }

    fn ring(members: &[(&str, u32, bool)]) -> Ring {
        Builder::new()
            .vnodes_per_weight(3)
            .build_states(
                members
                    .iter()
                    .map(|&(id, w, d)| (id, w, MemberState::draining(d))),
            )
            .expect("valid members")
    }

    #[test]
    fn joins_leaves_drains_and_weights_move_exactly() {
        let abc = ring(&[("a", 1, false), ("b", 1, false), ("c", 1, false)]);
        let abcd = ring(&[("a", 1, false), ("b", 1, false), ("c", 1, false), ("d", 1, false)]);
        let join = check_exact(&abc, &abcd);
        assert!(join.ranges().iter().all(|r| r.to.as_deref() == Some("d")));
        let share_d = abcd.shares()[3];
        assert!(
            (join.fraction() - share_d).abs() < 1e-12,
            "{} vs {share_d}",
            join.fraction()
        );
        let leave = check_exact(&abcd, &abc);
        assert!(leave.ranges().iter().all(|r| r.from.as_deref() == Some("d")));
        assert_eq!(leave.lost_by("d").count(), leave.ranges().len());
        assert_eq!(join.gained_by("d").count(), join.ranges().len());
        let drained = ring(&[("a", 1, false), ("b", 1, false), ("c", 1, true)]);
        let drain = check_exact(&abc, &drained);
        assert!(drain.ranges().iter().all(|r| r.from.as_deref() == Some("c")));
        assert!(check_exact(&drained, &abc)
            .ranges()
            .iter()
            .all(|r| r.to.as_deref() == Some("c")));
        let heavier = ring(&[("a", 1, false), ("b", 3, false), ("c", 1, false)]);
        assert!(check_exact(&abc, &heavier)
            .ranges()
            .iter()
            .all(|r| r.to.as_deref() == Some("b")));
        assert!(check_exact(&abc, &abc).is_empty());
    }

    #[test]
    fn from_and_to_an_empty_ring_everything_moves() {
        let empty = Ring::default();
        let ab = ring(&[("a", 1, false), ("b", 2, false)]);
        let up = check_exact(&empty, &ab);
        assert_eq!(up.ranges().first().map(|r| r.first), Some(0));
        assert_eq!(up.ranges().last().map(|r| r.last), Some(u32::MAX));
        assert!((up.fraction() - 1.0).abs() < 1e-12);
        assert!(up.ranges().iter().all(|r| r.from.is_none()));
        let down = check_exact(&ab, &ring(&[("a", 1, true)]));
        assert!(down.ranges().iter().all(|r| r.to.is_none()));
        assert!(check_exact(&empty, &empty).is_empty());
    }

    #[test]
    fn shared_positions_and_the_wrap_are_exact() {
        // Points on equal positions in both rings, one at 0 and one at
        // u32::MAX: the tie goes to the smaller id, the wrap to point 0.
        let build = |ids: &[&str]| {
            Builder::new()
                .vnodes_per_weight(3)
                .point_hash(|id, i| match (id, i) {
                    (_, 0) => 0,
                    ("b", 1) | ("c", 1) => 1 << 31,
                    (_, 1) => 1 << 30,
                    _ => u32::MAX - u32::from(id.as_bytes()[0]),
                })
                .build(ids.iter().map(|id| (*id, 1)))
                .expect("valid members")
        };
        check_exact(&build(&["b", "c"]), &build(&["a", "b", "c"]));
        check_exact(&build(&["a", "c"]), &build(&["b", "c"]));
        check_exact(&build(&["c"]), &build(&["a", "b"]));
    }

    #[test]
    fn a_key_answers_from_its_range() {
        let old = Ring::new([("a", 1), ("b", 1)]).expect("valid");
        let new = Ring::new([("a", 1), ("b", 1), ("c", 1)]).expect("valid");
        let moves = Moves::between(&old, &new);
        assert!(moves.of_key("").is_err());
        for i in 0..2_000 {
            let key = format!("key-{i}");
            let (from, to) = (old.locate(&key).expect("ok"), new.locate(&key).expect("ok"));
            let (from, to) = (&old.members()[from].id, &new.members()[to].id);
            match moves.of_key(&key).expect("valid key") {
                Some(r) => assert_eq!((r.from.as_ref(), r.to.as_ref()), (Some(from), Some(to))),
                None => assert_eq!(from, to),
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Any two member sets (ids from a small pool so that they overlap,
        /// weights that scale some rings, draining members): exact.
        #[test]
        fn any_two_rings_move_exactly(
            old in proptest::collection::btree_map(0u8..8, (1u32..6, proptest::bool::weighted(0.2)), 0..6),
            new in proptest::collection::btree_map(0u8..8, (1u32..6, proptest::bool::weighted(0.2)), 0..6),
            vnodes in 1u32..12,
        ) {
            let build = |m: &std::collections::BTreeMap<u8, (u32, bool)>| {
                let ids: Vec<(String, u32, bool)> = m.iter().map(|(i, &(w, d))| (format!("m{i}"), w, d)).collect();
                Builder::new()
                    .vnodes_per_weight(vnodes)
                    .build_states(ids.iter().map(|(id, w, d)| (id.as_str(), *w, MemberState::draining(*d))))
                    .expect("valid members")
            };
            check_exact(&build(&old), &build(&new));
        }
    }
}
