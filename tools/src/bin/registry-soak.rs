//! `registry-soak`: a bounded soak run of a small real cluster on loopback.
//!
//! Starts two `registry-server`s, `--services` stable
//! `registry-example-service`s and one churning service that is killed
//! (SIGKILL) and started again every `--churn-every` seconds, then sends a
//! steady `Match` load through a [`Client`] configured with both
//! registries for `--duration` seconds. Meanwhile it follows the group
//! and the registry group on each registry through `Watch` (a stable
//! member missing from a snapshot is a *false failure*), and samples each
//! registry's RSS from `/proc/<pid>/status`.
//!
//! It prints a report (requests, errors, p50/p99 latency, RSS over time
//! and its growth after warm-up, false failures, the final consistency
//! check) and exits 1 when a request failed after warm-up, a false
//! failure was seen, a registry died, or the registries disagree at the
//! end. Every process it started is killed when it ends.
//!
//! ```text
//! cargo build --release -p registry-server -p registry-tools
//! target/release/registry-soak --duration 600
//! ```

use clap::Parser;
use registry_core::wire::v1::registry_client::RegistryClient;
use registry_core::wire::v1::{MatchRequest, MembersRequest, WatchRequest};
use registry_core::{Client, ClientConfig, REGISTRY_GROUP};
use registry_tools::load::{percentile, rss_kib};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Flags of the soak tool.
#[derive(Debug, Parser)]
#[command(
    name = "registry-soak",
    version,
    about = "Soak test: a small cluster with churn and steady load, then a report"
)]
struct Flags {
    /// Length of the run, in seconds.
    #[arg(long, default_value_t = 600)]
    duration: u64,
    /// Seconds at the start whose errors and RSS do not count (the
    /// cluster settles, allocators reach their working size).
    #[arg(long, default_value_t = 30)]
    warmup: u64,
    /// Stable services (never stopped).
    #[arg(long, default_value_t = 4)]
    services: usize,
    /// Seconds between two changes of the churning service (killed with
    /// SIGKILL, then started again); 0: no churn.
    #[arg(long = "churn-every", default_value_t = 10)]
    churn_every: u64,
    /// Load: Match requests per second in total (0: as fast as possible).
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// Load: concurrent request loops.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds between two RSS samples.
    #[arg(long = "sample-every", default_value_t = 5)]
    sample_every: u64,
    /// Directory holding registry-server and registry-example-service
    /// [default: this program's directory].
    #[arg(long = "bin-dir")]
    bin_dir: Option<PathBuf>,
}

const GROUP: &str = "soak";
const CHURN_ID: &str = "soak-churn";

fn main() -> ExitCode {
    let flags = Flags::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("registry-soak: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(flags)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("registry-soak: {e}");
            ExitCode::from(2)
        }
    }
}

/// A child process killed (SIGKILL) and reaped when dropped, with the
/// fields of its JSON "ready" log line and a count of warnings it logged.
struct Proc {
    child: Child,
    ready: serde_json::Value,
    warnings: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Starts `program` with `args` and JSON logs; waits for "ready".
    fn start(program: &Path, args: &[String]) -> Result<Proc, String> {
        let mut child = Command::new(program)
            .args(args)
            .args(["--log-format", "json"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
        let (tx, rx) = mpsc::channel();
        let warnings = Arc::new(Mutex::new(Vec::new()));
        let keep = warnings.clone();
        std::thread::spawn(move || {
            let mut ready_sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if !ready_sent && v["fields"]["message"] == "ready" {
                    ready_sent = tx.send(v.clone()).is_ok();
                } else if v["level"] == "WARN" || v["level"] == "ERROR" {
                    lock(&keep).push(line);
                }
            }
        });
        let mut proc = Proc {
            child,
            ready: serde_json::Value::Null,
            warnings,
        };
        proc.ready = rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| format!("{} did not log \"ready\" within 30 s", program.display()))?;
        Ok(proc)
    }

    /// A field of the ready line.
    fn field(&self, name: &str) -> Result<String, String> {
        self.ready["fields"][name]
            .as_str()
            .map(String::from)
            .ok_or_else(|| format!("ready line has no {name}: {}", self.ready))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process runs.
    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn start_registry(bin: &Path, id: &str, seeds: &[String]) -> Result<Proc, String> {
    let mut args = strings(&[
        "--id",
        id,
        "--addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--bind",
        "127.0.0.1:0",
    ]);
    if !seeds.is_empty() {
        args.push("--registries".into());
        args.push(seeds.join(","));
    }
    Proc::start(&bin.join("registry-server"), &args)
}

fn start_service(bin: &Path, id: &str, seeds: &[String]) -> Result<Proc, String> {
    let args = strings(&[
        "--id",
        id,
        "--group",
        GROUP,
        "--addr",
        "127.0.0.1:0",
        "--registries",
        &seeds.join(","),
    ]);
    Proc::start(&bin.join("registry-example-service"), &args)
}

/// Member ids of `group` on one registry (empty on error).
async fn member_ids(c: &mut RegistryClient<tonic::transport::Channel>, group: &str) -> Vec<String> {
    c.members(MembersRequest { group: group.into() })
        .await
        .map(|r| r.into_inner().services.into_iter().map(|s| s.id).collect())
        .unwrap_or_default()
}

/// Waits until every registry lists exactly `want` in `group`.
async fn wait_members(
    clients: &mut [RegistryClient<tonic::transport::Channel>],
    group: &str,
    want: &BTreeSet<String>,
    limit: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        let mut seen = Vec::new();
        for c in clients.iter_mut() {
            seen.push(member_ids(c, group).await);
        }
        if seen
            .iter()
            .all(|ids| ids.iter().cloned().collect::<BTreeSet<_>>() == *want)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{group} should be {want:?} on every registry, is {seen:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the Watch followers saw: false failures, snapshots, stream ends.
#[derive(Default)]
struct WatchTally {
    snapshots: AtomicU64,
    false_failures: Mutex<Vec<String>>,
    broken: Mutex<Vec<String>>,
}

/// Follows `group` on the registry at `grpc`; every snapshot missing one
/// of `stable` counts once per member and disappearance.
fn follow(
    name: String,
    grpc: String,
    group: &'static str,
    stable: BTreeSet<String>,
    tally: Arc<WatchTally>,
    start: Instant,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let opened = async {
            let mut c = RegistryClient::connect(format!("http://{grpc}")).await.ok()?;
            c.watch(WatchRequest { group: group.into() }).await.ok()
        };
        let Some(resp) = opened.await else {
            lock(&tally.broken).push(format!("{name}: cannot watch {group}"));
            return;
        };
        let mut stream = resp.into_inner();
        let mut missing: BTreeSet<String> = BTreeSet::new();
        loop {
            match stream.message().await {
                Ok(Some(snap)) => {
                    tally.snapshots.fetch_add(1, Ordering::Relaxed);
                    let ids: BTreeSet<String> = snap.services.into_iter().map(|s| s.id).collect();
                    let now_missing: BTreeSet<String> = stable.difference(&ids).cloned().collect();
                    for m in now_missing.difference(&missing) {
                        lock(&tally.false_failures).push(format!(
                            "{name} at {:.1} s: {m} missing from {group} ({} listed)",
                            start.elapsed().as_secs_f64(),
                            ids.len()
                        ));
                    }
                    missing = now_missing;
                }
                Ok(None) | Err(_) => {
                    lock(&tally.broken).push(format!(
                        "{name}: watch of {group} ended at {:.1} s",
                        start.elapsed().as_secs_f64()
                    ));
                    return;
                }
            }
        }
    })
}

/// Results of the load loops.
#[derive(Default)]
struct LoadTally {
    served: AtomicU64,
    errors_warmup: AtomicU64,
    errors: Mutex<Vec<String>>,
    /// Latencies after warm-up.
    latencies: Mutex<Vec<Duration>>,
}

/// `concurrency` loops sending Match for random keys through `client`
/// until `stop`, paced to `rate` requests per second in total.
fn start_load(
    flags: &Flags,
    client: Client,
    known: BTreeSet<String>,
    stop: Arc<AtomicBool>,
    warm: Instant,
) -> (Arc<LoadTally>, Vec<tokio::task::JoinHandle<()>>) {
    let tally = Arc::new(LoadTally::default());
    let loops = flags.concurrency.max(1);
    let per_loop = (flags.rate > 0).then(|| Duration::from_secs_f64(loops as f64 / flags.rate as f64));
    let known = Arc::new(known);
    let tasks = (0..loops)
        .map(|_| {
            let (client, known, stop, tally) = (client.clone(), known.clone(), stop.clone(), tally.clone());
            tokio::spawn(async move {
                let mut tick = per_loop.map(|p| {
                    let mut t = tokio::time::interval(p);
                    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    t
                });
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    if let Some(t) = tick.as_mut() {
                        t.tick().await;
                    }
                    let key = format!("user-{}", rand::random::<u32>());
                    let t0 = Instant::now();
                    let result = client.match_key(GROUP, &key).await;
                    let took = t0.elapsed();
                    let warmed = Instant::now() >= warm;
                    let failure = match result {
                        Ok(s) if known.contains(&s.id) => None,
                        Ok(s) => Some(format!("{key} -> unknown member {}", s.id)),
                        Err(e) => Some(e.to_string()),
                    };
                    match failure {
                        None => {
                            tally.served.fetch_add(1, Ordering::Relaxed);
                            if warmed {
                                lat.push(took);
                            }
                        }
                        Some(_) if !warmed => {
                            tally.errors_warmup.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(e) => lock(&tally.errors).push(e),
                    }
                }
                lock(&tally.latencies).extend(lat);
            })
        })
        .collect();
    (tally, tasks)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

async fn run(flags: Flags) -> Result<bool, String> {
    let bin = match &flags.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find this program's directory: {e}"))?
            .parent()
            .map(Path::to_path_buf)
            .ok_or("this program has no directory")?,
    };
    let duration = Duration::from_secs(flags.duration);
    let warmup = Duration::from_secs(flags.warmup.min(flags.duration));

    let r1 = start_registry(&bin, "soak-reg-1", &[])?;
    let r2 = start_registry(&bin, "soak-reg-2", &[r1.field("gossip")?])?;
    let mut regs = vec![("soak-reg-1", r1), ("soak-reg-2", r2)];
    let seeds = vec![regs[0].1.field("gossip")?, regs[1].1.field("gossip")?];
    let grpc = vec![regs[0].1.field("grpc")?, regs[1].1.field("grpc")?];
    let stable_ids: Vec<String> = (0..flags.services).map(|i| format!("soak-{i}")).collect();
    let mut stable = Vec::new();
    for id in &stable_ids {
        stable.push(start_service(&bin, id, &seeds)?);
    }
    let mut churn = Some(start_service(&bin, CHURN_ID, &seeds)?);
    let mut all: BTreeSet<String> = stable_ids.iter().cloned().collect();
    all.insert(CHURN_ID.into());
    let mut rpc = Vec::new();
    for g in &grpc {
        rpc.push(
            RegistryClient::connect(format!("http://{g}"))
                .await
                .map_err(|e| format!("connect {g}: {e}"))?,
        );
    }
    wait_members(&mut rpc, GROUP, &all, Duration::from_secs(60)).await?;
    println!(
        "soak: {} s (warm-up {} s), 2 registries, {} stable services + 1 churning (SIGKILL / start every {} s), load {} req/s over {} loops",
        flags.duration, warmup.as_secs(), flags.services, flags.churn_every, flags.rate, flags.concurrency
    );

    let start = Instant::now();
    let warm = start + warmup;
    let watch_tally = Arc::new(WatchTally::default());
    let stable_set: BTreeSet<String> = stable_ids.iter().cloned().collect();
    let reg_set: BTreeSet<String> = regs.iter().map(|(n, _)| n.to_string()).collect();
    let mut followers = Vec::new();
    for (i, g) in grpc.iter().enumerate() {
        let name = regs[i].0.to_string();
        followers.push(follow(
            name.clone(),
            g.clone(),
            GROUP,
            stable_set.clone(),
            watch_tally.clone(),
            start,
        ));
        followers.push(follow(
            name,
            g.clone(),
            REGISTRY_GROUP,
            reg_set.clone(),
            watch_tally.clone(),
            start,
        ));
    }

    let client = Client::with_config(ClientConfig::new(grpc.clone()))
        .await
        .map_err(|e| format!("client: {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let (load, loops) = start_load(&flags, client.clone(), all.clone(), stop.clone(), warm);

    // The run: churn, RSS samples, liveness of the registries.
    let sample_every = Duration::from_secs(flags.sample_every.max(1));
    let churn_every = (flags.churn_every > 0).then(|| Duration::from_secs(flags.churn_every));
    let mut next_sample = start;
    let mut next_churn = churn_every.map(|c| start + c);
    let mut samples: Vec<(Duration, Vec<u64>)> = Vec::new();
    let (mut kills, mut starts) = (0u32, 0u32);
    let mut died = Vec::new();
    while start.elapsed() < duration {
        let now = Instant::now();
        if now >= next_sample {
            let rss = regs.iter().map(|(_, p)| rss_kib(p.pid()).unwrap_or(0)).collect();
            samples.push((start.elapsed(), rss));
            next_sample += sample_every;
        }
        if let (Some(at), Some(every)) = (next_churn, churn_every) {
            if now >= at {
                if churn.take().is_none() {
                    churn = Some(start_service(&bin, CHURN_ID, &seeds)?);
                    starts += 1;
                } else {
                    kills += 1; // dropping the guard kills it
                }
                next_churn = Some(at + every);
            }
        }
        for (name, p) in regs.iter_mut() {
            if !p.alive() && !died.contains(name) {
                died.push(*name);
            }
        }
        for s in stable.iter_mut() {
            if !s.alive() {
                return Err("a stable service exited".into());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        let _ = l.await;
    }

    // The end state: the churning service up, both registries and a
    // local view agree on every key.
    if churn.is_none() {
        churn = Some(start_service(&bin, CHURN_ID, &seeds)?);
    }
    let settled = wait_members(&mut rpc, GROUP, &all, Duration::from_secs(60)).await;
    let mut consistent = settled.clone();
    if settled.is_ok() {
        let view = client.group(GROUP).await.map_err(|e| format!("view: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while view.members().len() != all.len() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let snap = view.snapshot();
        'keys: for k in 0..1000 {
            let key = format!("user-{k}");
            let local = snap.match_key(&key).map(|s| s.id.clone()).unwrap_or_default();
            for (i, c) in rpc.iter_mut().enumerate() {
                let remote = c
                    .r#match(MatchRequest {
                        group: GROUP.into(),
                        key: key.clone(),
                    })
                    .await
                    .ok()
                    .and_then(|r| r.into_inner().service)
                    .map(|s| s.id)
                    .unwrap_or_default();
                if remote != local {
                    consistent = Err(format!(
                        "{key}: registry {} says {remote:?}, local view {local:?}",
                        i + 1
                    ));
                    break 'keys;
                }
            }
        }
    }
    for f in &followers {
        f.abort();
    }
    drop(churn);

    // The report.
    let served = load.served.load(Ordering::Relaxed);
    let errors = lock(&load.errors).clone();
    let mut lat = std::mem::take(&mut *lock(&load.latencies));
    lat.sort_unstable();
    println!(
        "requests: {served} served ({:.0}/s), {} errors after warm-up, {} during warm-up",
        served as f64 / elapsed.as_secs_f64(),
        errors.len(),
        load.errors_warmup.load(Ordering::Relaxed)
    );
    for e in errors.iter().take(5) {
        println!("  error: {e}");
    }
    println!(
        "latency after warm-up (client Match, with failover): p50 {:?}, p99 {:?}, max {:?}",
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or_default()
    );
    println!("churn: {kills} kills, {starts} restarts of {CHURN_ID}");
    for (i, (name, _)) in regs.iter().enumerate() {
        let series: Vec<(Duration, u64)> = samples.iter().map(|(t, v)| (*t, v[i])).collect();
        let at_warm = series
            .iter()
            .find(|(t, _)| *t >= warmup)
            .or(series.first())
            .map(|s| s.1)
            .unwrap_or(0);
        let last = series.last().map(|s| s.1).unwrap_or(0);
        let max = series.iter().map(|s| s.1).max().unwrap_or(0);
        let growth = last as f64 - at_warm as f64;
        println!(
            "RSS {name}: {:.1} MiB after warm-up, {:.1} MiB at the end, max {:.1} MiB; growth after warm-up {:+.2} MiB ({:+.1}%)",
            mib(at_warm),
            mib(last),
            mib(max),
            growth / 1024.0,
            if at_warm > 0 { 100.0 * growth / at_warm as f64 } else { 0.0 }
        );
        let every = (series.len() / 10).max(1);
        let line: Vec<String> = series
            .iter()
            .step_by(every)
            .map(|(t, v)| format!("{}s {:.1}", t.as_secs(), mib(*v)))
            .collect();
        println!("  samples (MiB): {}", line.join(", "));
    }
    let false_failures = lock(&watch_tally.false_failures).clone();
    println!(
        "false failures: {} (a stable service or registry missing from a Watch snapshot; {} snapshots seen)",
        false_failures.len(),
        watch_tally.snapshots.load(Ordering::Relaxed)
    );
    for f in false_failures.iter().take(10) {
        println!("  {f}");
    }
    for b in lock(&watch_tally.broken).iter() {
        println!("  {b}");
    }
    for (name, p) in &regs {
        let w = lock(&p.warnings);
        println!("{name}: {} warnings logged", w.len());
        for l in w.iter().take(3) {
            println!("  {l}");
        }
    }
    match &consistent {
        Ok(()) => println!(
            "end state: both registries list {} members; 1,000 keys agree (registry 1 == registry 2 == local view)",
            all.len()
        ),
        Err(e) => println!("end state: INCONSISTENT: {e}"),
    }
    let pass = errors.is_empty() && false_failures.is_empty() && died.is_empty() && consistent.is_ok();
    if !died.is_empty() {
        println!("registries that died: {died:?}");
    }
    println!("result: {}", if pass { "PASS" } else { "FAIL" });
    drop(stable);
    Ok(pass)
}
