//! Registration over real UDP: registries not up yet, registry restarts,
//! updates, graceful stop; duplicate ids refused; restarts on a new
//! address.

use registry_core::gossip::{Claim, GossipConfig, GossipNode};
use registry_core::registration::{Registration, RegistrationConfig, ServiceUpdate};
use registry_core::{Error, MemberEvent, Service, REGISTRY_GROUP};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::time::{sleep, timeout, Instant};

async fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        sleep(Duration::from_millis(20)).await;
    }
}

fn free_port() -> SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

async fn registry_at(addr: SocketAddr) -> GossipNode {
    let cfg = GossipConfig {
        bind: addr,
        ..GossipConfig::local()
    };
    GossipNode::start(
        cfg,
        Service::new(format!("reg-{}", addr.port()), REGISTRY_GROUP, "127.0.0.1:50051"),
    )
    .await
    .unwrap()
}

async fn node(id: &str, addr: &str, seeds: &[SocketAddr]) -> GossipNode {
    let cfg = GossipConfig {
        seeds: seeds.iter().map(|s| s.to_string()).collect(),
        ..GossipConfig::local()
    };
    GossipNode::start(cfg, Service::new(id, "g", addr)).await.unwrap()
}

async fn events_about(
    rx: &mut broadcast::Receiver<MemberEvent>,
    id: &str,
    window: Duration,
) -> Vec<MemberEvent> {
    let mut out = Vec::new();
    let _ = timeout(window, async {
        while let Ok(ev) = rx.recv().await {
            if ev.service().id == id {
                out.push(ev);
            }
        }
    })
    .await;
    out
}

#[tokio::test]
async fn survives_a_registry_that_is_not_up_yet_and_one_that_restarts() {
    let reg_addr = free_port();
    let mut cfg = RegistrationConfig::new("svc-1", "api", "127.0.0.1:8080").registry(reg_addr.to_string());
    cfg.weight = 3;
    cfg.tags.insert("zone".into(), "eu".into());
    let want = cfg.service();
    let reg = Registration::start(cfg).await.unwrap();
    assert!(!reg.is_joined());
    sleep(Duration::from_millis(1200)).await;

    let registry = registry_at(reg_addr).await;
    wait_until("registry lists the service", Duration::from_secs(4), || {
        registry.members().contains(&want)
    })
    .await;
    // The registry can list the service (from its announce) a moment before
    // the service hears the registry's answer.
    wait_until("the service knows it joined", Duration::from_secs(4), || {
        reg.is_joined()
    })
    .await;

    // Registry restarts on the same address (a new process).
    registry.shutdown();
    sleep(Duration::from_millis(300)).await;
    let registry = registry_at(reg_addr).await;
    wait_until(
        "restarted registry lists the service",
        Duration::from_secs(8),
        || registry.members().contains(&want),
    )
    .await;

    // Update, then graceful stop.
    let mut rx = registry.events();
    reg.update(ServiceUpdate {
        weight: Some(9),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut updated = want.clone();
    updated.weight = 9;
    assert_eq!(reg.service(), updated);
    let evs = events_about(&mut rx, "svc-1", Duration::from_millis(1500)).await;
    assert_eq!(evs, vec![MemberEvent::Updated(updated.clone())]);
    assert!(reg
        .update(ServiceUpdate {
            weight: Some(0),
            ..Default::default()
        })
        .await
        .is_err());
    assert_eq!(reg.service(), updated, "a refused update changes nothing");
    reg.stop().await.unwrap();
    let evs = events_about(&mut rx, "svc-1", Duration::from_millis(500)).await;
    assert_eq!(evs, vec![MemberEvent::Left(updated)]);
}

#[tokio::test]
async fn bad_metadata_fails_at_start_with_a_clear_error() {
    let mut cfg = RegistrationConfig::new("svc", "", "127.0.0.1:1");
    let err = Registration::start(cfg.clone()).await.unwrap_err();
    assert!(err.to_string().contains("group"), "{err}");
    cfg.group = "g".into();
    cfg.tags.insert("k".into(), "v".repeat(600));
    let err = Registration::start(cfg).await.unwrap_err();
    assert!(err.to_string().contains("tags"), "{err}");
}

#[tokio::test]
async fn same_id_restarted_on_a_new_address_replaces_the_old_one() {
    let a = node("a", "127.0.0.1:1", &[]).await;
    let seeds = [a.local_addr()];
    let x1 = node("x", "127.0.0.1:1111", &seeds).await;
    wait_until("converge", Duration::from_secs(5), || a.members().len() == 2).await;
    let mut rx = a.events();
    x1.shutdown(); // crash, no leave
    let x2 = node("x", "127.0.0.1:2222", &seeds).await;
    // Window covers the failure detection of the old instance.
    let evs = events_about(&mut rx, "x", Duration::from_secs(5)).await;
    assert_eq!(
        evs,
        vec![MemberEvent::Updated(Service::new("x", "g", "127.0.0.1:2222"))]
    );
    assert!(a.members().contains(&Service::new("x", "g", "127.0.0.1:2222")));
    drop(x2);
}

/// One id, one live holder: a second live process with the id is
/// refused (its record never goes out), reports the holder, and the
/// holder keeps its place everywhere, with no event at all.
#[tokio::test]
async fn a_second_live_process_with_one_id_is_refused_without_flapping() {
    let a = node("a", "127.0.0.1:1", &[]).await;
    let seeds = [a.local_addr()];
    let d1 = node("dup", "127.0.0.1:1111", &seeds).await;
    let holder = Service::new("dup", "g", "127.0.0.1:1111");
    wait_until(
        "the first holds its id and is listed",
        Duration::from_secs(5),
        || d1.claim() == Claim::Held && a.members().contains(&holder),
    )
    .await;
    let mut rx = a.events();
    sleep(Duration::from_millis(20)).await; // a later start: larger generation
    let d2 = node("dup", "127.0.0.1:2222", &seeds).await;
    let refused = timeout(Duration::from_secs(5), d2.wait_claim(Duration::from_secs(5)))
        .await
        .expect("decided in time");
    let err = refused.expect_err("the second is refused");
    assert!(matches!(err, Error::AlreadyExists(_)), "{err}");
    assert!(
        err.to_string().contains(&format!(
            "already registered by a live member at 127.0.0.1:1111 (gossip {})",
            d1.local_addr()
        )),
        "{err}"
    );
    assert_eq!(d2.conflicts(), vec![d1.local_addr()]);
    assert!(d2.stats().id_conflicts >= 1);
    let evs = events_about(&mut rx, "dup", Duration::from_secs(3)).await;
    assert!(evs.is_empty(), "flapping: {evs:?}");
    for n in [&a, &d1] {
        assert!(n.members().contains(&holder), "{:?}", n.members());
    }
    assert!(
        d1.conflicts().is_empty(),
        "the holder never saw the newcomer's record"
    );
    assert_eq!(d1.claim(), Claim::Held);
}
