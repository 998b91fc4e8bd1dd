//! Faults with real processes on loopback: a registry killed (kill -9)
//! and restarted under a steady `Match` load, a service flapping while
//! others stay up, and gossip through a proxy that loses and delays
//! datagrams.
//!
//! Every process is stopped by its guard; every wait has a generous
//! deadline (a noisy 2-core CI box), and no assertion is about speed.

mod common;

use common::udp_proxy::UdpProxy;
use common::{
    connect_started, match_owners, spawn_registry_args, spawn_service, wait_members, Seen, Started, WatchLog,
};
use registry_core::registration::{Registration, RegistrationConfig};
use registry_core::{Client, ClientConfig, GroupSnapshot, Service};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Keys compared between registries and local views.
const KEYS: usize = 10_000;
/// Upper bound for a crash to be detected (default detection is ~2-3 s).
const FAILURE_DEADLINE: Duration = Duration::from_secs(30);
/// Upper bound for a join or restart to be seen (normally < 1 s).
const CHANGE_DEADLINE: Duration = Duration::from_secs(15);

fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("user-{i}")).collect()
}

fn registry(id: &str, grpc: &str, bind: &str, seeds: &[String]) -> Started {
    spawn_registry_args(id, grpc, bind, seeds, &[])
}

/// The owner of every key in `snapshot`'s ring, computed locally.
fn local_owners(group: &str, members: &[Service], keys: &[String]) -> Vec<String> {
    let snap =
        GroupSnapshot::new(group, 1, members.iter().cloned().map(Arc::new).collect()).expect("snapshot");
    keys.iter()
        .map(|k| snap.match_key(k).map(|s| s.id.clone()).unwrap_or_default())
        .collect()
}

/// Counts of a steady Match load through a [`Client`].
#[derive(Default)]
struct Load {
    ok: AtomicU64,
    wrong: AtomicU64,
    errors: Mutex<Vec<(Instant, String)>>,
    stop: AtomicBool,
}

impl Load {
    /// Runs `tasks` loops of `match_key` over `keys` until stopped; every
    /// answer must be `want[key]`.
    fn start(
        client: &Client,
        group: &str,
        want: Arc<Vec<String>>,
        tasks: usize,
    ) -> (Arc<Load>, Vec<tokio::task::JoinHandle<()>>) {
        let load = Arc::new(Load::default());
        let handles = (0..tasks)
            .map(|t| {
                let (client, group, want, load) =
                    (client.clone(), group.to_string(), want.clone(), load.clone());
                tokio::spawn(async move {
                    let mut i = t * 997;
                    while !load.stop.load(Ordering::Relaxed) {
                        let k = i % want.len();
                        match client.match_key(&group, &format!("user-{k}")).await {
                            Ok(s) if s.id == want[k] => {
                                load.ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(s) => {
                                load.wrong.fetch_add(1, Ordering::Relaxed);
                                load.errors
                                    .lock()
                                    .unwrap()
                                    .push((Instant::now(), format!("user-{k} -> {} not {}", s.id, want[k])));
                            }
                            Err(e) => load.errors.lock().unwrap().push((Instant::now(), e.to_string())),
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        (load, handles)
    }

    fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Waits until `n` more requests succeeded (the load is really running
    /// through the current fault), with a deadline.
    async fn progress(&self, n: u64, what: &str) {
        let from = self.ok();
        let deadline = Instant::now() + CHANGE_DEADLINE;
        while self.ok() < from + n {
            assert!(Instant::now() < deadline, "the load made no progress {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// (a) kill -9 of the registry a client uses, restart, then kill -9 of the
/// other: with the client configured with both registries, no request
/// fails and none gets a wrong answer, and after the restart both
/// registries and the client's local view agree on 10,000 keys.
///
/// The settle window is zero: the client retries a failed call on the
/// next registry within one call (`attempts` covers the list twice), and a
/// killed process refuses connections at once, so a request in flight
/// during a kill is retried, not failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_killed_and_restarted_under_load_loses_no_request() {
    let r1 = registry("reg-1", "127.0.0.1:0", "127.0.0.1:0", &[]);
    let (r1_grpc, r1_gossip) = (r1.field("grpc"), r1.field("gossip"));
    let r2 = registry(
        "reg-2",
        "127.0.0.1:0",
        "127.0.0.1:0",
        std::slice::from_ref(&r1_gossip),
    );
    let r2_gossip = r2.field("gossip");
    let seeds = vec![r1_gossip.clone(), r2_gossip.clone()];
    let services: Vec<Started> = ["kv-1", "kv-2", "kv-3"]
        .iter()
        .map(|id| spawn_service(id, "kv", &seeds))
        .collect();
    let mut both = vec![connect_started(&r1).await, connect_started(&r2).await];
    wait_members(&mut both, "kv", &["kv-1", "kv-2", "kv-3"], CHANGE_DEADLINE).await;

    let keys = keys();
    let want = Arc::new(match_owners(&both[0], "kv", &keys).await);
    assert_eq!(match_owners(&both[1], "kv", &keys).await, *want);
    assert!(want.iter().all(|o| !o.is_empty()));

    // reg-1 first: the client starts on it.
    let client = Client::with_config(ClientConfig::new([r1_grpc.clone(), r2.field("grpc")]))
        .await
        .expect("client");
    let view = client.group("kv").await.expect("view");
    let (load, tasks) = Load::start(&client, "kv", want.clone(), 4);
    load.progress(200, "before the kill").await;

    drop(r1); // kill -9
    let mut r2c = vec![both.remove(1)];
    load.progress(200, "with reg-1 dead").await;
    wait_members(&mut r2c, "registry-group", &["reg-2"], FAILURE_DEADLINE).await;

    // Restarted where its clients expect it: same gRPC and gossip addresses.
    let r1 = registry("reg-1", &r1_grpc, &r1_gossip, std::slice::from_ref(&r2_gossip));
    let mut both = vec![connect_started(&r1).await, r2c.remove(0)];
    wait_members(&mut both, "kv", &["kv-1", "kv-2", "kv-3"], CHANGE_DEADLINE).await;
    wait_members(&mut both, "registry-group", &["reg-1", "reg-2"], CHANGE_DEADLINE).await;
    load.progress(200, "after the restart").await;

    // Consistent: restarted registry == other registry == local view.
    assert_eq!(
        match_owners(&both[0], "kv", &keys).await,
        *want,
        "the restarted registry answers as before the crash"
    );
    assert_eq!(match_owners(&both[1], "kv", &keys).await, *want);
    let deadline = Instant::now() + CHANGE_DEADLINE;
    while !view.is_connected() {
        assert!(Instant::now() < deadline, "the view never resubscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let snap = view.snapshot();
    let local: Vec<String> = keys
        .iter()
        .map(|k| snap.match_key(k).map(|s| s.id.clone()).unwrap_or_default())
        .collect();
    assert_eq!(local, *want, "the local view agrees with both registries");

    // Now the other one dies: the client moves to the restarted registry.
    drop(both.remove(1));
    drop(r2);
    load.progress(200, "on the restarted registry alone").await;

    load.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("load task");
    }
    let errors = load.errors.lock().unwrap().clone();
    eprintln!("{} requests answered through two kills and a restart", load.ok());
    assert!(
        errors.is_empty(),
        "{} failed or wrong requests (settle window is zero): {:?}",
        errors.len(),
        errors.iter().map(|(_, e)| e).collect::<BTreeSet<_>>()
    );
    assert_eq!(load.wrong.load(Ordering::Relaxed), 0);
    drop((services, r1));
}

/// Checks every snapshot one registry sent while `flap` came and went:
/// the stable members are always there, nobody else appears, and each key
/// is owned by its stable owner or by `flap` (only for `flap`'s keys):
/// ring churn stays within the flapping member's keys.
fn check_flap_snapshots(
    who: &str,
    snaps: &[Seen],
    stable: &[&str],
    flap: &str,
    with: &[String],
    without: &[String],
    keys: &[String],
) {
    assert!(!snaps.is_empty(), "{who}: no Watch snapshot");
    let allowed: BTreeSet<&str> = stable.iter().copied().chain([flap]).collect();
    for (n, (_, ids, members)) in snaps.iter().enumerate() {
        for s in stable {
            assert!(
                ids.iter().any(|i| i == s),
                "{who}: snapshot {n} lost the stable member {s} (a false failure): {ids:?}"
            );
        }
        assert!(
            ids.iter().all(|i| allowed.contains(i.as_str())),
            "{who}: snapshot {n} has a stranger: {ids:?}"
        );
        let owners = local_owners("web", members, keys);
        let want = if ids.iter().any(|i| i == flap) {
            with
        } else {
            without
        };
        assert_eq!(owners, want, "{who}: snapshot {n} ({ids:?}) moved other keys");
    }
}

/// (b) One service flaps (kill -9 and start again, slowly and quickly)
/// while three others stay: the registries never drop a stable member,
/// only the flapping member's keys ever move (to the stable owners and
/// back), and the end state equals the start on both registries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_service_moves_only_its_own_keys() {
    let r1 = registry("reg-f1", "127.0.0.1:0", "127.0.0.1:0", &[]);
    let r2 = registry("reg-f2", "127.0.0.1:0", "127.0.0.1:0", &[r1.field("gossip")]);
    let seeds = vec![r1.field("gossip"), r2.field("gossip")];
    let stable = ["web-a", "web-b", "web-c"];
    let all = ["flap", "web-a", "web-b", "web-c"];
    let _stable: Vec<Started> = stable.iter().map(|id| spawn_service(id, "web", &seeds)).collect();
    let mut flap = spawn_service("flap", "web", &seeds);
    let mut both = vec![connect_started(&r1).await, connect_started(&r2).await];
    wait_members(&mut both, "web", &all, CHANGE_DEADLINE).await;

    let keys = keys();
    let with = match_owners(&both[0], "web", &keys).await;
    assert_eq!(match_owners(&both[1], "web", &keys).await, with);
    let flap_keys = with.iter().filter(|o| *o == "flap").count();
    assert!(flap_keys > 0, "flap owns some keys");
    // Watch both registries from here on.
    let (log1, w1) = WatchLog::follow(&r1.field("grpc"), "web");
    let (log2, w2) = WatchLog::follow(&r2.field("grpc"), "web");

    // Slow cycles: the crash is detected before the restart.
    let mut without = Vec::new();
    for cycle in 0..3 {
        drop(flap); // kill -9
        wait_members(&mut both, "web", &stable, FAILURE_DEADLINE).await;
        if cycle == 0 {
            without = match_owners(&both[0], "web", &keys).await;
            assert_eq!(match_owners(&both[1], "web", &keys).await, without);
            for (i, (b, a)) in with.iter().zip(&without).enumerate() {
                if b == "flap" {
                    assert!(stable.contains(&a.as_str()), "user-{i} went to {a}");
                } else {
                    assert_eq!(a, b, "user-{i} moved though flap was not its owner");
                }
            }
        }
        flap = spawn_service("flap", "web", &seeds);
        wait_members(&mut both, "web", &all, CHANGE_DEADLINE).await;
    }
    // Quick cycles: restarted (new gossip address, newer start) before the
    // old process is declared failed. The new one replaces it; the old
    // one's failure, detected later, must not remove the new one.
    for _ in 0..3 {
        drop(flap);
        flap = spawn_service("flap", "web", &seeds);
        let addr = flap.field("http");
        let deadline = Instant::now() + CHANGE_DEADLINE;
        loop {
            let mut seen = Vec::new();
            for c in both.iter_mut() {
                let m = c
                    .members(registry_core::wire::v1::MembersRequest { group: "web".into() })
                    .await
                    .map(|r| r.into_inner().services)
                    .unwrap_or_default();
                seen.push(m.iter().any(|s| s.id == "flap" && s.addr == addr));
            }
            if seen.iter().all(|s| *s) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the restarted flap ({addr}) is not listed: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Long enough for the last old process to be declared down (~3 s).
    tokio::time::sleep(Duration::from_secs(8)).await;
    wait_members(&mut both, "web", &all, CHANGE_DEADLINE).await;
    assert_eq!(
        match_owners(&both[0], "web", &keys).await,
        with,
        "back to the start"
    );
    assert_eq!(match_owners(&both[1], "web", &keys).await, with);

    w1.abort();
    w2.abort();
    for (who, log) in [("reg-f1", &log1), ("reg-f2", &log2)] {
        let snaps = log.take();
        check_flap_snapshots(who, &snaps, &stable, "flap", &with, &without, &keys);
        let absent = snaps.iter().filter(|(_, ids, _)| ids.len() == 3).count();
        eprintln!(
            "{who}: {} snapshots, {absent} without flap; flap owns {flap_keys} keys",
            snaps.len()
        );
        assert!(absent >= 3, "{who}: each slow cycle showed flap gone");
    }
    drop((flap, r1, r2));
}

/// A service registered in-process, behind the proxy.
async fn proxied_service(proxy: &UdpProxy, id: &str, seeds: &[String]) -> (Registration, String) {
    let front = proxy.add_node();
    let mut cfg = RegistrationConfig::new(id, "web", format!("127.0.0.1:{}", 21_000 + id.len()));
    cfg.advertise = Some(front);
    cfg.registries = seeds.to_vec();
    let reg = Registration::start(cfg).await.expect("registration");
    proxy.set_real(front, reg.local_addr());
    (reg, front.to_string())
}

/// (c) Gossip between real registries and services through a proxy that
/// drops 10% of datagrams and delays the rest by up to 30 ms: membership
/// converges, nothing stable is ever dropped for 20 s, and real failures
/// (a registry killed, a service cut off) are still detected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_through_ten_percent_loss_converges_without_false_failures() {
    let proxy = UdpProxy::new(0.10, Duration::from_millis(30));
    let fronts: Vec<String> = (0..3).map(|_| proxy.add_node().to_string()).collect();
    let mut regs = Vec::new();
    for (i, front) in fronts.iter().enumerate() {
        let others: Vec<String> = fronts.iter().filter(|f| *f != front).cloned().collect();
        let extra = vec!["--bind-advertise".to_string(), front.clone()];
        let r = spawn_registry_args(
            &format!("reg-l{i}"),
            "127.0.0.1:0",
            "127.0.0.1:0",
            &others,
            &extra,
        );
        proxy.set_real(
            front.parse().expect("front"),
            r.field("gossip").parse().expect("gossip addr"),
        );
        regs.push(r);
    }
    let mut services = Vec::new();
    for id in ["web-1", "web-2", "web-3"] {
        services.push(proxied_service(&proxy, id, &fronts).await);
    }
    let mut clients = Vec::new();
    for r in &regs {
        clients.push(connect_started(r).await);
    }
    let took = wait_members(
        &mut clients,
        "registry-group",
        &["reg-l0", "reg-l1", "reg-l2"],
        FAILURE_DEADLINE,
    )
    .await;
    wait_members(
        &mut clients,
        "web",
        &["web-1", "web-2", "web-3"],
        FAILURE_DEADLINE,
    )
    .await;
    eprintln!("converged through the lossy proxy in {took:?}");

    let watches: Vec<_> = regs[..2]
        .iter()
        .flat_map(|r| {
            let grpc = r.field("grpc");
            [
                WatchLog::follow(&grpc, "web"),
                WatchLog::follow(&grpc, "registry-group"),
            ]
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let (forwarded, dropped) = proxy.counts();
    eprintln!("proxy: {forwarded} datagrams delivered, {dropped} dropped");
    assert!(
        dropped > 0 && forwarded > 10 * dropped / 2,
        "the loss is real and modest"
    );

    // A real crash: registry 2 killed. The others drop it.
    drop(regs.pop());
    let _gone = clients.pop();
    wait_members(
        &mut clients,
        "registry-group",
        &["reg-l0", "reg-l1"],
        FAILURE_DEADLINE,
    )
    .await;
    // A service cut off from the network: dropped as failed.
    let (reg3, front3) = services.pop().expect("web-3");
    proxy.isolate(front3.parse().expect("front"), true);
    wait_members(&mut clients, "web", &["web-1", "web-2"], FAILURE_DEADLINE).await;
    // Reconnected, it rejoins (as a new incarnation).
    proxy.isolate(front3.parse().expect("front"), false);
    wait_members(
        &mut clients,
        "web",
        &["web-1", "web-2", "web-3"],
        FAILURE_DEADLINE,
    )
    .await;

    for (n, (log, task)) in watches.into_iter().enumerate() {
        task.abort();
        let snaps = log.take();
        assert!(!snaps.is_empty(), "watch {n}: no snapshot");
        let must: &[&str] = if n % 2 == 0 {
            &["web-1", "web-2"]
        } else {
            &["reg-l0", "reg-l1"]
        };
        for (_, ids, _) in &snaps {
            for m in must {
                assert!(
                    ids.iter().any(|i| i == m),
                    "watch {n}: {m} dropped though it never stopped (false failure): {ids:?}"
                );
            }
        }
    }
    reg3.stop().await.ok();
    for (r, _) in services {
        r.stop().await.ok();
    }
    drop(regs);
}
