//! Limits: Watch streams per server, groups and members per group. Each
//! refusal gets a clear error or log line and is counted in
//! `registry_limit_rejections_total{limit=...}`; state stays intact.

mod common;

use common::{
    client, feed, get, member_ids, spawn_registry_with, spawn_service, start_with, svc, wait_until,
};
use registry_core::wire::v1;
use registry_core::wire::v1::registry_client::RegistryClient;
use registry_core::{Client, Error, MemberEvent};
use registry_server::config::Settings;
use registry_server::metrics::Method;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tonic::Code;

/// The value of one sample line (`name{labels} value`) of `/metrics`.
async fn metric(http: SocketAddr, sample: &str) -> u64 {
    let text = get(http, "/metrics").await.body;
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {sample} in /metrics:\n{text}"))
}

fn rejections(limit: &str) -> String {
    format!("registry_limit_rejections_total{{limit=\"{limit}\"}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_over_the_limit_get_resource_exhausted_until_one_closes() {
    let mut settings = Settings::loopback("r-watch-limit");
    settings.limits.max_watch_streams = 2;
    let running = start_with(settings).await;
    let mut c = client(&running).await;
    let req = || v1::WatchRequest { group: "web".into() };

    let mut first = c.watch(req()).await.expect("first stream").into_inner();
    let mut second = c.watch(req()).await.expect("second stream").into_inner();
    for s in [&mut first, &mut second] {
        let snap = s.message().await.expect("stream ok").expect("a snapshot");
        assert!(snap.services.is_empty());
    }
    let err = c.watch(req()).await.expect_err("third stream is over the limit");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains("at most 2") && err.message().contains("--max-watch-streams"),
        "{:?}",
        err.message()
    );
    let http = running.http_addr();
    assert_eq!(metric(http, &rejections("watch_streams")).await, 1);
    assert_eq!(running.metrics().count(Method::Watch, Code::ResourceExhausted), 1);
    assert_eq!(metric(http, "registry_watch_streams").await, 2);

    // The Rust client tries every registry, then reports the limit.
    let rust = Client::connect([running.grpc_addr().to_string()])
        .await
        .expect("client");
    match rust.watch("web").await {
        Err(Error::LimitExceeded(m)) => assert!(m.contains("--max-watch-streams"), "{m}"),
        other => panic!("expected LimitExceeded, got {:?}", other.map(|_| ())),
    }
    // A local view says so at once, not after its wait for a snapshot.
    let asked = Instant::now();
    match rust.group("web").await {
        Err(Error::LimitExceeded(m)) => assert!(m.contains("--max-watch-streams"), "{m}"),
        other => panic!("expected LimitExceeded, got {:?}", other.map(|_| ())),
    }
    assert!(asked.elapsed() < Duration::from_secs(5), "{:?}", asked.elapsed());

    // The open streams keep working.
    feed(&running, vec![MemberEvent::Joined(svc("a", "web"))]).await;
    let snap = second.message().await.expect("ok").expect("a snapshot");
    assert_eq!(snap.services.len(), 1);

    // Closing one frees its slot.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut third = loop {
        match c.watch(req()).await {
            Ok(s) => break s.into_inner(),
            Err(e) => {
                assert_eq!(e.code(), Code::ResourceExhausted);
                assert!(Instant::now() < deadline, "no slot freed after closing a stream");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let snap = third.message().await.expect("ok").expect("a snapshot");
    assert_eq!(snap.services.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_and_groups_over_the_limits_are_refused_and_admitted_when_room_frees() {
    let mut settings = Settings::loopback("r-count-limits");
    settings.limits.catalog.max_members_per_group = 2;
    // registry-group (this server) + two more.
    settings.limits.catalog.max_groups = 3;
    let running = start_with(settings).await;
    let http = running.http_addr();
    let members = |group: &str| {
        running
            .catalog()
            .snapshot_or_empty(group)
            .members()
            .iter()
            .map(|s| s.id.clone())
            .collect::<Vec<_>>()
    };

    feed(
        &running,
        vec![
            MemberEvent::Joined(svc("a", "web")),
            MemberEvent::Joined(svc("b", "web")),
            MemberEvent::Joined(svc("c", "web")),
            MemberEvent::Joined(svc("x", "api")),
            MemberEvent::Joined(svc("y", "extra")),
        ],
    )
    .await;
    wait_until("the refusals are counted", || {
        running
            .catalog()
            .limit_rejections()
            .get(registry_core::Limit::Groups)
            == 1
    })
    .await;
    assert_eq!(members("web"), ["a", "b"]);
    assert_eq!(members("api"), ["x"]);
    assert!(members("extra").is_empty());
    assert_eq!(metric(http, &rejections("members_per_group")).await, 1);
    assert_eq!(metric(http, &rejections("groups")).await, 1);
    assert_eq!(metric(http, "registry_members_waiting").await, 2);
    assert_eq!(metric(http, "registry_groups").await, 3);

    // Both front doors answer from the members that are in.
    let mut c = client(&running).await;
    let got = c
        .members(v1::MembersRequest { group: "web".into() })
        .await
        .expect("members")
        .into_inner();
    assert_eq!(got.services.len(), 2);
    let m = get(http, "/v1/match?group=web&key=k").await;
    assert_eq!(m.status, 200, "{}", m.body);
    let m = get(http, "/v1/match?group=extra&key=k").await;
    assert_eq!(m.status, 404, "{}", m.body);
    assert!(m.body.contains("none has registered"), "{}", m.body);

    // b leaves: c takes its slot; x leaves: y gets a group.
    feed(
        &running,
        vec![
            MemberEvent::Left(svc("b", "web")),
            MemberEvent::Failed(svc("x", "api")),
        ],
    )
    .await;
    wait_until("y gets a group", || members("extra") == ["y"]).await;
    assert_eq!(members("web"), ["a", "c"]);
    assert!(members("api").is_empty());
    assert_eq!(metric(http, "registry_members_waiting").await, 0);
    assert_eq!(metric(http, &rejections("members_per_group")).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_size_limits_are_counted_on_both_front_doors() {
    let mut settings = Settings::loopback("r-size-limits");
    settings.limits.max_key_bytes = 8;
    let running = start_with(settings).await;
    feed(&running, vec![MemberEvent::Joined(svc("a", "web"))]).await;
    let mut c = client(&running).await;
    let long_key = "k".repeat(9);
    let long_group = "g".repeat(129);
    let err = c
        .r#match(v1::MatchRequest {
            group: "web".into(),
            key: long_key.clone(),
        })
        .await
        .expect_err("key over the limit");
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = c
        .members(v1::MembersRequest {
            group: long_group.clone(),
        })
        .await
        .expect_err("group over the limit");
    assert_eq!(err.code(), Code::InvalidArgument);
    let http = running.http_addr();
    let r = get(http, &format!("/v1/match?group=web&key={long_key}")).await;
    assert_eq!(r.status, 400);
    let r = get(http, &format!("/v1/members?group={long_group}")).await;
    assert_eq!(r.status, 400);
    // A key within the limit is not counted.
    let r = get(http, "/v1/match?group=web&key=12345678").await;
    assert_eq!(r.status, 200);
    assert_eq!(metric(http, &rejections("key_bytes")).await, 2);
    assert_eq!(metric(http, &rejections("name_bytes")).await, 2);
}

async fn wait_web(c: &mut RegistryClient<tonic::transport::Channel>, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ids = member_ids(c, "web").await;
        if ids == want {
            return;
        }
        assert!(Instant::now() < deadline, "web is {ids:?}, want {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_registry_refuses_a_third_service_then_admits_it_when_one_leaves() {
    let reg = spawn_registry_with(
        "reg-limits",
        "127.0.0.1:0",
        &[],
        &["--max-members-per-group", "2"],
    );
    let seeds = [reg.field("gossip")];
    let http: SocketAddr = reg.field("http").parse().expect("http addr");
    let mut c = RegistryClient::connect(format!("http://{}", reg.field("grpc")))
        .await
        .expect("connect");

    let web1 = spawn_service("web-1", "web", &seeds);
    let _web2 = spawn_service("web-2", "web", &seeds);
    wait_web(&mut c, &["web-1", "web-2"]).await;
    let _web3 = spawn_service("web-3", "web", &seeds);
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(http, &rejections("members_per_group")).await == 0 {
        assert!(Instant::now() < deadline, "web-3 was never refused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(member_ids(&mut c, "web").await, ["web-1", "web-2"]);
    assert_eq!(metric(http, "registry_members_waiting").await, 1);
    // The refusal is logged, naming the limit.
    let logged = reg.logs.try_iter().any(|l| {
        serde_json::from_str::<serde_json::Value>(&l)
            .is_ok_and(|v| v["fields"]["limit"] == "members_per_group")
    });
    assert!(logged, "no log line names the limit");

    // web-1 stops: web-3, waiting, takes its place.
    web1.proc.terminate();
    wait_web(&mut c, &["web-2", "web-3"]).await;
    assert_eq!(metric(http, "registry_members_waiting").await, 0);
}
