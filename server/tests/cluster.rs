//! Real processes on loopback: two `registry-server`s and three
//! `registry-example-service`s joined by gossip.
//!
//! Deadlines here are generous upper bounds so that a slow CI machine does
//! not fail them; the timing figures themselves live in the benchmarks.

mod common;

use common::{
    connect_started as connect, member_ids, spawn_registry as registry, spawn_service, wait_members, Started,
};
use registry_core::wire::compat::r_client::RClient;
use registry_core::wire::v1::registry_client::RegistryClient;
use registry_core::wire::{compat, v1};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::Duration;
use tonic::transport::Channel;

const SERVICE: &str = env!("CARGO_BIN_EXE_registry-example-service");
const CLI: &str = env!("CARGO_BIN_EXE_registry");
const KEYS: usize = 10_000;
/// Upper bound for a crash to be detected (default detection is ~2-3 s).
const FAILURE_DEADLINE: Duration = Duration::from_secs(20);
/// Upper bound for a join or a graceful leave to be seen (normally < 1 s).
const CHANGE_DEADLINE: Duration = Duration::from_secs(10);

fn service(id: &str, registries: &[String]) -> Started {
    spawn_service(id, "web", registries)
}

fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("user-{i}")).collect()
}

/// The owner of every key, asking `ask` with 8 requests in flight.
async fn owners_by<C, F, Fut>(client: C, ask: F) -> Vec<String>
where
    C: Clone + Send + 'static,
    F: Fn(C, String) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = String> + Send,
{
    let keys = keys();
    let mut tasks = Vec::new();
    for chunk in keys.chunks(KEYS / 8) {
        let (chunk, client, ask) = (chunk.to_vec(), client.clone(), ask.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(chunk.len());
            for key in chunk {
                out.push(ask(client.clone(), key).await);
            }
            out
        }));
    }
    let mut all = Vec::with_capacity(KEYS);
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    all
}

/// The owner of every key by `registry.v1.Registry/Match`.
async fn owners(c: &RegistryClient<Channel>) -> Vec<String> {
    owners_by(c.clone(), |mut c: RegistryClient<Channel>, key| async move {
        let r = c
            .r#match(v1::MatchRequest {
                group: "web".into(),
                key,
            })
            .await
            .expect("Match")
            .into_inner();
        r.service.map(|s| s.id).unwrap_or_default()
    })
    .await
}

/// The owner of every key by the compat service `R/Match`.
async fn compat_owners(r: &Started) -> Vec<String> {
    let c = RClient::connect(format!("http://{}", r.field("grpc")))
        .await
        .expect("connect");
    owners_by(c, |mut c: RClient<Channel>, key| async move {
        c.r#match(compat::MatchRequest {
            group: "web".into(),
            key,
        })
        .await
        .expect("R/Match")
        .into_inner()
        .id
    })
    .await
}

/// Starts `registry --json watch web` against `registries`; its stdout
/// lines arrive on the receiver. The process is killed with the guard.
fn cli_watch(registries: &str) -> (common::Proc, std::sync::mpsc::Receiver<String>) {
    let mut watch = std::process::Command::new(CLI)
        .args(["--registry", registries, "--json", "watch", "web"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn registry watch");
    let stdout = watch.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (common::Proc::new(watch), rx)
}

fn count(owners: &[String]) -> BTreeMap<&str, usize> {
    let mut m = BTreeMap::new();
    for o in owners {
        *m.entry(o.as_str()).or_default() += 1;
    }
    m
}

/// Every key whose owner before was not `gone` has the same owner after.
fn assert_only_moved_from(before: &[String], after: &[String], gone: &str) {
    for (i, (b, a)) in before.iter().zip(after).enumerate() {
        if b != gone {
            assert_eq!(
                a, b,
                "key user-{i} moved from {b} to {a} though {gone} was the one to go"
            );
        } else {
            assert_ne!(a, gone, "key user-{i} still on {gone}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_registries_and_three_services_agree_and_survive_crashes_and_restarts() {
    let r1 = registry("reg-1", "127.0.0.1:0", &[]);
    let r1_gossip = r1.field("gossip");
    let r2 = registry("reg-2", "127.0.0.1:0", std::slice::from_ref(&r1_gossip));
    let seeds = vec![r1_gossip.clone(), r2.field("gossip")];
    let mut c1 = connect(&r1).await;
    let mut c2 = connect(&r2).await;
    wait_members(
        &mut [&mut c1, &mut c2],
        "registry-group",
        &["reg-1", "reg-2"],
        CHANGE_DEADLINE,
    )
    .await;

    let s1 = service("web-1", &seeds);
    let mut s2 = Some(service("web-2", &seeds));
    let s3 = service("web-3", &seeds);
    wait_members(
        &mut [&mut c1, &mut c2],
        "web",
        &["web-1", "web-2", "web-3"],
        CHANGE_DEADLINE,
    )
    .await;
    // The registered address is the one the service serves on.
    let m = c1
        .members(v1::MembersRequest { group: "web".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m.services[0].addr, s1.field("http"));

    // Every Match agrees on both registries and with the compat service.
    let base = owners(&c1).await;
    assert_eq!(
        owners(&c2).await,
        base,
        "both registries give the same owner for every key"
    );
    assert_eq!(
        compat_owners(&r1).await,
        base,
        "R/Match gives the ids of registry.v1 Match"
    );
    assert_eq!(compat_owners(&r2).await, base);
    let spread = count(&base);
    assert_eq!(spread.len(), 3, "keys spread over the 3 services: {spread:?}");

    // kill -9 of a service: both registries drop it; only its keys move.
    drop(s3);
    wait_members(
        &mut [&mut c1, &mut c2],
        "web",
        &["web-1", "web-2"],
        FAILURE_DEADLINE,
    )
    .await;
    let after_crash = owners(&c1).await;
    assert_eq!(owners(&c2).await, after_crash);
    assert_only_moved_from(&base, &after_crash, "web-3");

    // The same id comes back: the ring is the same as at first.
    let s3 = service("web-3", &seeds);
    wait_members(
        &mut [&mut c1, &mut c2],
        "web",
        &["web-1", "web-2", "web-3"],
        CHANGE_DEADLINE,
    )
    .await;
    assert_eq!(owners(&c1).await, base, "same members, same answers");

    // SIGTERM of a service: both drop it at once (a graceful leave is not
    // a failure detection); only its keys move.
    let mut leaving = s2.take().expect("web-2");
    leaving.proc.terminate();
    assert_eq!(leaving.proc.wait_timeout(Duration::from_secs(10)), Some(0));
    wait_members(
        &mut [&mut c1, &mut c2],
        "web",
        &["web-1", "web-3"],
        CHANGE_DEADLINE,
    )
    .await;
    let after_leave = owners(&c2).await;
    assert_eq!(owners(&c1).await, after_leave);
    assert_only_moved_from(&base, &after_leave, "web-2");

    // kill -9 of a registry: the other keeps answering, and drops it from
    // registry-group.
    let r1_gossip_port = r1_gossip.clone();
    drop(r1);
    assert_eq!(
        owners(&c2).await,
        after_leave,
        "the surviving registry answers as before"
    );
    wait_members(&mut [&mut c2], "registry-group", &["reg-2"], FAILURE_DEADLINE).await;

    // Restarted (same id, same gossip address), it relearns everything by
    // itself: services and the other registry.
    let r1 = registry("reg-1", &r1_gossip_port, &[r2.field("gossip")]);
    let mut c1 = connect(&r1).await;
    wait_members(
        &mut [&mut c1, &mut c2],
        "web",
        &["web-1", "web-3"],
        CHANGE_DEADLINE,
    )
    .await;
    wait_members(
        &mut [&mut c1, &mut c2],
        "registry-group",
        &["reg-1", "reg-2"],
        CHANGE_DEADLINE,
    )
    .await;
    assert_eq!(
        owners(&c1).await,
        after_leave,
        "the restarted registry answers like the other"
    );

    drop((s1, s3, r1, r2));
}

/// Reads `registry watch --json` lines with a deadline.
fn next_line(rx: &std::sync::mpsc::Receiver<String>) -> serde_json::Value {
    let line = rx.recv_timeout(CHANGE_DEADLINE).expect("a watch line in time");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

fn ids(snapshot: &serde_json::Value) -> Vec<String> {
    snapshot["services"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_through_the_cli_sees_first_member_every_change_and_the_empty_group() {
    let r = registry("reg-w", "127.0.0.1:0", &[]);
    let seeds = vec![r.field("gossip")];
    let (_watch, rx) = cli_watch(&r.field("grpc"));

    let first = next_line(&rx);
    assert_eq!(first["group"], "web");
    assert_eq!(
        ids(&first),
        Vec::<String>::new(),
        "no members yet: an empty snapshot"
    );
    let mut version = first["version"].as_u64().expect("version");
    // Each snapshot line carries the checksum of the ring of its members.
    let sum = |want: &[&str]| {
        let ring = registry_core::ring::Ring::new(want.iter().map(|id| (*id, 1))).expect("ring");
        registry_core::ring::checksum_hex(ring.checksum())
    };
    assert_eq!(first["checksum"], sum(&[]).as_str());
    let mut step = |want: &[&str]| {
        let snap = next_line(&rx);
        assert_eq!(ids(&snap), want);
        assert_eq!(snap["checksum"], sum(want).as_str(), "{snap}");
        let v = snap["version"].as_u64().expect("version");
        assert!(v > version, "versions grow");
        version = v;
    };

    let a = service("web-a", &seeds);
    step(&["web-a"]);
    let b = service("web-b", &seeds);
    step(&["web-a", "web-b"]);
    a.proc.terminate();
    step(&["web-b"]);
    drop(b); // kill -9: detected as a failure, the group is pushed empty
    let snap = next_line(&rx);
    assert_eq!(
        ids(&snap),
        Vec::<String>::new(),
        "the last member gone: an empty snapshot, not an error"
    );
    assert_eq!(snap["checksum"], sum(&[]).as_str());
    // Nothing else arrives: one message per change.
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());
    drop(r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_registrations_get_a_clear_error_at_the_registering_side() {
    // An empty group: the service exits 2 with one line, before joining.
    let out = common::Proc::new(
        std::process::Command::new(SERVICE)
            .args([
                "--id",
                "x",
                "--group",
                "",
                "--addr",
                "127.0.0.1:0",
                "--registries",
                "127.0.0.1:9",
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn"),
    )
    .finish(Duration::from_secs(20));
    assert_eq!(out.code, Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.trim().lines().count() == 1 && err.contains("group is empty"),
        "{err}"
    );

    // A second live process with an id in use: refused at start, naming the
    // holder (one id, one live holder; more in tests/identity.rs).
    let r = registry("reg-d", "127.0.0.1:0", &[]);
    let seeds = vec![r.field("gossip")];
    let first = service("dup", &seeds);
    let mut c = connect(&r).await;
    wait_members(&mut [&mut c], "web", &["dup"], CHANGE_DEADLINE).await;
    let out = common::Proc::new(
        std::process::Command::new(SERVICE)
            .args([
                "--id",
                "dup",
                "--group",
                "web",
                "--addr",
                "127.0.0.1:0",
                "--registries",
                &seeds[0],
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn"),
    )
    .finish(Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "already registered by a live member at {}",
            first.field("http")
        )),
        "{err}"
    );
    // The registry keeps exactly one "dup".
    assert_eq!(member_ids(&mut c, "web").await, ["dup"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_watch_moves_to_the_next_registry_when_one_dies() {
    let r1 = registry("reg-f1", "127.0.0.1:0", &[]);
    let r2 = registry("reg-f2", "127.0.0.1:0", &[r1.field("gossip")]);
    let seeds = vec![r1.field("gossip"), r2.field("gossip")];
    let a = service("web-fa", &seeds);
    let mut c2 = connect(&r2).await;
    wait_members(&mut [&mut c2], "web", &["web-fa"], CHANGE_DEADLINE).await;

    let list = format!("{},{}", r1.field("grpc"), r2.field("grpc"));
    let (_watch, rx) = cli_watch(&list);
    assert_eq!(ids(&next_line(&rx)), ["web-fa"]);

    drop(r1); // kill -9 the registry the stream comes from
              // The CLI resubscribes through reg-f2: the current snapshot again...
    assert_eq!(ids(&next_line(&rx)), ["web-fa"]);
    // ...and it follows changes from there.
    let b = service("web-fb", &seeds);
    assert_eq!(ids(&next_line(&rx)), ["web-fa", "web-fb"]);
    drop((a, b, r2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_stopped_with_sigterm_leaves_and_exits_0() {
    let r1 = registry("reg-t1", "127.0.0.1:0", &[]);
    let mut r2 = registry("reg-t2", "127.0.0.1:0", &[r1.field("gossip")]);
    let mut c1 = connect(&r1).await;
    wait_members(
        &mut [&mut c1],
        "registry-group",
        &["reg-t1", "reg-t2"],
        CHANGE_DEADLINE,
    )
    .await;
    r2.proc.terminate();
    assert_eq!(
        r2.proc.wait_timeout(Duration::from_secs(15)),
        Some(0),
        "graceful exit"
    );
    let took = wait_members(&mut [&mut c1], "registry-group", &["reg-t1"], CHANGE_DEADLINE).await;
    eprintln!("reg-t2 dropped by reg-t1 {took:?} after its exit");
    let logs: Vec<String> = r2.logs.try_iter().collect();
    assert!(logs.iter().any(|l| l.contains("left the cluster")), "{logs:?}");
}

/// The draining flag of each member of `group` on the registry behind `c`.
async fn draining_flags(c: &mut RegistryClient<Channel>, group: &str) -> Vec<(String, bool)> {
    match c.members(v1::MembersRequest { group: group.into() }).await {
        Ok(r) => r
            .into_inner()
            .services
            .into_iter()
            .map(|s| (s.id, s.draining))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_example_service_with_a_drain_grace_drains_on_sigterm_and_its_leave_moves_no_key() {
    let r = registry("reg-d1", "127.0.0.1:0", &[]);
    let seeds = [r.field("gossip")];
    let _a = spawn_service("drain-a", "drain", &seeds);
    let _b = spawn_service("drain-b", "drain", &seeds);
    let args = common::service_args("drain-c", "drain", &seeds.join(","), &["--drain-grace", "3s"]);
    let mut c = common::spawn_ready(SERVICE, &args);
    let mut client = connect(&r).await;
    wait_members(
        &mut [&mut client],
        "drain",
        &["drain-a", "drain-b", "drain-c"],
        CHANGE_DEADLINE,
    )
    .await;
    let keys: Vec<String> = (0..2000).map(|i| format!("user-{i}")).collect();
    let serving = common::match_owners(&client, "drain", &keys).await;
    assert!(serving.iter().any(|o| o == "drain-c"));
    // A Rust view of the group, to take what moved from its snapshots.
    let rust = registry_core::Client::connect([r.field("grpc")])
        .await
        .expect("client");
    let view = rust.group("drain").await.expect("view");
    let before = view.snapshot();
    assert_eq!(before.members().len(), 3);

    c.proc.terminate();
    let start = std::time::Instant::now();
    loop {
        let flags = draining_flags(&mut client, "drain").await;
        if flags.iter().any(|(id, d)| id == "drain-c" && *d) {
            assert_eq!(flags.len(), 3, "still listed while draining: {flags:?}");
            break;
        }
        assert!(
            start.elapsed() < CHANGE_DEADLINE,
            "drain-c never drained: {flags:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let draining = common::match_owners(&client, "drain", &keys).await;
    for (i, (before, now)) in serving.iter().zip(&draining).enumerate() {
        assert_ne!(now, "drain-c", "user-{i} is owned by the draining member");
        if before != "drain-c" {
            assert_eq!(before, now, "user-{i} moved though its owner serves");
        }
    }
    // What moved, as data: exactly drain-c's keys, each to its new owner.
    let start = std::time::Instant::now();
    while !view
        .snapshot()
        .members()
        .iter()
        .any(|m| m.id == "drain-c" && m.draining)
    {
        assert!(start.elapsed() < CHANGE_DEADLINE, "the view never saw the drain");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let moves = view.snapshot().moves_since(&before);
    assert!(!moves.is_empty());
    assert_eq!(
        moves.lost_by("drain-c").count(),
        moves.ranges().len(),
        "only drain-c's ranges move"
    );
    for (i, (key, (old, new))) in keys.iter().zip(serving.iter().zip(&draining)).enumerate() {
        match moves.of_key(key).expect("a valid key") {
            Some(r) => assert_eq!(
                (r.from.as_deref(), r.to.as_deref()),
                (Some(old.as_str()), Some(new.as_str())),
                "user-{i}"
            ),
            None => assert_eq!(old, new, "user-{i} moved but no range says so"),
        }
    }
    assert_eq!(
        c.proc.wait_timeout(Duration::from_secs(15)),
        Some(0),
        "graceful exit after the grace"
    );
    wait_members(
        &mut [&mut client],
        "drain",
        &["drain-a", "drain-b"],
        CHANGE_DEADLINE,
    )
    .await;
    let left = common::match_owners(&client, "drain", &keys).await;
    assert_eq!(left, draining, "the leave after draining moved keys");
    let start = std::time::Instant::now();
    while view.snapshot().members().len() != 2 {
        assert!(start.elapsed() < CHANGE_DEADLINE, "the view never saw the leave");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after_drain = view.snapshot().moves_since(&before);
    assert_eq!(after_drain, moves, "the leave moved more than the drain had");
    let logs: Vec<String> = c.logs.try_iter().collect();
    assert!(logs.iter().any(|l| l.contains("draining")), "{logs:?}");
}

/// Runs `registry --registries <registries> [--json] agree [groups]`;
/// returns its exit status and standard output.
async fn cli_agree(registries: &str, json: bool, groups: &[&str]) -> (i32, String) {
    let mut args = vec!["--registries".to_string(), registries.to_string()];
    if json {
        args.push("--json".into());
    }
    args.push("agree".into());
    args.extend(groups.iter().map(|g| g.to_string()));
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(CLI)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run registry agree")
    })
    .await
    .expect("task");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
}

/// `(version, checksum)` of `group` from the Groups answer of `c`.
async fn ring_of(c: &mut RegistryClient<Channel>, group: &str) -> Option<(u64, u64)> {
    let groups = c.groups(v1::GroupsRequest {}).await.ok()?.into_inner().groups;
    groups
        .into_iter()
        .find(|g| g.name == group)
        .map(|g| (g.version, g.checksum))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converged_registries_report_one_checksum_and_registry_agree_says_so() {
    use registry_core::ring::{checksum_hex, Ring};
    let r1 = registry("sum-1", "127.0.0.1:0", &[]);
    let r1_gossip = r1.field("gossip");
    let r2 = registry("sum-2", "127.0.0.1:0", std::slice::from_ref(&r1_gossip));
    let seeds = vec![r1_gossip.clone(), r2.field("gossip")];
    let (mut c1, mut c2) = (connect(&r1).await, connect(&r2).await);
    let _s1 = service("web-1", &seeds);
    let s2 = service("web-2", &seeds);
    wait_members(
        &mut [&mut c1, &mut c2],
        "web",
        &["web-1", "web-2"],
        CHANGE_DEADLINE,
    )
    .await;
    let two = Ring::new([("web-1", 1), ("web-2", 1)]).unwrap().checksum();
    let (a, b) = (
        ring_of(&mut c1, "web").await.unwrap(),
        ring_of(&mut c2, "web").await.unwrap(),
    );
    assert_eq!(
        (a.1, b.1),
        (two, two),
        "both registries hold the ring of web-1 and web-2"
    );
    let both = format!("{},{}", r1.field("grpc"), r2.field("grpc"));
    let (code, out) = cli_agree(&both, false, &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&checksum_hex(two)) && out.contains("yes") && !out.contains("NO"),
        "{out}"
    );
    assert!(out.contains("registry-group"), "every group is compared: {out}");

    // A leave changes the checksum, on both, to the same value again.
    drop(s2);
    wait_members(&mut [&mut c1, &mut c2], "web", &["web-1"], FAILURE_DEADLINE).await;
    let one = Ring::new([("web-1", 1)]).unwrap().checksum();
    assert_ne!(one, two);
    assert_eq!(ring_of(&mut c1, "web").await.map(|r| r.1), Some(one));
    assert_eq!(ring_of(&mut c2, "web").await.map(|r| r.1), Some(one));
    let (code, out) = cli_agree(&both, true, &["web"]).await;
    assert_eq!(code, 0, "{out}");
    let j: serde_json::Value = serde_json::from_str(out.lines().next().unwrap_or("")).expect("one JSON line");
    assert_eq!(j["agree"], true);
    assert_eq!(
        j["groups"][0]["registries"][1]["checksum"],
        checksum_hex(one).as_str()
    );

    // A registry that does not answer: exit 1, naming it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (code, out) = cli_agree(&format!("{both},{closed}"), false, &["web"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&closed.to_string()) && out.contains("UNAVAILABLE"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_agree_exits_3_when_two_registries_hold_different_rings() {
    use registry_core::MemberEvent;
    // Two registries of separate clusters, fed different members of web.
    let (one, two) = (common::start("apart-1").await, common::start("apart-2").await);
    common::feed(&one, vec![MemberEvent::Joined(common::svc("web-1", "web"))]).await;
    common::feed(
        &two,
        vec![
            MemberEvent::Joined(common::svc("web-1", "web")),
            MemberEvent::Joined(common::svc("web-2", "web")),
        ],
    )
    .await;
    common::feed(&one, vec![MemberEvent::Joined(common::svc("only-here", "solo"))]).await;
    let both = format!("{},{}", one.grpc_addr(), two.grpc_addr());
    let (code, out) = cli_agree(&both, false, &["web"]).await;
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("NO") && out.contains("disagree on 1 group(s): web"),
        "{out}"
    );
    // A group only one of them has is a disagreement too.
    let (code, out) = cli_agree(&both, true, &["solo"]).await;
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("\"agree\":false"), "{out}");
    // Asked alone, each registry agrees with itself.
    let (code, out) = cli_agree(&one.grpc_addr().to_string(), false, &[]).await;
    assert_eq!(code, 0, "{out}");
    one.shutdown().await;
    two.shutdown().await;
}
