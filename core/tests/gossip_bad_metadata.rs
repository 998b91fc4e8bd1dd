//! A peer cannot inject what a local caller cannot: a metadata record
//! whose address or tags break the rules of `validate` is dropped when
//! gossip delivers it (counted as bad metadata), and never reaches a
//! member list, exactly as `Registration::start` would refuse it.
#![cfg(feature = "sim")]

use registry_core::gossip::packet::{MetaRecord, KIND_META, WIRE_PLAIN};
use registry_core::gossip::sim::{Sim, SimConfig};
use registry_core::Service;
use std::time::Duration;

fn svc(i: usize) -> Service {
    Service::new(format!("s{i}"), "g", format!("10.0.0.{i}:80"))
}

/// Three converged nodes.
fn converged() -> Sim {
    let mut sim = Sim::new(SimConfig::default());
    let a = sim.add_node(svc(1), &[]);
    sim.add_node(svc(2), &[a]);
    sim.add_node(svc(3), &[a]);
    assert!(sim.run_until(Duration::from_secs(5), |s| s.converged()).is_some());
    sim
}

/// A plain datagram carrying node 1's identity with `service` as its
/// newest metadata, as node 1 would send it.
fn record_from_node_1(sim: &Sim, service: &Service, version: u64) -> Vec<u8> {
    let node = sim.node(1).expect("node 1").identity();
    let rec = MetaRecord {
        node,
        version,
        leaving: false,
        service: service.clone(),
    };
    let mut d = vec![WIRE_PLAIN, KIND_META];
    d.extend(rec.encode());
    d
}

#[test]
fn a_record_with_a_bad_addr_or_tag_is_dropped_a_good_one_applied() {
    let mut sim = converged();
    let from = sim.addr(1);
    let bad_addrs = [
        "not an address",
        "h:0",
        "10.0.0.2",
        "evil:80\nfake 1.2.3.4:1",
        "[::1:80",
    ];
    let mut version = 1_000;
    for addr in bad_addrs {
        let mut bad = svc(2);
        bad.addr = addr.to_string();
        assert!(bad.validate().is_err(), "{addr:?} is refused locally");
        let before = sim.node(0).map(|m| m.stats()).unwrap_or_default();
        version += 1;
        sim.inject(0, from, &record_from_node_1(&sim, &bad, version));
        let after = sim.node(0).map(|m| m.stats()).unwrap_or_default();
        assert_eq!(
            after.dropped_bad_metadata,
            before.dropped_bad_metadata + 1,
            "{addr:?}"
        );
        sim.run_for(Duration::from_secs(1));
        assert!(
            sim.running().all(|(_, m)| !m.knows(&bad)),
            "{addr:?} reached a member list"
        );
        assert!(sim.running().all(|(_, m)| m.knows(&svc(2))));
    }
    let mut bad_tag = svc(2);
    bad_tag.tags.insert("zone".into(), "eu\u{1b}[2J".into());
    version += 1;
    sim.inject(0, from, &record_from_node_1(&sim, &bad_tag, version));
    sim.run_for(Duration::from_secs(1));
    assert!(sim.running().all(|(_, m)| !m.knows(&bad_tag)));

    // The same path applies a valid record: the drops above are the rule's.
    let mut good = svc(2);
    good.addr = "api-2.example:8080".into();
    version += 1;
    sim.inject(0, from, &record_from_node_1(&sim, &good, version));
    assert!(sim.node(0).is_some_and(|m| m.knows(&good)));
}
