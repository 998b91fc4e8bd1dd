//! The Rust discovery client against real `registry-server` processes:
//! local answers equal the server's, the local view converges, and the
//! client and its view survive the loss of the registry they use.

mod common;

use common::{spawn_registry, Started};
use registry_core::registration::{Registration, RegistrationConfig};
use registry_core::{Client, ClientConfig, Error, GroupView};
use std::time::{Duration, Instant};

const GROUP: &str = "cache";

fn registry(id: &str, seeds: &[String]) -> Started {
    spawn_registry(id, "127.0.0.1:0", seeds)
}

async fn register(id: &str, weight: u32, registries: &[String]) -> Registration {
    let mut cfg = RegistrationConfig::new(id, GROUP, format!("127.0.0.1:{}", 20_000 + id.len()));
    cfg.weight = weight;
    for r in registries {
        cfg = cfg.registry(r.clone());
    }
    Registration::start(cfg).await.expect("registration starts")
}

/// Polls `cond` every 20 ms until it holds; panics naming `what` after `limit`.
async fn eventually<F, Fut>(what: &str, limit: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn view_ids(view: &GroupView) -> Vec<String> {
    view.members().iter().map(|s| s.id.clone()).collect()
}

async fn server_ids(client: &Client) -> Vec<String> {
    client
        .members(GROUP)
        .await
        .map(|m| m.services.into_iter().map(|s| s.id).collect())
        .unwrap_or_default()
}

/// A client configuration for the registry at `addr` alone: no registry
/// discovery, and a short backoff between passes.
fn direct(addr: String) -> ClientConfig {
    let mut cfg = ClientConfig::new([addr]);
    cfg.discover_registries = false;
    cfg.max_backoff = Duration::from_millis(100);
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_view_matches_the_server_converges_and_survives_a_registry_crash() {
    let a = registry("reg-a", &[]);
    let b = registry("reg-b", &[a.field("gossip")]);
    let gossip = vec![a.field("gossip"), b.field("gossip")];
    let s1 = register("svc-1", 1, &gossip).await;
    let s2 = register("svc-2", 2, &gossip).await;
    let s3 = register("svc-3", 1, &gossip).await;

    // A client that knows both registries; A is tried first.
    let mut cfg = ClientConfig::new([a.field("grpc"), b.field("grpc")]);
    cfg.request_timeout = Duration::from_millis(500);
    let client = Client::with_config(cfg).await.expect("client");
    let want = vec!["svc-1".to_string(), "svc-2".into(), "svc-3".into()];
    eventually(
        "both registries list the 3 services",
        Duration::from_secs(10),
        || async { server_ids(&client).await == want },
    )
    .await;

    let view = client.group(GROUP).await.expect("view");
    eventually("the view has the 3 services", Duration::from_secs(10), || async {
        view_ids(&view) == want
    })
    .await;

    // 10,000 keys: local answers equal the server's Match.
    let snap = view.snapshot();
    for i in 0..10_000 {
        let key = format!("user-{i}");
        let local = snap.match_key(&key).expect("local match");
        let remote = client.match_key(GROUP, &key).await.expect("remote match");
        assert_eq!(local.id, remote.id, "key {key}");
    }
    let local3: Vec<String> = view
        .match_n("user-7", 3)
        .expect("n")
        .iter()
        .map(|s| s.id.clone())
        .collect();
    let remote3: Vec<String> = client
        .match_n(GROUP, "user-7", 3)
        .await
        .expect("n")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(local3, remote3);
    // The view keeps the checksum of the snapshot it built; the server
    // reports the same for the same members.
    let three = registry_core::ring::Ring::new([("svc-1", 1), ("svc-2", 2), ("svc-3", 1)])
        .expect("ring")
        .checksum();
    assert_eq!(snap.checksum(), three);
    eventually(
        "the server's checksum is the view's",
        Duration::from_secs(10),
        || async { client.members(GROUP).await.map(|m| m.checksum).ok() == Some(view.checksum()) },
    )
    .await;

    // A join and a leave: the view converges to the server's version.
    let s4 = register("svc-4", 1, &gossip).await;
    s2.stop().await.expect("leave");
    let want = vec!["svc-1".to_string(), "svc-3".into(), "svc-4".into()];
    eventually(
        "the view follows the join and the leave",
        Duration::from_secs(10),
        || async {
            let server = client.members(GROUP).await.expect("members");
            view_ids(&view) == want
                && server.services.iter().map(|s| s.id.clone()).collect::<Vec<_>>() == want
                && view.version() == server.version
                && view.checksum() == server.checksum
        },
    )
    .await;
    let after = registry_core::ring::Ring::new([("svc-1", 1), ("svc-3", 1), ("svc-4", 1)])
        .expect("ring")
        .checksum();
    assert_eq!(view.checksum(), after);
    assert_ne!(after, three);
    let groups = client.groups().await.expect("groups");
    let info = groups.iter().find(|g| g.name == GROUP).expect("group listed");
    assert_eq!(info.checksum, after);

    // Kill registry A (the one in use): calls keep succeeding through B,
    // the view answers from its last snapshot, then resubscribes.
    let before = view.match_key("user-1").expect("view answers").id.clone();
    drop(a);
    for i in 0..50 {
        client
            .match_key(GROUP, &format!("user-{i}"))
            .await
            .expect("failover to B");
    }
    assert_eq!(
        view.match_key("user-1").expect("view answers after the crash").id,
        before
    );
    let s5 = register("svc-5", 1, &gossip[1..]).await;
    eventually(
        "the view resubscribes through B and sees svc-5",
        Duration::from_secs(15),
        || async { view.is_connected() && view_ids(&view).contains(&"svc-5".to_string()) },
    )
    .await;
    let server = client.members(GROUP).await.expect("members from B");
    assert_eq!(view.version(), server.version);

    // Errors keep their kind through the client.
    assert!(matches!(
        client.match_key("no-such-group", "k").await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        client.match_key(GROUP, "").await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(view.match_n("k", 0), Err(Error::InvalidArgument(_))));

    for s in [s1, s3, s4, s5] {
        s.stop().await.expect("stop");
    }
    drop(b);
}

#[tokio::test]
async fn a_client_with_no_live_registry_fails_fast_with_unavailable() {
    // A port nothing listens on: bind, note the port, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let client = Client::with_config(direct(format!("127.0.0.1:{port}")))
        .await
        .expect("lazy client");
    let started = Instant::now();
    assert!(matches!(
        client.match_key("g", "k").await,
        Err(Error::Unavailable(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(matches!(client.group("g").await, Err(Error::Unavailable(_))));
    assert!(matches!(
        Client::connect(Vec::<String>::new()).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        Client::connect(["bad host:1"]).await,
        Err(Error::InvalidArgument(_))
    ));
}

/// Staleness (#19): while its registry is up a view is connected and its
/// staleness is zero; when every registry dies it reports that it is
/// disconnected and how long its snapshot has gone unconfirmed. With
/// `max_staleness`, lookups then fail with `Unavailable` once that bound
/// is passed, not before; without it they keep answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_reports_its_staleness_and_can_refuse_past_a_bound() {
    let a = registry("reg-stale", &[]);
    let gossip = vec![a.field("gossip")];
    let s1 = register("svc-stale-1", 1, &gossip).await;
    let addr = a.field("grpc");
    let client_with = |bound: Option<Duration>| {
        let mut cfg = direct(addr.clone());
        cfg.max_staleness = bound;
        Client::with_config(cfg)
    };
    let bound = Duration::from_millis(600);
    let bounded = client_with(Some(bound))
        .await
        .expect("client")
        .group(GROUP)
        .await
        .expect("view");
    let free = client_with(None)
        .await
        .expect("client")
        .group(GROUP)
        .await
        .expect("view");
    eventually("both views list svc-stale-1", Duration::from_secs(10), || async {
        view_ids(&bounded) == ["svc-stale-1"] && view_ids(&free) == ["svc-stale-1"]
    })
    .await;
    assert!(bounded.is_connected());
    assert_eq!(bounded.staleness(), Duration::ZERO);
    let owner = bounded
        .match_key("user-1")
        .expect("a fresh view answers")
        .id
        .clone();

    drop(a);
    eventually(
        "the views notice that the registry is gone",
        Duration::from_secs(10),
        || async { !bounded.is_connected() && !free.is_connected() },
    )
    .await;
    let noticed = bounded.staleness();
    assert!(noticed < bound, "noticed after {noticed:?}");
    assert_eq!(bounded.match_key("user-1").expect("within the bound").id, owner);
    tokio::time::sleep(bound + Duration::from_millis(100) - noticed).await;
    let stale = bounded.staleness();
    assert!(stale > bound, "staleness {stale:?} after the bound");
    for res in [
        bounded.match_key("user-1").map(|_| ()),
        bounded.match_n("user-1", 1).map(|_| ()),
        bounded.route("user-1", "svc-stale-1").map(|_| ()),
    ] {
        assert!(
            matches!(&res, Err(Error::Unavailable(m)) if m.contains("max_staleness")),
            "{res:?}"
        );
    }
    assert_eq!(view_ids(&bounded), ["svc-stale-1"], "members stay readable");
    assert!(free.staleness() >= stale - Duration::from_millis(200));
    assert_eq!(
        free.match_key("user-1").expect("no bound: still answers").id,
        owner
    );
    drop(s1);
}

/// Change notification (#19), Rust stream: one event per change, carrying
/// the snapshots before and after (versions, checksums, what moved); none
/// while nothing changes; the stream ends when the view is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_streams_each_change_once_with_the_snapshots_around_it() {
    use tokio_stream::StreamExt;
    let a = registry("reg-changes", &[]);
    let gossip = vec![a.field("gossip")];
    let s1 = register("svc-ch-1", 1, &gossip).await;
    let view = Client::with_config(direct(a.field("grpc")))
        .await
        .expect("client")
        .group(GROUP)
        .await
        .expect("view");
    eventually("the view lists svc-ch-1", Duration::from_secs(10), || async {
        view_ids(&view) == ["svc-ch-1"]
    })
    .await;
    let mut changes = view.changes();
    let quiet = tokio::time::timeout(Duration::from_millis(300), changes.next()).await;
    assert!(quiet.is_err(), "an event with no change: {quiet:?}");

    let s2 = register("svc-ch-2", 1, &gossip).await;
    let change = tokio::time::timeout(Duration::from_secs(10), changes.next())
        .await
        .expect("a change within 10 s")
        .expect("the stream is open");
    let ids = |s: &registry_core::GroupSnapshot| s.members().iter().map(|m| m.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&change.old), ["svc-ch-1"]);
    assert_eq!(ids(&change.new), ["svc-ch-1", "svc-ch-2"]);
    assert!(change.new.version() > change.old.version());
    assert_ne!(change.new.checksum(), change.old.checksum());
    assert_eq!(change.new.checksum(), view.checksum());
    let moved = change.new.moves_since(&change.old);
    assert!(
        moved.gained_by("svc-ch-2").next().is_some(),
        "keys moved to svc-ch-2"
    );
    assert!(moved.lost_by("svc-ch-2").next().is_none());
    let again = tokio::time::timeout(Duration::from_millis(500), changes.next()).await;
    assert!(again.is_err(), "a second event for one change: {again:?}");

    drop(view);
    let end = tokio::time::timeout(Duration::from_secs(5), changes.next()).await;
    assert!(matches!(end, Ok(None)), "the stream ends with the view: {end:?}");
    drop((s1, s2));
}
