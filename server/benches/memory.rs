//! Server memory with many registered members: starts the real daemon
//! in-process (gRPC, HTTP, gossip), reads this process's RSS idle, then
//! injects members through the same membership queue gossip feeds and
//! reads it again; then lets every member leave and reads it a third time
//! (memory returned when groups go away). One layout per run, so that each
//! starts from a fresh process:
//!
//! - `cargo bench -p registry-server --bench memory`: 100 groups × 100
//!   members of weight 1;
//! - `... -- single`: 1 group × 10,000 members of weight 1;
//! - `... -- lone`: 1,000 groups × 1 member of weight 1,000;
//! - `... -- heavy`: 1 group × 37 members of weight 1,000.

use registry_core::{MemberEvent, Service};
use registry_server::config::Settings;
use registry_server::daemon;
use std::time::{Duration, Instant};

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Members in the catalog, every group included.
fn member_count(running: &daemon::Running) -> usize {
    running.catalog().groups().iter().map(|g| g.members().len()).sum()
}

/// Member `m` of group `g` of the bench, of `weight`.
fn service(g: usize, m: usize, weight: u32) -> Service {
    let mut s = Service::new(
        format!("svc-{g}-{m}"),
        format!("group-{g}"),
        format!("10.0.{}.{}:8080", g % 256, m % 256),
    );
    s.weight = weight;
    s.tags.insert("zone".into(), format!("zone-{}", m % 3));
    s
}

/// Sends `groups × per_group` joins (or leaves) of `weight`, then waits
/// until the catalog holds `want` members.
async fn send_all(running: &daemon::Running, layout: Layout, join: bool, want: usize) -> Result<(), String> {
    let tx = running.events();
    for g in 0..layout.groups {
        for m in 0..layout.per_group {
            let s = service(g, m, layout.weight);
            let event = if join {
                MemberEvent::Joined(s)
            } else {
                MemberEvent::Left(s)
            };
            tx.send(event).await.map_err(|e| e.to_string())?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while member_count(running) != want {
        if Instant::now() > deadline {
            return Err(format!(
                "the catalog holds {} members, not {want}",
                member_count(running)
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Groups, members per group and their weight.
#[derive(Clone, Copy)]
struct Layout {
    groups: usize,
    per_group: usize,
    weight: u32,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), String> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let arg = |name: &str| std::env::args().any(|a| a == name);
    let (groups, per_group, weight) = if arg("single") {
        (1, 10_000, 1)
    } else if arg("lone") {
        (1_000, 1, 1_000)
    } else if arg("heavy") {
        (1, 37, 1_000)
    } else {
        (100, 100, 1)
    };
    let layout = Layout {
        groups,
        per_group,
        weight,
    };
    let running = daemon::bind(Settings::loopback("memory-bench"))
        .await?
        .start()
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = member_count(&running);
    let idle = rss_mib();
    let start = Instant::now();
    send_all(&running, layout, true, before + groups * per_group).await?;
    let took = start.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let loaded = rss_mib();
    send_all(&running, layout, false, before).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left = rss_mib();
    println!(
        "{groups} group(s) x {per_group} members of weight {weight}: RSS idle {idle:.1} MiB, with {} members \
         {loaded:.1} MiB (+{:.1} MiB), after they left {left:.1} MiB; catalog applied them in {:.2} s",
        groups * per_group,
        loaded - idle,
        took.as_secs_f64()
    );
    running.shutdown().await;
    Ok(())
}
