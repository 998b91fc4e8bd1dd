//! One id, one live holder, cluster-wide, with real processes: a
//! `registry-server` and `registry-example-service`s on loopback.
//!
//! A second instance with the id of a live one (in another group or in the
//! same one) fails to start with "already registered by a live member at
//! ADDR", and the live one keeps its place the whole time; a restart of a
//! crashed instance (new ports, or its old gossip port) takes its place at
//! once, before the failure detector could have noticed the crash.

mod common;

use common::{connect_started, registry_args, service_args, spawn_ready, spawn_registry, Proc, Started};
use registry_core::wire::v1::registry_client::RegistryClient;
use registry_core::wire::v1::MembersRequest;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const SERVICE: &str = env!("CARGO_BIN_EXE_registry-example-service");
/// Upper bound for a refused start to exit (the wait is 2 s by default).
const REFUSAL_DEADLINE: Duration = Duration::from_secs(15);
/// A restart must be listed well before a crash could be detected (the
/// failure detector needs `suspect_to_down_after`, 1.0 s, plus a probe).
const RESTART_DEADLINE: Duration = Duration::from_millis(1000);

/// `(id, addr)` of every member of `group` (empty on error).
async fn entries(c: &mut RegistryClient<Channel>, group: &str) -> Vec<(String, String)> {
    match c.members(MembersRequest { group: group.into() }).await {
        Ok(r) => r
            .into_inner()
            .services
            .into_iter()
            .map(|s| (s.id, s.addr))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Polls until `group` lists exactly `want`; how long it took.
async fn wait_entries(
    c: &mut RegistryClient<Channel>,
    group: &str,
    want: &[(String, String)],
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let seen = entries(c, group).await;
        if seen == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{group} should be {want:?} within {limit:?}, is {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Starts a second `dup` in `group` that must be refused: checks its exit
/// code and message while making sure, every 10 ms until it has exited,
/// that `web` lists exactly `holder` and `group` nothing else new.
async fn refused(c: &mut RegistryClient<Channel>, registry: &str, group: &str, holder: &(String, String)) {
    let child = Command::new(SERVICE)
        .args(service_args("dup", group, registry, &[]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the second service");
    let started = Instant::now();
    let finished = tokio::task::spawn_blocking(move || Proc::new(child).finish(REFUSAL_DEADLINE));
    tokio::pin!(finished);
    let mut samples = 0;
    let done = loop {
        tokio::select! {
            f = &mut finished => break f.expect("waiter"),
            _ = tokio::time::sleep(Duration::from_millis(10)) => {
                let web = entries(c, "web").await;
                assert_eq!(web, vec![holder.clone()], "the live holder lost its place to the newcomer");
                if group != "web" {
                    assert_eq!(entries(c, group).await, vec![], "the newcomer was listed in {group}");
                }
                samples += 1;
            }
        }
    };
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&done.stderr).to_string();
    assert_eq!(
        done.code,
        Some(2),
        "the newcomer must fail to start; stderr: {stderr}"
    );
    let want = format!("already registered by a live member at {}", holder.1);
    assert!(stderr.contains(&want), "stderr should say {want:?}: {stderr}");
    assert!(samples > 0, "not sampled while the newcomer ran");
    println!("second 'dup' in {group} refused after {took:?} ({samples} samples, holder kept)");
    // Still there once the newcomer is gone.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(entries(c, "web").await, vec![holder.clone()]);
}

/// `(id, registered addr)` of a started example service.
fn entry(s: &Started) -> (String, String) {
    (s.field("id"), s.field("http"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_live_instance_is_refused_in_any_group_and_a_restart_takes_the_place_at_once() {
    let registry = spawn_registry("r1", "127.0.0.1:0", &[]);
    let gossip = registry.field("gossip");
    let mut c = connect_started(&registry).await;

    let mut first = spawn_ready(SERVICE, &service_args("dup", "web", &gossip, &[]));
    let holder = entry(&first);
    wait_entries(
        &mut c,
        "web",
        std::slice::from_ref(&holder),
        Duration::from_secs(10),
    )
    .await;

    refused(&mut c, &gossip, "api", &holder).await;
    refused(&mut c, &gossip, "web", &holder).await;

    // Crash (SIGKILL: no leave), restart on new ports.
    let _ = first.proc.child.kill();
    let _ = first.proc.child.wait();
    let crashed = Instant::now();
    let second = spawn_ready(SERVICE, &service_args("dup", "web", &gossip, &[]));
    let ready = crashed.elapsed();
    let restarted = entry(&second);
    assert_ne!(restarted, holder);
    let listed = wait_entries(&mut c, "web", std::slice::from_ref(&restarted), RESTART_DEADLINE).await;
    println!("restart on new ports: ready {ready:?} after the crash, listed {listed:?} later");

    // Crash again, restart on the same gossip port.
    let old_gossip = second.field("gossip");
    drop(second);
    let crashed = Instant::now();
    let third = spawn_ready(
        SERVICE,
        &service_args("dup", "web", &gossip, &["--bind", &old_gossip]),
    );
    let ready = crashed.elapsed();
    assert_eq!(third.field("gossip"), old_gossip);
    let listed = wait_entries(&mut c, "web", &[entry(&third)], RESTART_DEADLINE).await;
    println!("restart on the same gossip port: ready {ready:?} after the crash, listed {listed:?} later");
}

/// A registry started with the `--id` of a live registry stops with an
/// error naming the holder (exit 1) instead of running unseen by the
/// cluster, and the holder keeps its entry in `registry-group`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_registry_with_a_live_registrys_id_stops_with_a_clear_error() {
    let first = spawn_registry("reg-dup", "127.0.0.1:0", &[]);
    let gossip = first.field("gossip");
    let holder = ("reg-dup".to_string(), first.field("advertise"));
    let mut c = connect_started(&first).await;
    wait_entries(
        &mut c,
        "registry-group",
        std::slice::from_ref(&holder),
        Duration::from_secs(10),
    )
    .await;

    let child = Command::new(env!("CARGO_BIN_EXE_registry-server"))
        .args(registry_args(
            "reg-dup",
            "127.0.0.1:0",
            "127.0.0.1:0",
            &[gossip],
            &[],
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the second registry");
    let done = tokio::task::spawn_blocking(move || Proc::new(child).finish(REFUSAL_DEADLINE))
        .await
        .expect("waiter");
    let stderr = String::from_utf8_lossy(&done.stderr).to_string();
    assert_eq!(
        done.code,
        Some(1),
        "the second registry must stop; stderr: {stderr}"
    );
    let want = format!(
        "this registry's --id is taken: id \"reg-dup\" is already registered by a live member at {}",
        holder.1
    );
    assert!(stderr.contains(&want), "stderr should say {want:?}: {stderr}");
    assert_eq!(entries(&mut c, "registry-group").await, vec![holder]);
}
