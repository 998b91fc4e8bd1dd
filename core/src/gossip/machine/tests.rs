//! Unit tests of the gossip machine: inputs found by the fuzz targets.

use super::*;

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
