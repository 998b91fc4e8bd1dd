//! The joining gate: a registry started with `--registries` answers no
//! query until it has learnt the cluster (first push-pull sync applied),
//! or until `--sync-timeout` passes; meanwhile queries are UNAVAILABLE
//! (clients ask another registry) and health is NOT_SERVING.

mod common;

use common::{
    connect_started, get, member_ids, spawn_registry, spawn_registry_with, spawn_service, start_with,
    wait_members,
};
use registry_core::wire::compat::r_client::RClient;
use registry_core::wire::v1::registry_client::RegistryClient;
use registry_core::wire::{compat, v1};
use registry_core::REGISTRY_GROUP;
use registry_server::config::Settings;
use std::time::{Duration, Instant};
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// A UDP socket that takes gossip and never answers: a seed that is down
/// without the ICMP errors a closed port would give.
fn silent_seed() -> std::net::UdpSocket {
    std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp")
}

fn joining_settings(id: &str, seed: &std::net::UdpSocket, timeout: Duration) -> Settings {
    let mut s = Settings::loopback(id);
    s.registries = vec![seed.local_addr().unwrap().to_string()];
    s.sync_timeout = timeout;
    s
}

async fn health_status(grpc: std::net::SocketAddr, service: &str) -> i32 {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel);
    health
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_registry_refuses_queries_and_reports_not_serving() {
    let seed = silent_seed();
    let running = start_with(joining_settings("r-joining", &seed, Duration::from_secs(600))).await;
    let grpc = running.grpc_addr();
    assert!(!running.is_serving());

    let mut c = RegistryClient::connect(format!("http://{grpc}")).await.unwrap();
    let joining = |s: tonic::Status| {
        assert_eq!(s.code(), Code::Unavailable, "{s:?}");
        assert!(s.message().contains("joining"), "{s:?}");
    };
    joining(
        c.r#match(v1::MatchRequest {
            group: REGISTRY_GROUP.into(),
            key: "k".into(),
        })
        .await
        .unwrap_err(),
    );
    joining(
        c.members(v1::MembersRequest {
            group: REGISTRY_GROUP.into(),
        })
        .await
        .unwrap_err(),
    );
    joining(c.groups(v1::GroupsRequest {}).await.unwrap_err());
    joining(
        c.watch(v1::WatchRequest {
            group: REGISTRY_GROUP.into(),
        })
        .await
        .unwrap_err(),
    );
    let mut compat_client = RClient::connect(format!("http://{grpc}")).await.unwrap();
    joining(
        compat_client
            .r#match(compat::MatchRequest {
                group: REGISTRY_GROUP.into(),
                key: "k".into(),
            })
            .await
            .unwrap_err(),
    );
    // Bad input is still reported as such, not as "joining".
    let bad = c
        .r#match(v1::MatchRequest {
            group: REGISTRY_GROUP.into(),
            key: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    for service in ["", "registry.v1.Registry", "R"] {
        assert_eq!(health_status(grpc, service).await, 2, "{service:?} NOT_SERVING");
    }
    let http = running.http_addr();
    let h = get(http, "/healthz").await;
    assert_eq!(h.status, 503);
    assert_eq!(h.json()["status"], "NOT_SERVING");
    let m = get(http, &format!("/v1/members?group={REGISTRY_GROUP}")).await;
    assert_eq!(m.status, 503, "{}", m.body);

    // Shutting down while joining is prompt and leaves it NOT_SERVING.
    let start = Instant::now();
    running.shutdown().await;
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_seed_down_it_serves_after_the_sync_timeout() {
    let seed = silent_seed();
    let running = start_with(joining_settings("r-alone", &seed, Duration::from_millis(300))).await;
    common::wait_until("the gate opens after --sync-timeout", || running.is_serving()).await;
    let mut c = RegistryClient::connect(format!("http://{}", running.grpc_addr()))
        .await
        .unwrap();
    assert_eq!(member_ids(&mut c, REGISTRY_GROUP).await, vec!["r-alone"]);
    assert_eq!(health_status(running.grpc_addr(), "").await, 1, "SERVING");
    assert_eq!(get(running.http_addr(), "/healthz").await.status, 200);
    running.shutdown().await;
}

/// A registry joining a running cluster logs "ready" only once it lists
/// every member: its first answer is already the whole cluster's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_is_ready_only_once_it_knows_the_cluster() {
    let r1 = spawn_registry("reg-1", "127.0.0.1:0", &[]);
    assert_eq!(r1.ready["fields"]["synced"], false, "no seeds: no sync awaited");
    let seeds = vec![r1.field("gossip")];
    let services: Vec<_> = ["svc-a", "svc-b", "svc-c", "svc-d"]
        .iter()
        .map(|id| spawn_service(id, "web", &seeds))
        .collect();
    let mut c1 = connect_started(&r1).await;
    wait_members(
        std::slice::from_mut(&mut c1),
        "web",
        &["svc-a", "svc-b", "svc-c", "svc-d"],
        Duration::from_secs(15),
    )
    .await;

    let r2 = spawn_registry("reg-2", "127.0.0.1:0", &seeds);
    assert_eq!(r2.ready["fields"]["synced"], true, "{}", r2.ready);
    // No waiting: the first answers after "ready" are complete.
    let mut c2 = connect_started(&r2).await;
    assert_eq!(
        member_ids(&mut c2, "web").await,
        vec!["svc-a", "svc-b", "svc-c", "svc-d"]
    );
    assert_eq!(member_ids(&mut c2, REGISTRY_GROUP).await, vec!["reg-1", "reg-2"]);

    // Members refused by a limit wait for room: they do not hold the gate
    // shut until --sync-timeout (600 s here: "ready" would never come).
    let r3 = spawn_registry_with(
        "reg-3",
        "127.0.0.1:0",
        &seeds,
        &["--max-members-per-group", "2", "--sync-timeout", "600"],
    );
    assert_eq!(r3.ready["fields"]["synced"], true, "{}", r3.ready);
    let mut c3 = connect_started(&r3).await;
    // Which two depends on the order this registry heard of them.
    let admitted = member_ids(&mut c3, "web").await;
    assert_eq!(admitted.len(), 2, "{admitted:?}");
    assert!(admitted.iter().all(|id| id.starts_with("svc-")), "{admitted:?}");
    drop(services);
}

/// A fresh empty directory under the target dir's temp space.
fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Runs `registry-server` with `args` until it exits (at most 20 s);
/// its exit code and standard error.
fn run_server(args: &[String]) -> (Option<i32>, String) {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_registry-server"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn registry-server");
    let done = common::Proc::new(child).finish(Duration::from_secs(20));
    (done.code, String::from_utf8_lossy(&done.stderr).to_string())
}

/// One data directory, one registry: a second one stops with an error
/// naming the directory; a membership file that is not one stops the
/// start with an error naming the file and what to do.
#[test]
fn a_data_directory_in_use_or_corrupt_stops_the_start_with_a_clear_error() {
    let dir = temp_dir("in-use");
    let flag = ["--data-dir".to_string(), dir.display().to_string()];
    let first = common::spawn_registry_with("dd-1", "127.0.0.1:0", &[], &flag);
    let args = common::registry_args("dd-2", "127.0.0.1:0", "127.0.0.1:0", &[], &flag);
    let (code, err) = run_server(&args);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("in use by another registry-server") && err.contains(&dir.display().to_string()),
        "{err}"
    );
    drop(first); // kill -9: the lock goes with the process

    std::fs::write(dir.join("members.json"), "{\"format\":1,").unwrap();
    let (code, err) = run_server(&args);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("members.json") && err.contains("move it away"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A registry with a data directory and no seeds still waits for the
/// members it remembers; one that does not come back is taken as down
/// after a bounded wait, and the gate opens with the rest.
#[test]
fn a_registry_restarted_with_a_data_directory_waits_for_the_members_it_remembers() {
    let dir = temp_dir("remember");
    let flag = [
        "--data-dir".to_string(),
        dir.display().to_string(),
        "--sync-timeout".to_string(),
        "20".to_string(),
    ];
    let r1 = common::spawn_registry_with("mem-1", "127.0.0.1:0", &[], &flag);
    let gossip = r1.field("gossip");
    let svc = spawn_service("mem-svc", "web", std::slice::from_ref(&gossip));
    let file = dir.join("members.json");
    common::block_until("the data directory names the service", || {
        std::fs::read_to_string(&file).is_ok_and(|t| t.contains("mem-svc"))
    });
    // A member that will not come back.
    let mut text = std::fs::read_to_string(&file).unwrap();
    let ghost = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    text = text.replacen(
        "\"members\": [",
        &format!(
            "\"members\": [\n    {{\"id\": \"ghost\", \"gossip\": \"{}\"}},",
            ghost.local_addr().unwrap()
        ),
        1,
    );
    drop(r1);
    std::fs::write(&file, text).unwrap();

    // No --registries: only the data directory leads it back.
    let start = Instant::now();
    let r1 = common::spawn_registry_args("mem-1", "127.0.0.1:0", &gossip, &[], &flag);
    let took = start.elapsed();
    assert_eq!(r1.ready["fields"]["synced"], true, "{}", r1.ready);
    assert!(took >= Duration::from_secs(3), "waited for the ghost: {took:?}");
    assert!(
        took < Duration::from_secs(15),
        "the ghost is taken as down: {took:?}"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = connect_started(&r1).await;
        assert_eq!(
            member_ids(&mut c, "web").await,
            vec!["mem-svc"],
            "answers with the service"
        );
    });
    drop((svc, r1));
    let _ = std::fs::remove_dir_all(&dir);
}
