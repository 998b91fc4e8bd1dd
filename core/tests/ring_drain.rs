//! Draining members: listed, owning no keys. A ring with a draining member
//! answers exactly as the ring without it (so its leave then moves no
//! key), and serving again gives it back exactly the keys it had.

use proptest::prelude::*;
use registry_core::ring::{MemberState, Ring};
use registry_core::validate;

/// The ids `ring` answers for `key`: the owner and the first `n`.
fn answers(ring: &Ring, key: &str, n: usize) -> (String, Vec<String>) {
    let id = |i: usize| ring.members()[i].id.to_string();
    let owner = id(ring.locate(key).expect("a serving member"));
    let first = ring.locate_n(key, n).expect("a serving member");
    (owner, first.into_iter().map(id).collect())
}

/// Members `(id, weight)`: a few light ones and, when `heavy`, weights
/// that scale the ring (so the level must come from the serving members).
fn members(count: usize, heavy: bool) -> Vec<(String, u32)> {
    (0..count)
        .map(|i| {
            let w = if heavy && i % 3 == 0 {
                1000
            } else {
                1 + (i % 4) as u32
            };
            (format!("member-{i}"), w)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn a_draining_member_is_listed_and_the_ring_answers_as_if_it_had_left(
        count in 2usize..12,
        heavy in any::<bool>(),
        drained in proptest::collection::btree_set(0usize..12, 1..4),
    ) {
        let all = members(count, heavy);
        let drained: Vec<usize> = drained.into_iter().filter(|&i| i < count).collect();
        prop_assume!(!drained.is_empty() && drained.len() < count);
        let state = |i: usize| MemberState::draining(drained.contains(&i));
        let draining = Ring::with_states(
            all.iter().enumerate().map(|(i, (id, w))| (id.as_str(), *w, state(i))),
        ).expect("valid members");
        let left = Ring::new(
            all.iter().enumerate().filter(|(i, _)| !drained.contains(i)).map(|(_, (id, w))| (id.as_str(), *w)),
        ).expect("valid members");
        let serving = Ring::new(all.iter().map(|(id, w)| (id.as_str(), *w))).expect("valid members");

        prop_assert_eq!(draining.len(), count);
        prop_assert_eq!(draining.serving(), count - drained.len());
        prop_assert_eq!(draining.level(), left.level());
        for k in 0..300 {
            let key = format!("key-{k}");
            // Every answer is the left ring's, MatchN included (a draining
            // member is never listed, so n = count asks for all of them).
            prop_assert_eq!(answers(&draining, &key, count), answers(&left, &key, count));
        }
        // A draining member's share is 0; the others' are the left ring's.
        let shares = draining.shares();
        let left_shares = left.shares();
        let mut j = 0;
        for (m, share) in draining.members().iter().zip(&shares) {
            if m.state == MemberState::Draining {
                prop_assert_eq!(*share, 0.0);
            } else {
                prop_assert_eq!(*share, left_shares[j]);
                j += 1;
            }
        }
        // The checksum tells all three apart.
        prop_assert_ne!(draining.checksum(), left.checksum());
        prop_assert_ne!(draining.checksum(), serving.checksum());
        // Serving again is the ring it was: the same checksum and owners.
        let back = Ring::with_states(all.iter().map(|(id, w)| (id.as_str(), *w, MemberState::Serving)))
            .expect("valid members");
        prop_assert_eq!(back.checksum(), serving.checksum());
        for k in 0..100 {
            let key = format!("key-{k}");
            prop_assert_eq!(answers(&back, &key, 3), answers(&serving, &key, 3));
        }
    }
}

#[test]
fn only_the_drained_members_keys_move_and_only_to_their_next_owners() {
    let all = members(6, false);
    let serving = Ring::new(all.iter().map(|(id, w)| (id.as_str(), *w))).expect("valid");
    let draining = Ring::with_states(all.iter().map(|(id, w)| {
        let state = MemberState::draining(id == "member-2");
        (id.as_str(), *w, state)
    }))
    .expect("valid");
    let (mut moved, keys) = (0, 20_000);
    for k in 0..keys {
        let key = format!("k{k}");
        let (before, order) = answers(&serving, &key, 2);
        let (after, _) = answers(&draining, &key, 1);
        if before == "member-2" {
            // Its keys go to the next member in preference order.
            assert_eq!(after, order[1], "{key}");
            moved += 1;
        } else {
            assert_eq!(after, before, "{key} moved though its owner serves");
        }
    }
    let share = serving.shares()[2];
    let seen = moved as f64 / keys as f64;
    assert!((seen - share).abs() < 0.02, "moved {seen}, share {share}");
}

#[test]
fn a_ring_whose_members_all_drain_answers_not_found_and_lists_them() {
    let ring =
        Ring::with_states([("a", 1, MemberState::Draining), ("b", 2, MemberState::Draining)]).expect("valid");
    assert_eq!((ring.len(), ring.serving(), ring.point_count()), (2, 0, 0));
    assert_eq!(ring.locate("k"), Err(validate::empty_ring(2)));
    assert_eq!(ring.locate_n("k", 3), Err(validate::empty_ring(2)));
    assert!(ring.shares().is_empty());
    assert!(validate::empty_ring(2).message().contains("all 2 are draining"));
    // Bad input is still refused first.
    assert!(matches!(ring.locate(""), Err(e) if e.message().contains("key")));
}

#[test]
fn the_weight_cap_counts_serving_members_only() {
    let cap = registry_core::ring::MAX_TOTAL_WEIGHT;
    let n = (cap / 1000 + 1) as usize; // one weight-1,000 member too many
    let ids: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    assert!(Ring::new(ids.iter().map(|id| (id.as_str(), 1000))).is_err());
    let ring = Ring::with_states(
        ids.iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), 1000, MemberState::draining(i == 0))),
    )
    .expect("within the cap once one drains");
    assert_eq!((ring.len(), ring.serving()), (n, n - 1));
}
