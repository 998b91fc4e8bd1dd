//! Unit tests of the catalog.

use super::*;
use crate::error::Error;
use crate::limits::Limit;
use crate::ring::{Ring, MAX_TOTAL_WEIGHT};
use crate::service::REGISTRY_GROUP;

fn svc(id: &str, group: &str) -> Service {
    Service::new(id, group, format!("127.0.0.1:{}", 1000 + id.len()))
}

fn ids(snap: &GroupSnapshot) -> Vec<&str> {
    snap.members().iter().map(|s| s.id.as_str()).collect()
}

#[test]
fn join_update_leave_publish_snapshots_with_growing_versions() {
    let cat = Catalog::new();
    assert!(cat.snapshot("web").is_none());
    cat.apply_batch([
        MemberEvent::Joined(svc("b", "web")),
        MemberEvent::Joined(svc("a", "web")),
    ]);
    let s1 = cat.snapshot("web").expect("group exists");
    assert_eq!(ids(&s1), ["a", "b"]);
    assert_eq!(s1.ring().members().len(), 2);

    let mut heavier = svc("a", "web");
    heavier.weight = 3;
    cat.apply(MemberEvent::Updated(heavier));
    let s2 = cat.snapshot("web").expect("group exists");
    assert!(s2.version() > s1.version());
    assert_eq!(s2.members()[0].weight, 3);
    // The old snapshot a reader holds is untouched.
    assert_eq!(s1.members()[0].weight, 1);

    cat.apply(MemberEvent::Left(svc("a", "web")));
    cat.apply(MemberEvent::Failed(svc("b", "web")));
    assert!(cat.snapshot("web").is_none());
    assert!(cat.groups().is_empty());
    let empty = cat.snapshot_or_empty("web");
    assert!(empty.is_empty() && empty.version() > s2.version());
}

#[test]
fn repeated_identical_event_changes_nothing() {
    let cat = Catalog::new();
    assert_eq!(cat.apply_batch([MemberEvent::Joined(svc("a", "g"))]), ["g"]);
    let v = cat.version();
    assert!(cat.apply_batch([MemberEvent::Joined(svc("a", "g"))]).is_empty());
    assert!(cat.apply_batch([MemberEvent::Left(svc("zz", "g"))]).is_empty());
    assert_eq!(cat.version(), v);
}

#[test]
fn member_moving_group_leaves_the_old_one() {
    let cat = Catalog::new();
    cat.apply(MemberEvent::Joined(svc("a", "g1")));
    cat.apply(MemberEvent::Joined(svc("b", "g1")));
    let touched = cat.apply_batch([MemberEvent::Updated(svc("a", "g2"))]);
    assert_eq!(touched, ["g1", "g2"]);
    assert_eq!(ids(&cat.snapshot("g1").expect("g1")), ["b"]);
    assert_eq!(ids(&cat.snapshot("g2").expect("g2")), ["a"]);
    // A leave naming the stale group still removes the id where it is.
    cat.apply(MemberEvent::Left(svc("a", "g1")));
    assert!(cat.snapshot("g2").is_none());
    assert_eq!(ids(&cat.snapshot("g1").expect("g1")), ["b"]);
}

#[test]
fn invalid_events_change_nothing() {
    let cat = Catalog::new();
    cat.apply(MemberEvent::Joined(svc("a", "g")));
    let before = cat.snapshot("g").expect("g");
    let mut zero = svc("b", "g");
    zero.weight = 0;
    let touched = cat.apply_batch([
        MemberEvent::Joined(zero),
        MemberEvent::Joined(svc("", "g")),
        MemberEvent::Joined(svc("c", "")),
    ]);
    assert!(touched.is_empty());
    let after = cat.snapshot("g").expect("g");
    assert_eq!(after.version(), before.version());
    assert_eq!(ids(&after), ["a"]);
}

#[test]
fn subscribers_see_every_change_including_the_empty_group() {
    let cat = Catalog::new();
    let mut rx = cat.subscribe("g");
    assert!(rx.borrow_and_update().is_empty());
    cat.apply(MemberEvent::Joined(svc("a", "g")));
    assert!(rx.has_changed().expect("sender alive"));
    assert_eq!(ids(&rx.borrow_and_update()), ["a"]);
    cat.apply(MemberEvent::Joined(svc("x", "other")));
    assert!(!rx.has_changed().expect("sender alive"));
    cat.apply(MemberEvent::Left(svc("a", "g")));
    let last = rx.borrow_and_update().clone();
    assert!(last.is_empty());
    assert_eq!(last.group(), "g");
    // A second subscriber starts from the current state.
    let rx2 = cat.subscribe("g");
    assert_eq!(rx2.borrow().version(), last.version());
}

#[test]
fn watchers_of_abandoned_groups_are_forgotten() {
    let cat = Catalog::new();
    for i in 0..100 {
        drop(cat.subscribe(&format!("g{i}")));
    }
    let kept = cat.subscribe("kept");
    let _again = cat.subscribe("other");
    assert_eq!(cat.lock().watchers.len(), 2);
    drop(kept);
}

fn limited(max_groups: usize, max_members_per_group: usize) -> Catalog {
    Catalog::with_limits(CatalogLimits {
        max_groups,
        max_members_per_group,
        ..CatalogLimits::default()
    })
}

#[test]
fn a_full_group_refuses_a_new_member_and_a_leave_admits_it() {
    let cat = limited(10, 2);
    cat.apply_batch([
        MemberEvent::Joined(svc("a", "g")),
        MemberEvent::Joined(svc("b", "g")),
    ]);
    let before = cat.snapshot("g").expect("g");
    let touched = cat.apply_batch([MemberEvent::Joined(svc("c", "g"))]);
    assert!(touched.is_empty());
    assert_eq!(cat.limit_rejections().get(Limit::MembersPerGroup), 1);
    let after = cat.snapshot("g").expect("g");
    assert_eq!(ids(&after), ["a", "b"]);
    assert_eq!(after.version(), before.version());
    assert_eq!(cat.waiting(), 1);
    // Existing members keep working: an update of one is applied.
    let mut heavier = svc("a", "g");
    heavier.weight = 2;
    cat.apply(MemberEvent::Updated(heavier));
    assert_eq!(cat.snapshot("g").expect("g").members()[0].weight, 2);
    assert_eq!(cat.limit_rejections().get(Limit::MembersPerGroup), 1);
    // A leave frees a slot: the waiting member gets it at once.
    let touched = cat.apply_batch([MemberEvent::Left(svc("b", "g"))]);
    assert_eq!(touched, ["g"]);
    assert_eq!(ids(&cat.snapshot("g").expect("g")), ["a", "c"]);
    assert_eq!(cat.waiting(), 0);
    assert_eq!(cat.limit_rejections().get(Limit::MembersPerGroup), 1);
}

#[test]
fn the_registry_group_is_not_capped_by_count() {
    let cat = limited(10, 1);
    cat.apply_batch([
        MemberEvent::Joined(svc("r1", REGISTRY_GROUP)),
        MemberEvent::Joined(svc("r2", REGISTRY_GROUP)),
    ]);
    assert_eq!(
        ids(&cat.snapshot(REGISTRY_GROUP).expect("registries")),
        ["r1", "r2"]
    );
    assert_eq!(cat.limit_rejections().get(Limit::MembersPerGroup), 0);
}

#[test]
fn a_member_moving_out_of_a_full_group_makes_room() {
    let cat = limited(10, 1);
    cat.apply(MemberEvent::Joined(svc("a", "g")));
    cat.apply(MemberEvent::Joined(svc("b", "g")));
    assert_eq!(cat.waiting(), 1);
    let touched = cat.apply_batch([MemberEvent::Updated(svc("a", "g2"))]);
    assert_eq!(touched, ["g", "g2"]);
    assert_eq!(ids(&cat.snapshot("g").expect("g")), ["b"]);
    assert_eq!(ids(&cat.snapshot("g2").expect("g2")), ["a"]);
    assert_eq!(cat.waiting(), 0);
}

#[test]
fn a_refused_member_that_leaves_is_forgotten() {
    let cat = limited(10, 1);
    cat.apply(MemberEvent::Joined(svc("a", "g")));
    cat.apply(MemberEvent::Joined(svc("b", "g")));
    cat.apply(MemberEvent::Joined(svc("b", "g")));
    assert_eq!(cat.limit_rejections().get(Limit::MembersPerGroup), 2);
    assert_eq!(cat.waiting(), 1);
    // Both are taken in: one published, one waiting; not with other metadata.
    assert!(cat.holds(&svc("a", "g")) && cat.holds(&svc("b", "g")));
    let mut heavier = svc("b", "g");
    heavier.weight = 3;
    assert!(!cat.holds(&heavier));
    assert!(!cat.holds(&svc("c", "g")) && !cat.holds(&svc("a", "g2")));
    assert!(cat.apply_batch([MemberEvent::Failed(svc("b", "g"))]).is_empty());
    assert!(!cat.holds(&svc("b", "g")));
    assert_eq!(cat.waiting(), 0);
    cat.apply(MemberEvent::Left(svc("a", "g")));
    assert!(cat.snapshot("g").is_none());
}

#[test]
fn the_group_limit_refuses_new_groups_only() {
    let cat = limited(2, 10);
    cat.apply_batch([
        MemberEvent::Joined(svc("a", "g1")),
        MemberEvent::Joined(svc("b", "g2")),
        MemberEvent::Joined(svc("c", "g3")),
        MemberEvent::Joined(svc("d", "g1")),
    ]);
    assert_eq!(cat.groups().len(), 2);
    assert!(cat.snapshot("g3").is_none());
    assert_eq!(ids(&cat.snapshot("g1").expect("g1")), ["a", "d"]);
    assert_eq!(cat.limit_rejections().get(Limit::Groups), 1);
    // A member alone in its group may move to a new group (the count
    // stays the same), but not out of a group it shares.
    cat.apply(MemberEvent::Updated(svc("b", "g4")));
    assert!(cat.snapshot("g2").is_none());
    assert_eq!(ids(&cat.snapshot("g4").expect("g4")), ["b"]);
    cat.apply(MemberEvent::Updated(svc("a", "g5")));
    assert_eq!(ids(&cat.snapshot("g1").expect("g1")), ["a", "d"]);
    assert_eq!(cat.limit_rejections().get(Limit::Groups), 2);
    // The last member of g4 leaves: the waiting are tried in id order,
    // so a's move gets the free group and c (waiting for g3) waits on.
    cat.apply(MemberEvent::Left(svc("b", "g4")));
    let names: Vec<String> = cat.groups().iter().map(|g| g.group().to_string()).collect();
    assert_eq!(names, ["g1", "g5"]);
    assert_eq!(ids(&cat.snapshot("g1").expect("g1")), ["d"]);
    assert_eq!(cat.waiting(), 1);
    assert_eq!(cat.limit_rejections().get(Limit::Groups), 2);
}

#[test]
fn the_ring_weight_cap_refuses_instead_of_failing() {
    let weighing = |id: &str, weight: u32| {
        let mut s = svc(id, "g");
        s.weight = weight;
        s
    };
    let cat = Catalog::new();
    cat.apply(MemberEvent::Joined(svc("a", "g")));
    // Pretend the group is one short of the cap (a real one would need
    // a 285 MB ring).
    // (A member of the plan only: the weight counts, no ring holds it.)
    {
        let mut state = cat.lock();
        let g = state.groups.get_mut("g").expect("g");
        let before = g.plan.memory_bytes();
        g.plan.add("pretend", (MAX_TOTAL_WEIGHT - 2) as u32);
        let grown = g.plan.memory_bytes() - before;
        state.ring_bytes += grown;
    }
    let v = cat.version();
    assert!(cat
        .apply_batch([MemberEvent::Joined(weighing("b", 2))])
        .is_empty());
    assert_eq!(cat.version(), v);
    assert_eq!(cat.limit_rejections().get(Limit::RingWeight), 1);
    cat.apply(MemberEvent::Joined(weighing("c", 1)));
    // An update that would go over is refused; the member keeps its
    // old weight. (c's join above found no room for b either.)
    assert!(cat
        .apply_batch([MemberEvent::Updated(weighing("a", 2))])
        .is_empty());
    assert_eq!(cat.limit_rejections().get(Limit::RingWeight), 2);
    assert_eq!(ids(&cat.snapshot("g").expect("g")), ["a", "c"]);
    assert_eq!(cat.snapshot("g").expect("g").members()[0].weight, 1);
    // c leaves: a's update fits now (id order), b still does not.
    cat.apply(MemberEvent::Left(svc("c", "g")));
    let snap = cat.snapshot("g").expect("g");
    assert_eq!(ids(&snap), ["a"]);
    assert_eq!(snap.members()[0].weight, 2);
    assert_eq!(cat.waiting(), 1);
    assert_eq!(cat.lock().groups["g"].plan.weight(), MAX_TOTAL_WEIGHT);
}

#[test]
fn invalid_metadata_is_counted_by_limit() {
    let cat = Catalog::new();
    let mut heavy = svc("a", "g");
    heavy.weight = crate::service::MAX_WEIGHT + 1;
    let mut tagged = svc("b", "g");
    tagged
        .tags
        .insert("k".into(), "v".repeat(crate::service::MAX_TAGS_BYTES));
    let mut far = svc("c", "g");
    far.addr = "x".repeat(crate::service::MAX_NAME_LEN + 1);
    assert!(cat
        .apply_batch([
            MemberEvent::Joined(heavy),
            MemberEvent::Joined(tagged),
            MemberEvent::Joined(far),
        ])
        .is_empty());
    for l in [Limit::Weight, Limit::TagsBytes, Limit::NameBytes] {
        assert_eq!(cat.limit_rejections().get(l), 1, "{l:?}");
    }
}

#[test]
fn lookups_reject_bad_input_and_empty_groups() {
    let cat = Catalog::new();
    assert!(matches!(cat.match_key("", "k"), Err(Error::InvalidArgument(_))));
    assert!(matches!(cat.match_key("g", ""), Err(Error::InvalidArgument(_))));
    assert!(matches!(cat.match_key("g", "k"), Err(Error::NotFound(m)) if m.contains("\"g\"")));
    let empty = GroupSnapshot::empty("g", 1);
    assert!(matches!(empty.match_key("k"), Err(Error::NotFound(_))));
    assert!(matches!(empty.match_n("k", 0), Err(Error::InvalidArgument(_))));
    let dup = GroupSnapshot::new("g", 1, vec![Arc::new(svc("a", "g")), Arc::new(svc("a", "g"))]);
    assert!(matches!(dup, Err(Error::InvalidArgument(m)) if m.contains("duplicate")));
}

/// A member `id` alone in group `id` with weight 1,000.
fn heavy(id: &str) -> Service {
    let mut s = svc(id, id);
    s.weight = 1000;
    s
}

/// Sum of the published rings' bytes.
fn published_ring_bytes(cat: &Catalog) -> usize {
    cat.groups().iter().map(|g| g.ring().memory_bytes()).sum()
}

#[test]
fn the_ring_memory_budget_refuses_counts_and_admits_when_room_frees() {
    let one = Ring::new([("g1", 1000)]).expect("ring").memory_bytes();
    let cat = Catalog::with_limits(CatalogLimits {
        max_ring_memory: 2 * one + one / 2,
        ..CatalogLimits::default()
    });
    cat.apply_batch([MemberEvent::Joined(heavy("g1")), MemberEvent::Joined(heavy("g2"))]);
    assert_eq!(cat.ring_memory(), published_ring_bytes(&cat));
    let v = cat.version();
    assert!(cat.apply_batch([MemberEvent::Joined(heavy("g3"))]).is_empty());
    assert_eq!(cat.version(), v);
    assert!(cat.snapshot("g3").is_none());
    assert_eq!(cat.limit_rejections().get(Limit::RingMemory), 1);
    assert_eq!(cat.waiting(), 1);
    // A heavier weight in a full registry is refused too; a lighter one fits.
    let mut heavier = svc("g1b", "g1");
    heavier.weight = 1000;
    assert!(cat.apply_batch([MemberEvent::Joined(heavier)]).is_empty());
    assert_eq!(cat.limit_rejections().get(Limit::RingMemory), 2);
    // The registries' own group is never refused.
    let mut registry = svc("r1", REGISTRY_GROUP);
    registry.weight = 1000;
    cat.apply(MemberEvent::Joined(registry.clone()));
    assert!(cat.snapshot(REGISTRY_GROUP).is_some());
    assert!(cat.ring_memory() > 2 * one + one / 2);
    cat.apply(MemberEvent::Left(registry));
    // g1 leaves: the waiting members are retried in id order; g1b, alone
    // in g1 now, fits; g3 still does not (not counted again).
    cat.apply(MemberEvent::Left(heavy("g1")));
    assert_eq!(ids(&cat.snapshot("g1").expect("g1")), ["g1b"]);
    assert!(cat.snapshot("g3").is_none());
    assert_eq!(cat.limit_rejections().get(Limit::RingMemory), 2);
    // g2 leaves: g3 is admitted.
    cat.apply(MemberEvent::Left(heavy("g2")));
    assert!(cat.snapshot("g3").is_some());
    assert_eq!(cat.waiting(), 0);
    assert_eq!(cat.ring_memory(), published_ring_bytes(&cat));
    assert!(cat.ring_memory() <= 2 * one + one / 2);
}

#[test]
fn a_thousand_lone_heavy_groups_take_under_32_mib_and_give_it_back() {
    let cat = Catalog::new();
    cat.apply_batch((0..1000).map(|i| MemberEvent::Joined(heavy(&format!("svc-{i}")))));
    assert_eq!(cat.groups().len(), 1000);
    let bytes = cat.ring_memory();
    assert_eq!(bytes, published_ring_bytes(&cat));
    // Before scaling: 1,000 rings of 1,792,000 points, 7.7 GB.
    assert!(bytes < 32 << 20, "{bytes}");
    cat.apply_batch((0..1000).map(|i| MemberEvent::Left(heavy(&format!("svc-{i}")))));
    assert_eq!(cat.ring_memory(), 0);
    assert!(cat.groups().is_empty());
    let state = cat.lock();
    assert!(state.groups.capacity() < 1000 && state.group_of.capacity() < 1000);
}

/// Found by the C view test on the `scaled-mixed` vector group: a leave
/// can make the rest of a scaled group's ring larger (a finer scale level
/// or a larger index), and the catalog's accounting subtracted the
/// difference unsigned and panicked. Every order of leaves of that group,
/// and of joins, keeps the total equal to the published rings'.
#[test]
fn ring_memory_stays_exact_when_a_leave_grows_the_rest_of_a_scaled_ring() {
    let members = [
        ("big", 1000),
        ("half", 500),
        ("tenth", 100),
        ("seven", 7),
        ("one", 1),
    ];
    let service = |(id, w): (&str, u32)| {
        let mut s = svc(id, "mixed");
        s.weight = w;
        s
    };
    // Every order of the five leaves (and the reverse order of joins).
    let mut order: Vec<usize> = (0..members.len()).collect();
    let mut orders = Vec::new();
    permutations(&mut order, 0, &mut orders);
    assert_eq!(orders.len(), 120);
    for order in orders {
        let cat = Catalog::new();
        for &i in order.iter().rev() {
            cat.apply(MemberEvent::Joined(service(members[i])));
            assert_eq!(cat.ring_memory(), published_ring_bytes(&cat), "{order:?}");
        }
        for &i in &order {
            cat.apply(MemberEvent::Failed(service(members[i])));
            assert_eq!(cat.ring_memory(), published_ring_bytes(&cat), "{order:?}");
        }
        assert_eq!(cat.ring_memory(), 0);
    }
}

/// Every permutation of `v[k..]` (Heap's algorithm would do; this is short).
fn permutations(v: &mut Vec<usize>, k: usize, out: &mut Vec<Vec<usize>>) {
    if k == v.len() {
        out.push(v.clone());
        return;
    }
    for i in k..v.len() {
        v.swap(k, i);
        permutations(v, k + 1, out);
        v.swap(k, i);
    }
}

#[test]
fn checksums_follow_membership_not_versions_or_event_order() {
    let (one, two) = (Catalog::new(), Catalog::new());
    one.apply_batch([
        MemberEvent::Joined(svc("a", "g")),
        MemberEvent::Joined(svc("b", "g")),
    ]);
    two.apply(MemberEvent::Joined(svc("c", "g")));
    two.apply(MemberEvent::Joined(svc("b", "g")));
    two.apply(MemberEvent::Joined(svc("a", "g")));
    two.apply(MemberEvent::Left(svc("c", "g")));
    let (s1, s2) = (
        one.snapshot("g").expect("group"),
        two.snapshot("g").expect("group"),
    );
    assert_ne!(s1.version(), s2.version());
    assert_eq!(s1.checksum(), s2.checksum());
    assert_eq!(s1.checksum(), s1.ring().checksum());
    let mut heavier = svc("a", "g");
    heavier.weight = 2;
    one.apply(MemberEvent::Updated(heavier));
    let s3 = one.snapshot("g").expect("group");
    assert_ne!(s3.checksum(), s1.checksum());
    // Address or tag changes do not change which keys a member owns.
    let mut moved = svc("b", "g");
    moved.addr = "127.0.0.1:9".into();
    one.apply(MemberEvent::Updated(moved));
    assert_eq!(one.snapshot("g").expect("group").checksum(), s3.checksum());
    assert_eq!(
        one.snapshot_or_empty("none").checksum(),
        Ring::default().checksum()
    );
}
