use super::*;
use crate::history::{Action, Role};

fn start(t: u64, node: &str, role: Role, host: usize) -> Event {
    Event {
        t_ms: t,
        begun_ms: None,
        action: Action::Start {
            node: node.into(),
            role,
            host,
        },
    }
}

fn ev(t: u64, action: Action) -> Event {
    Event {
        t_ms: t,
        begun_ms: None,
        action,
    }
}

fn web() -> Role {
    Role::Service { group: "web".into() }
}

/// Two registries on hosts 0 and 1, services a and b on host 2, the
/// client on host 3, all started at 0.
fn bed() -> Vec<Event> {
    vec![
        start(0, "r1", Role::Registry, 0),
        start(0, "r2", Role::Registry, 1),
        start(0, "a", web(), 2),
        start(0, "b", web(), 2),
        start(0, "client", Role::Client, 3),
    ]
}

fn members(t: u64, reg: &str, m: &[&str]) -> Answer {
    Answer {
        start_ms: t.saturating_sub(5),
        t_ms: t,
        registry: reg.into(),
        op: Op::Members,
        group: "web".into(),
        key: None,
        owner: None,
        members: Some(m.iter().map(|s| s.to_string()).collect()),
        version: Some(1),
        checksum: None,
        error: None,
    }
}

fn failed(t: u64, reg: &str, op: Op, error: &str) -> Answer {
    Answer {
        members: None,
        version: None,
        op,
        key: Some("k".into()),
        error: Some(error.into()),
        ..members(t, reg, &[])
    }
}

/// Both registries list both services every 100 ms over `[from, to)`.
fn steady(from: u64, to: u64) -> Vec<Answer> {
    (from / 100..to / 100)
        .flat_map(|i| {
            [
                members(i * 100, "r1", &["a", "b"]),
                members(i * 100 + 1, "r2", &["a", "b"]),
            ]
        })
        .collect()
}

#[test]
fn a_clean_history_has_no_violation() {
    let r = check(&bed(), &steady(3_000, 10_000), Bounds::default());
    assert!(r.violations.is_empty(), "{r}");
    assert_eq!(r.answers, 140);
    assert!(r.windows.is_empty());
}

#[test]
fn an_answer_from_a_ring_missing_a_live_member_is_a_violation() {
    let mut events = bed();
    events.push(ev(5_000, Action::Kill { node: "r1".into() }));
    events.push(start(5_100, "r1", Role::Registry, 0));
    let mut answers = steady(3_000, 5_000);
    // Restarted, r1 answers from an empty ring, then a partial one.
    answers.push(members(5_300, "r1", &[]));
    answers.push(members(5_400, "r1", &["a"]));
    let mut nf = failed(5_500, "r1", Op::Match, "not found: group web has no members");
    nf.start_ms = 5_450;
    answers.push(nf);
    let r = check(&events, &answers, Bounds::default());
    let partial = r.of(Guarantee::PartialRing);
    assert_eq!(partial.len(), 3, "{r}");
    assert!(partial[1].detail.contains("\"b\""), "{}", partial[1].detail);
}

#[test]
fn a_member_within_its_grace_or_cut_off_is_not_required() {
    let mut events = bed();
    events.push(start(4_000, "c", web(), 2));
    // Host 2 is cut off from r2's host both ways.
    events.push(ev(6_000, Action::Block { from: 1, to: 2 }));
    events.push(ev(6_000, Action::Block { from: 2, to: 1 }));
    let answers = vec![
        members(4_500, "r1", &["a", "b"]), // c joined 0.5 s ago: within grace
        members(8_000, "r1", &["a", "b", "c"]),
        members(9_000, "r2", &[]), // cut off from all three
    ];
    let r = check(&events, &answers, Bounds::default());
    assert!(r.of(Guarantee::PartialRing).is_empty(), "{r}");
    // Without the block, r2 misses all three.
    let r = check(&events[..6], &answers, Bounds::default());
    assert_eq!(r.of(Guarantee::PartialRing).len(), 1, "{r}");
}

#[test]
fn a_failover_call_may_fail_only_when_no_registry_is_available() {
    let mut events = bed();
    events.push(ev(10_000, Action::Kill { node: "r1".into() }));
    events.push(ev(10_000, Action::Kill { node: "r2".into() }));
    let mut answers = vec![failed(11_000, "*", Op::Failover, "unavailable: no registry")];
    let r = check(&events, &answers, Bounds::default());
    assert!(r.violations.is_empty(), "{r}");
    answers.push(failed(9_000, "*", Op::Failover, "unavailable: no registry"));
    let r = check(&events, &answers, Bounds::default());
    assert_eq!(r.of(Guarantee::Failover).len(), 1, "{r}");
}

#[test]
fn a_settled_registry_must_not_refuse_but_a_fresh_one_may() {
    let mut events = bed();
    events.push(ev(10_000, Action::Stop { node: "r1".into() }));
    events.push(ev(12_000, Action::Cont { node: "r1".into() }));
    let answers = vec![
        failed(11_000, "r1", Op::Members, "timed out: r1"), // paused
        failed(13_000, "r1", Op::Members, "unavailable: syncing"), // just resumed
        failed(15_000, "r1", Op::Members, "unavailable: syncing"), // resumed 3 s ago
        failed(30_000, "r1", Op::Match, "unavailable: refused"), // long after
        failed(30_000, "r2", Op::Match, "not found: no key"), // not a refusal
    ];
    let r = check(&events, &answers, Bounds::default());
    let refusals = r.of(Guarantee::Refusal);
    assert_eq!(refusals.len(), 2, "{r}");
    assert_eq!((refusals[0].t_ms, refusals[1].t_ms), (15_000, 30_000));
    // A restarted registry has its sync gate.
    events.push(ev(40_000, Action::Kill { node: "r2".into() }));
    events.push(start(40_100, "r2", Role::Registry, 1));
    let answers = vec![
        failed(45_000, "r2", Op::Members, "unavailable: syncing"),
        failed(48_000, "r2", Op::Members, "unavailable: syncing"),
    ];
    let r = check(&events, &answers, Bounds::default());
    let refusals = r.of(Guarantee::Refusal);
    assert_eq!(refusals.len(), 1, "{r}");
    assert_eq!(refusals[0].t_ms, 48_000);
}

#[test]
fn disagreement_windows_are_measured_and_bounded() {
    let mut answers = steady(3_000, 5_000);
    // r2 learns that b left 400 ms after r1 did.
    answers.push(members(5_000, "r1", &["a"]));
    answers.push(members(5_200, "r2", &["a", "b"]));
    answers.push(members(5_400, "r2", &["a"]));
    // Later r1 lags 3 s with nothing in the way.
    answers.push(members(6_000, "r2", &["a", "b"]));
    answers.push(members(9_000, "r1", &["a", "b"]));
    let r = check(&bed(), &answers, Bounds::default());
    assert_eq!(r.windows, vec![400, 3_000], "{r}");
    assert_eq!(r.raw_windows, r.windows);
    let agree = r.of(Guarantee::Agreement);
    assert_eq!(agree.len(), 1, "{r}");
    assert_eq!(agree[0].t_ms, 9_000);
    assert_eq!(r.window_percentile(50), Some(3_000));
}

#[test]
fn a_window_across_a_partition_counts_from_the_heal() {
    let mut events = bed();
    events.push(ev(5_000, Action::Block { from: 0, to: 1 }));
    events.push(ev(5_000, Action::Block { from: 1, to: 0 }));
    events.push(ev(8_000, Action::Unblock { from: 0, to: 1 }));
    events.push(ev(8_000, Action::Unblock { from: 1, to: 0 }));
    let answers = vec![
        members(5_500, "r1", &["a", "b"]),
        members(5_600, "r2", &["a"]),
        members(7_500, "r1", &["a", "b"]),
        members(8_700, "r2", &["a", "b"]), // 700 ms after the heal
    ];
    let r = check(&events, &answers, Bounds::default());
    assert!(r.of(Guarantee::Agreement).is_empty(), "{r}");
    assert_eq!(r.windows, vec![700]);
    assert_eq!(r.raw_windows, vec![3_100]);
    let late = vec![
        answers[0].clone(),
        answers[1].clone(),
        members(9_900, "r2", &["a", "b"]),
    ];
    let r = check(&events, &late, Bounds::default());
    assert_eq!(r.of(Guarantee::Agreement).len(), 1, "{r}");
}

#[test]
fn a_paused_service_must_be_dropped() {
    let mut events = bed();
    events.push(ev(10_000, Action::Stop { node: "b".into() }));
    events.push(ev(20_000, Action::Cont { node: "b".into() }));
    let mut answers = vec![members(17_000, "r1", &["a"]), members(17_000, "r2", &["a", "b"])];
    let r = check(&events, &answers, Bounds::default());
    let v = r.of(Guarantee::PauseNotDropped);
    assert_eq!(v.len(), 1, "{r}");
    assert!(v[0].detail.starts_with("r2"));
    answers.push(members(18_000, "r2", &["a"]));
    let r = check(&events, &answers, Bounds::default());
    assert!(r.of(Guarantee::PauseNotDropped).is_empty(), "{r}");
    // Back after the pause: r1 must list b again once grace has passed.
    answers.push(members(24_000, "r1", &["a"]));
    let r = check(&events, &answers, Bounds::default());
    assert_eq!(r.of(Guarantee::PartialRing).len(), 1, "{r}");
}

#[test]
fn the_report_prints_counts_and_percentiles() {
    let r = check(&bed(), &steady(3_000, 3_200), Bounds::default());
    let text = r.to_string();
    assert!(
        text.contains("0 faults injected, 4 answers checked, 0 violations"),
        "{text}"
    );
}

#[test]
fn a_window_across_congestion_counts_from_its_end() {
    let mut events = bed();
    events.push(ev(
        5_000,
        Action::Slow {
            host: 1,
            kbit: 16,
            latency_ms: 400,
        },
    ));
    events.push(ev(8_000, Action::Unslow { host: 1 }));
    let answers = vec![
        members(5_500, "r1", &["a", "b"]),
        members(5_600, "r2", &["a"]),
        members(8_500, "r2", &["a", "b"]),
    ];
    let r = check(&events, &answers, Bounds::default());
    assert!(r.of(Guarantee::Agreement).is_empty(), "{r}");
    assert_eq!(r.windows, vec![500]);
    assert_eq!(r.faults, 1);
    // Without the congestion the same window is too long.
    let r = check(&bed(), &answers, Bounds::default());
    assert_eq!(r.of(Guarantee::Agreement).len(), 1, "{r}");
}

#[test]
fn a_call_over_a_congested_link_may_time_out() {
    let mut events = bed();
    events.push(ev(
        20_000,
        Action::Slow {
            host: 0,
            kbit: 8,
            latency_ms: 200,
        },
    ));
    events.push(ev(25_000, Action::Unslow { host: 0 }));
    let answers = vec![
        failed(22_000, "r1", Op::Members, "timed out: no answer within 1s"),
        failed(26_000, "r1", Op::Members, "timed out: no answer within 1s"),
        failed(30_000, "r1", Op::Members, "timed out: no answer within 1s"),
    ];
    let r = check(&events, &answers, Bounds::default());
    let refusals = r.of(Guarantee::Refusal);
    assert_eq!(refusals.len(), 1, "{r}");
    assert_eq!(refusals[0].t_ms, 30_000);
}

fn owner(t: u64, reg: &str, key: &str, owner: &str) -> Answer {
    Answer {
        op: Op::Match,
        key: Some(key.into()),
        owner: Some(owner.into()),
        members: None,
        ..members(t, reg, &[])
    }
}

#[test]
fn the_same_ring_must_give_the_same_owner() {
    let answers = vec![
        members(3_000, "r1", &["a", "b"]),
        owner(3_010, "r1", "k", "a"),
        members(3_100, "r1", &["a", "b"]),
        members(3_000, "r2", &["a", "b"]),
        owner(3_010, "r2", "k", "b"),
        members(3_100, "r2", &["a", "b"]),
        // Another ring may well name another owner.
        members(4_000, "r2", &["b"]),
        owner(4_010, "r2", "k", "b"),
        members(4_100, "r2", &["b"]),
    ];
    let r = check(&bed(), &answers, Bounds::default());
    let v = r.of(Guarantee::OwnerMismatch);
    assert_eq!(v.len(), 1, "{r}");
    assert!(
        v[0].detail.contains("r2 says k is owned by b, r1 said a"),
        "{}",
        v[0].detail
    );
}

#[test]
fn the_checksum_names_the_ring() {
    // Same members, different checksums (say, another weight): they
    // disagree; a Match with its checksum needs no bracketing.
    let mut a1 = members(3_000, "r1", &["a", "b"]);
    a1.checksum = Some("00000000000000aa".into());
    let mut a2 = members(3_001, "r2", &["a", "b"]);
    a2.checksum = Some("00000000000000bb".into());
    assert_ne!(ring_identity(&a1), ring_identity(&a2));
    let mut m1 = owner(3_010, "r1", "k", "a");
    m1.checksum = Some("00000000000000cc".into());
    let mut m2 = owner(3_020, "view", "k", "b");
    m2.checksum = Some("00000000000000cc".into());
    let r = check(&bed(), &[m1, m2], Bounds::default());
    assert_eq!(r.of(Guarantee::OwnerMismatch).len(), 1, "{r}");
}

#[test]
fn a_reachable_service_declared_down_is_a_false_failure() {
    let mut events = bed();
    // Service c's host 4 cannot send for 6 s; right after the heal b (on
    // host 2, linked with both registries all along) says it was declared
    // down: false. c's own notice, and a's after a pause, are not.
    events.push(start(0, "c", web(), 4));
    for to in 0..4 {
        events.push(ev(10_000, Action::Block { from: 4, to }));
        events.push(ev(16_000, Action::Unblock { from: 4, to }));
    }
    events.push(ev(16_200, Action::DeclaredDown { node: "b".into() }));
    events.push(ev(16_300, Action::DeclaredDown { node: "c".into() }));
    events.push(ev(30_000, Action::Stop { node: "a".into() }));
    events.push(ev(35_000, Action::Cont { node: "a".into() }));
    events.push(ev(35_100, Action::DeclaredDown { node: "a".into() }));
    let r = check(&events, &[], Bounds::default());
    let v = r.of(Guarantee::FalseFailure);
    assert_eq!(v.len(), 1, "{r}");
    assert_eq!(v[0].t_ms, 16_200);
    assert!(v[0].detail.starts_with("b "), "{}", v[0].detail);
}

fn kill(t: u64, begun: Option<u64>, node: &str) -> Event {
    Event {
        t_ms: t,
        begun_ms: begun,
        action: Action::Kill { node: node.into() },
    }
}

/// A refused call with its own send time.
fn refused(start: u64, t: u64, reg: &str, op: Op, error: &str) -> Answer {
    Answer {
        start_ms: start,
        ..failed(t, reg, op, error)
    }
}

#[test]
fn a_refusal_racing_a_kill_is_the_kill() {
    // A whole-cluster kill as the bed logs it: each kill once the process
    // is reaped. r1's client saw its connection close 3 ms before r1's
    // kill was logged (the 20-minute run, seed 126028253922221).
    let mut events = bed();
    events.push(kill(30_003, None, "r1"));
    events.push(kill(30_015, None, "r2"));
    let race = vec![
        refused(
            29_999,
            30_000,
            "r1",
            Op::Members,
            "unavailable: connection closed",
        ),
        refused(30_000, 30_001, "r1", Op::Match, "Unavailable: tcp connect error"),
    ];
    let r = check(&events, &race, Bounds::default());
    assert!(r.of(Guarantee::Refusal).is_empty(), "{r}");
    // 100 ms before the kill is not the kill.
    let early = vec![refused(29_895, 29_900, "r1", Op::Members, "unavailable: refused")];
    let r = check(&events, &early, Bounds::default());
    assert_eq!(r.of(Guarantee::Refusal).len(), 1, "{r}");
    // When the log says when the kill began, that is when it counts
    // from, however close to the logged time.
    events[5].begun_ms = Some(29_998);
    let r = check(&events, &race, Bounds::default());
    assert!(r.of(Guarantee::Refusal).is_empty(), "{r}");
    let before = vec![refused(29_990, 29_996, "r1", Op::Members, "unavailable: refused")];
    let r = check(&events, &before, Bounds::default());
    assert_eq!(r.of(Guarantee::Refusal).len(), 1, "{r}");
}

#[test]
fn a_fault_never_counts_from_before_the_bed_s_previous_action() {
    // r1 killed, started again at once and killed 10 ms later: the second
    // kill cannot have struck before the start, so r1 stays down.
    let mut events = bed();
    events.push(kill(20_000, None, "r1"));
    events.push(start(20_010, "r1", Role::Registry, 0));
    events.push(kill(20_020, None, "r1"));
    let answers = vec![failed(
        30_000,
        "r1",
        Op::Members,
        "unavailable: connection refused",
    )];
    let r = check(&events, &answers, Bounds::default());
    assert!(r.of(Guarantee::Refusal).is_empty(), "{r}");
}

/// Registries on hosts 0 and 1, service x on host 3, y on host 4, the
/// client on host 5: the run's layout (two service hosts).
fn two_service_hosts() -> Vec<Event> {
    vec![
        start(0, "r1", Role::Registry, 0),
        start(0, "r2", Role::Registry, 1),
        start(0, "x", web(), 3),
        start(0, "y", web(), 4),
        start(0, "client", Role::Client, 5),
    ]
}

/// Cuts `host` off from hosts 0..=4 over `[from, to)`: only its sending
/// side, or both.
fn cut_off(events: &mut Vec<Event>, host: usize, from: u64, to: u64, two_way: bool) {
    for other in (0..5).filter(|&o| o != host) {
        events.push(ev(
            from,
            Action::Block {
                from: host,
                to: other,
            },
        ));
        events.push(ev(
            to,
            Action::Unblock {
                from: host,
                to: other,
            },
        ));
        if two_way {
            events.push(ev(
                from,
                Action::Block {
                    from: other,
                    to: host,
                },
            ));
            events.push(ev(
                to,
                Action::Unblock {
                    from: other,
                    to: host,
                },
            ));
        }
    }
}

fn declared(t: u64, node: &str) -> Event {
    ev(t, Action::DeclaredDown { node: node.into() })
}

#[test]
fn a_member_cut_off_may_learn_its_rightful_failure_after_the_heal() {
    // Host 4 cannot send for 7.1 s: y is rightly declared down meanwhile
    // and may hear of it only after the heal (69 ms, as in the run), or
    // during it; so may a member cut off both ways.
    let mut events = two_service_hosts();
    cut_off(&mut events, 4, 10_000, 17_100, false);
    events.push(declared(12_500, "y"));
    events.push(declared(17_169, "y"));
    cut_off(&mut events, 3, 30_000, 37_200, true);
    events.push(declared(37_500, "x"));
    let r = check(&events, &[], Bounds::default());
    assert!(r.of(Guarantee::FalseFailure).is_empty(), "{r}");
}

#[test]
fn reachable_members_declared_down_after_a_heal_are_still_flagged() {
    // The run's real false failures: a service host cut off (two-way,
    // then one-way) and, right after the heal, a member on the other
    // service host, linked both ways with every registry all along, says
    // it was declared down.
    let mut events = two_service_hosts();
    cut_off(&mut events, 3, 10_000, 17_200, true);
    events.push(declared(17_450, "x")); // cut off: rightly
    events.push(declared(17_500, "y")); // reachable: false
    cut_off(&mut events, 4, 30_000, 37_100, false);
    events.push(declared(32_000, "y")); // cut off: rightly
    events.push(declared(37_169, "x")); // reachable: false
    let r = check(&events, &[], Bounds::default());
    let v = r.of(Guarantee::FalseFailure);
    assert_eq!(v.len(), 2, "{r}");
    assert_eq!((v[0].t_ms, v[1].t_ms), (17_500, 37_169), "{r}");
    assert!(v[0].detail.starts_with("y (host 4)"), "{}", v[0].detail);
    assert!(
        v[0].detail.ends_with("300 ms after the last heal"),
        "{}",
        v[0].detail
    );
    assert!(v[1].detail.starts_with("x (host 3)"), "{}", v[1].detail);
}

#[test]
fn the_report_shows_five_per_guarantee_and_lists_them_all_on_demand() {
    let mut events = bed();
    events.extend((0..7).map(|i| declared(20_000 + i * 1_000, "a")));
    let r = check(&events, &[], Bounds::default());
    assert_eq!(r.of(Guarantee::FalseFailure).len(), 7, "{r}");
    let text = r.to_string();
    assert_eq!(text.matches("    at ").count(), 5, "{text}");
    assert!(text.contains("... and 2 more"), "{text}");
    let all = r.all_violations();
    assert_eq!(all.lines().count(), 7, "{all}");
    assert!(all.lines().all(|l| l.starts_with("FalseFailure at ")), "{all}");
}
