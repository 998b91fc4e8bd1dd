//! Server memory with many registered members: starts the real daemon
//! in-process (gRPC, HTTP, gossip), reads this process's RSS idle, then
//! injects 10,000 members through the same membership queue gossip feeds
//! and reads it again. Two layouts, one per run so that each starts from
//! a fresh process: 100 groups of 100 members, and one group of 10,000.
//!
//! `cargo bench -p registry-server --bench memory` (100 × 100) and
//! `cargo bench -p registry-server --bench memory -- single` (1 × 10,000)

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

async fn inject(running: &daemon::Running, groups: usize, per_group: usize) -> Result<(), String> {
    let before = running
        .catalog()
        .groups()
        .iter()
        .map(|g| g.members().len())
        .sum::<usize>();
    let tx = running.events();
    for g in 0..groups {
        for m in 0..per_group {
            let mut s = Service::new(
                format!("svc-{g}-{m}"),
                format!("group-{g}"),
                format!("m{m}.g{g}.example:8080"),
            );
            s.tags.insert("zone".into(), format!("zone-{}", m % 3));
            tx.send(MemberEvent::Joined(s)).await.map_err(|e| e.to_string())?;
        }
    }
    let want = before + groups * per_group;
    let deadline = Instant::now() + Duration::from_secs(300);
    while running
        .catalog()
        .groups()
        .iter()
        .map(|g| g.members().len())
        .sum::<usize>()
        < want
    {
        if Instant::now() > deadline {
            return Err("the catalog did not take every member".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), String> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let layout = if std::env::args().any(|a| a == "single") {
        (1usize, 10_000usize)
    } else {
        (100, 100)
    };
    {
        let (groups, per_group) = layout;
        let running = daemon::bind(Settings::loopback("memory-bench"))
            .await?
            .start()
            .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let idle = rss_mib();
        let start = Instant::now();
        inject(&running, groups, per_group).await?;
        let took = start.elapsed();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let loaded = rss_mib();
        println!(
            "{groups} group(s) x {per_group} members: RSS idle {idle:.1} MiB, with {} members {loaded:.1} MiB \
             (+{:.1} MiB); catalog applied them in {:.2} s",
            groups * per_group,
            loaded - idle,
            took.as_secs_f64()
        );
        running.shutdown().await;
    }
    Ok(())
}
