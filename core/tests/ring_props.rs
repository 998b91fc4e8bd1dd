//! Property tests of the consistent-hash ring: agreement with a naive
//! reference, determinism, minimal movement, `locate_n` order, weights and
//! forced point collisions.

use proptest::prelude::*;
use registry_core::ring::{key_position, point_position, Builder, Ring};
use std::collections::BTreeSet;

type Members = Vec<(String, u32)>;

/// The obviously-correct ring: every point in one vector sorted by
/// (position, id), a binary search, and a walk collecting distinct ids.
struct Naive {
    points: Vec<(u32, String)>,
}

impl Naive {
    fn new(members: &Members, vnodes: u32, hash: fn(&str, u32) -> u32) -> Naive {
        let mut points = Vec::new();
        for (id, weight) in members {
            for i in 0..weight * vnodes {
                points.push((hash(id, i), id.clone()));
            }
        }
        points.sort();
        Naive { points }
    }

    fn locate_n(&self, key: &str, n: usize) -> Vec<String> {
        let pos = key_position(key);
        let start = self.points.partition_point(|(p, _)| *p < pos) % self.points.len();
        let mut out: Vec<String> = Vec::new();
        for (_, id) in self.points[start..].iter().chain(&self.points[..start]) {
            if out.len() == n {
                break;
            }
            if !out.contains(id) {
                out.push(id.clone());
            }
        }
        out
    }

    /// Each id's exact share of the 2^32 positions.
    fn shares(&self) -> Vec<(String, f64)> {
        let mut arcs: std::collections::BTreeMap<String, u64> = Default::default();
        let last = self.points.last().map_or(0, |p| u64::from(p.0));
        let mut prev = last;
        for (i, (pos, id)) in self.points.iter().enumerate() {
            let pos = u64::from(*pos);
            let arc = if i == 0 {
                pos + (1 << 32) - prev
            } else {
                pos - prev
            };
            *arcs.entry(id.clone()).or_default() += arc;
            prev = pos;
        }
        arcs.into_iter()
            .map(|(id, a)| (id, a as f64 / 4_294_967_296.0))
            .collect()
    }
}

fn ids(ring: &Ring, indexes: &[usize]) -> Vec<String> {
    indexes
        .iter()
        .map(|&i| ring.members()[i].id.to_string())
        .collect()
}

fn owner(ring: &Ring, key: &str) -> String {
    let i = ring.locate(key).expect("locate on a non-empty ring");
    ring.members()[i].id.to_string()
}

fn all(ring: &Ring, key: &str) -> Vec<String> {
    ids(
        ring,
        &ring
            .locate_n(key, ring.len())
            .expect("locate_n on a non-empty ring"),
    )
}

fn pairs(members: &Members) -> impl Iterator<Item = (&str, u32)> {
    members.iter().map(|(id, w)| (id.as_str(), *w))
}

fn build(members: &Members) -> Ring {
    Ring::new(pairs(members)).expect("valid members")
}

/// 1..=max members with distinct ids and weights in 1..=max_weight.
fn members(max: usize, max_weight: u32) -> impl Strategy<Value = Members> {
    prop::collection::btree_set("[a-z0-9.:-]{1,10}", 1..=max).prop_flat_map(move |ids| {
        let n = ids.len();
        prop::collection::vec(1..=max_weight, n)
            .prop_map(move |w| ids.iter().cloned().zip(w).collect::<Members>())
    })
}

/// Non-empty keys of any Unicode, multibyte included.
fn keys(max: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("\\PC{1,24}", 1..=max)
}

/// Point hashes that squeeze every point into a few positions.
fn four_positions(_id: &str, i: u32) -> u32 {
    i % 4
}
fn sixteen_spread_positions(id: &str, i: u32) -> u32 {
    point_position(id, i) & 0xF000_0000
}
fn id_length_positions(id: &str, i: u32) -> u32 {
    ((id.len() as u32 + i) % 8) << 29
}

const COLLIDING: [fn(&str, u32) -> u32; 3] = [four_positions, sixteen_spread_positions, id_length_positions];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn agrees_with_the_naive_reference(
        members in members(10, 3),
        vnodes in 1u32..48,
        bits in prop::option::of(1u32..=20),
        keys in keys(20),
    ) {
        let mut builder = Builder::new().vnodes_per_weight(vnodes);
        if let Some(b) = bits {
            builder = builder.bucket_bits(b);
        }
        let ring = builder.build(pairs(&members)).expect("valid members");
        let naive = Naive::new(&members, vnodes, point_position);
        for key in &keys {
            for n in 1..=members.len() + 1 {
                let got = ids(&ring, &ring.locate_n(key, n).expect("locate_n"));
                prop_assert_eq!(got, naive.locate_n(key, n), "key {:?} n {}", key, n);
            }
        }
        let shares = ring.shares();
        for ((id, share), (m, got)) in naive.shares().iter().zip(ring.members().iter().zip(&shares)) {
            prop_assert_eq!(id.as_str(), &*m.id);
            prop_assert_eq!(share, got);
        }
    }

    #[test]
    fn production_ring_agrees_with_the_naive_reference(members in members(4, 2), keys in keys(20)) {
        let ring = build(&members);
        let naive = Naive::new(&members, registry_core::ring::VNODES_PER_WEIGHT, point_position);
        for key in &keys {
            prop_assert_eq!(all(&ring, key), naive.locate_n(key, members.len()));
        }
    }

    #[test]
    fn answers_do_not_depend_on_bucket_bits(members in members(5, 2), keys in keys(30), big in 0u32..16) {
        let ring = build(&members);
        // 2^21 buckets are slow to build in a debug test, so only sometimes.
        let bits = if big == 0 { vec![1, 21] } else { vec![1u32, 5, 11, 16] };
        for bits in bits {
            let other = Builder::new().bucket_bits(bits).build(pairs(&members)).expect("valid members");
            prop_assert_eq!(other.point_count(), ring.point_count());
            for key in &keys {
                prop_assert_eq!(all(&other, key), all(&ring, key));
            }
            prop_assert_eq!(other.shares(), ring.shares());
        }
    }

    #[test]
    fn insertion_order_does_not_matter(
        (members, shuffled) in members(8, 3).prop_flat_map(|m| (Just(m.clone()), Just(m).prop_shuffle())),
        keys in keys(30),
    ) {
        let (a, b) = (build(&members), build(&shuffled));
        prop_assert_eq!(a.members(), b.members());
        prop_assert_eq!(a.shares(), b.shares());
        for key in &keys {
            prop_assert_eq!(all(&a, key), all(&b, key));
        }
    }

    #[test]
    fn adding_a_member_moves_keys_only_to_it(
        members in members(8, 3),
        new_id in "[a-z0-9.:-]{1,10}",
        weight in 1u32..=3,
        keys in keys(40),
    ) {
        prop_assume!(members.iter().all(|(id, _)| *id != new_id));
        let before = build(&members);
        let mut more = members.clone();
        more.push((new_id.clone(), weight));
        let after = build(&more);
        for key in &keys {
            let (old, new) = (owner(&before, key), owner(&after, key));
            prop_assert!(old == new || new == new_id, "key {:?} moved from {} to {}", key, old, new);
            // The preference list only gains the new member somewhere.
            let without: Vec<String> = all(&after, key).into_iter().filter(|id| *id != new_id).collect();
            prop_assert_eq!(without, all(&before, key));
        }
    }

    #[test]
    fn removing_a_member_moves_only_its_keys(
        members in members(8, 3).prop_filter("two members", |m| m.len() >= 2),
        which in any::<prop::sample::Index>(),
        keys in keys(40),
    ) {
        let gone = members[which.index(members.len())].0.clone();
        let before = build(&members);
        let fewer: Members = members.iter().filter(|(id, _)| *id != gone).cloned().collect();
        let after = build(&fewer);
        for key in &keys {
            let (old, new) = (owner(&before, key), owner(&after, key));
            prop_assert_ne!(&new, &gone);
            prop_assert!(old == new || old == gone, "key {:?} moved from {} to {}", key, old, new);
            let without: Vec<String> = all(&before, key).into_iter().filter(|id| *id != gone).collect();
            prop_assert_eq!(all(&after, key), without);
        }
    }

    #[test]
    fn changing_a_weight_moves_keys_only_to_or_from_that_member(
        members in members(6, 3),
        which in any::<prop::sample::Index>(),
        weight in 1u32..=4,
        keys in keys(40),
    ) {
        let i = which.index(members.len());
        let changed_id = members[i].0.clone();
        let mut changed = members.clone();
        changed[i].1 = weight;
        let (a, b) = (build(&members), build(&changed));
        for key in &keys {
            let (old, new) = (owner(&a, key), owner(&b, key));
            prop_assert!(old == new || old == changed_id || new == changed_id);
        }
    }

    #[test]
    fn locate_n_is_distinct_ordered_and_starts_with_locate(
        members in members(10, 2),
        keys in keys(20),
        n in 1usize..16,
    ) {
        let ring = build(&members);
        for key in &keys {
            let list = ring.locate_n(key, n).expect("locate_n");
            prop_assert_eq!(list.len(), n.min(ring.len()));
            prop_assert_eq!(list[0], ring.locate(key).expect("locate"));
            let distinct: BTreeSet<usize> = list.iter().copied().collect();
            prop_assert_eq!(distinct.len(), list.len());
            prop_assert!(list.iter().all(|&i| i < ring.len()));
            // Order: a shorter list is a prefix of a longer one.
            for m in 1..n {
                let shorter = ring.locate_n(key, m).expect("locate_n");
                prop_assert_eq!(&shorter[..], &list[..m.min(list.len())]);
            }
        }
    }

    #[test]
    fn collisions_resolve_by_id_and_agree_with_the_reference(
        members in members(8, 2),
        hash in 0usize..COLLIDING.len(),
        vnodes in 1u32..12,
        keys in keys(20),
    ) {
        let hash = COLLIDING[hash];
        let ring = Builder::new().vnodes_per_weight(vnodes).point_hash(hash).build(pairs(&members)).expect("valid members");
        let naive = Naive::new(&members, vnodes, hash);
        let mut shuffled = members.clone();
        shuffled.reverse();
        let again = Builder::new().vnodes_per_weight(vnodes).point_hash(hash).build(pairs(&shuffled)).expect("valid members");
        for key in &keys {
            let got = all(&ring, key);
            prop_assert_eq!(&got, &naive.locate_n(key, members.len()));
            prop_assert_eq!(&got, &all(&again, key));
        }
        let total: f64 = ring.shares().iter().sum();
        prop_assert!((total - 1.0).abs() < 1e-12);
    }

    #[test]
    fn after_a_collision_partner_leaves_no_key_maps_to_it(
        members in members(8, 2).prop_filter("two members", |m| m.len() >= 2),
        which in any::<prop::sample::Index>(),
        hash in 0usize..COLLIDING.len(),
        keys in keys(30),
    ) {
        let hash = COLLIDING[hash];
        let gone = members[which.index(members.len())].0.clone();
        let fewer: Members = members.iter().filter(|(id, _)| *id != gone).cloned().collect();
        let ring = Ring::with_point_hash(pairs(&fewer), hash).expect("valid members");
        prop_assert!(ring.members().iter().all(|m| *m.id != *gone));
        for key in &keys {
            for i in ring.locate_n(key, members.len()).expect("locate_n") {
                prop_assert!(i < ring.len());
                prop_assert_ne!(&*ring.members()[i].id, gone.as_str());
            }
        }
        let shares = ring.shares();
        prop_assert_eq!(shares.len(), ring.len());
    }

    #[test]
    fn weights_are_honoured_roughly_for_any_ids(members in members(5, 5)) {
        // At 1,792 points per unit of weight a member's share deviates from
        // its weight by ~2.4% (one sigma) for weight 1; 20% is > 8 sigma, and
        // ignoring weights (1 vs 5) would be off by far more.
        let ring = build(&members);
        let total: u32 = members.iter().map(|(_, w)| w).sum();
        for (m, share) in ring.members().iter().zip(ring.shares()) {
            let expected = f64::from(m.weight) / f64::from(total);
            prop_assert!((share / expected - 1.0).abs() < 0.20, "{} share {} expected {}", m.id, share, expected);
        }
    }
}

#[test]
fn the_largest_bucket_bits_give_the_same_answers() {
    let members: Members = (0..7).map(|i| (format!("m{i}"), 1 + i % 2)).collect();
    let ring = build(&members);
    let wide = Builder::new()
        .bucket_bits(24)
        .build(pairs(&members))
        .expect("valid members");
    assert_eq!(wide.bucket_bits(), 24);
    for i in 0..2000 {
        let key = format!("k{i}");
        assert_eq!(all(&wide, &key), all(&ring, &key));
    }
    assert_eq!(wide.shares(), ring.shares());
}

#[test]
fn every_key_maps_to_the_smallest_id_when_all_points_collide() {
    let members: Members = vec![("m".into(), 1), ("b".into(), 3), ("x".into(), 2)];
    let ring = Ring::with_point_hash(pairs(&members), four_positions).expect("valid members");
    assert_eq!(ring.shares(), vec![1.0, 0.0, 0.0]);
    for i in 0..1000 {
        let key = format!("k{i}");
        assert_eq!(owner(&ring, &key), "b");
        assert_eq!(all(&ring, &key), ["b", "m", "x"]);
    }
    // Without "b", "m" takes every key; "b" is never answered again.
    let ring = Ring::with_point_hash([("m", 1), ("x", 2)], four_positions).expect("valid members");
    for i in 0..1000 {
        assert_eq!(owner(&ring, &format!("k{i}")), "m");
    }
}

#[test]
fn weights_1_2_3_are_honoured_within_5_percent_over_1m_keys() {
    let weights = [("a", 1u32), ("b", 2), ("c", 3)];
    let ring = Ring::new(weights).expect("valid members");
    let mut counts = [0u64; 3];
    let mut key = String::new();
    for i in 0..1_000_000 {
        use std::fmt::Write;
        key.clear();
        write!(key, "key-{i}").expect("write to a String");
        counts[ring.locate(&key).expect("locate")] += 1;
    }
    let shares = ring.shares();
    for (i, (id, w)) in weights.iter().enumerate() {
        let expected = f64::from(*w) / 6.0;
        let keys = counts[i] as f64 / 1e6;
        assert!(
            (keys / expected - 1.0).abs() < 0.05,
            "{id}: {keys} of the keys, expected {expected}"
        );
        assert!(
            (shares[i] / expected - 1.0).abs() < 0.05,
            "{id}: share {}, expected {expected}",
            shares[i]
        );
    }
}

#[test]
fn shares_match_the_fraction_of_keys() {
    let ring = Ring::new([("alpha", 1), ("beta", 1), ("gamma", 2), ("delta", 1)]).expect("valid members");
    let shares = ring.shares();
    assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    let mut counts = vec![0u64; ring.len()];
    for i in 0..200_000 {
        counts[ring.locate(&format!("user-{i}")).expect("locate")] += 1;
    }
    for (c, s) in counts.iter().zip(&shares) {
        // 200k keys: sampling sigma is ~0.1% of the space.
        assert!((*c as f64 / 200_000.0 - s).abs() < 0.005, "{c} keys vs share {s}");
    }
}
