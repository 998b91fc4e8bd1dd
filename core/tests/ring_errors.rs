//! Bad input to the ring gets an error of the right kind, never a panic.

use proptest::prelude::*;
use registry_core::ring::{Builder, Ring, MAX_MEMBERS, MAX_POINTS, VNODES_PER_WEIGHT};
use registry_core::service::MAX_WEIGHT;
use registry_core::{validate, Error};

fn is_invalid<T: std::fmt::Debug>(r: Result<T, Error>) -> bool {
    matches!(r, Err(Error::InvalidArgument(_)))
}

fn ring() -> Ring {
    Ring::new([("a", 1), ("b", 2), ("c", 1)]).expect("valid members")
}

#[test]
fn the_empty_ring_answers_not_found() {
    for empty in [
        Ring::default(),
        Ring::new([]).expect("no members is a valid ring"),
    ] {
        assert!(empty.is_empty());
        assert_eq!(empty.len(), 0);
        assert_eq!(empty.point_count(), 0);
        assert!(empty.shares().is_empty());
        assert!(matches!(empty.locate("k"), Err(Error::NotFound(_))));
        assert!(matches!(empty.locate_n("k", 3), Err(Error::NotFound(_))));
        // Argument errors come first, even on an empty ring.
        assert!(is_invalid(empty.locate("")));
        assert!(is_invalid(empty.locate_n("k", 0)));
    }
}

#[test]
fn an_empty_key_is_invalid() {
    let r = ring();
    assert!(is_invalid(r.locate("")));
    assert!(is_invalid(r.locate_n("", 2)));
}

#[test]
fn n_zero_is_invalid_and_n_past_the_ring_returns_everyone() {
    let r = ring();
    assert!(is_invalid(r.locate_n("k", 0)));
    for n in [3, 4, 1000, usize::MAX] {
        let all = r.locate_n("k", n).expect("locate_n");
        assert_eq!(all.len(), 3, "n = {n}");
        assert_eq!(all[0], r.locate("k").expect("locate"));
    }
}

#[test]
fn bad_weights_are_invalid() {
    for w in [0, MAX_WEIGHT + 1, u32::MAX] {
        assert!(is_invalid(Ring::new([("a", 1), ("b", w)])), "weight {w}");
    }
    assert!(Ring::new([("a", MAX_WEIGHT)]).is_ok());
}

#[test]
fn the_ring_words_its_failures_as_validate_does() {
    let message = |r: Result<Ring, Error>| r.expect_err("refused").message().to_string();
    assert_eq!(
        message(Ring::new([("a", 1), ("", 1)])),
        validate::ring_id(1, "").unwrap_err().message()
    );
    let long = "a".repeat(validate::MAX_NAME_LEN + 1);
    assert_eq!(
        message(Ring::new([(long.as_str(), 1)])),
        validate::ring_id(0, &long).unwrap_err().message()
    );
    assert!(is_invalid(Ring::new([("a\nb", 1)])));
    assert!(Ring::new([("a".repeat(validate::MAX_NAME_LEN).as_str(), 1)]).is_ok());
    assert_eq!(
        message(Ring::new([("a", 0)])),
        validate::ring_weight(0, 0).unwrap_err().message()
    );
    assert_eq!(
        message(Ring::new([("a", 1), ("b", MAX_WEIGHT + 1)])),
        "weights[1]: weight 1001 is out of range 1..=1000"
    );
    assert_eq!(
        message(Ring::new([("a", 1), ("a", 2)])),
        validate::duplicate_id("a").message()
    );
    let empty = Ring::default();
    assert_eq!(empty.locate("k"), Err(validate::empty_ring(0)));
    assert_eq!(empty.locate_n("k", 2), Err(validate::empty_ring(0)));
}

#[test]
fn bad_ids_are_invalid() {
    assert!(is_invalid(Ring::new([("a", 1), ("", 1)])));
    assert!(is_invalid(Ring::new([("a", 1), ("b", 1), ("a", 2)])));
    assert!(is_invalid(Ring::new([("a", 1), ("a", 1)])));
}

#[test]
fn too_many_points_or_members_are_invalid_before_any_allocation() {
    let max_weight_members = MAX_POINTS / (MAX_WEIGHT as usize * VNODES_PER_WEIGHT as usize) + 1;
    let ids: Vec<String> = (0..max_weight_members).map(|i| format!("m{i}")).collect();
    assert!(is_invalid(Ring::new(
        ids.iter().map(|id| (id.as_str(), MAX_WEIGHT))
    )));

    let ids: Vec<String> = (0..=MAX_MEMBERS).map(|i| format!("m{i}")).collect();
    let err = Builder::new()
        .vnodes_per_weight(1)
        .build(ids.iter().map(|id| (id.as_str(), 1)));
    assert!(is_invalid(err));
    // Exactly MAX_MEMBERS fit (with one point each).
    let ok = Builder::new()
        .vnodes_per_weight(1)
        .build(ids[1..].iter().map(|id| (id.as_str(), 1)));
    let ok = ok.expect("MAX_MEMBERS members");
    assert_eq!(ok.len(), MAX_MEMBERS);
    let i = ok.locate("some key").expect("locate");
    assert!(i < MAX_MEMBERS);
    assert_eq!(
        ok.locate_n("some key", MAX_MEMBERS).expect("locate_n").len(),
        MAX_MEMBERS
    );
}

#[test]
fn bad_builder_settings_are_invalid() {
    assert!(is_invalid(Builder::new().vnodes_per_weight(0).build([("a", 1)])));
    assert!(is_invalid(
        Builder::new().vnodes_per_weight(u32::MAX).build([("a", 1)])
    ));
    assert!(is_invalid(Builder::new().bucket_bits(0).build([("a", 1)])));
    assert!(is_invalid(Builder::new().bucket_bits(25).build([("a", 1)])));
}

#[test]
fn unusual_keys_are_fine() {
    let r = ring();
    let long = "κλειδί-".repeat(100_000);
    for key in ["\0", "\u{10FFFF}", " ", "🦀", long.as_str()] {
        let i = r.locate(key).expect("locate");
        assert_eq!(r.locate_n(key, 2).expect("locate_n")[0], i);
    }
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics(
        members in prop::collection::vec((".{0,6}", prop_oneof![Just(0u32), 1u32..4, Just(MAX_WEIGHT + 1), Just(u32::MAX)]), 0..8),
        key in ".{0,12}",
        n in prop_oneof![Just(0usize), 1usize..10, Just(usize::MAX)],
    ) {
        match Ring::new(members.iter().map(|(id, w)| (id.as_str(), *w))) {
            Err(e) => prop_assert!(matches!(e, Error::InvalidArgument(_))),
            Ok(ring) => {
                let one = ring.locate(&key);
                let many = ring.locate_n(&key, n);
                if key.is_empty() || n == 0 {
                    prop_assert!(is_invalid(many));
                } else if ring.is_empty() {
                    prop_assert!(matches!(many, Err(Error::NotFound(_))));
                } else {
                    prop_assert_eq!(many.expect("locate_n")[0], one.expect("locate"));
                }
            }
        }
    }
}
