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
