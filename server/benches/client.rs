//! Rust client figures against a real `registry-server` on loopback:
//! local-view `match_key` (median ns, lookups/s on one thread) and RPC
//! `match_key` (calls/s and p50/p99 latency at concurrency 1 and 16).
//!
//! `cargo bench -p registry-server --bench client` (100 members by default;
//! `REGISTRY_BENCH_MEMBERS=N` to change).

use registry_core::registration::{Registration, RegistrationConfig};
use registry_core::Client;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SERVER: &str = env!("CARGO_BIN_EXE_registry-server");

/// Kills the registry when the bench ends, however it ends.
struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn field(line: &str, name: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v["fields"][name].as_str().map(str::to_string)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let members: usize = std::env::var("REGISTRY_BENCH_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let mut child = Command::new(SERVER)
        .args([
            "--id",
            "bench",
            "--addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--bind",
            "127.0.0.1:0",
        ])
        .args(["--log-format", "json"])
        .env("RUST_LOG", "warn,registry_server=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let _guard = Kill(child);
    let mut lines = BufReader::new(stderr).lines();
    let (grpc, gossip) = loop {
        let line = lines.next().ok_or("registry exited before ready")??;
        if field(&line, "message").as_deref() == Some("ready") {
            break (
                field(&line, "grpc").ok_or("no grpc")?,
                field(&line, "gossip").ok_or("no gossip")?,
            );
        }
    };
    std::thread::spawn(move || lines.for_each(drop));

    let mut regs = Vec::new();
    for i in 0..members {
        let cfg = RegistrationConfig::new(
            format!("svc-{i:04}"),
            "bench",
            format!("127.0.0.1:{}", 30_000 + i),
        )
        .registry(gossip.clone());
        regs.push(Registration::start(cfg).await?);
    }
    let client = Client::connect([grpc.clone()]).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while client
        .members("bench")
        .await
        .map(|m| m.services.len())
        .unwrap_or(0)
        < members
    {
        if Instant::now() > deadline {
            return Err("members did not all register in 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let view = client.group("bench").await?;
    while view.members().len() < members {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Local view: batches of 100,000 lookups; report the median batch.
    let keys: Vec<String> = (0..100_000).map(|i| format!("user-{i}")).collect();
    let mut per_lookup = Vec::new();
    let mut sink = 0usize;
    for _ in 0..21 {
        let start = Instant::now();
        for k in &keys {
            sink = sink.wrapping_add(view.match_key(k).map(|s| s.weight as usize).unwrap_or(0));
        }
        per_lookup.push(start.elapsed() / keys.len() as u32);
    }
    per_lookup.sort();
    let median = percentile(&per_lookup, 0.5);
    println!(
        "local view match_key, {members} members: median {:.1} ns/lookup, {:.2} M lookups/s (one thread) [{sink}]",
        median.as_secs_f64() * 1e9,
        1.0 / median.as_secs_f64() / 1e6
    );

    // RPC: each of `conc` tasks issues calls back to back for 3 s.
    for conc in [1usize, 16] {
        let run_for = Duration::from_secs(3);
        let mut tasks = Vec::new();
        for t in 0..conc {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let start = Instant::now();
                let mut i = t * 1_000_000;
                while start.elapsed() < run_for {
                    let t0 = Instant::now();
                    if client.match_key("bench", &format!("user-{i}")).await.is_ok() {
                        lat.push(t0.elapsed());
                    }
                    i += 1;
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await?);
        }
        all.sort();
        println!(
            "RPC match_key, concurrency {conc}: {:.0} calls/s, p50 {:.0} us, p99 {:.0} us",
            all.len() as f64 / run_for.as_secs_f64(),
            percentile(&all, 0.5).as_secs_f64() * 1e6,
            percentile(&all, 0.99).as_secs_f64() * 1e6
        );
    }
    for r in regs {
        r.stop().await?;
    }
    Ok(())
}
