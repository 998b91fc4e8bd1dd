//! `registry-bench`: a load generator for one running registry server.
//!
//! Registers a few services in a group through gossip (optional), then
//! measures gRPC `Match` and `Members` at several concurrencies (requests
//! per second, p50 and p99 latency) and HTTP `/v1/match`; given
//! the server's pid, it reads the server's RSS and its CPU time per
//! request (user + system over the run, from /proc). Prints a Markdown
//! table for BENCHMARKS.md. Build it with `--release`; run it on loopback
//! only.
//!
//! ```text
//! registry-server --id bench &
//! registry-bench --registry 127.0.0.1:9800 --http 127.0.0.1:9801 --gossip 127.0.0.1:7370 --server-pid $!
//! ```

use clap::Parser;
use registry_core::registration::{Registration, RegistrationConfig};
use registry_core::wire::v1::registry_client::RegistryClient;
use registry_core::wire::v1::{MatchRequest, MembersRequest};
use registry_tools::load::{cpu_time, rss_kib, summarize};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

/// Flags of the load generator.
#[derive(Debug, Parser)]
#[command(
    name = "registry-bench",
    version,
    about = "Load generator for one registry server"
)]
struct Flags {
    /// gRPC address of the registry.
    #[arg(long, default_value = "127.0.0.1:9800")]
    registry: String,
    /// HTTP address of the registry (skip the HTTP run when absent).
    #[arg(long)]
    http: Option<SocketAddr>,
    /// Gossip address of the registry: register --services members there first.
    #[arg(long)]
    gossip: Option<String>,
    /// Group to query.
    #[arg(long, default_value = "bench")]
    group: String,
    /// Services to register when --gossip is given.
    #[arg(long, default_value_t = 3)]
    services: usize,
    /// Concurrency levels, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// In-flight requests per HTTP/2 connection (gRPC).
    #[arg(long, default_value_t = 16)]
    per_connection: usize,
    /// Pid of the server, to report its RSS.
    #[arg(long)]
    server_pid: Option<u32>,
}

fn main() -> ExitCode {
    let flags = Flags::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("registry-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("registry-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(flags: Flags) -> Result<(), String> {
    let url = format!("http://{}", flags.registry);
    let endpoint = Endpoint::from_shared(url)
        .map_err(|e| e.to_string())?
        .tcp_nodelay(true);
    let mut client = RegistryClient::new(endpoint.connect().await.map_err(|e| e.to_string())?);
    if let Some(rss) = flags.server_pid.and_then(rss_kib) {
        println!("server RSS before registering: {:.1} MiB", rss as f64 / 1024.0);
    }

    let mut registrations = Vec::new();
    if let Some(gossip) = &flags.gossip {
        for i in 0..flags.services {
            let cfg = RegistrationConfig::new(
                format!("bench-{i}"),
                flags.group.clone(),
                format!("127.0.0.1:{}", 30_000 + i),
            )
            .registry(gossip.clone());
            registrations.push(Registration::start(cfg).await.map_err(|e| e.to_string())?);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let n = client
                .members(MembersRequest {
                    group: flags.group.clone(),
                })
                .await
                .map(|r| r.into_inner().services.len())
                .unwrap_or(0);
            if n >= flags.services {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("the registry lists {n} of {} services", flags.services));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let duration = Duration::from_secs(flags.duration);
    println!("| what | concurrency | requests/s | p50 | p99 | server CPU per request |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let cpu = |pid: Option<u32>| pid.and_then(cpu_time);
    for &c in &flags.concurrency {
        let c = c.max(1);
        let connections = c.div_ceil(flags.per_connection.max(1));
        let mut channels = Vec::new();
        for _ in 0..connections {
            channels.push(endpoint.connect().await.map_err(|e| e.to_string())?);
        }
        for op in [Op::Match, Op::Members] {
            let before = cpu(flags.server_pid);
            let (rps, p50, p99) = grpc_load(&channels, &flags.group, op, c, duration).await?;
            let per = per_request(before, cpu(flags.server_pid), rps * duration.as_secs_f64());
            println!("| gRPC {op:?} | {c} | {rps:.0} | {p50:?} | {p99:?} | {per} |");
        }
    }
    if let Some(http) = flags.http {
        for &c in &flags.concurrency {
            let group = flags.group.clone();
            let before = cpu(flags.server_pid);
            let (rps, p50, p99) =
                tokio::task::spawn_blocking(move || http_match(http, &group, c.max(1), duration))
                    .await
                    .map_err(|e| e.to_string())??;
            let per = per_request(before, cpu(flags.server_pid), rps * duration.as_secs_f64());
            println!("| HTTP /v1/match | {c} | {rps:.0} | {p50:?} | {p99:?} | {per} |");
        }
    }
    if let Some(rss) = flags.server_pid.and_then(rss_kib) {
        println!("\nserver RSS after the runs: {:.1} MiB", rss as f64 / 1024.0);
    }
    for r in registrations {
        let _ = r.stop().await;
    }
    Ok(())
}

/// The server's CPU time between two readings divided by `requests`, in
/// microseconds; "-" without a `--server-pid`.
fn per_request(before: Option<Duration>, after: Option<Duration>, requests: f64) -> String {
    match (before, after) {
        (Some(b), Some(a)) if requests > 0.0 => {
            format!("{:.1} µs", a.saturating_sub(b).as_secs_f64() * 1e6 / requests)
        }
        _ => "-".to_string(),
    }
}

/// A gRPC call the load generator sends.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// `Match` of a new key each time.
    Match,
    /// `Members` of the group.
    Members,
}

/// `c` tasks sending `op` back to back for `duration`.
async fn grpc_load(
    channels: &[Channel],
    group: &str,
    op: Op,
    c: usize,
    duration: Duration,
) -> Result<(f64, Duration, Duration), String> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..c {
        let mut client = RegistryClient::new(channels[t % channels.len()].clone());
        let group = group.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0u64;
            while start.elapsed() < duration {
                let t0 = Instant::now();
                match op {
                    Op::Match => {
                        let req = MatchRequest {
                            group: group.clone(),
                            key: format!("user-{t}-{i}"),
                        };
                        client.r#match(req).await.map(drop)
                    }
                    Op::Members => {
                        let req = MembersRequest { group: group.clone() };
                        client.members(req).await.map(drop)
                    }
                }
                .map_err(|e| e.to_string())?;
                lat.push(t0.elapsed());
                i += 1;
            }
            Ok::<_, String>(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())??);
    }
    Ok(summarize(all, start.elapsed()))
}

/// `c` threads, each with one keep-alive connection, sending GET
/// /v1/match back to back for `duration`.
fn http_match(
    addr: SocketAddr,
    group: &str,
    c: usize,
    duration: Duration,
) -> Result<(f64, Duration, Duration), String> {
    let start = Instant::now();
    let threads: Vec<_> = (0..c)
        .map(|t| {
            let group = group.to_string();
            std::thread::spawn(move || -> Result<Vec<Duration>, String> {
                let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
                s.set_nodelay(true).map_err(|e| e.to_string())?;
                let mut lat = Vec::new();
                let mut buf = vec![0u8; 64 * 1024];
                let mut i = 0u64;
                while start.elapsed() < duration {
                    let t0 = Instant::now();
                    write!(
                        s,
                        "GET /v1/match?group={group}&key=user-{t}-{i} HTTP/1.1\r\nHost: {addr}\r\n\r\n"
                    )
                    .map_err(|e| e.to_string())?;
                    read_response(&mut s, &mut buf)?;
                    lat.push(t0.elapsed());
                    i += 1;
                }
                Ok(lat)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        all.extend(t.join().map_err(|_| "an HTTP thread panicked".to_string())??);
    }
    Ok(summarize(all, start.elapsed()))
}

/// Reads one HTTP/1.1 response with a Content-Length body.
fn read_response(s: &mut TcpStream, buf: &mut [u8]) -> Result<(), String> {
    let mut have = 0;
    loop {
        let n = s.read(&mut buf[have..]).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        have += n;
        let text = &buf[..have];
        if let Some(end) = text.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&text[..end]).to_ascii_lowercase();
            if !head.starts_with("http/1.1 200") {
                return Err(format!("HTTP answer: {}", head.lines().next().unwrap_or("")));
            }
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or("no content-length")?;
            if have >= end + 4 + len {
                return Ok(());
            }
        }
        if have == buf.len() {
            return Err("response too large".into());
        }
    }
}
