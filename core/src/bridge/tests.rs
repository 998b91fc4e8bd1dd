use super::*;
use crate::gossip::GossipConfig;

fn ids(catalog: &Catalog, group: &str) -> Vec<String> {
    catalog
        .snapshot_or_empty(group)
        .members()
        .iter()
        .map(|s| s.id.clone())
        .collect()
}

async fn node(id: &str, seeds: &[&Bridge]) -> GossipNode {
    let config = GossipConfig {
        seeds: seeds.iter().map(|b| b.gossip_addr().to_string()).collect(),
        ..GossipConfig::local()
    };
    let addr = format!("127.0.0.1:{}", 7000 + id.len());
    GossipNode::start(config, Service::new(id, crate::service::REGISTRY_GROUP, addr))
        .await
        .expect("start gossip")
}

/// Records each batch's touched groups.
fn recorder() -> (OnTouched, Arc<Mutex<Vec<Vec<String>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let on: OnTouched = Arc::new(move |g: &[String]| sink.lock().unwrap().push(g.to_vec()));
    (on, seen)
}

#[test]
fn resync_removes_the_gone_and_keeps_the_live() {
    let catalog = Catalog::new();
    catalog.apply_batch([
        MemberEvent::Joined(Service::new("a", "web", "127.0.0.1:1")),
        MemberEvent::Joined(Service::new("b", "web", "127.0.0.1:2")),
        MemberEvent::Joined(Service::new("c", "api", "127.0.0.1:3")),
    ]);
    let live = vec![
        Service::new("b", "web", "127.0.0.1:2"),
        Service::new("d", "api", "127.0.0.1:4"),
    ];
    catalog.apply_batch(resync_events(&catalog, live));
    assert_eq!(ids(&catalog, "web"), ["b"]);
    assert_eq!(ids(&catalog, "api"), ["d"]);
}

#[tokio::test(flavor = "current_thread")]
async fn injected_events_already_queued_are_applied_in_one_batch() {
    let catalog = Arc::new(Catalog::new());
    let (on, seen) = recorder();
    let bridge = Bridge::start(node("me", &[]).await, "me".into(), catalog.clone(), on);
    assert_eq!(seen.lock().unwrap().len(), 1, "own entry applied at start");
    let tx = bridge.events();
    // Queued before the feeder runs (one thread): one batch.
    for i in 0..100 {
        let g = format!("g{}", i % 10);
        tx.try_send(MemberEvent::Joined(Service::new(
            format!("s{i}"),
            g,
            "127.0.0.1:1",
        )))
        .unwrap();
    }
    while bridge.events_applied() < 100 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let batches = seen.lock().unwrap().clone();
    assert_eq!(batches.len(), 2, "{batches:?}");
    assert_eq!(batches[1].len(), 10);
    assert_eq!(ids(&catalog, "g3").len(), 10);
    assert_eq!(ids(&catalog, crate::service::REGISTRY_GROUP), ["me"]);
}

#[tokio::test]
async fn a_lagged_subscription_resyncs_the_catalog() {
    let catalog = Arc::new(Catalog::new());
    let (on, _seen) = recorder();
    let gossip = node("me", &[]).await;
    let shared = Shared::new(catalog.clone(), on, gossip);
    // The catalog still holds a member that left while events were missed.
    shared.apply(vec![MemberEvent::Joined(Service::new(
        "gone",
        crate::service::REGISTRY_GROUP,
        "127.0.0.1:9",
    ))]);
    let (tx, mut rx) = broadcast::channel(1);
    for id in ["x", "y", "z"] {
        let _ = tx.send(MemberEvent::Joined(Service::new(id, "web", "127.0.0.1:1")));
    }
    let mut batch = Vec::new();
    // Lagged on the first read: the node's members replace the catalog's.
    assert!(take_ready(&shared, &mut rx, &mut batch));
    assert!(batch.is_empty());
    assert_eq!(
        ids(&catalog, crate::service::REGISTRY_GROUP),
        ["me"],
        "gone removed, me added"
    );
    assert!(ids(&catalog, "web").is_empty());
    // Left: no resync possible, the feeder stops.
    shared.node.lock().unwrap().take();
    assert!(!resync(&shared, &mut rx, 1));
}

#[tokio::test]
async fn the_gate_opens_only_after_a_sync_with_every_member_held() {
    let (on, _) = recorder();
    let alone = Bridge::start(node("a", &[]).await, "a".into(), Arc::new(Catalog::new()), on);
    assert!(!alone.joined(), "no sync answer yet");
    assert!(!alone.wait_joined(Duration::from_millis(100)).await);

    let (on, _) = recorder();
    let catalog = Arc::new(Catalog::new());
    let joiner = Bridge::start(node("bb", &[&alone]).await, "bb".into(), catalog.clone(), on);
    assert!(joiner.wait_joined(Duration::from_secs(10)).await);
    assert_eq!(ids(&catalog, crate::service::REGISTRY_GROUP), ["a", "bb"]);

    joiner.leave().await;
    assert!(!joiner.joined(), "a node that left has not joined");
}

async fn node_joining(id: &str, seeds: &[&Bridge], joining: bool) -> GossipNode {
    let config = GossipConfig {
        seeds: seeds.iter().map(|b| b.gossip_addr().to_string()).collect(),
        joining,
        ..GossipConfig::local()
    };
    let addr = format!("127.0.0.1:{}", 7000 + id.len());
    GossipNode::start(config, Service::new(id, crate::service::REGISTRY_GROUP, addr))
        .await
        .expect("start gossip")
}

/// Two registries restarted together: each one's sync answer says it is
/// joining, so neither opens on the other; a member that did not restart
/// (not joining) opens both once it is reached.
#[tokio::test]
async fn a_sync_with_a_joining_peer_does_not_open_the_gate() {
    let (on, _) = recorder();
    let a = Bridge::start(
        node_joining("a", &[], true).await,
        "a".into(),
        Arc::new(Catalog::new()),
        on,
    );
    let (on, _) = recorder();
    let b = Bridge::start(
        node_joining("bb", &[&a], true).await,
        "bb".into(),
        Arc::new(Catalog::new()),
        on,
    );
    assert!(
        !b.wait_joined(Duration::from_millis(1500)).await,
        "a is joining too"
    );
    assert!(b.stats().syncs_received > 0, "a did answer");
    assert!(!a.joined());

    let (on, _) = recorder();
    let s = Bridge::start(
        node_joining("svc", &[&a], false).await,
        "svc".into(),
        Arc::new(Catalog::new()),
        on,
    );
    assert!(
        a.wait_joined(Duration::from_secs(10)).await,
        "the service answered a"
    );
    assert!(
        b.wait_joined(Duration::from_secs(10)).await,
        "b asks again, the service first"
    );
    drop(s);
}

/// With remembered members, the gate waits for them: one that is live is
/// announced to and comes back; one that never answers is taken as down
/// after REMEMBERED_WAIT.
#[tokio::test]
async fn the_gate_waits_for_remembered_members_and_takes_silent_ones_as_down() {
    let (on, _) = recorder();
    let live = Bridge::start(
        node_joining("live", &[], false).await,
        "live".into(),
        Arc::new(Catalog::new()),
        on,
    );
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let remembered = vec![
        Remembered {
            id: "live".into(),
            gossip: live.gossip_addr(),
        },
        Remembered {
            id: "gone".into(),
            gossip: silent.local_addr().unwrap(),
        },
    ];
    let (on, _) = recorder();
    let catalog = Arc::new(Catalog::new());
    // No seeds: only the remembered members lead it to the cluster.
    let me = Bridge::start(
        node_joining("me", &[], true).await,
        "me".into(),
        catalog.clone(),
        on,
    );
    let report = me.wait_open(&remembered, Duration::from_secs(20)).await;
    assert!(report.joined, "{report:?}");
    assert_eq!(report.rejoined, ["live"]);
    assert_eq!(report.down, ["gone"]);
    assert!(report.waited >= gate::REMEMBERED_WAIT, "{report:?}");
    assert_eq!(ids(&catalog, crate::service::REGISTRY_GROUP), ["live", "me"]);

    // A short timeout ends the wait with the silent one still awaited.
    let (on, _) = recorder();
    let other = Bridge::start(
        node_joining("other", &[&live], true).await,
        "other".into(),
        Arc::new(Catalog::new()),
        on,
    );
    let report = other
        .wait_open(&remembered[1..], Duration::from_millis(300))
        .await;
    assert!(!report.joined && report.missing == ["gone"], "{report:?}");
    assert!(other.stats().syncs_from_joined > 0);
    other.set_open();
    assert!(!other.shared.with_node(GossipNode::is_joining).unwrap());
}

#[tokio::test]
async fn a_panicking_feeder_is_reported_as_stalled() {
    let catalog = Arc::new(Catalog::new());
    let on: OnTouched = Arc::new(|g: &[String]| {
        if g.iter().any(|g| g == "boom") {
            panic!("test panic in a batch");
        }
    });
    let me = node("stall", &[]).await;
    let bridge = Bridge::start(me, "stall".into(), catalog.clone(), on);
    let quiet = tokio::time::timeout(Duration::from_millis(200), bridge.stalled()).await;
    assert!(quiet.is_err(), "a healthy feeder is not stalled");
    let events = bridge.events();
    events
        .send(MemberEvent::Joined(Service::new("x", "boom", "127.0.0.1:9")))
        .await
        .unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(5), bridge.stalled())
        .await
        .expect("the stall is reported");
    assert!(reason.contains("test panic in a batch"), "{reason}");
}
