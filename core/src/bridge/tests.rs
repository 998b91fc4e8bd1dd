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
    let shared = Shared {
        catalog: catalog.clone(),
        on_touched: on,
        node: Mutex::new(Some(gossip)),
        last_stats: Mutex::new(GossipStats::default()),
    };
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
