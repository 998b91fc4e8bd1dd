//! Unit tests of local health: the probe windows, holds and their caps.

use super::*;
use std::net::SocketAddr;

/// Member `i`'s identity.
fn peer(i: u8) -> NodeId {
    NodeId::with_gen(SocketAddr::from(([10, 0, 0, i], 7370)), 1)
}

/// A node that refuted a suspicion of itself at tick 1.
fn suspected() -> Health {
    let mut h = Health::new(240, 80);
    h.sent(0, 0);
    h.sent(1, 1);
    h
}

/// Ends probe `n` (started at tick `n`) and starts the next.
fn probe(h: &mut Health, n: u8, answered: bool) {
    if answered {
        h.answered(n);
    }
    h.probe_sent(n + 1, peer(n + 1), u64::from(n) + 1, 0);
}

#[test]
fn a_suspected_node_holds_verdicts_until_most_later_probes_are_answered() {
    let mut h = Health::new(240, 80);
    h.sent(0, 0);
    h.probe_sent(1, peer(1), 0, 0);
    for n in 1..8 {
        probe(&mut h, n, true); // heard before the suspicion
    }
    h.sent(1, 9); // refuted: answers so far do not count
    assert!(h.holds_verdicts(9) && !h.is_heard());
    for n in 8..12 {
        probe(&mut h, n, true);
    }
    assert!(h.holds_verdicts(13), "four answers are not enough");
    probe(&mut h, 12, false);
    probe(&mut h, 13, false);
    probe(&mut h, 14, true);
    assert!(!h.holds_verdicts(16) && h.is_heard(), "five of seven answered");
    for n in 15..18 {
        probe(&mut h, n, false);
    }
    assert!(h.holds_verdicts(19), "three of the last eight answered");
    h.answered(17); // late: probe 17 is over
    for n in 18..21 {
        probe(&mut h, n, true);
    }
    assert!(!h.is_heard(), "four of eight");
    probe(&mut h, 21, true);
    assert!(h.is_heard(), "five of eight");
}

/// Services on one host that cannot send answer each other's probes
/// (two of seven peers here) and nobody else's: they are not heard.
#[test]
fn answers_from_members_cut_off_together_do_not_make_a_node_heard() {
    let mut h = suspected();
    h.probe_sent(1, peer(1), 1, 0);
    for n in 1..60u8 {
        probe(&mut h, n, n % 7 < 2);
        if n >= 3 {
            assert!(h.holds_verdicts(u64::from(n) + 2), "probe {n}");
        }
    }
    // The cut heals: every peer answers, and a majority soon does.
    let heard = (60..80u8).find(|&n| {
        probe(&mut h, n, true);
        h.is_heard()
    });
    assert!(heard.is_some_and(|n| n <= 65), "heard at probe {heard:?}");
}

#[test]
fn a_node_nobody_suspects_is_never_held() {
    let mut h = Health::new(240, 80);
    for n in 0..20 {
        h.probe_sent(n, peer(n), u64::from(n) * 10, 0); // every peer crashed
    }
    assert!(!h.holds_verdicts(200));
}

#[test]
fn the_hold_is_capped_and_a_renewal_is_no_answer() {
    let mut h = suspected(); // unheard since 1
    h.probe_sent(1, peer(1), 2, 0);
    h.probe_sent(2, peer(2), 5, 0);
    h.renewed(6);
    h.sent(0, 7);
    assert!(h.holds_verdicts(240));
    assert!(!h.holds_verdicts(241), "past the cap since it was first unheard");
    assert!(!h.is_heard());
}

#[test]
fn most_probes_failing_over_several_members_is_isolation_with_a_capped_hold() {
    let mut h = Health::new(240, 80);
    // Probes of peers 1..=3 answered, then of 4..=9 not (a cut).
    for n in 1..=9u8 {
        if n <= 3 {
            h.answered(n - 1);
        }
        h.probe_sent(n, peer(n), u64::from(n), 0);
    }
    assert!(h.isolated(), "five of eight failed, to five members");
    assert!(h.isolated_hold(10) && h.isolated_hold(80));
    assert!(!h.isolated_hold(120), "past the isolation cap");
    assert!(!h.holds_verdicts(10), "nobody suspected it: no refutation hold");
    // The cut heals: answers again.
    for n in 10..=14u8 {
        h.answered(n - 1);
        h.probe_sent(n, peer(n), u64::from(n), 0);
    }
    assert!(!h.isolated() && !h.isolated_hold(15));
}

/// Most of the cluster crashed: a survivor's probes mostly fail, and
/// now and then a few in a row reach survivors. Isolation that
/// flickers like that keeps the cap of its first stretch; only a
/// pause longer than the gap starts a new one.
#[test]
fn isolation_that_flickers_keeps_its_first_cap() {
    let (cap, gap) = (80, 17);
    let mut h = Health::new(240, cap);
    let mut tick = 0;
    // Ends probe n - 1 and starts probe n, 5 ticks later.
    let probe = |h: &mut Health, tick: &mut u64, n: u8, answered: bool| {
        if answered {
            h.answered(n - 1);
        }
        *tick += 5;
        h.probe_sent(n, peer(n), *tick, gap);
    };
    for n in 1..=8u8 {
        probe(&mut h, &mut tick, n, false);
    }
    let start = tick; // isolated since at most this tick
    assert!(h.isolated() && h.isolated_hold(tick));
    // Five of nine fail: isolated, then not for a probe or two.
    let pattern = [false, false, true, false, false, true, false, true, true];
    let (mut n, mut flickered) = (9u8, false);
    while tick < start + cap + 20 {
        for answered in pattern {
            probe(&mut h, &mut tick, n, answered);
            n += 1;
            flickered |= !h.isolated();
            if h.isolated() && tick >= start + cap {
                assert!(!h.isolated_hold(tick), "the flicker renewed the cap at {tick}");
            }
        }
    }
    assert!(flickered, "the pattern never ended isolation");
    for _ in 0..8 {
        probe(&mut h, &mut tick, n, true); // heard for longer than the gap
        n += 1;
    }
    assert!(!h.isolated());
    for _ in 0..5 {
        probe(&mut h, &mut tick, n, false); // a new cut
        n += 1;
    }
    assert!(
        h.isolated() && h.isolated_hold(tick),
        "a new stretch after a long pause"
    );
}

#[test]
fn probes_failing_lately_are_seen_before_the_window_turns() {
    let mut h = Health::new(240, 80);
    for n in 1..=8u8 {
        h.answered(n - 1);
        h.probe_sent(n, peer(n), u64::from(n) * 10, 0); // every probe answered
    }
    h.answered(8);
    for n in 9..=11u8 {
        h.probe_sent(n, peer(n), u64::from(n) * 10, 0); // then a cut
    }
    assert!(!h.failing_lately(110, 35), "two failed");
    h.probe_sent(12, peer(12), 120, 0);
    assert!(
        h.failing_lately(120, 35),
        "three of four ended in the span failed"
    );
    assert!(!h.isolated(), "three of eight: the window still holds answers");
    assert!(!h.failing_lately(120, 15), "two ended in a shorter span");
    let mut lone = Health::new(240, 80);
    for n in 1..=4u8 {
        lone.probe_sent(n, peer(1), u64::from(n) * 10, 0); // one peer gone
    }
    assert!(!lone.failing_lately(40, 35), "a lone peer gone is no cut");
}

#[test]
fn a_lone_peer_gone_is_not_isolation() {
    let mut h = Health::new(240, 80);
    for n in 1..=12u8 {
        h.probe_sent(n, peer(1), u64::from(n), 0);
    }
    assert!(!h.isolated() && !h.isolated_hold(13));
}
