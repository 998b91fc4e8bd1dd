//! Ring memory follows the member count, not the weights, on a real
//! `registry-server` process: one-member groups of weight 1,000 cost it
//! kilobytes each, where an unscaled ring of that weight takes 7.7 MB.

mod common;

use common::{connect_started, spawn_registry};
use registry_core::registration::{Registration, RegistrationConfig};
use registry_core::wire::v1::GroupsRequest;
use std::time::{Duration, Instant};

/// Heavy one-member groups registered through gossip.
const GROUPS: usize = 40;

/// Resident memory of `pid` in MiB, from `/proc/<pid>/status`.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the registry runs");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS");
    kib / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_one_member_groups_cost_the_registry_kilobytes_not_megabytes() {
    let registry = spawn_registry("ring-memory", "127.0.0.1:0", &[]);
    let gossip = registry.field("gossip");
    let pid = registry.proc.child.id();
    let mut c = connect_started(&registry).await;
    let before = rss_mib(pid);

    let mut regs = Vec::new();
    for g in 0..GROUPS {
        let mut cfg = RegistrationConfig::new(
            format!("heavy-{g}"),
            format!("heavy-{g}"),
            format!("127.0.0.1:{}", 20_000 + g),
        )
        .registry(gossip.clone());
        cfg.weight = 1000;
        regs.push(Registration::start(cfg).await.expect("register"));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let groups = c
            .groups(GroupsRequest {})
            .await
            .map(|r| r.into_inner().groups)
            .unwrap_or_default();
        let heavy = groups
            .iter()
            .filter(|g| g.name.starts_with("heavy-") && g.members == 1)
            .count();
        if heavy == GROUPS {
            break;
        }
        assert!(Instant::now() < deadline, "{heavy} of {GROUPS} groups listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let grown = rss_mib(pid) - before;
    println!("{GROUPS} one-member groups of weight 1,000: RSS +{grown:.1} MiB");
    // Unscaled, each ring alone is 7.7 MB: 300 MB for the 40.
    assert!(
        grown < 40.0,
        "{GROUPS} heavy one-member groups took {grown:.1} MiB"
    );
    for r in regs {
        let _ = r.stop().await;
    }
}
