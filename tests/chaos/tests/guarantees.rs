//! The guarantees of #16 on real processes in network namespaces: each
//! test starts 3 registries, 4 services on 2 hosts and the chaos client on
//! a host of its own, injects its faults (seeded: the seed is printed,
//! `REGISTRY_CHAOS_SEED` replays or changes it), lets the cluster settle
//! and holds every recorded answer against the checker. Needs root and the
//! release binaries: run through scripts/test-chaos. Logs, the nemesis log
//! and the report of each test stay in target/tmp/chaos/<test>/.

use registry_chaos::bed::Cut;
use registry_chaos::checker::{Bounds, Guarantee, Report};
use registry_chaos::nemesis::{registry, service, Bins, Cluster, Layout, Nemesis};
use std::path::PathBuf;
use std::time::Duration;

fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("chaos")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Starts a cluster, runs `faults`, waits for convergence and checks.
fn run(
    name: &str,
    layout: Layout,
    seed: u64,
    faults: impl FnOnce(&mut Cluster, &mut Nemesis) -> Result<(), String>,
) -> Report {
    let bins =
        Bins::find(env!("CARGO_BIN_EXE_registry-chaos-client").as_ref()).unwrap_or_else(|e| panic!("{e}"));
    let mut nemesis = Nemesis::new(seed);
    let mut c = Cluster::start(&dir(name), layout, bins)
        .unwrap_or_else(|e| panic!("{name}: cannot start the bed: {e}"));
    // A steady second before the faults, and a settled end after them.
    std::thread::sleep(secs(1));
    faults(&mut c, &mut nemesis).unwrap_or_else(|e| panic!("{name}: {e}"));
    let converged = c.wait_converged(secs(60));
    std::thread::sleep(secs(2));
    let report = c
        .check(Bounds::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    eprintln!("{name}: logs in {}", c.bed.dir().display());
    converged.unwrap_or_else(|e| panic!("{name}: {e}"));
    report
}

fn assert_clean(name: &str, report: &Report) {
    assert!(report.answers > 100, "{name}: too few answers recorded\n{report}");
    assert!(
        report.violations.is_empty(),
        "{name}: guarantees broken\n{report}"
    );
}

/// kill -9 of one registry, restarted after a second: the others keep
/// answering, the restarted one answers nothing from a partial ring.
#[test]
fn one_registry_killed_and_restarted() {
    let r = run(
        "one_registry_killed_and_restarted",
        Layout::default(),
        1,
        |c, n| {
            let i = n.pick(3);
            c.restart_registry(i, secs(1))?;
            std::thread::sleep(secs(8));
            Ok(())
        },
    );
    assert_eq!(r.faults, 1);
    assert_clean("one_registry_killed_and_restarted", &r);
}

/// Every registry killed at once and started again, each with its data
/// directory: none answers from a ring that misses a remembered live
/// service (the whole-cluster restart of #16; needs `--data-dir`).
#[test]
fn whole_cluster_restart_with_data_dir() {
    let layout = Layout {
        data_dir: true,
        ..Layout::default()
    };
    let r = run("whole_cluster_restart_with_data_dir", layout, 2, |c, _| {
        c.restart_all_registries(secs(0))?;
        std::thread::sleep(secs(10));
        Ok(())
    });
    assert_eq!(
        r.of(Guarantee::PartialRing),
        Vec::<&registry_chaos::checker::Violation>::new(),
        "{r}"
    );
    assert_clean("whole_cluster_restart_with_data_dir", &r);
}

/// A service paused (SIGSTOP) for 8 s is dropped by every registry, and
/// after SIGCONT it is back with its keys.
#[test]
fn paused_service_is_dropped_and_comes_back() {
    let r = run(
        "paused_service_is_dropped_and_comes_back",
        Layout::default(),
        3,
        |c, n| {
            let s = service(n.pick(4));
            c.pause(&s, secs(8));
            std::thread::sleep(secs(6));
            Ok(())
        },
    );
    assert_clean("paused_service_is_dropped_and_comes_back", &r);
}

/// A registry paused for 5 s refuses nothing once it has resumed, and
/// the client given every registry sees no failed call meanwhile.
#[test]
fn paused_registry_refuses_nothing_after_resume() {
    let r = run(
        "paused_registry_refuses_nothing_after_resume",
        Layout::default(),
        4,
        |c, n| {
            let reg = registry(n.pick(3));
            c.pause(&reg, secs(5));
            std::thread::sleep(secs(10));
            Ok(())
        },
    );
    assert_clean("paused_registry_refuses_nothing_after_resume", &r);
}

/// One registry's host cut off both ways from every host but the
/// client's for 6 s: the minority registry keeps answering from its last
/// ring, the client sees no failed call, and after the heal the
/// registries agree within the bound.
#[test]
fn minority_registry_partitioned_and_healed() {
    let r = run(
        "minority_registry_partitioned_and_healed",
        Layout::default(),
        5,
        |c, n| {
            let host = n.pick(3);
            let spare = [c.client_host()];
            c.partition(&[host], &spare, true, Cut::Blackhole)?;
            std::thread::sleep(secs(6));
            c.bed.heal()?;
            std::thread::sleep(secs(6));
            Ok(())
        },
    );
    assert_clean("minority_registry_partitioned_and_healed", &r);
}

/// The client and one registry cut off together (two-way) from every
/// other host for 6 s: the client, given every registry, sees no failed
/// call, since the registry on its side is up and synced.
#[test]
fn client_partitioned_with_one_registry() {
    let r = run(
        "client_partitioned_with_one_registry",
        Layout::default(),
        9,
        |c, n| {
            let host = n.pick(3);
            let side = [host, c.client_host()];
            c.partition(&side, &[], true, Cut::Prohibit)?;
            std::thread::sleep(secs(6));
            c.bed.heal()?;
            std::thread::sleep(secs(6));
            Ok(())
        },
    );
    assert_clean("client_partitioned_with_one_registry", &r);
}

/// A service host that cannot send (one-way, prohibit) for 6 s, healed.
#[test]
fn one_way_partition_of_a_service_host() {
    let r = run(
        "one_way_partition_of_a_service_host",
        Layout::default(),
        6,
        |c, n| {
            let host = c.service_hosts().start + n.pick(2);
            let spare = [c.client_host()];
            c.partition(&[host], &spare, false, Cut::Prohibit)?;
            std::thread::sleep(secs(6));
            c.bed.heal()?;
            std::thread::sleep(secs(8));
            Ok(())
        },
    );
    assert_clean("one_way_partition_of_a_service_host", &r);
}

/// A service killed and started at once on the other service host with
/// the same id: it takes its place, no registry loses it for long.
#[test]
fn service_restarted_on_another_host() {
    let r = run(
        "service_restarted_on_another_host",
        Layout::default(),
        7,
        |c, n| {
            let i = n.pick(4);
            let (host, _) = c.bed.spec(&service(i)).ok_or("no service")?;
            let hosts = c.service_hosts();
            let to = if host == hosts.start {
                hosts.start + 1
            } else {
                hosts.start
            };
            c.restart_service(i, Duration::ZERO, to)?;
            std::thread::sleep(secs(8));
            Ok(())
        },
    );
    assert_clean("service_restarted_on_another_host", &r);
}

/// A registry's host congested (16 kbit/s, packets queued up to 400 ms
/// and dropped beyond) for 8 s: delay and loss; nobody sees a false
/// failure of a member that stayed reachable, and the client given every
/// registry sees no failed call.
#[test]
fn congested_registry_link() {
    let r = run("congested_registry_link", Layout::default(), 8, |c, n| {
        let host = n.pick(3);
        c.bed.slow(host, 16, 400)?;
        std::thread::sleep(secs(8));
        c.bed.heal()?;
        std::thread::sleep(secs(6));
        Ok(())
    });
    assert_clean("congested_registry_link", &r);
}

fn random_run(name: &str, data_dir: bool, seed: u64) {
    let duration = std::env::var("REGISTRY_CHAOS_DURATION")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(60);
    let layout = Layout {
        data_dir,
        ..Layout::default()
    };
    let r = run(name, layout, seed, |c, n| n.run(c, secs(duration)).map(|_| ()));
    assert_clean(name, &r);
}

/// Random faults from a fixed seed for `REGISTRY_CHAOS_DURATION` seconds
/// (default 60), registries with data directories, so whole-cluster
/// restarts are among the faults; the longer run of the documentation is
/// this test.
#[test]
fn seeded_random_faults() {
    random_run("seeded_random_faults", true, 16);
}

/// The same without data directories: every fault but whole-cluster
/// restarts (which only a data directory makes safe).
#[test]
fn seeded_random_faults_without_data_dir() {
    random_run("seeded_random_faults_without_data_dir", false, 17);
}

/// #17's rolling restart: three instances of a per-key counter service
/// (examples/rust/counter.rs) on three hosts are replaced one by one, each
/// by a new instance that joins first, then the old one drains (SIGTERM),
/// hands its keys to their new owners, leaves and exits; a client on its
/// own host hammers 300 keys through the registry's view all along. Every
/// request must succeed and every acknowledged increment be counted.
#[test]
fn rolling_restart_of_a_stateful_service_loses_nothing() {
    use registry_chaos::bed::{host_ip, GOSSIP_PORT, GRPC_PORT};
    use registry_chaos::history::Role;
    let name = "rolling_restart_of_a_stateful_service_loses_nothing";
    let bins =
        Bins::find(env!("CARGO_BIN_EXE_registry-chaos-client").as_ref()).unwrap_or_else(|e| panic!("{e}"));
    let counter = PathBuf::from(env!("CARGO_BIN_EXE_registry-example-counter"));
    let layout = Layout {
        services: 0,
        service_hosts: 3,
        ..Layout::default()
    };
    let mut c = Cluster::start(&dir(name), layout.clone(), bins).unwrap_or_else(|e| panic!("{name}: {e}"));
    let join = |ips: Vec<String>, port: u16| {
        ips.iter()
            .map(|ip| format!("{ip}:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let registries: Vec<String> = (0..layout.registries).map(host_ip).collect();
    let (gossip, grpc) = (join(registries.clone(), GOSSIP_PORT), join(registries, GRPC_PORT));
    let role = Role::Service {
        group: "counter".into(),
    };
    let spawn = |c: &mut Cluster, i: usize, host: usize| {
        let ip = host_ip(host);
        let args: Vec<String> = [
            "serve",
            "--id",
            &format!("counter-{i}"),
            "--addr",
            &format!("{ip}:{}", 7100 + i),
            "--bind",
            &format!("{ip}:{}", 7500 + i),
            "--registries",
            &gossip,
            "--grpc",
            &grpc,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let node = format!("counter-{i}");
        c.bed
            .spawn(&node, role.clone(), host, &counter, args)
            .unwrap_or_else(|e| panic!("{e}"));
        c.bed
            .wait_log(&node, ": serving on ", secs(30))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    };
    let hosts: Vec<usize> = c.service_hosts().collect();
    for (i, &h) in hosts.iter().enumerate() {
        spawn(&mut c, i + 1, h);
    }
    let hammer: Vec<String> = [
        "hammer",
        "--grpc",
        &grpc,
        "--keys",
        "300",
        "--seconds",
        "40",
        "--settle",
        "4000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let client_host = c.client_host();
    c.bed
        .spawn("hammer", Role::Client, client_host, &counter, hammer)
        .unwrap_or_else(|e| panic!("{e}"));
    c.bed
        .wait_log("hammer", "hammering", secs(30))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    std::thread::sleep(secs(4));
    for (i, &h) in hosts.iter().enumerate() {
        spawn(&mut c, i + 4, h);
        std::thread::sleep(secs(3));
        let old = format!("counter-{}", i + 1);
        assert!(c.bed.terminate(&old), "{old} was not running");
        c.bed
            .wait_log(&old, ": exited", secs(30))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    c.bed
        .wait_log("hammer", "RESULT ", secs(90))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let log =
        |node: &str| std::fs::read_to_string(c.bed.log_of(node).expect("a log")).expect("a readable log");
    let result = log("hammer");
    let line = result
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .expect("a RESULT line");
    let r: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    let handed: Vec<String> = (1..=3)
        .filter_map(|i| {
            log(&format!("counter-{i}"))
                .lines()
                .find(|l| l.contains("handed off"))
                .map(str::to_string)
        })
        .collect();
    eprintln!(
        "{name}: {line}\n{}\nlogs in {}",
        handed.join("\n"),
        c.bed.dir().display()
    );
    let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} in {line}"));
    assert!(n("requests") > 1_000, "too few requests: {line}");
    assert_eq!(n("failures"), 0, "failed requests: {line}");
    assert_eq!(n("lost"), 0, "acknowledged increments not counted: {line}");
    assert_eq!(n("extra"), 0, "counted increments never acknowledged: {line}");
    assert_eq!(
        n("at_owner"),
        n("counted"),
        "counts left away from their owner: {line}"
    );
    assert_eq!(n("members"), 3, "{line}");
    assert_eq!(handed.len(), 3, "every replaced instance reports its hand-off");
    for h in &handed {
        // "at its drain K keys": the keys of its ranges, about 1/4 of 300.
        let keys: u64 = h
            .split("at its drain ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|k| k.parse().ok())
            .unwrap_or_else(|| panic!("no drain figure in {h:?}"));
        assert!(
            (20..=150).contains(&keys),
            "a drain handed off {keys} of 300 keys: {h}"
        );
    }
}
