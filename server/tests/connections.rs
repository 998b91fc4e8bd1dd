//! Connections cannot take the server down: a real `registry-server` with
//! few file descriptors (`ulimit -n`) and hundreds of silent sockets on its
//! gRPC and HTTP ports keeps its CPU near idle (accept errors back off
//! instead of spinning), closes the silent sockets after the header-read
//! timeout, refuses connections over `--max-connections` (counted), and
//! keeps answering real clients within a bounded time.

mod common;

use common::{metric, registry_args, spawn_ready, Started};
use registry_core::wire::v1;
use registry_core::wire::v1::registry_client::RegistryClient;
use registry_core::REGISTRY_GROUP;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Starts `registry-server` on loopback under `ulimit -n nofile`, with
/// short connection timeouts and the `extra` flags.
fn spawn_limited(id: &str, nofile: u32, extra: &[&str]) -> Started {
    let flags: Vec<String> = ["--header-read-timeout", "1", "--idle-timeout", "2"]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
    let mut args = vec![
        "-c".to_string(),
        format!("ulimit -n {nofile} && exec \"$0\" \"$@\""),
        env!("CARGO_BIN_EXE_registry-server").to_string(),
    ];
    args.extend(registry_args(id, "127.0.0.1:0", "127.0.0.1:0", &[], &flags));
    spawn_ready("sh", &args)
}

fn addr(started: &Started, field: &str) -> SocketAddr {
    started.field(field).parse().expect("an address")
}

/// Opens `n` connections to `addr` that never send a byte; those the
/// kernel completed within a short wait are returned (held open).
async fn silent_sockets(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let tries = (0..n).map(|_| tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)));
    let mut held = Vec::new();
    for r in futures_join_all(tries).await {
        if let Ok(Ok(s)) = r {
            held.push(s);
        }
    }
    held
}

/// Runs the futures concurrently, results in order.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let tasks: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

/// CPU time (user + system) the process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the command name (which may hold spaces): state is the
    // 3rd field, utime the 14th and stime the 15th.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Share of one core the process used over `span`.
fn cpu_share(pid: u32, span: Duration) -> f64 {
    // Clock ticks per second: 100 on Linux (USER_HZ).
    let before = cpu_ticks(pid);
    std::thread::sleep(span);
    let used = cpu_ticks(pid) - before;
    used as f64 / 100.0 / span.as_secs_f64()
}

/// One Match of the registry group over a fresh gRPC connection, within
/// a second.
async fn match_once(grpc: SocketAddr) -> Result<(), String> {
    let attempt = async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(1))
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        let req = v1::MatchRequest {
            group: REGISTRY_GROUP.into(),
            key: "k".into(),
        };
        RegistryClient::new(channel)
            .r#match(req)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .unwrap_or_else(|_| Err("no answer within 1 s".into()))
}

/// One `GET /healthz` over a fresh connection, within a second: its
/// status line.
fn healthz_once(http: SocketAddr) -> Result<String, String> {
    let mut s =
        std::net::TcpStream::connect_timeout(&http, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok();
    write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw).to_string();
    text.lines()
        .next()
        .map(str::to_string)
        .ok_or_else(|| "empty answer".into())
}

/// Time until `call` first succeeds, trying again until `limit` is over;
/// panics with the last error after that.
async fn answered_within<F, Fut>(what: &str, limit: Duration, mut call: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let start = Instant::now();
    loop {
        match call().await {
            Ok(()) => return start.elapsed(),
            Err(e) if start.elapsed() > limit => panic!("{what}: no answer within {limit:?}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// True once the server has closed `s` (end of stream or reset) within
/// `within`; what it sent before (its HTTP/2 settings) is skipped.
async fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut sink = Vec::new();
    tokio::time::timeout(within, s.read_to_end(&mut sink))
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_the_server_idles_and_serves_again() {
    // 64 descriptors: about 50 left for connections once the runtime,
    // listeners, gossip socket and log pipe have theirs.
    let server = spawn_limited("r-nofile", 64, &[]);
    let pid = server.proc.child.id();
    let grpc = addr(&server, "grpc");

    let mut silent = silent_sockets(grpc, 300).await;
    assert!(silent.len() > 100, "only {} sockets connected", silent.len());
    // The server runs out of descriptors: accept fails again and again.
    // It must wait, not spin (a spinning accept loop is a full core).
    let share = tokio::task::spawn_blocking(move || cpu_share(pid, Duration::from_secs(3)))
        .await
        .unwrap();
    eprintln!(
        "server CPU with {} silent sockets: {:.1} % of a core",
        silent.len(),
        share * 100.0
    );
    assert!(
        share < 0.25,
        "server used {:.0} % of a core with silent sockets",
        share * 100.0
    );

    // Silent sockets are closed after the header-read timeout (1 s), so a
    // real client gets through while they are still held open here.
    let took = answered_within("Match", Duration::from_secs(10), || match_once(grpc)).await;
    eprintln!(
        "Match answered after {took:?} with {} silent sockets held",
        silent.len()
    );
    assert!(closed_by_server(&mut silent[0], Duration::from_secs(5)).await);
    drop(silent);
    server.proc.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_silent_sockets_on_both_ports_lock_no_client_out() {
    let server = spawn_limited("r-silent", 256, &["--max-connections", "50"]);
    let pid = server.proc.child.id();
    let (grpc, http) = (addr(&server, "grpc"), addr(&server, "http"));

    let (mut on_grpc, mut on_http) = tokio::join!(silent_sockets(grpc, 300), silent_sockets(http, 300));
    assert!(on_grpc.len() > 100 && on_http.len() > 100);
    let share = tokio::task::spawn_blocking(move || cpu_share(pid, Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(share < 0.25, "server used {:.0} % of a core", share * 100.0);

    let took = answered_within("Match", Duration::from_secs(5), || match_once(grpc)).await;
    eprintln!("Match answered after {took:?}");
    let took = answered_within("GET /healthz", Duration::from_secs(5), || async move {
        let line = tokio::task::spawn_blocking(move || healthz_once(http))
            .await
            .unwrap()?;
        match line.contains(" 200 ") {
            true => Ok(()),
            false => Err(line),
        }
    })
    .await;
    eprintln!("/healthz answered after {took:?}");
    // Connections over the cap were closed at once and counted.
    let refused = tokio::task::spawn_blocking(move || {
        metric(http, "registry_limit_rejections_total{limit=\"connections\"}")
    })
    .await
    .unwrap();
    assert!(refused >= 200, "{refused} connections refused");
    assert!(closed_by_server(&mut on_grpc[0], Duration::from_secs(5)).await);
    assert!(closed_by_server(&mut on_http[0], Duration::from_secs(5)).await);
    drop((on_grpc, on_http));
    server.proc.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_whose_accept_queue_is_full_costs_the_cli_one_connect_timeout() {
    // A listener that never accepts, its queue filled: the kernel drops
    // further connection requests, so a connect gets no answer at all.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let full = socket.listen(1).unwrap();
    let addr = full.local_addr().unwrap();
    let held = silent_sockets(addr, 8).await;
    assert!(!held.is_empty());

    let start = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_registry"))
            .args(["--registry", &addr.to_string(), "match", "web", "k"])
            .env_remove("REGISTRY")
            .output()
            .expect("run registry")
    })
    .await
    .unwrap();
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("the CLI gave up after {took:?}: {stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("timed out"), "{stderr}");
    // Its documented connect timeout is 2 s: one, not one per retry and
    // again for registry discovery.
    assert!(took < Duration::from_millis(3500), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_watch_stream_outlives_the_idle_timeout_thanks_to_keepalive() {
    let mut settings = registry_server::config::Settings::loopback("r-keepalive");
    settings.connections.idle_timeout = Duration::from_millis(600);
    let running = common::start_with(settings).await;
    let mut c = common::client(&running).await;
    let mut stream = c
        .watch(v1::WatchRequest { group: "web".into() })
        .await
        .expect("watch")
        .into_inner();
    stream
        .message()
        .await
        .expect("first snapshot")
        .expect("a snapshot");
    // Nothing changes for five idle timeouts: the client answers the
    // server's pings, so its connection is never idle and stays open.
    let waited = tokio::time::timeout(Duration::from_secs(3), stream.message()).await;
    assert!(waited.is_err(), "the stream ended: {waited:?}");
    running.shutdown().await;
}
