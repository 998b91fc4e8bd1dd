//! Simulated network (virtual time): large clusters, loss, partitions.

use registry_core::gossip::sim::{Sim, SimConfig};
use registry_core::{MemberEvent, Service};
use std::time::Duration;

fn svc(i: usize) -> Service {
    let mut s = Service::new(
        format!("s{i}"),
        format!("g{}", i % 7),
        format!("10.1.{}.{}:80", i / 256, i % 256),
    );
    s.tags.insert("n".into(), i.to_string());
    s
}

/// `n` nodes joining through the first three, one every `gap`.
fn cluster(n: usize, cfg: SimConfig, gap: Duration) -> Sim {
    let mut sim = Sim::new(cfg);
    for i in 0..n {
        let seeds: Vec<usize> = (0..i.min(3)).collect();
        sim.add_node(svc(i), &seeds);
        sim.run_for(gap);
    }
    sim
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// foca applies each update with a linear scan of its member list, so a
// 1,000-member mass start is ~1e9 steps: about a minute, which is why the
// workspace's dev profile optimizes foca and registry-core.
#[test]
fn thousand_members_converge_then_see_a_crash_a_leave_and_an_update() {
    crash_leave_update(1000);
}

#[test]
fn members_converge_then_see_a_crash_a_leave_and_an_update() {
    crash_leave_update(250);
}

fn crash_leave_update(n: usize) {
    let wall = std::time::Instant::now();
    let mut sim = cluster(n, SimConfig::default(), Duration::from_millis(2));
    let took = sim.run_until(secs(60), |s| s.converged());
    println!("{n} converged after {took:?} virtual, {:?} wall", wall.elapsed());
    assert!(took.is_some(), "{n} members did not converge");
    // Full metadata everywhere.
    for (_, m) in sim.running() {
        assert!(m.knows(&svc(n / 2)) && m.knows(&svc(0)) && m.knows(&svc(n - 1)));
    }

    sim.watch_where(|_| true);
    sim.crash(10);
    let t = sim
        .run_until(secs(20), |s| s.none_know("s10"))
        .expect("crash not known to all");
    println!("crash known to all after {t:?}");
    sim.leave(11);
    let t = sim
        .run_until(secs(5), |s| s.none_know("s11"))
        .expect("leave not applied by all");
    println!("leave applied by all after {t:?}");
    let mut s12 = svc(12);
    s12.weight = 5;
    sim.update(12, s12.clone()).unwrap();
    if sim
        .run_until(secs(5), |s| s.running().all(|(_, m)| m.knows(&s12)))
        .is_none()
    {
        let missing: Vec<usize> = sim
            .running()
            .filter(|(_, m)| !m.knows(&s12))
            .map(|(i, _)| i)
            .collect();
        let st = sim.node(missing[0]).map(|m| m.stats());
        panic!(
            "update not seen by {} nodes: {:?} {st:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
    }
    let log = sim.take_log();
    let fails = log
        .iter()
        .filter(|(_, _, e)| matches!(e, MemberEvent::Failed(s) if s.id == "s10"))
        .count();
    let lefts = log
        .iter()
        .filter(|(_, _, e)| matches!(e, MemberEvent::Left(s) if s.id == "s11"))
        .count();
    let odd: Vec<_> = log
        .iter()
        .filter(|(_, _, e)| !matches!(e, MemberEvent::Failed(s) if s.id == "s10"))
        .filter(|(_, _, e)| !matches!(e, MemberEvent::Left(s) if s.id == "s11"))
        .filter(|(_, _, e)| !matches!(e, MemberEvent::Updated(s) if s.id == "s12"))
        .take(5)
        .collect();
    // The other n - 2 nodes see Left(s11); s11 itself emits Left(self) first.
    assert_eq!(
        (fails, lefts),
        (n - 1, n - 1),
        "Failed(s10) and Left(s11) once per node; odd: {odd:?}"
    );
    let other: Vec<_> = log
        .iter()
        .filter(|(_, _, e)| !["s10", "s11", "s12"].contains(&e.service().id.as_str()))
        .collect();
    assert!(
        other.is_empty(),
        "unexpected events: {:?}",
        &other[..other.len().min(5)]
    );
}

#[test]
fn five_percent_loss_causes_no_false_failure() {
    let cfg = SimConfig {
        loss: 0.05,
        seed: 7,
        ..SimConfig::default()
    };
    let mut sim = cluster(100, cfg, Duration::from_millis(10));
    assert!(sim.run_until(secs(30), |s| s.converged()).is_some());
    sim.watch_where(|e| matches!(e, MemberEvent::Failed(_) | MemberEvent::Left(_)));
    sim.run_for(secs(600));
    let log = sim.take_log();
    assert!(
        log.is_empty(),
        "{} false failures, first: {:?}",
        log.len(),
        log.first()
    );
    assert!(sim.converged());
}

#[test]
fn partition_heals_into_one_cluster() {
    let mut sim = cluster(60, SimConfig::default(), Duration::from_millis(5));
    assert!(sim.run_until(secs(20), |s| s.converged()).is_some());
    // Seeds 0..3 all on one side: the other side must heal without them.
    sim.partition(|i| u32::from(i % 2 == 1));
    sim.run_until(secs(30), |s| s.running().all(|(_, m)| m.member_count() == 30))
        .expect("each side sees the other fail");
    sim.heal();
    let t = sim
        .run_until(secs(120), |s| s.converged())
        .expect("partition did not heal");
    println!("healed after {t:?}");
    for (_, m) in sim.running() {
        assert!(m.knows(&svc(1)) && m.knows(&svc(2)));
    }
}

/// Reachable members (of 30) declared down by a cut of the last two for
/// `cut_for`: their identity, renewed on a false failure, changed by the
/// time the healed cluster has converged and run 10 s more.
fn renewed_by_a_cut(two_way: bool, cut_for: Duration) -> Vec<usize> {
    renewed_by_a_cut_of(30, 2, two_way, cut_for)
}

/// As [`renewed_by_a_cut`], with `n` members and the last `k` cut off.
fn renewed_by_a_cut_of(n: usize, k: usize, two_way: bool, cut_for: Duration) -> Vec<usize> {
    renewed_and_heal_time(n, k, two_way, cut_for).0
}

/// As [`renewed_by_a_cut_of`], with the time the cluster took to agree
/// again after the heal.
fn renewed_and_heal_time(n: usize, k: usize, two_way: bool, cut_for: Duration) -> (Vec<usize>, Duration) {
    renewed_under(SimConfig::default(), n, k, two_way, cut_for)
}

/// As [`renewed_and_heal_time`], on a network set by `cfg`.
fn renewed_under(
    cfg: SimConfig,
    n: usize,
    k: usize,
    two_way: bool,
    cut_for: Duration,
) -> (Vec<usize>, Duration) {
    renewed_at(cfg, n, k, two_way, cut_for, CutTiming::default())
}

/// When a cut falls: members join `gap` apart (spreading their probe
/// rounds), and the cut begins `warm_up` after the cluster converged.
/// Cut right after convergence, the members' windows of probe outcomes
/// are nearly empty, so a few failed probes already make a member
/// isolated; a real cut finds them full of answers.
#[derive(Clone, Copy)]
struct CutTiming {
    gap: Duration,
    warm_up: Duration,
}

impl Default for CutTiming {
    fn default() -> Self {
        CutTiming {
            gap: Duration::from_millis(5),
            warm_up: secs(5),
        }
    }
}

/// As [`renewed_under`], with the cut timed by `at`.
fn renewed_at(
    cfg: SimConfig,
    n: usize,
    k: usize,
    two_way: bool,
    cut_for: Duration,
    at: CutTiming,
) -> (Vec<usize>, Duration) {
    let muted: Vec<usize> = (n - k..n).collect();
    let mut sim = cluster(n, cfg, at.gap);
    assert!(sim.run_until(secs(20), |s| s.converged()).is_some());
    sim.run_for(at.warm_up);
    let before: Vec<_> = (0..n).map(|i| sim.node(i).map(|m| m.identity())).collect();
    let group_of = |i| u32::from(muted.contains(&i));
    if two_way {
        sim.partition(group_of);
    } else {
        sim.partition_one_way(group_of);
    }
    sim.run_for(cut_for);
    sim.heal();
    let t = sim
        .run_until(secs(60), |s| s.converged())
        .expect("the cluster did not heal");
    sim.run_for(secs(10));
    println!("healed after {t:?}");
    assert!(sim.converged());
    let renewed = (0..n)
        .filter(|i| !muted.contains(i))
        .filter(|&i| sim.node(i).map(|m| m.identity()) != before[i])
        .collect();
    (renewed, t)
}

/// A host that cannot send for 2-20 s (a one-way partition) suspects every
/// peer while the cluster declares it down. Once healed, its own members
/// rejoin; the members that stayed reachable must not be declared down.
/// (With local health's hold capped at 12 s, cuts of 10 s and more renewed
/// most of the cluster.)
#[test]
fn a_one_way_partition_declares_no_reachable_member_down() {
    for cut_for in [2, 4, 6, 8, 10, 20].map(secs) {
        let renewed = renewed_by_a_cut(false, cut_for);
        assert!(
            renewed.is_empty(),
            "a {cut_for:?} cut: reachable members declared down: {renewed:?}"
        );
    }
}

/// A host cut off both ways hears nothing, so it declares its peers down
/// while the cluster declares it down. Verdicts formed in isolation must
/// not reach the members they name once the cut heals.
#[test]
fn a_two_way_partition_declares_no_reachable_member_down() {
    for cut_for in [2, 3, 5, 7, 10, 20, 40].map(secs) {
        let renewed = renewed_by_a_cut(true, cut_for);
        assert!(
            renewed.is_empty(),
            "a {cut_for:?} cut: reachable members declared down: {renewed:?}"
        );
    }
}

#[test]
fn late_joiner_learns_everyone_and_restart_replaces() {
    let mut sim = cluster(200, SimConfig::default(), Duration::from_millis(5));
    assert!(sim.run_until(secs(20), |s| s.converged()).is_some());
    sim.run_for(secs(30));
    let late = sim.add_node(svc(1000), &[0]);
    let t = sim
        .run_until(secs(10), |s| {
            s.node(late).is_some_and(|m| m.member_count() == 201)
        })
        .expect("late joiner did not learn everyone");
    println!("late joiner knows all 200 after {t:?}");
    for i in [0, 50, 199] {
        assert!(sim.node(late).is_some_and(|m| m.knows(&svc(i))));
    }
    // A crash and restart at the same address: an update at most, never a failure.
    sim.watch("s42");
    sim.crash(42);
    let mut again = svc(42);
    again.weight = 2;
    sim.restart(42, again.clone());
    sim.run_until(secs(10), |s| s.running().all(|(_, m)| m.knows(&again)))
        .expect("restart not seen");
    sim.run_for(secs(10));
    let log = sim.take_log();
    let bad: Vec<_> = log
        .iter()
        .filter(|(_, n, e)| *n != 42 && !matches!(e, MemberEvent::Updated(_)))
        .collect();
    assert!(bad.is_empty(), "{:?}", &bad[..bad.len().min(3)]);
    assert_eq!(
        log.len(),
        201,
        "one Joined on the restarted node, one Updated on each other"
    );
}

/// A newcomer checks its id with a sync before publishing its record; the
/// sync answer (many records, several datagrams) says where it ends, so the
/// newcomer decides and the registries list it within a few round trips,
/// not a repair tick (`meta_tick`) later.
#[test]
fn a_newcomer_reaches_the_registries_within_a_few_round_trips() {
    let mut sim = cluster(40, SimConfig::default(), Duration::from_millis(5));
    assert!(sim.run_until(secs(20), |s| s.converged()).is_some());
    sim.run_for(secs(5));
    let tick = registry_core::gossip::GossipConfig::lan().meta_tick;
    let new = svc(500);
    sim.add_node(new.clone(), &[0, 1, 2]);
    let took = sim
        .run_until(secs(5), |s| {
            (0..3).all(|i| s.node(i).is_some_and(|m| m.knows(&new)))
        })
        .expect("the registries never listed the newcomer");
    assert!(
        took < tick / 2,
        "listed after {took:?}, a repair tick is {tick:?}"
    );
}

/// 10% loss and a delay of 1-40 ms (so datagrams also arrive out of
/// order), 40 members: the cluster converges, a join still spreads, a real
/// crash is still seen by everyone exactly once, and a false failure, if
/// one happens, heals by itself (the member rejoins). At 10% loss the
/// defaults give about one false failure per half hour of a 40-member
/// cluster (RELIABILITY.md, "Faults"), so none is not asserted here; the
/// 5% test above asserts none.
#[test]
fn ten_percent_loss_with_jitter_converges_heals_and_still_sees_a_crash() {
    let cfg = SimConfig {
        loss: 0.10,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(40),
        seed: 11,
        ..SimConfig::default()
    };
    let mut sim = cluster(40, cfg, Duration::from_millis(20));
    let took = sim.run_until(secs(60), |s| s.converged());
    assert!(took.is_some(), "40 members did not converge at 10% loss");
    sim.watch_where(|e| matches!(e, MemberEvent::Failed(_) | MemberEvent::Left(_)));
    sim.run_for(secs(300));
    let false_failures = sim.take_log();
    println!(
        "{} false failure events in 300 s at 10% loss",
        false_failures.len()
    );
    sim.run_until(secs(60), |s| {
        s.converged() && (0..40).all(|i| s.all_know(&format!("s{i}")))
    })
    .expect("a falsely failed member rejoins and everyone lists everyone again");

    let late = sim.add_node(svc(40), &[0, 1, 2]);
    sim.run_until(secs(60), |s| s.converged() && s.all_know("s40"))
        .expect("a join spreads at 10% loss");

    sim.watch("s7");
    sim.crash(7);
    let t = sim
        .run_until(secs(60), |s| s.none_know("s7"))
        .expect("a crash is detected at 10% loss");
    println!("crash known to all after {t:?} at 10% loss");
    sim.run_for(secs(30));
    let log = sim.take_log();
    let fails = log
        .iter()
        .filter(|(_, _, e)| matches!(e, MemberEvent::Failed(_)))
        .count();
    assert_eq!(
        (fails, log.len()),
        (40, 40),
        "Failed(s7) once on each of the 40 others, nothing else: {:?}",
        &log[..log.len().min(3)]
    );
    assert!(sim.node(late).is_some());
}

/// Every event, with its virtual time and node, of 20 members joining at
/// 10% loss and then a crash, under `seed`.
fn trace(seed: u64) -> (Vec<(Duration, usize, MemberEvent)>, u64) {
    let cfg = SimConfig {
        loss: 0.10,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(40),
        seed,
        ..SimConfig::default()
    };
    let mut sim = Sim::new(cfg);
    sim.watch_where(|_| true);
    for i in 0..20 {
        let seeds: Vec<usize> = (0..i.min(3)).collect();
        sim.add_node(svc(i), &seeds);
        sim.run_for(Duration::from_millis(20));
    }
    sim.run_for(secs(20));
    sim.crash(5);
    sim.run_for(secs(20));
    (sim.take_log(), sim.bytes_sent())
}

/// A seed replays a run exactly (a failing seed can be debugged), and
/// another seed gives another run (the seed is really used).
#[test]
fn a_seed_replays_the_same_run() {
    let (a, bytes_a) = trace(3);
    let (b, bytes_b) = trace(3);
    assert!(
        a.len() > 20 * 19,
        "every member sees every other join: {}",
        a.len()
    );
    assert_eq!(bytes_a, bytes_b, "same seed, same bytes sent");
    assert!(a == b, "same seed, same events at the same virtual times");
    let (_, bytes_c) = trace(4);
    assert_ne!(bytes_a, bytes_c, "another seed gives another run");
}

/// In a small cluster (8 members, as on the multi-host test bed) a cut of
/// one or two members, either way, renews no reachable member; even a
/// cut of half the cluster (where both sides may rejoin, as each holds
/// the other down) heals in a few seconds, with no stand-off.
#[test]
fn a_small_cluster_heals_a_cut_without_renewing_the_reachable_side() {
    for two_way in [false, true] {
        for cut_for in [2, 4, 7, 10].map(secs) {
            for k in [1, 2] {
                let renewed = renewed_by_a_cut_of(8, k, two_way, cut_for);
                assert!(
                    renewed.is_empty(),
                    "two-way {two_way}, {k} cut off for {cut_for:?}: reachable members declared down: {renewed:?}"
                );
            }
            let (_, t) = renewed_and_heal_time(8, 4, two_way, cut_for);
            assert!(
                t < secs(5),
                "two-way {two_way}, half cut off for {cut_for:?}: agreed after {t:?}"
            );
        }
    }
}

/// Cuts of one to three of eight members (three services on one host),
/// either way, for 1.5 to 7 s, under twelve seeds: no member that stayed
/// reachable is declared down. Each mechanism was needed by some of these
/// runs: a suspicion refuted before its timeout must not reach foca (which
/// would still tell the member it is down), a suspicion that times out
/// just after the heal gets a last call, members cut off together do not
/// count as hearing each other, a verdict waits while its suspect is
/// heard, and a member declared down that talks again is taken back.
#[test]
fn cuts_of_up_to_three_members_renew_no_reachable_member_under_any_seed() {
    let mut bad = Vec::new();
    for seed in 1..=12 {
        for cut_ms in [1500, 2000, 3000, 4000, 7000] {
            for k in 1..=3 {
                for two_way in [false, true] {
                    let cfg = SimConfig {
                        seed,
                        ..SimConfig::default()
                    };
                    let (renewed, _) = renewed_under(cfg, 8, k, two_way, Duration::from_millis(cut_ms));
                    if !renewed.is_empty() {
                        bad.push((seed, cut_ms, k, two_way, renewed));
                    }
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "(seed, cut ms, cut off, two-way, reachable members declared down): {bad:?}"
    );
}

/// A host cut off both ways for 5 or 10 s (2 or 3 of 8 members): after the
/// heal every member lists every member again within 1 s. (When a member
/// declared down that talked again was always taken back, by every node,
/// the cut-off members and the rest had to meet pair by pair: up to 5 s.)
#[test]
fn two_way_cuts_heal_within_a_second() {
    let mut slow = Vec::new();
    for seed in 1..=4 {
        for cut_ms in [5000, 10000] {
            for k in 2..=3 {
                let cfg = SimConfig {
                    seed,
                    ..SimConfig::default()
                };
                let (renewed, healed) = renewed_under(cfg, 8, k, true, Duration::from_millis(cut_ms));
                assert!(
                    renewed.is_empty(),
                    "seed {seed}, {cut_ms} ms, {k} cut off: {renewed:?} renewed"
                );
                if healed > Duration::from_secs(1) {
                    slow.push((seed, cut_ms, k, healed));
                }
            }
        }
    }
    assert!(
        slow.is_empty(),
        "(seed, cut ms, cut off, heal time) over 1 s: {slow:?}"
    );
}

/// The chaos bed's shape: 3 registries and 4 services, the 3 services of
/// one host cut off both ways for 3 to 7 s. Every member lists every
/// member again within 1 s of the heal, and no reachable member is
/// renewed. (With foca's announce to members believed down every 3 s,
/// heals took up to 3 s.)
#[test]
fn a_service_host_cut_off_both_ways_is_listed_again_within_a_second() {
    let mut bad = Vec::new();
    for seed in 1..=12 {
        for cut_ms in [3000, 4900, 7000] {
            let cfg = SimConfig {
                seed,
                ..SimConfig::default()
            };
            let (renewed, healed) = renewed_under(cfg, 7, 3, true, Duration::from_millis(cut_ms));
            if !renewed.is_empty() || healed > Duration::from_secs(1) {
                bad.push((seed, cut_ms, renewed, healed));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "(seed, cut ms, reachable renewed, heal time): {bad:?}"
    );
}

/// One member cut off both ways for longer than an isolated node's
/// first hold would last (12 and 21 s): once healed, no reachable member
/// is renewed. (With the hold capped at 10 s and the announce to members
/// believed down every 500 ms, some were: verdicts given just before the
/// heal.)
#[test]
fn a_lone_member_cut_off_for_long_renews_no_reachable_member() {
    let mut bad = Vec::new();
    for seed in 1..=12 {
        for cut_ms in [12_000, 21_000] {
            let cfg = SimConfig {
                seed,
                ..SimConfig::default()
            };
            let (renewed, _) = renewed_under(cfg, 8, 1, true, Duration::from_millis(cut_ms));
            if !renewed.is_empty() {
                bad.push((seed, cut_ms, renewed));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "(seed, cut ms, reachable members renewed): {bad:?}"
    );
}

/// The chaos bed's shape (7 members), one to three cut off both ways for
/// 1.75 to 3.5 s, starting at ten points of the probe rounds: a cut that
/// heals just after the cut-off side's first verdicts. Members' probe
/// windows are full of answers when it begins, so they are not isolated
/// yet. No reachable member is renewed, and every member lists every
/// member within 1 s of the heal. (Before verdicts waited on probes
/// failing lately and on being outnumbered by suspects, and before a
/// "you are down" from a member silent lately was refused, 246 of these
/// 960 runs renewed reachable members; the 30-minute chaos run had one.)
#[test]
fn short_cuts_that_heal_just_after_the_first_verdicts_renew_no_reachable_member() {
    let mut bad = Vec::new();
    let mut runs = 0;
    for seed in 1..=4 {
        for cut_ms in (1750..=3500).step_by(250) {
            for k in 1..=3 {
                for (gap, warm_up) in (0..5).flat_map(|i| [(5, 5000 + 100 * i), (71, 5050 + 100 * i)]) {
                    let cfg = SimConfig {
                        seed,
                        ..SimConfig::default()
                    };
                    let at = CutTiming {
                        gap: Duration::from_millis(gap),
                        warm_up: Duration::from_millis(warm_up),
                    };
                    let (renewed, healed) = renewed_at(cfg, 7, k, true, Duration::from_millis(cut_ms), at);
                    runs += 1;
                    if !renewed.is_empty() || healed > secs(1) {
                        bad.push((seed, cut_ms, k, gap, warm_up, renewed, healed));
                    }
                }
            }
        }
    }
    println!("{} of {runs} runs renewed or healed slowly: {bad:?}", bad.len());
    // One run in a few hundred of 3 cut off (an almost even split) still
    // renews a member: see RELIABILITY.md.
    assert!(
        bad.len() <= runs / 200,
        "{} of {runs} runs (seed, cut ms, cut off, join gap ms, warm-up ms, reachable renewed, heal time): {bad:?}",
        bad.len()
    );
}

/// For each of the last `k` of 7 members, muted (they cannot send) for
/// 7 s: how far apart the reachable members dropped it (`None`: one of
/// them never did).
fn drop_spreads(seed: u64, k: usize, at: CutTiming) -> Vec<Option<Duration>> {
    let n = 7;
    let cfg = SimConfig {
        seed,
        ..SimConfig::default()
    };
    let mut sim = cluster(n, cfg, at.gap);
    assert!(sim.run_until(secs(20), |s| s.converged()).is_some());
    sim.run_for(at.warm_up);
    sim.watch_where(|ev| matches!(ev, MemberEvent::Failed(_)));
    sim.partition_one_way(|i| u32::from(i >= n - k));
    sim.run_for(secs(7));
    let log = sim.take_log();
    sim.heal();
    (n - k..n)
        .map(|muted| {
            let id = svc(muted).id;
            let firsts: Vec<Duration> = (0..n - k)
                .map(|i| {
                    log.iter()
                        .find(|(_, node, ev)| *node == i && ev.service().id == id)
                        .map(|(t, _, _)| *t)
                })
                .collect::<Option<_>>()?;
            let (lo, hi) = (firsts.iter().min()?, firsts.iter().max()?);
            Some(*hi - *lo)
        })
        .collect()
}

/// Rings agree during a fault too (#16): when a host whose services cannot
/// send is cut off, every reachable member drops each of them within a
/// second of the first one that did (the chaos replay saw 2.2 s with 3 of
/// 7 muted: members that saw many probes fail held their verdicts).
#[test]
fn reachable_members_drop_a_muted_host_within_a_second_of_each_other() {
    let (mut bad, mut worst, mut runs) = (Vec::new(), Duration::ZERO, 0);
    for seed in 1..=6 {
        for k in 1..=3 {
            for (gap, warm_up) in [(5, 5000), (71, 5350)] {
                let at = CutTiming {
                    gap: Duration::from_millis(gap),
                    warm_up: Duration::from_millis(warm_up),
                };
                for spread in drop_spreads(seed, k, at) {
                    runs += 1;
                    match spread {
                        Some(d) if d <= secs(1) => worst = worst.max(d),
                        _ => bad.push((seed, k, gap, spread)),
                    }
                }
            }
        }
    }
    println!("{runs} muted members, widest spread {worst:?}, over a second or never: {bad:?}");
    assert!(bad.is_empty(), "(seed, muted, join gap ms, spread): {bad:?}");
}

/// A paused process (SIGSTOP, then SIGCONT) is declared down meanwhile;
/// once resumed it takes the cluster's verdict, rejoins under a new
/// identity (which every member accepts at once) and is listed by every
/// member again within 2 s, and no other member is renewed. (Once
/// having refuted a suspicion stopped counting as being cut off, a
/// resumed service refused every "you are down" in the chaos replay and
/// stayed unlisted: see RELIABILITY.md.)
#[test]
fn a_paused_member_is_dropped_then_listed_again_once_resumed() {
    let n = 7;
    let paused = n - 1;
    let id = svc(paused).id;
    let mut bad = Vec::new();
    for seed in 1..=8 {
        for pause_ms in [2_500u64, 4_300, 8_000] {
            let cfg = SimConfig {
                seed,
                ..SimConfig::default()
            };
            let mut sim = cluster(n, cfg, Duration::from_millis(5));
            assert!(sim.run_until(secs(20), |s| s.converged()).is_some());
            sim.run_for(secs(5));
            let before: Vec<_> = (0..n).map(|i| sim.node(i).map(|m| m.identity())).collect();
            sim.watch(id.clone());
            sim.pause(paused, Duration::from_millis(pause_ms));
            sim.run_for(Duration::from_millis(pause_ms));
            let dropped_by = sim
                .take_log()
                .iter()
                .filter(|(_, _, ev)| matches!(ev, MemberEvent::Failed(_)))
                .count();
            let back = sim.run_until(secs(10), |s| s.converged() && s.all_know(&id));
            let renewed: Vec<usize> = (0..n)
                .filter(|&i| i != paused && sim.node(i).map(|m| m.identity()) != before[i])
                .collect();
            // Paused for 8 s, every other member must have dropped it;
            // dropped, it must have taken the verdict (a new identity).
            let missed = pause_ms >= 8_000 && dropped_by < n - 1;
            let kept = dropped_by > 0 && sim.node(paused).map(|m| m.identity()) == before[paused];
            if missed || kept || back.is_none_or(|t| t > secs(2)) || !renewed.is_empty() {
                bad.push((seed, pause_ms, dropped_by, back, renewed));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "(seed, pause ms, dropped by, back after, renewed): {bad:?}"
    );
}
