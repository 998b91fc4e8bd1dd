//! The consistent-hash ring with arbitrary members (ids, weights) and keys.
//!
//! Checks, for the production parameters and for small `Builder` rings with
//! forced index sizes: a build succeeds exactly when every id is non-empty
//! and unique and every weight is in range; `locate` agrees with a brute
//! force oracle (sorted points from `point_position`, first at or after the
//! key); `locate_n` returns distinct members starting with `locate`, as many
//! as asked or the whole ring, in the oracle's walk order; the answers do
//! not depend on the member order or the index size; removing a key's
//! owner hands the key to its second choice and moves no other key; shares
//! sum to 1.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use registry_core::ring::{
    key_position, point_position, Builder, Moves, UNSCALED_MEAN_WEIGHT, VNODES_PER_WEIGHT,
};
use registry_core::{Error, Ring};

fuzz_target!(
    init: {
        registry_fuzz::dump_seeds_if_asked(|| {
            // Unstructured input has no encoder to speak of: a few small and
            // larger byte strings with readable ids, for the fuzzer to mutate.
            let mut seeds = Vec::new();
            for (prod, count) in [(1u8, 3u8), (0, 12), (0, 40), (1, 0)] {
                let mut s = vec![prod, 3, 5, count];
                for i in 0..count {
                    s.extend_from_slice(&[0, 2 + i % 3]);
                    s.extend_from_slice(format!("svc-{i}").as_bytes());
                }
                s.extend_from_slice(b"user:42/key-7/");
                seeds.push(s);
            }
            seeds
        });
    },
    |data: &[u8]| {
        let _ = run(&mut Unstructured::new(data));
    }
);

/// A built ring plus the parameters to rebuild it.
struct Params {
    vnodes: u32,
    bucket_bits: Option<u32>,
}

impl Params {
    fn build(&self, members: &[(&str, u32)], bits: Option<u32>) -> registry_core::Result<Ring> {
        let mut b = Builder::new().vnodes_per_weight(self.vnodes);
        if let Some(bits) = bits.or(self.bucket_bits) {
            b = b.bucket_bits(bits);
        }
        b.build(members.iter().copied())
    }
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let production = u.arbitrary::<u8>()? & 1 == 1;
    let vnodes = if production {
        VNODES_PER_WEIGHT
    } else {
        u.int_in_range(1..=8)?
    };
    let bucket_bits = if production {
        None
    } else {
        Some(u.int_in_range(1..=16)?)
    };
    let params = Params { vnodes, bucket_bits };
    // Keep the production rings small: 1,792 points per unit of weight.
    let (max_count, max_weight) = if production { (4u8, 2u32) } else { (40, 16) };
    let count = u.int_in_range(0..=max_count)?;
    let mut members: Vec<(&str, u32)> = Vec::new();
    for _ in 0..count {
        let dup = u.arbitrary::<u8>()?;
        let weight_pick = u.arbitrary::<u8>()?;
        let weight = match weight_pick {
            0 => 0,
            1 if !production => 1000,
            2 => 1001,
            3 => u32::MAX,
            w => 1 + u32::from(w) % max_weight,
        };
        let id: &str = if dup % 16 == 1 && !members.is_empty() {
            members[usize::from(dup) % members.len()].0
        } else {
            u.arbitrary()?
        };
        members.push((id, weight));
    }
    let mut keys: Vec<&str> = Vec::new();
    while keys.len() < 8 && !u.is_empty() {
        keys.push(u.arbitrary()?);
    }
    let rotate = u.arbitrary::<u8>()?;
    let other_bits = u.int_in_range(1..=16)?;
    check(&params, &members, &keys, usize::from(rotate), other_bits);
    Ok(())
}

fn check(params: &Params, members: &[(&str, u32)], keys: &[&str], rotate: usize, other_bits: u32) {
    let mut ids: Vec<&str> = members.iter().map(|m| m.0).collect();
    ids.sort_unstable();
    let unique = ids.windows(2).all(|w| w[0] != w[1]);
    let valid = unique
        && members
            .iter()
            .all(|(id, w)| registry_core::validate::id(id).is_ok() && (1..=1000).contains(w));
    let ring = match params.build(members, None) {
        Ok(r) => {
            assert!(valid, "built a ring from invalid members {members:?}");
            r
        }
        Err(e) => {
            assert!(!valid, "refused valid members {members:?}: {e}");
            assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
            return;
        }
    };
    assert_eq!(ring.len(), members.len());
    assert!(
        ring.members().windows(2).all(|w| w[0].id < w[1].id),
        "members not sorted by id"
    );
    for m in ring.members() {
        assert!(
            members.contains(&(&*m.id, m.weight)),
            "member {m:?} was not given"
        );
    }
    // Scale level: the smallest at which the ring holds at most
    // UNSCALED_MEAN_WEIGHT × vnodes points per member.
    let points_at =
        |level: u32, w: u32| (u64::from(w) * u64::from(params.vnodes) + (1 << level) - 1) >> level;
    let total_at = |level: u32| members.iter().map(|m| points_at(level, m.1)).sum::<u64>();
    let budget = u64::from(UNSCALED_MEAN_WEIGHT * params.vnodes) * members.len() as u64;
    let level = ring.level();
    assert!(total_at(level) <= budget, "level {level} does not fit");
    assert!(
        level == 0 || total_at(level - 1) > budget,
        "level {level} is not the smallest"
    );
    assert_eq!(ring.point_count() as u64, total_at(level));

    // The oracle: every point, sorted by (position, id).
    let mut points: Vec<(u32, &str)> = Vec::new();
    for &(id, w) in members {
        for i in 0..points_at(level, w) as u32 {
            points.push((point_position(id, i), id));
        }
    }
    points.sort_unstable();

    // The same members in another order, and another index size.
    let mut shuffled = members.to_vec();
    shuffled.reverse();
    if !shuffled.is_empty() {
        let k = rotate % shuffled.len();
        shuffled.rotate_left(k);
    }
    let again = params.build(&shuffled, None).expect("same members, other order");
    let resized = params
        .build(members, Some(other_bits))
        .expect("same members, other index size");
    assert_eq!(again.members(), ring.members());
    assert_eq!(resized.members(), ring.members());

    let shares = ring.shares();
    assert_eq!(shares.len(), ring.len());
    if !ring.is_empty() {
        let sum: f64 = shares.iter().sum();
        assert!((sum - 1.0).abs() < 1e-9, "shares sum to {sum}");
    }

    let id_of = |r: &Ring, i: usize| -> String { r.members()[i].id.to_string() };
    for &key in keys {
        if key.is_empty() {
            assert!(matches!(ring.locate(key), Err(Error::InvalidArgument(_))));
            assert!(matches!(ring.locate_n(key, 1), Err(Error::InvalidArgument(_))));
            continue;
        }
        if ring.is_empty() {
            assert!(matches!(ring.locate(key), Err(Error::NotFound(_))));
            assert!(matches!(ring.locate_n(key, 3), Err(Error::NotFound(_))));
            continue;
        }
        assert!(matches!(ring.locate_n(key, 0), Err(Error::InvalidArgument(_))));
        let owner = ring.locate(key).expect("non-empty ring, non-empty key");
        assert!(owner < ring.len());
        let pos = key_position(key);
        let start = points.partition_point(|p| p.0 < pos) % points.len();
        let mut walk: Vec<&str> = Vec::new();
        for p in points[start..].iter().chain(&points[..start]) {
            if !walk.contains(&p.1) {
                walk.push(p.1);
                if walk.len() == ring.len() {
                    break;
                }
            }
        }
        assert_eq!(
            id_of(&ring, owner),
            walk[0],
            "locate disagrees with the oracle for {key:?}"
        );
        assert_eq!(id_of(&again, again.locate(key).expect("rebuilt")), walk[0]);
        assert_eq!(id_of(&resized, resized.locate(key).expect("resized")), walk[0]);
        for n in [1, 2, 3, ring.len(), ring.len() + 5, 17, 70] {
            let got = ring.locate_n(key, n).expect("valid arguments");
            let names: Vec<String> = got.iter().map(|&i| id_of(&ring, i)).collect();
            assert_eq!(names.len(), n.min(ring.len()));
            assert_eq!(
                names,
                walk[..names.len()],
                "locate_n({key:?}, {n}) disagrees with the oracle"
            );
            let mut distinct = got.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), got.len(), "locate_n returned a member twice");
        }
        // Without its owner, the key goes to its second choice (a rebuild:
        // checked for the first key only, to keep inputs fast).
        if ring.len() >= 2 && std::ptr::eq(key, keys[0]) {
            let rest: Vec<(&str, u32)> = members.iter().copied().filter(|m| m.0 != walk[0]).collect();
            let smaller = params.build(&rest, None).expect("a subset of valid members");
            // Only within one scale level: a level change rescales every
            // member's points (measured and documented in the ring module).
            if smaller.level() == ring.level() {
                assert_eq!(id_of(&smaller, smaller.locate(key).expect("non-empty")), walk[1]);
            }
        }
    }
    // Removing a member moves only its keys (checked on the first key's owner).
    if let (Some(&key), true) = (keys.iter().find(|k| !k.is_empty()), ring.len() >= 2) {
        let gone = id_of(&ring, ring.locate(key).expect("non-empty"));
        let rest: Vec<(&str, u32)> = members.iter().copied().filter(|m| *m.0 != *gone).collect();
        let smaller = params.build(&rest, None).expect("a subset of valid members");
        // Within one scale level only (see above).
        for probe in (0..64u32).filter(|_| smaller.level() == ring.level()) {
            let k = format!("{key}/{probe}");
            let before = id_of(&ring, ring.locate(&k).expect("non-empty"));
            if before != gone {
                assert_eq!(
                    id_of(&smaller, smaller.locate(&k).expect("non-empty")),
                    before,
                    "{k:?} moved"
                );
            }
        }
        // What moved, as data: the ranges agree with both rings on every
        // probe (either way), are sorted and disjoint, and within one scale
        // level are all the removed member's.
        for (old, new) in [(&ring, &smaller), (&smaller, &ring)] {
            let moves = Moves::between(old, new);
            assert!(
                moves.ranges().windows(2).all(|w| w[0].last < w[1].first),
                "ranges overlap"
            );
            for probe in 0..64u32 {
                let k = format!("{key}/{probe}");
                let (from, to) = (
                    id_of(old, old.locate(&k).expect("non-empty")),
                    id_of(new, new.locate(&k).expect("non-empty")),
                );
                match moves.of_key(&k).expect("a valid key") {
                    Some(r) => assert_eq!(
                        (r.from.as_deref(), r.to.as_deref()),
                        (Some(from.as_str()), Some(to.as_str())),
                        "{k:?}"
                    ),
                    None => assert_eq!(from, to, "{k:?} moved but no range says so"),
                }
            }
            if smaller.level() == ring.level() {
                let gone = Some(gone.as_str());
                assert!(moves
                    .ranges()
                    .iter()
                    .all(|r| r.from.as_deref() == gone || r.to.as_deref() == gone));
            }
        }
    }
}
