//! Scaled rings: what heavy members cost, which changes stay minimal, and
//! how many keys move when the scale level changes (the figures quoted in
//! the ring module's docs).

use registry_core::ring::{Ring, RingPlan, UNSCALED_MEAN_WEIGHT, VNODES_PER_WEIGHT};
use registry_core::service::MAX_WEIGHT;

/// Keys sampled to measure movement.
const KEYS: usize = 100_000;

fn ring(members: &[(String, u32)]) -> Ring {
    Ring::new(members.iter().map(|(id, w)| (id.as_str(), *w))).expect("valid members")
}

fn named(prefix: &str, weights: &[u32]) -> Vec<(String, u32)> {
    weights
        .iter()
        .enumerate()
        .map(|(i, w)| (format!("{prefix}-{i}"), *w))
        .collect()
}

fn owner(r: &Ring, key: &str) -> String {
    r.members()[r.locate(key).expect("locate")].id.to_string()
}

/// Fraction of the sampled keys whose owner changed from one old member
/// to another old member (movement besides the member that joined, left
/// or changed weight, whose id is `changed`).
fn moved_between_others(before: &Ring, after: &Ring, changed: &str) -> f64 {
    let moved = (0..KEYS)
        .map(|i| format!("key-{i}"))
        .filter(|k| {
            let (a, b) = (owner(before, k), owner(after, k));
            a != b && a != changed && b != changed
        })
        .count();
    moved as f64 / KEYS as f64
}

#[test]
fn a_lone_heavy_member_costs_a_few_thousand_points() {
    let r = Ring::new([("alone", MAX_WEIGHT)]).expect("valid");
    assert_eq!(r.level(), 8);
    assert_eq!(r.point_count(), 7_000);
    // Was 1,792,000 points (7.7 MB); now about 30 KB.
    assert!(r.memory_bytes() < 32 * 1024, "{}", r.memory_bytes());
    // A light ring is not scaled: V points per unit of weight.
    let light = Ring::new([("a", 1), ("b", UNSCALED_MEAN_WEIGHT)]).expect("valid");
    assert_eq!(light.level(), 0);
    assert_eq!(light.point_count(), 5 * VNODES_PER_WEIGHT as usize);
}

#[test]
fn a_ring_holds_at_most_four_weights_of_points_per_member_whatever_the_weights() {
    let budget = (UNSCALED_MEAN_WEIGHT * VNODES_PER_WEIGHT) as usize;
    for weights in [
        vec![MAX_WEIGHT; 37],
        vec![MAX_WEIGHT, 1, 1, 1],
        vec![5, 5, 5],
        vec![999, 500, 250, 7, 1],
        vec![1, 2, 3, 4],
    ] {
        let r = ring(&named("m", &weights));
        assert!(r.point_count() <= budget * weights.len(), "{weights:?}");
        // Shares follow the weights (each member's count rounds up by
        // less than one point).
        let total: u32 = weights.iter().sum();
        let points: Vec<u64> = weights
            .iter()
            .map(|&w| (u64::from(w * VNODES_PER_WEIGHT) + (1 << r.level()) - 1) >> r.level())
            .collect();
        assert_eq!(
            points.iter().sum::<u64>() as usize,
            r.point_count(),
            "{weights:?}"
        );
        for (w, p) in weights.iter().zip(&points) {
            let due = f64::from(*w) / f64::from(total) * r.point_count() as f64;
            assert!(
                (*p as f64 - due).abs() < 1.0 + due * 0.01,
                "{weights:?}: {p} vs {due}"
            );
        }
    }
}

#[test]
fn the_plan_predicts_the_ring_exactly() {
    for weights in [
        vec![],
        vec![1],
        vec![MAX_WEIGHT],
        vec![MAX_WEIGHT; 37],
        vec![3, 1, 4, 1, 5, 9, 2, 6],
    ] {
        let members = named("svc", &weights);
        let mut plan = RingPlan::new();
        for (id, w) in &members {
            plan.add(id, *w);
        }
        let r = ring(&members);
        assert_eq!(plan.level(), r.level(), "{weights:?}");
        assert_eq!(plan.points(), r.point_count(), "{weights:?}");
        assert_eq!(plan.memory_bytes(), r.memory_bytes(), "{weights:?}");
    }
}

#[test]
fn a_thousand_lone_heavy_members_stay_under_32_mib() {
    // The layout of issue 15: before scaling, 1,000 one-member groups of
    // weight 1,000 needed 1,000 rings of 1,792,000 points (7.7 GB).
    let bytes: usize = (0..1_000)
        .map(|i| Ring::new([(format!("svc-{i}").as_str(), MAX_WEIGHT)]).expect("valid"))
        .map(|r| r.memory_bytes())
        .sum();
    assert!(bytes < 32 << 20, "{bytes} bytes");
    // 37 members of weight 1,000 (the most the weight cap allows): was
    // 66 M points (285 MB).
    let heavy = ring(&named("heavy", &[MAX_WEIGHT; 37]));
    assert!(heavy.memory_bytes() < 2 << 20, "{}", heavy.memory_bytes());
}

#[test]
fn within_a_level_heavy_joins_leaves_and_weight_changes_are_minimal() {
    // Equal weights: the mean, hence the level, never changes.
    let five = named("eq", &[MAX_WEIGHT; 5]);
    let mut six = five.clone();
    six.push(("eq-new".into(), MAX_WEIGHT));
    let (a, b) = (ring(&five), ring(&six));
    assert_eq!((a.level(), b.level()), (8, 8));
    assert_eq!(moved_between_others(&a, &b, "eq-new"), 0.0);
    assert_eq!(moved_between_others(&b, &a, "eq-new"), 0.0);
    // A weight change that keeps the level moves keys only to or from it.
    let mut lighter = five.clone();
    lighter[2].1 = 900;
    let c = ring(&lighter);
    assert_eq!(c.level(), 8);
    assert_eq!(moved_between_others(&a, &c, "eq-2"), 0.0);
}

#[test]
fn crossing_a_level_moves_a_fifth_of_the_keys_between_other_members() {
    // Four members of weight 4 (mean 4: level 0); a fifth of weight 8
    // takes the mean to 4.8 (level 1): every member keeps the first half
    // of its points.
    let four = named("m", &[4; 4]);
    let mut five = four.clone();
    five.push(("m-new".into(), 8));
    let (a, b) = (ring(&four), ring(&five));
    assert_eq!((a.level(), b.level()), (0, 1));
    // Measured: 0.197 of the keys move between the four old members, on
    // top of the new member's third (a join within a level moves none).
    // The leave that goes back down moves the same keys back.
    let join = moved_between_others(&a, &b, "m-new");
    eprintln!("level crossing: a join moved {join:.4} of the keys between other members");
    assert!((0.17..0.23).contains(&join), "{join}");
    // The same crossing by a weight change, 4 -> 12 on one member: 0.103
    // of the keys move between the three others.
    let mut heavier = four.clone();
    heavier[0].1 = 12;
    let c = ring(&heavier);
    assert_eq!(c.level(), 1);
    let change = moved_between_others(&a, &c, "m-0");
    eprintln!("level crossing: weight change moved {change:.4} of the keys between other members");
    assert!((0.08..0.13).contains(&change), "{change}");
}
