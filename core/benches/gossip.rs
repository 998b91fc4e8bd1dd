//! Gossip figures from the simulated network, with default settings.
//!
//! `cargo bench -p registry-core --bench gossip --features sim` (add `-- quick` for 10 and
//! 100 members only, `-- members=1000` for one size, `-- seed=N` for another
//! random draw, `-- crashes` for simultaneous crashes only, `-- starve` for
//! false failures under CPU starvation only). For each cluster
//! size: time until the registries (the first 3 members, the seeds) and
//! until all members know of a join;
//! time until all know of a crash and of a graceful leave; bytes per
//! second per member at rest; false failures at 5% loss. Delays are
//! 0.2–1 ms one way (LAN).

use registry_core::gossip::sim::{Sim, SimConfig};
use registry_core::{MemberEvent, Service};
use std::time::{Duration, Instant};

const REGISTRIES: usize = 3;

fn svc(i: usize) -> Service {
    let mut s = Service::new(
        format!("svc-{i}"),
        format!("group-{}", i % 10),
        format!("10.{}.{}.{}:8080", 2 + (i >> 16), (i >> 8) & 255, i & 255),
    );
    s.tags.insert("zone".into(), format!("z{}", i % 3));
    s.tags.insert("version".into(), "1.4.2".into());
    s
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Builds a settled cluster of `n`.
fn cluster(n: usize, mut cfg: SimConfig) -> Sim {
    // Tuning experiments: PROBE_MS / SUSPECT_MS / MAX_TX override the defaults.
    if let Some(p) = std::env::var("PROBE_MS").ok().and_then(|v| v.parse().ok()) {
        cfg.gossip.probe_period = Duration::from_millis(p);
    }
    if let Some(p) = std::env::var("SUSPECT_MS").ok().and_then(|v| v.parse().ok()) {
        cfg.gossip.suspect_to_down_after = Duration::from_millis(p);
    }
    if let Some(t) = std::env::var("MAX_TX").ok().and_then(|v| v.parse().ok()) {
        cfg.gossip.max_transmissions = t;
    }
    let mut sim = Sim::new(cfg);
    for i in 0..n {
        let seeds: Vec<usize> = (0..i.min(REGISTRIES)).collect();
        sim.add_node(svc(i), &seeds);
        sim.run_for(Duration::from_millis(5));
    }
    assert!(
        sim.run_until(Duration::from_secs(60), |s| s.converged())
            .is_some(),
        "no convergence"
    );
    sim.run_for(Duration::from_secs(5));
    sim
}

/// Times (ms) since `t0` at which the registries / all running nodes got
/// the first event matching `want`.
fn spread(sim: &mut Sim, t0: Duration, nodes: &[usize], want: impl Fn(&MemberEvent) -> bool) -> (f64, f64) {
    let log = sim.take_log();
    let mut reg = 0.0f64;
    let mut all = 0.0f64;
    for &i in nodes {
        let t = log
            .iter()
            .filter(|(_, n, e)| *n == i && want(e))
            .map(|(t, _, _)| ms(*t - t0))
            .fold(f64::NAN, f64::min);
        if i < REGISTRIES {
            reg = reg.max(t);
        }
        all = all.max(t);
    }
    (reg, all)
}

fn run(n: usize, trials: usize, seed: u64) {
    let wall = Instant::now();
    let cfg = SimConfig {
        seed,
        ..SimConfig::default()
    };
    let mut sim = cluster(n, cfg);
    let built = wall.elapsed();

    // Bandwidth at rest.
    let b0 = sim.bytes_sent();
    let rest = Duration::from_secs(60);
    sim.run_for(rest);
    let bps = (sim.bytes_sent() - b0) as f64 / rest.as_secs_f64() / n as f64;

    let (mut j_reg, mut j_all, mut c_reg, mut c_all, mut l_reg, mut l_all) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for t in 0..trials {
        let victim = REGISTRIES + t % (n - REGISTRIES);
        // Join.
        let id = format!("svc-{}", 100_000 + t);
        let mut s = svc(100_000 + t);
        s.id = id.clone();
        sim.watch(id.clone());
        let t0 = sim.now();
        let new = sim.add_node(s, &[t % REGISTRIES]);
        let ok = sim.run_until(Duration::from_secs(10), |x| x.all_know(&id));
        assert!(ok.is_some(), "join not seen by all");
        let nodes: Vec<usize> = sim.running().map(|(i, _)| i).filter(|&i| i != new).collect();
        let (r, a) = spread(&mut sim, t0, &nodes, |e| matches!(e, MemberEvent::Joined(_)));
        j_reg.push(r);
        j_all.push(a);
        sim.run_for(Duration::from_secs(2));

        // Crash of an old member.
        let vid = format!("svc-{victim}");
        sim.watch(vid.clone());
        let t0 = sim.now();
        sim.crash(victim);
        let ok = sim.run_until(Duration::from_secs(20), |x| x.none_know(&vid));
        assert!(ok.is_some(), "crash not known to all");
        let nodes: Vec<usize> = sim.running().map(|(i, _)| i).collect();
        let (r, a) = spread(&mut sim, t0, &nodes, |e| matches!(e, MemberEvent::Failed(_)));
        c_reg.push(r);
        c_all.push(a);
        // Bring it back (a restart at the same address) to keep the size.
        sim.restart(victim, svc(victim));
        let ok = sim.run_until(Duration::from_secs(20), |x| x.all_know(&vid));
        assert!(ok.is_some(), "restart not seen by all");
        sim.run_for(Duration::from_secs(2));

        // Graceful leave of the new member.
        sim.watch(id.clone());
        let t0 = sim.now();
        sim.leave(new);
        let ok = sim.run_until(Duration::from_secs(5), |x| x.none_know(&id));
        assert!(ok.is_some(), "leave not applied by all");
        let nodes: Vec<usize> = sim.running().map(|(i, _)| i).collect();
        let (r, a) = spread(&mut sim, t0, &nodes, |e| matches!(e, MemberEvent::Left(_)));
        l_reg.push(r);
        l_all.push(a);
        sim.run_for(Duration::from_secs(2));
    }
    let row = |name: &str, v: &mut Vec<f64>, w: &mut Vec<f64>| {
        println!(
            "| {n:>5} | {name:<22} | {:>7.0} | {:>7.0} | {:>7.0} | {:>7.0} |",
            pct(v, 0.5),
            pct(v, 0.99),
            pct(w, 0.5),
            pct(w, 0.99)
        );
    };
    row("join", &mut j_reg, &mut j_all);
    row("crash", &mut c_reg, &mut c_all);
    row("graceful leave", &mut l_reg, &mut l_all);
    println!(
        "|       | at rest: {bps:.0} B/s per member; {trials} trials; build {built:.1?}, total {:.1?} wall",
        wall.elapsed()
    );
}

fn loss(n: usize, secs: u64) {
    let cfg = SimConfig {
        loss: 0.05,
        seed: 11,
        ..SimConfig::default()
    };
    let mut sim = cluster(n, cfg);
    sim.watch_where(|e| matches!(e, MemberEvent::Failed(_)));
    let b0 = sim.bytes_sent();
    sim.run_for(Duration::from_secs(secs));
    let bps = (sim.bytes_sent() - b0) as f64 / secs as f64 / n as f64;
    let f = sim.take_log().len();
    println!("5% loss, {n} members, {secs} s: {f} false failure events; {bps:.0} B/s per member");
}

/// CPU starvation: `victims` members of a cluster of `n` are descheduled
/// `pause_ms` at a time (paused, as SIGSTOP/SIGCONT), running `run_ms`
/// between pauses, for `secs` of virtual time. Every `Failed` event is
/// false: no member crashes. Prints them per hour.
fn starve(n: usize, victims: usize, pause_ms: u64, run_ms: u64, secs: u64) {
    let mut sim = cluster(n, SimConfig::default());
    sim.watch_where(|e| matches!(e, MemberEvent::Failed(_)));
    let start = sim.now();
    let cycle = Duration::from_millis(pause_ms + run_ms);
    // Victims spread over the non-registries, their cycles offset.
    let who: Vec<usize> = (0..victims)
        .map(|j| REGISTRIES + j * (n - REGISTRIES) / victims)
        .collect();
    let step = cycle / victims as u32;
    while sim.now() - start < Duration::from_secs(secs) {
        for &v in &who {
            sim.pause(v, Duration::from_millis(pause_ms));
            sim.run_for(step);
        }
    }
    let f = sim.take_log().len();
    let per_hour = f as f64 * 3600.0 / secs as f64;
    println!(
        "starvation, {n} members, {victims} paused {pause_ms} ms every {} ms, {secs} s: {f} false failure events ({per_hour:.0} per hour)",
        pause_ms + run_ms
    );
}

/// Many members crash at once: `k` of `n` (the registries excepted) are
/// killed together, `trials` times (restarted in between). Per trial, the
/// time (ms) until every registry, and until every member, has declared
/// all `k` failed.
fn mass_crash(n: usize, k: usize, trials: usize, seed: u64) {
    let wall = Instant::now();
    let mut sim = cluster(
        n,
        SimConfig {
            seed,
            ..SimConfig::default()
        },
    );
    let (mut reg, mut all) = (vec![], vec![]);
    for t in 0..trials {
        // Victims spread over the non-registries, a different set each trial.
        let victims: Vec<usize> = (0..k)
            .map(|j| REGISTRIES + (j * (n - REGISTRIES) / k + t) % (n - REGISTRIES))
            .collect();
        let ids: Vec<String> = victims.iter().map(|&v| format!("svc-{v}")).collect();
        let watched = ids.clone();
        sim.watch_where(move |e| matches!(e, MemberEvent::Failed(s) if watched.contains(&s.id)));
        let t0 = sim.now();
        for &v in &victims {
            sim.crash(v);
        }
        let ok = sim.run_until(Duration::from_secs(120), |x| ids.iter().all(|id| x.none_know(id)));
        assert!(ok.is_some(), "{k} crashes not known to all in 120 s");
        let log = sim.take_log();
        let nodes: Vec<usize> = sim.running().map(|(i, _)| i).collect();
        let (mut r, mut a) = (0.0f64, 0.0f64);
        for &i in &nodes {
            for id in &ids {
                let first = log
                    .iter()
                    .filter(|(_, node, e)| *node == i && e.service().id == *id)
                    .map(|(at, _, _)| ms(*at - t0))
                    .fold(f64::NAN, f64::min);
                if i < REGISTRIES {
                    r = r.max(first);
                }
                a = a.max(first);
            }
        }
        reg.push(r);
        all.push(a);
        for &v in &victims {
            sim.restart(v, svc(v));
        }
        let ok = sim.run_until(Duration::from_secs(60), |x| x.converged());
        assert!(ok.is_some(), "restarts not seen by all");
        sim.run_for(Duration::from_secs(5));
    }
    println!(
        "| {n:>5} | {k:>3} at once | {:>7.0} | {:>7.0} | {:>7.0} | {:>7.0} | {trials} trials, {:.1?} wall",
        pct(&mut reg, 0.5),
        pct(&mut reg, 1.0),
        pct(&mut all, 0.5),
        pct(&mut all, 1.0),
        wall.elapsed()
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    if let Ok(p) = std::env::var("PROBE_MS") {
        println!("(probe_period override: {p} ms)");
    }
    // `members=N`: only the cluster of N (10, 100 or 1000), no loss run.
    let only: Option<usize> = std::env::args().find_map(|a| a.strip_prefix("members=")?.parse().ok());
    // `seed=N`: the simulator's random seed for the join/crash/leave runs.
    let seed = std::env::args()
        .find_map(|a| a.strip_prefix("seed=")?.parse().ok())
        .unwrap_or(SimConfig::default().seed);
    if std::env::args().any(|a| a == "starve") {
        // A pause as long as a suspicion's whole span shows the run
        // counts real verdicts: those members are declared down.
        for (pause_ms, run_ms) in [(500, 500), (500, 100), (3000, 500)] {
            starve(100, 5, pause_ms, run_ms, 600);
        }
        return;
    }
    if std::env::args().any(|a| a == "crashes") {
        println!("| members | crashed | registries know all: median ms | max | all members know all: median | max |");
        println!("|---:|---|---:|---:|---:|---:|");
        for (n, k) in [(50, 1), (50, 10), (150, 100)] {
            mass_crash(n, k, 10, seed);
        }
        return;
    }
    println!("| members | event | registries p50 ms | p99 | all members p50 ms | p99 |");
    println!("|---:|---|---:|---:|---:|---:|");
    for (n, trials) in [(10, 50), (100, 50), (1000, 10)] {
        if only.is_some_and(|o| o != n) || (quick && n == 1000) {
            continue;
        }
        run(n, trials, seed);
    }
    if only.is_none() {
        loss(100, 600);
    }
}
