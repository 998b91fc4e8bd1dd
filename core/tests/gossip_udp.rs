//! Gossip over real UDP on loopback: convergence, metadata, events,
//! leave, failure, update, encryption.

use registry_core::gossip::{GossipConfig, GossipNode, Keyring};
use registry_core::{MemberEvent, Service};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::time::{sleep, timeout, Instant};

fn svc(id: &str) -> Service {
    let mut s = Service::new(id, "g", format!("10.0.0.1:{}", 8000 + id.len()));
    s.tags.insert("zone".into(), format!("z-{id}"));
    s
}

fn cfg(seeds: &[&GossipNode], key: Option<Keyring>) -> GossipConfig {
    GossipConfig {
        seeds: seeds.iter().map(|n| n.local_addr().to_string()).collect(),
        keyring: key,
        ..GossipConfig::local()
    }
}

async fn start(id: &str, seeds: &[&GossipNode], key: Option<Keyring>) -> GossipNode {
    GossipNode::start(cfg(seeds, key), svc(id)).await.unwrap()
}

async fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        sleep(Duration::from_millis(20)).await;
    }
}

fn ids(n: &GossipNode) -> Vec<String> {
    n.members().into_iter().map(|s| s.id).collect()
}

async fn next_about(rx: &mut broadcast::Receiver<MemberEvent>, id: &str, limit: Duration) -> MemberEvent {
    timeout(limit, async {
        loop {
            let ev = rx.recv().await.unwrap();
            if ev.service().id == id {
                return ev;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no event about {id} within {limit:?}"))
}

#[tokio::test]
async fn three_nodes_converge_with_full_metadata() {
    let a = start("a", &[], None).await;
    let b = start("b", &[&a], None).await;
    let c = start("c", &[&a], None).await;
    let want = vec![svc("a"), svc("b"), svc("c")];
    wait_until("3 nodes converge", Duration::from_secs(5), || {
        [&a, &b, &c].iter().all(|n| n.members() == want)
    })
    .await;
    assert_eq!(a.stats().dropped_total(), 0);
}

#[tokio::test]
async fn late_node_learns_metadata_of_old_members() {
    let a = start("a", &[], None).await;
    let b = start("b", &[&a], None).await;
    let c = start("c", &[&b], None).await;
    wait_until("converge", Duration::from_secs(5), || {
        ids(&a).len() == 3 && ids(&c).len() == 3
    })
    .await;
    // Long after the metadata broadcasts have stopped being retransmitted.
    sleep(Duration::from_secs(3)).await;
    let late = start("late", &[&a], None).await;
    wait_until("late node learns every member", Duration::from_secs(5), || {
        late.members() == vec![svc("a"), svc("b"), svc("c"), svc("late")]
    })
    .await;
    wait_until("everyone learns the late node", Duration::from_secs(5), || {
        [&a, &b, &c].iter().all(|n| n.members().contains(&svc("late")))
    })
    .await;
}

#[tokio::test]
async fn join_update_leave_are_seen_by_all_without_false_failures() {
    let a = start("a", &[], None).await;
    let b = start("b", &[&a], None).await;
    let c = start("c", &[&a], None).await;
    wait_until("converge", Duration::from_secs(5), || {
        [&a, &b, &c].iter().all(|n| n.members().len() == 3)
    })
    .await;
    let mut rxs: Vec<_> = [&a, &b, &c].iter().map(|n| n.events()).collect();

    // Join.
    let d = start("d", &[&b], None).await;
    for rx in &mut rxs {
        assert_eq!(
            next_about(rx, "d", Duration::from_secs(3)).await,
            MemberEvent::Joined(svc("d"))
        );
    }

    // Metadata update: Updated everywhere, nothing else.
    let mut d2 = svc("d");
    d2.weight = 7;
    d2.addr = "10.0.0.9:1".into();
    d2.tags.insert("v".into(), "2".into());
    d.update(d2.clone()).await.unwrap();
    for rx in &mut rxs {
        assert_eq!(
            next_about(rx, "d", Duration::from_secs(3)).await,
            MemberEvent::Updated(d2.clone())
        );
    }
    let mut bad = d2.clone();
    bad.weight = 0;
    assert!(d.update(bad).await.is_err());
    let mut other_id = d2.clone();
    other_id.id = "zzz".into();
    assert!(d.update(other_id).await.is_err());

    // Graceful leave: applied by all within one protocol round (500 ms).
    let t0 = Instant::now();
    d.leave().await.unwrap();
    for rx in &mut rxs {
        assert_eq!(
            next_about(rx, "d", Duration::from_millis(500)).await,
            MemberEvent::Left(d2.clone())
        );
    }
    println!("leave applied by all after {:?}", t0.elapsed());
    for n in [&a, &b, &c] {
        assert!(!ids(n).contains(&"d".to_string()));
    }
    // No event about a, b or c at all (no false failures).
    for rx in &mut rxs {
        if let Ok(ev) = rx.try_recv() {
            panic!("unexpected event {ev:?}");
        }
    }
}

#[tokio::test]
async fn killed_node_is_declared_failed_by_all() {
    let a = start("a", &[], None).await;
    let b = start("b", &[&a], None).await;
    let c = start("c", &[&a], None).await;
    let k = start("k", &[&a], None).await;
    wait_until("converge", Duration::from_secs(5), || {
        [&a, &b, &c, &k].iter().all(|n| n.members().len() == 4)
    })
    .await;
    let mut rxs: Vec<_> = [&a, &b, &c].iter().map(|n| n.events()).collect();
    let t0 = Instant::now();
    k.shutdown(); // abort the task, no leave
    for rx in &mut rxs {
        assert_eq!(
            next_about(rx, "k", Duration::from_secs(10)).await,
            MemberEvent::Failed(svc("k"))
        );
    }
    println!("crash known to all after {:?}", t0.elapsed());
    for n in [&a, &b, &c] {
        assert_eq!(ids(n), vec!["a", "b", "c"]);
    }
}

#[tokio::test]
async fn encrypted_and_plain_or_wrong_key_nodes_ignore_each_other() {
    let k1 = Keyring::new([7; 32]);
    let a = start("a", &[], Some(k1.clone())).await;
    let b = start("b", &[&a], Some(k1.clone())).await;
    let plain = start("plain", &[&a, &b], None).await;
    let wrong = start("wrong", &[&a, &b], Some(Keyring::new([8; 32]))).await;
    // Also make a and b try to reach the outsiders.
    let c = start("c", &[&a, &plain, &wrong], Some(k1)).await;
    wait_until("encrypted nodes converge", Duration::from_secs(5), || {
        [&a, &b, &c].iter().all(|n| ids(n) == vec!["a", "b", "c"])
    })
    .await;
    sleep(Duration::from_millis(1500)).await;
    for n in [&a, &b, &c] {
        assert_eq!(ids(n), vec!["a", "b", "c"]);
    }
    assert_eq!(ids(&plain), vec!["plain"]);
    assert_eq!(ids(&wrong), vec!["wrong"]);
    let sa = a.stats();
    assert!(sa.dropped_unencrypted > 0, "{sa:?}");
    assert!(sa.dropped_decrypt_failed > 0, "{sa:?}");
    assert!(plain.stats().dropped_unexpected_encrypted > 0);
    assert!(wrong.stats().dropped_decrypt_failed > 0);
}

#[tokio::test]
async fn key_rotation_keeps_the_cluster_whole() {
    let (old, new) = ([1u8; 32], [2u8; 32]);
    let a = start("a", &[], Some(Keyring::new(old))).await;
    let b = start("b", &[&a], Some(Keyring::new(old))).await;
    let c = start("c", &[&a], Some(Keyring::new(old))).await;
    let nodes = [&a, &b, &c];
    wait_until("converge", Duration::from_secs(5), || {
        nodes.iter().all(|n| n.members().len() == 3)
    })
    .await;
    let mut rxs: Vec<_> = nodes.iter().map(|n| n.events()).collect();
    let steps = [
        Keyring::new(old).with_accepted(new),
        Keyring::new(new).with_accepted(old),
        Keyring::new(new),
    ];
    for ring in steps {
        // Roll the change one node at a time, with traffic in between.
        for n in nodes {
            n.set_keyring(Some(ring.clone())).await.unwrap();
            sleep(Duration::from_millis(300)).await;
        }
    }
    sleep(Duration::from_secs(2)).await;
    for n in nodes {
        assert_eq!(ids(n), vec!["a", "b", "c"]);
    }
    for rx in &mut rxs {
        if let Ok(ev) = rx.try_recv() {
            panic!("membership changed during rotation: {ev:?}");
        }
    }
    assert_eq!(a.stats().dropped_decrypt_failed, 0);
}

#[tokio::test]
async fn bind_failure_is_a_clear_error() {
    let a = start("a", &[], None).await;
    let cfg = GossipConfig {
        bind: a.local_addr(),
        ..GossipConfig::local()
    };
    let err = GossipNode::start(cfg, svc("x")).await.unwrap_err();
    assert!(err.to_string().contains("cannot bind"), "{err}");
    let mut too_big = svc("x");
    too_big.tags.insert("k".into(), "v".repeat(600));
    assert!(GossipNode::start(GossipConfig::local(), too_big).await.is_err());
}
