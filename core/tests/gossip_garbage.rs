//! Malformed, truncated, oversized and random datagrams are dropped and
//! counted; the node keeps working.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use registry_core::gossip::identity::NodeId;
use registry_core::gossip::packet::{MetaRecord, KIND_META, KIND_META_SPREAD, WIRE_PLAIN};
use registry_core::gossip::sim::{Sim, SimConfig};
use registry_core::gossip::{GossipConfig, GossipNode, Keyring};
use registry_core::Service;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::Duration;

fn svc(i: usize) -> Service {
    Service::new(format!("s{i}"), "g", format!("h:{}", i + 1))
}

/// Three converged nodes; datagrams sent by node 1 are captured as seeds
/// for mutation (valid bytes to truncate and flip).
fn converged(key: Option<Keyring>) -> Sim {
    let mut cfg = SimConfig::default();
    cfg.gossip.keyring = key;
    let mut sim = Sim::new(cfg);
    let a = sim.add_node(svc(0), &[]);
    sim.add_node(svc(1), &[a]);
    sim.add_node(svc(2), &[a]);
    assert!(sim.run_until(Duration::from_secs(5), |s| s.converged()).is_some());
    sim
}

fn datagram() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Anything at all.
        proptest::collection::vec(any::<u8>(), 0..1600),
        // Plain envelope, each body kind, random rest.
        (0u8..8, proptest::collection::vec(any::<u8>(), 0..300)).prop_map(|(k, rest)| {
            let mut d = vec![0x52, k];
            d.extend(rest);
            d
        }),
        // Sealed envelope with random ciphertext.
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(|rest| {
            let mut d = vec![0x53];
            d.extend(rest);
            d
        }),
    ]
}

fn check_still_works(sim: &mut Sim) {
    // A mutated packet may still be well-formed and say something false
    // (e.g. "s1 is down"); the cluster must recover from it by itself.
    assert!(sim
        .run_until(Duration::from_secs(10), |s| s.converged())
        .is_some());
    assert_eq!(sim.node(0).map(|m| m.member_count()), Some(3));
    let mut s = svc(1);
    s.weight = 3;
    sim.update(1, s.clone()).unwrap();
    assert!(sim
        .run_until(Duration::from_secs(5), |x| x.running().all(|(_, m)| m.knows(&s)))
        .is_some());
}

#[test]
fn random_and_mutated_datagrams_are_dropped_and_counted() {
    let sim = RefCell::new(converged(None));
    let from: SocketAddr = "10.9.9.9:1".parse().unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 2000,
        ..Config::default()
    });
    runner
        .run(&datagram(), |d| {
            let mut sim = sim.borrow_mut();
            let before = sim.node(0).map(|m| m.stats()).unwrap_or_default();
            sim.inject(0, from, &d);
            let after = sim.node(0).map(|m| m.stats()).unwrap_or_default();
            prop_assert_eq!(after.packets_received, before.packets_received + 1);
            // Anything not starting with a known wire tag is counted as dropped.
            if !matches!(d.first(), Some(0x52)) {
                prop_assert_eq!(after.dropped_total(), before.dropped_total() + 1);
            }
            Ok(())
        })
        .unwrap();
    let mut sim = sim.into_inner();
    let st = sim.node(0).map(|m| m.stats()).unwrap_or_default();
    assert!(
        st.dropped_bad_envelope > 0 && st.dropped_unexpected_encrypted > 0,
        "{st:?}"
    );
    check_still_works(&mut sim);
}

#[test]
fn truncated_and_bit_flipped_real_packets_are_dropped() {
    let mut sim = converged(None);
    // Real datagrams: pings, acks, gossip, metadata, sync answers.
    sim.tap(200);
    sim.leave(2); // forces metadata and membership traffic
    sim.run_for(Duration::from_secs(2));
    let samples = sim.take_tapped();
    assert!(samples.len() > 10);
    sim.restart(2, svc(2));
    assert!(sim.run_until(Duration::from_secs(5), |s| s.converged()).is_some());
    let from: SocketAddr = "10.9.9.9:1".parse().unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 2000,
        ..Config::default()
    });
    let sim = RefCell::new(sim);
    runner
        .run(
            &(
                any::<prop::sample::Index>(),
                any::<prop::sample::Index>(),
                1u8..,
                any::<bool>(),
            ),
            |(which, at, bit, cut)| {
                let mut d = samples[which.index(samples.len())].clone();
                // Keep the wire tag so the mutation reaches the decoders.
                let pos = 1 + at.index(d.len() - 1);
                if cut {
                    d.truncate(pos);
                } else {
                    d[pos] ^= bit;
                }
                sim.borrow_mut().inject(0, from, &d);
                Ok(())
            },
        )
        .unwrap();
    let mut sim = sim.into_inner();
    let st = sim.node(0).map(|m| m.stats()).unwrap_or_default();
    assert!(st.dropped_malformed > 0, "{st:?}");
    check_still_works(&mut sim);
}

/// The gossip address node `i` publishes `id` at, if it publishes it.
fn holder_of(sim: &Sim, i: usize, id: &str) -> Option<SocketAddr> {
    let members = sim.node(i)?.members_at();
    members.into_iter().find(|(_, s)| s.id == id).map(|(a, _)| a)
}

/// Found by a sweep of the bit-flip test's seeds (`PROPTEST_RNG_SEED=295`
/// and 478): one flipped address byte in a record of s1, injected from
/// outside the cluster, made foca take the address, where nothing runs,
/// for a live member; with a start as new as the real one and a larger
/// address it won the id at every node for 20 to 30 s. A record is now
/// taken only from the member it describes or from a live member.
#[test]
fn a_record_from_outside_cannot_invent_a_holder_of_an_id() {
    let mut sim = converged(None);
    let real = sim.addr(1);
    let relay: SocketAddr = "10.9.9.9:1".parse().unwrap();
    let bogus: SocketAddr = "10.0.117.1:7370".parse().unwrap();
    let gen = sim.node(1).map(|m| m.identity().gen).unwrap_or(0) + 1;
    let rec = MetaRecord {
        node: NodeId::with_gen(bogus, gen),
        version: 1,
        leaving: false,
        service: svc(1),
    };
    let datagram = |kind: u8, rec: &MetaRecord| {
        let mut d = vec![WIRE_PLAIN, kind];
        d.extend_from_slice(&rec.encode());
        d
    };
    let rejected = |sim: &Sim| sim.node(0).map(|m| m.stats().dropped_rejected).unwrap_or(0);
    let before = rejected(&sim);
    for kind in [KIND_META, KIND_META_SPREAD] {
        sim.inject(0, relay, &datagram(kind, &rec));
    }
    assert_eq!(rejected(&sim), before + 2, "each datagram is counted");
    for wait in [Duration::ZERO, Duration::from_secs(1), Duration::from_secs(10)] {
        sim.run_for(wait);
        for i in 0..3 {
            assert_eq!(holder_of(&sim, i, "s1"), Some(real), "node {i} after {wait:?}");
        }
    }
    // A record from the address it names is believed: it wins the id,
    // until the member that never answers is found down.
    let own = MetaRecord {
        version: 2,
        ..rec.clone()
    };
    sim.inject(0, bogus, &datagram(KIND_META, &own));
    assert_eq!(holder_of(&sim, 0, "s1"), Some(bogus));
    assert!(sim
        .run_until(Duration::from_secs(10), |s| (0..3)
            .all(|i| holder_of(s, i, "s1") == Some(real)))
        .is_some());
    check_still_works(&mut sim);
}

/// A record of a live member is taken from any address: a member behind
/// NAT sends from another address than the one it advertises.
#[test]
fn a_record_of_a_live_member_is_taken_from_any_address() {
    let mut sim = converged(None);
    let from: SocketAddr = "10.9.9.9:1".parse().unwrap();
    let mut moved = svc(1);
    moved.weight = 7;
    let rec = MetaRecord {
        node: sim.node(1).map(|m| m.identity()).unwrap(),
        version: 1000,
        leaving: false,
        service: moved.clone(),
    };
    let mut d = vec![WIRE_PLAIN, KIND_META];
    d.extend_from_slice(&rec.encode());
    sim.inject(0, from, &d);
    let st = sim.node(0).map(|m| m.stats()).unwrap_or_default();
    assert_eq!(st.dropped_rejected, 0, "{st:?}");
    assert!(sim.node(0).is_some_and(|m| m.knows(&moved)));
}

#[test]
fn encrypted_node_drops_everything_random() {
    let mut sim = converged(Some(Keyring::new([5; 32])));
    let from: SocketAddr = "10.9.9.9:1".parse().unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 500,
        ..Config::default()
    });
    let before = sim.node(0).map(|m| m.stats().dropped_total()).unwrap_or(0);
    let sim_cell = RefCell::new(&mut sim);
    runner
        .run(&datagram(), |d| {
            sim_cell.borrow_mut().inject(0, from, &d);
            Ok(())
        })
        .unwrap();
    let after = sim.node(0).map(|m| m.stats().dropped_total()).unwrap_or(0);
    assert_eq!(after - before, 500, "every random datagram is dropped");
    check_still_works(&mut sim);
}

#[tokio::test]
async fn udp_node_counts_junk_and_keeps_working() {
    let a = GossipNode::start(GossipConfig::local(), svc(0)).await.unwrap();
    let junk = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = a.local_addr();
    junk.send_to(&[], to).unwrap();
    junk.send_to(&[0x52], to).unwrap();
    junk.send_to(&[0x52, 0x01, 0xff], to).unwrap();
    junk.send_to(&[0x52, 0x03, 1, 2, 3], to).unwrap();
    junk.send_to(&[0x53; 60], to).unwrap();
    junk.send_to(&[0x52; 2000], to).unwrap();
    junk.send_to(b"GET / HTTP/1.1\r\n\r\n", to).unwrap();
    let end = tokio::time::Instant::now() + Duration::from_secs(3);
    while a.stats().packets_received < 7 {
        assert!(tokio::time::Instant::now() < end, "{:?}", a.stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let st = a.stats();
    assert_eq!(st.dropped_total(), 7, "{st:?}");
    assert_eq!(st.dropped_too_large, 1);
    assert_eq!(st.dropped_unexpected_encrypted, 1);
    // Still works: a new node joins and both see each other.
    let cfg = GossipConfig {
        seeds: vec![to.to_string()],
        ..GossipConfig::local()
    };
    let b = GossipNode::start(cfg, svc(1)).await.unwrap();
    while a.members().len() != 2 || b.members().len() != 2 {
        assert!(tokio::time::Instant::now() < end + Duration::from_secs(3));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
