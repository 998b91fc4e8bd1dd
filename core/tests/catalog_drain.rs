//! Draining in the catalog: a draining member stays listed and owns no
//! keys, its ring memory is accounted exactly, and serving again restores
//! its keys and the group's checksum.

use registry_core::catalog::Catalog;
use registry_core::{Error, MemberEvent, Route, Service};

fn svc(id: &str, group: &str) -> Service {
    Service::new(id, group, format!("127.0.0.1:{}", 1000 + id.len()))
}

fn ids(snap: &registry_core::catalog::GroupSnapshot) -> Vec<&str> {
    snap.members().iter().map(|s| s.id.as_str()).collect()
}

/// Sum of the published rings' bytes.
fn published_ring_bytes(cat: &Catalog) -> usize {
    cat.groups().iter().map(|g| g.ring().memory_bytes()).sum()
}

#[test]
fn a_draining_member_is_listed_owns_no_keys_and_serving_again_restores_its_keys() {
    let cat = Catalog::new();
    let mut members: Vec<Service> = ["a", "b", "c"].iter().map(|id| svc(id, "g")).collect();
    members[2].weight = 1000; // scales the ring: the level must follow the serving members
    for s in &members {
        cat.apply(MemberEvent::Joined(s.clone()));
    }
    let keys: Vec<String> = (0..2000).map(|k| format!("k{k}")).collect();
    let owners = |cat: &Catalog| -> Vec<String> {
        keys.iter()
            .map(|k| cat.match_key("g", k).expect("an owner").id.clone())
            .collect()
    };
    let serving = owners(&cat);
    let serving_sum = cat.snapshot("g").expect("g").checksum();
    assert!(serving.iter().any(|o| o == "c"));

    let mut drained = members[2].clone();
    drained.draining = true;
    cat.apply(MemberEvent::Updated(drained.clone()));
    let snap = cat.snapshot("g").expect("g");
    assert_eq!(ids(&snap), ["a", "b", "c"], "still listed");
    assert!(snap.members()[2].draining);
    assert_eq!(cat.ring_memory(), published_ring_bytes(&cat));
    let draining = owners(&cat);
    assert!(draining.iter().all(|o| o != "c"), "a draining member owns no key");
    for (before, after) in serving.iter().zip(&draining) {
        if before != "c" {
            assert_eq!(before, after, "only the draining member's keys move");
        }
    }
    for k in &keys[..200] {
        let ids: Vec<&str> = snap
            .match_n(k, 3)
            .expect("two serving")
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(ids.len(), 2);
        assert!(!ids.contains(&"c"));
    }

    // Its leave now moves no key; a group left only with draining members
    // answers NotFound and says why.
    cat.apply(MemberEvent::Left(drained.clone()));
    assert_eq!(owners(&cat), draining);
    cat.apply(MemberEvent::Joined(drained.clone()));
    assert_eq!(owners(&cat), draining);
    for s in &members[..2] {
        let mut d = s.clone();
        d.draining = true;
        cat.apply(MemberEvent::Updated(d));
    }
    assert!(matches!(cat.match_key("g", "k"), Err(Error::NotFound(m)) if m.contains("all 3 are draining")));
    assert_eq!(cat.snapshot("g").expect("g").members().len(), 3);
    assert_eq!(cat.ring_memory(), published_ring_bytes(&cat));

    // Serving again: exactly the keys and the checksum it had.
    for s in &members {
        cat.apply(MemberEvent::Updated(s.clone()));
    }
    assert_eq!(owners(&cat), serving);
    assert_eq!(cat.snapshot("g").expect("g").checksum(), serving_sum);
    assert_eq!(cat.ring_memory(), published_ring_bytes(&cat));
}

#[test]
fn route_handles_owned_keys_here_forwards_the_rest_and_a_draining_member_forwards_all() {
    let cat = Catalog::new();
    for id in ["a", "b", "c"] {
        cat.apply(MemberEvent::Joined(svc(id, "g")));
    }
    let snap = cat.snapshot("g").expect("g");
    let mut here = 0;
    for k in 0..1000 {
        let key = format!("k{k}");
        let owner = snap.match_key(&key).expect("owner").clone();
        match snap.route(&key, "b").expect("route") {
            Route::Here => {
                assert_eq!(owner.id, "b");
                here += 1;
            }
            Route::Forward(to) => assert_eq!(
                (to.id.as_str(), to.addr.as_str()),
                (owner.id.as_str(), owner.addr.as_str())
            ),
        }
    }
    assert!(here > 0);
    let mut b = svc("b", "g");
    b.draining = true;
    cat.apply(MemberEvent::Updated(b));
    let snap = cat.snapshot("g").expect("g");
    for k in 0..1000 {
        let key = format!("k{k}");
        assert!(matches!(snap.route(&key, "b"), Ok(Route::Forward(to)) if to.id != "b"));
    }
    assert!(matches!(snap.route("", "b"), Err(Error::InvalidArgument(_))));
}
