//! Unit tests of the gossip machine: inputs found by the fuzz targets.

use super::*;
use crate::gossip::packet::WIRE_PLAIN;

/// A metadata record for `node` carrying `service` at `version`, as a
/// plain `KIND_META_SPREAD` datagram.
fn spread(node: NodeId, version: u64, service: &Service) -> Vec<u8> {
    let rec = MetaRecord {
        node,
        version,
        leaving: false,
        service: service.clone(),
    };
    let mut d = vec![WIRE_PLAIN, KIND_META_SPREAD];
    d.extend_from_slice(&rec.encode());
    d
}

/// Found while writing the gossip fuzz targets' invariants: a spread
/// record went through foca's handler as if it were our own broadcast,
/// so a record naming our identity replaced our own metadata (input
/// `fuzz/corpus/gossip_plain/seed-regress-own-address`).
#[test]
fn a_spread_record_for_our_address_is_refused() {
    let me = NodeId::with_gen("127.0.0.1:7001".parse().unwrap(), 5);
    let peer: SocketAddr = "127.0.0.1:7002".parse().unwrap();
    let local = Service::new("me", "g", "10.0.0.1:80");
    let mut m = Machine::new(&GossipConfig::lan(), me, local.clone(), 1).unwrap();
    m.drain();
    assert!(m.knows(&local));

    let mut forged = local.clone();
    forged.weight = 9;
    m.handle_packet(peer, &spread(me, 7, &forged));
    let other = Service::new("intruder", "g", "10.0.0.2:80");
    m.handle_packet(peer, &spread(me, 8, &other));
    m.handle_packet(peer, &spread(NodeId::with_gen(me.addr, 6), 1, &other));
    assert_eq!(m.members(), vec![local.clone()]);
    assert_eq!(m.stats().dropped_rejected, 3);
    let events = m.drain().events;
    assert!(events.is_empty(), "{events:?}");

    // A spread record of another member is still applied.
    let peer_id = NodeId::with_gen(peer, 3);
    m.handle_packet(peer, &spread(peer_id, 1, &other));
    assert_eq!(m.stats().dropped_rejected, 3);
    assert_eq!(m.stats().dropped_bad_metadata, 0);
}

/// Found by the `gossip_sealed` fuzz target: foca renamed another
/// identity at our own address, and the rename handler moved our own
/// record to that identity; once a rival claiming our id went down, our
/// service left our own view (input
/// `fuzz/corpus/gossip_sealed/seed-regress-own-rename`).
#[test]
fn news_of_another_identity_at_our_address_leaves_our_record_alone() {
    let me = NodeId::with_gen("127.0.0.1:7001".parse().unwrap(), 1001);
    let local = Service::new("me", "g", "10.0.0.1:80");
    let mut m = Machine::new(&GossipConfig::lan(), me, local.clone(), 1).unwrap();
    m.drain();

    let older = NodeId::with_gen(me.addr, 489);
    let newer = NodeId::with_gen(me.addr, 1641);
    m.on_notification(OwnedNotification::MemberUp(older));
    m.on_notification(OwnedNotification::Rename(older, newer));
    m.on_notification(OwnedNotification::MemberDown(newer));
    m.recompute_view();
    assert_eq!(
        lock(&m.meta.table).entries[&me.addr].node,
        me,
        "our record was moved"
    );
    assert_eq!(m.members(), vec![local.clone()]);
    assert!(m.drain().events.is_empty());

    // Our record is still ours when the view is recomputed later.
    m.view.dirty.insert(local.id.clone());
    m.recompute_view();
    assert!(m.knows(&local));
}

/// A new node announces to its seeds as soon as its first announce timer
/// fires (due at once), not a join period later; the next announce to
/// them waits for that period.
#[test]
fn the_first_announce_goes_out_when_the_first_timer_fires() {
    let me = NodeId::with_gen("127.0.0.1:7001".parse().unwrap(), 1);
    let seed: SocketAddr = "127.0.0.1:7002".parse().unwrap();
    let config = GossipConfig::lan();
    let mut m = Machine::new(&config, me, Service::new("me", "g", "10.0.0.1:80"), 1).unwrap();
    m.set_seeds(vec![seed]);
    let announce = |out: &Output| {
        out.timers
            .iter()
            .find_map(|(after, t)| matches!(t, MachineTimer::Announce(_)).then(|| (*after, t.clone())))
    };
    let (after, timer) = announce(&m.drain()).expect("an announce timer at start");
    assert_eq!(after, Duration::ZERO);
    m.handle_timer(timer);
    let out = m.drain();
    assert!(
        out.packets.iter().any(|(to, _)| *to == seed),
        "no datagram to the seed: {:?}",
        out.packets.iter().map(|(to, _)| to).collect::<Vec<_>>()
    );
    let (next, _) = announce(&out).expect("the next announce is scheduled");
    assert_eq!(next, config.join_retry_interval);
}

/// The datagrams `to` sends back for a sync request (without a record)
/// from `from`.
fn sync_answer(to: &mut Machine, from: SocketAddr) -> Vec<Vec<u8>> {
    to.drain();
    to.handle_packet(from, &[WIRE_PLAIN, KIND_SYNC_REQUEST]);
    to.drain()
        .packets
        .into_iter()
        .filter(|(dst, _)| *dst == from)
        .map(|(_, d)| d)
        .collect()
}

/// A node whose gate is closed answers a sync with the joining kind: its
/// receiver applies it (it counts for the claim on an id) but does not
/// count it as a sync with the cluster; once the gate opens, it does.
#[test]
fn a_sync_answer_from_a_joining_node_does_not_count_as_joined() {
    let (a, b): (SocketAddr, SocketAddr) = (
        "127.0.0.1:7001".parse().unwrap(),
        "127.0.0.1:7002".parse().unwrap(),
    );
    let joining = GossipConfig {
        joining: true,
        ..GossipConfig::lan()
    };
    let mut ma = Machine::new(
        &joining,
        NodeId::with_gen(a, 1),
        Service::new("ra", "g", "10.0.0.1:80"),
        1,
    )
    .unwrap();
    let mut mb = Machine::new(
        &joining,
        NodeId::with_gen(b, 1),
        Service::new("rb", "g", "10.0.0.2:80"),
        2,
    )
    .unwrap();
    assert!(mb.is_joining());

    let answer = sync_answer(&mut mb, a);
    assert!(!answer.is_empty());
    assert!(
        answer.iter().all(|d| d[1] == KIND_META_BATCH_JOINING),
        "joining kind"
    );
    for d in &answer {
        ma.handle_packet(b, d);
    }
    assert!(
        ma.stats().syncs_received > 0,
        "still an answer (the claim uses it)"
    );
    assert_eq!(ma.stats().syncs_from_joined, 0, "not a sync with the cluster");

    mb.set_joined();
    let answer = sync_answer(&mut mb, a);
    assert!(answer.iter().all(|d| d[1] == KIND_META_BATCH));
    for d in &answer {
        ma.handle_packet(b, d);
    }
    assert_eq!(ma.stats().syncs_from_joined, 1);
}

/// A services' node (never joining) answers with the plain kind.
#[test]
fn a_node_that_is_not_joining_answers_with_the_plain_kind() {
    let (a, s): (SocketAddr, SocketAddr) = (
        "127.0.0.1:7001".parse().unwrap(),
        "127.0.0.1:7003".parse().unwrap(),
    );
    let mut ms = Machine::new(
        &GossipConfig::lan(),
        NodeId::with_gen(s, 1),
        Service::new("web-1", "web", "10.0.0.3:80"),
        3,
    )
    .unwrap();
    assert!(!ms.is_joining());
    let answer = sync_answer(&mut ms, a);
    assert!(!answer.is_empty() && answer.iter().all(|d| d[1] == KIND_META_BATCH));
}
