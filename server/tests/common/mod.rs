//! Helpers shared by the server's integration tests: an in-process server
//! on loopback, a raw HTTP/1.1 GET, polling with a deadline, and a guard
//! that kills a child process when dropped.
#![allow(dead_code)]

pub mod udp_proxy;

use registry_core::wire::v1::registry_client::RegistryClient;
use registry_core::{MemberEvent, Service};
use registry_server::config::Settings;
use registry_server::daemon::{self, Running};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStderr};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// Starts a registry on loopback with free ports.
pub async fn start(id: &str) -> Running {
    start_with(Settings::loopback(id)).await
}

/// Starts a registry with `settings`.
pub async fn start_with(settings: Settings) -> Running {
    let bound = daemon::bind(settings).await.expect("bind loopback");
    bound.start().await.expect("start")
}

/// A gRPC client of `running`.
pub async fn client(running: &Running) -> RegistryClient<Channel> {
    RegistryClient::connect(format!("http://{}", running.grpc_addr()))
        .await
        .expect("connect")
}

/// A service of weight 1 with no tags.
pub fn svc(id: &str, group: &str) -> Service {
    Service::new(id, group, format!("127.0.0.1:{}", 10_000 + id.len()))
}

/// Sends events through the server's membership queue and waits until the
/// catalog has applied all of them (accepted or refused).
pub async fn feed(running: &Running, events: Vec<MemberEvent>) {
    let want = running.cluster().events_applied() + events.len() as u64;
    let tx = running.events();
    for e in events {
        tx.send(e).await.expect("feeder alive");
    }
    wait_until("catalog applies the events", || {
        tx.capacity() == tx.max_capacity() && running.cluster().events_applied() >= want
    })
    .await;
}

/// Polls `cond` every 10 ms for up to 10 s; panics naming `what` if it
/// never holds.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An HTTP answer: status code, headers (lower-case names) and body.
pub struct HttpAnswer {
    /// Status code.
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body text.
    pub body: String,
}

impl HttpAnswer {
    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// `GET path_and_query` over a fresh connection (blocking; call from
/// `spawn_blocking` or a plain thread).
pub fn http_get(addr: SocketAddr, path_and_query: &str) -> HttpAnswer {
    http_request(addr, "GET", path_and_query)
}

/// The value of one sample line (`name{labels} value`) of `/metrics`
/// (blocking, like [`http_get`]).
pub fn metric(http: SocketAddr, sample: &str) -> u64 {
    let text = http_get(http, "/metrics").body;
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {sample} in /metrics:\n{text}"))
}

/// One HTTP/1.1 request with `Connection: close`; reads the whole answer.
pub fn http_request(addr: SocketAddr, method: &str, path_and_query: &str) -> HttpAnswer {
    let mut s = TcpStream::connect(addr).expect("connect http");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(
        s,
        "{method} {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read answer");
    parse_answer(&raw)
}

/// Parses a whole HTTP/1.1 answer (status line, headers, body, chunked or
/// not); panics when it is not one.
pub fn parse_answer(raw: &[u8]) -> HttpAnswer {
    let text = String::from_utf8_lossy(raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let mut lines = head.lines();
    let status_line = lines.next().expect("status line");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_string() };
    HttpAnswer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// Async wrapper of [`http_get`].
pub async fn get(addr: SocketAddr, path_and_query: &str) -> HttpAnswer {
    let p = path_and_query.to_string();
    tokio::task::spawn_blocking(move || http_get(addr, &p))
        .await
        .expect("http thread")
}

/// Async wrapper of [`http_request`].
pub async fn http_request_async(addr: SocketAddr, method: &str, path_and_query: &str) -> HttpAnswer {
    let (m, p) = (method.to_string(), path_and_query.to_string());
    tokio::task::spawn_blocking(move || http_request(addr, &m, &p))
        .await
        .expect("http thread")
}

/// A child process killed (SIGKILL) and reaped when dropped.
pub struct Proc {
    /// The child.
    pub child: Child,
}

impl Proc {
    /// Wraps a spawned child.
    pub fn new(child: Child) -> Self {
        Proc { child }
    }

    /// Sends SIGTERM (graceful shutdown).
    pub fn terminate(&self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }

    /// Waits up to `timeout` for the process to exit; its exit code.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// What a finished process left: exit code and its two outputs.
pub struct Finished {
    /// Exit code (None: killed after the timeout).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

impl Proc {
    /// Waits up to `timeout` for the process to exit (killing it after
    /// that) and collects its piped outputs.
    pub fn finish(mut self, timeout: Duration) -> Finished {
        let read = |r: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_end(&mut buf);
                }
                buf
            })
        };
        let out = read(
            self.child
                .stdout
                .take()
                .map(|r| Box::new(r) as Box<dyn Read + Send>),
        );
        let err = read(
            self.child
                .stderr
                .take()
                .map(|r| Box::new(r) as Box<dyn Read + Send>),
        );
        let code = self.wait_timeout(timeout);
        if code.is_none() {
            let _ = self.child.kill();
        }
        Finished {
            code,
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads JSON log lines from a server's stderr until the "ready" line;
/// returns its fields. Keeps draining stderr in a thread afterwards (so
/// the child never blocks on a full pipe), collecting the lines.
pub fn wait_ready(stderr: ChildStderr) -> (serde_json::Value, std::sync::mpsc::Receiver<String>) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("server logs \"ready\" in time");
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
            if v["fields"]["message"] == "ready" {
                return (v, rx);
            }
        }
    }
}

/// A started process and the fields of its "ready" log line.
pub struct Started {
    /// The process (killed on drop).
    pub proc: Proc,
    /// Fields of the "ready" line (`grpc`, `http`, `gossip`, `id`…).
    pub ready: serde_json::Value,
    /// Later log lines.
    pub logs: std::sync::mpsc::Receiver<String>,
}

impl Started {
    /// A field of the ready line as a string.
    pub fn field(&self, name: &str) -> String {
        self.ready["fields"][name]
            .as_str()
            .unwrap_or_else(|| panic!("ready line has no {name}: {}", self.ready))
            .to_string()
    }
}

/// Starts `program` with `args`, JSON logs at info on the returned stderr
/// pipe (stdin and stdout closed).
fn spawn_logging(program: &str, args: &[String]) -> (Proc, std::process::ChildStderr) {
    let mut child = std::process::Command::new(program)
        .args(args)
        .args(["--log-format", "json"])
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    let stderr = child.stderr.take().expect("stderr");
    (Proc::new(child), stderr)
}

/// Starts `program` with `args` (JSON logs) and waits for its "ready" line.
pub fn spawn_ready(program: &str, args: &[String]) -> Started {
    let (proc, stderr) = spawn_logging(program, args);
    let (ready, logs) = wait_ready(stderr);
    Started { proc, ready, logs }
}

/// Starts a real `registry-server` on loopback (free gRPC and HTTP ports,
/// gossip on `bind`) joining through `seeds`, and waits until it is ready.
pub fn spawn_registry(id: &str, bind: &str, seeds: &[String]) -> Started {
    spawn_registry_args(id, "127.0.0.1:0", bind, seeds, &[])
}

/// Flags of a `registry-server` `id` on loopback (gRPC on `grpc`, HTTP on
/// a free port, gossip on `bind`) joining through `seeds`, then `extra`.
pub fn registry_args(id: &str, grpc: &str, bind: &str, seeds: &[String], extra: &[String]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--id",
        id,
        "--addr",
        grpc,
        "--http-addr",
        "127.0.0.1:0",
        "--bind",
        bind,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if !seeds.is_empty() {
        args.push("--registries".into());
        args.push(seeds.join(","));
    }
    args.extend(extra.iter().cloned());
    args
}

/// Starts a real `registry-server` like [`spawn_registry`], with gRPC on
/// `grpc` (to restart one where its clients expect it) and extra flags
/// (`--bind-advertise …`).
pub fn spawn_registry_args(id: &str, grpc: &str, bind: &str, seeds: &[String], extra: &[String]) -> Started {
    let args = registry_args(id, grpc, bind, seeds, extra);
    spawn_ready(env!("CARGO_BIN_EXE_registry-server"), &args)
}

/// [`spawn_registry`] with more flags (`extra`) appended.
pub fn spawn_registry_with<S: AsRef<str>>(id: &str, bind: &str, seeds: &[String], extra: &[S]) -> Started {
    let extra: Vec<String> = extra.iter().map(|s| s.as_ref().to_string()).collect();
    spawn_registry_args(id, "127.0.0.1:0", bind, seeds, &extra)
}

/// Flags of a `registry-example-service` `id` in `group` (HTTP on a free
/// port) joining through the gossip addresses `registries` (comma-separated),
/// then the `extra` flags.
pub fn service_args(id: &str, group: &str, registries: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--id",
        id,
        "--group",
        group,
        "--addr",
        "127.0.0.1:0",
        "--registries",
        registries,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Starts a real `registry-example-service` `id` in `group` (HTTP on a
/// free port) joining through the registries' gossip addresses `seeds`,
/// and waits until it is ready.
pub fn spawn_service(id: &str, group: &str, seeds: &[String]) -> Started {
    let args = service_args(id, group, &seeds.join(","), &[]);
    spawn_ready(env!("CARGO_BIN_EXE_registry-example-service"), &args)
}

/// Ids of `group`'s members on the registry behind `c` (empty on error).
pub async fn member_ids(c: &mut RegistryClient<Channel>, group: &str) -> Vec<String> {
    let req = registry_core::wire::v1::MembersRequest { group: group.into() };
    match c.members(req).await {
        Ok(r) => r.into_inner().services.into_iter().map(|s| s.id).collect(),
        Err(_) => Vec::new(),
    }
}

/// Polls until `group` lists exactly `want` (sorted ids) on every registry
/// in `clients` (owned or `&mut`); panics with what each lists after
/// `deadline`. Returns how long it took.
pub async fn wait_members<C: std::borrow::BorrowMut<RegistryClient<Channel>>>(
    clients: &mut [C],
    group: &str,
    want: &[&str],
    deadline: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let mut seen = Vec::new();
        for c in clients.iter_mut() {
            seen.push(member_ids(c.borrow_mut(), group).await);
        }
        if seen.iter().all(|ids| ids == want) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < deadline,
            "{group} should be {want:?} on every registry within {deadline:?}, is {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A gRPC client of the registry process `r`.
pub async fn connect_started(r: &Started) -> RegistryClient<Channel> {
    RegistryClient::connect(format!("http://{}", r.field("grpc")))
        .await
        .expect("connect")
}

/// The owner of each of `keys` in `group` by `Match` on the registry behind
/// `c`, 8 requests in flight; "" where Match fails.
pub async fn match_owners(c: &RegistryClient<Channel>, group: &str, keys: &[String]) -> Vec<String> {
    let mut tasks = Vec::new();
    for chunk in keys.chunks(keys.len().div_ceil(8).max(1)) {
        let (chunk, mut c, group) = (chunk.to_vec(), c.clone(), group.to_string());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(chunk.len());
            for key in chunk {
                let req = registry_core::wire::v1::MatchRequest {
                    group: group.clone(),
                    key,
                };
                let id = match c.r#match(req).await {
                    Ok(r) => r.into_inner().service.map(|s| s.id).unwrap_or_default(),
                    Err(_) => String::new(),
                };
                out.push(id);
            }
            out
        }));
    }
    let mut all = Vec::with_capacity(keys.len());
    for t in tasks {
        all.extend(t.await.expect("match task"));
    }
    all
}

/// One Watch snapshot as received: arrival, member ids, members.
pub type Seen = (Instant, Vec<String>, Vec<Service>);

/// Every snapshot one registry's `Watch` stream sent, as it arrives.
#[derive(Clone, Default)]
pub struct WatchLog {
    /// The snapshots, in arrival order.
    pub snapshots: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
}

impl WatchLog {
    /// Follows `group` on the registry at `grpc` until the stream ends or
    /// the returned task is aborted.
    pub fn follow(grpc: &str, group: &str) -> (WatchLog, tokio::task::JoinHandle<()>) {
        let log = WatchLog::default();
        let (url, group, out) = (format!("http://{grpc}"), group.to_string(), log.clone());
        let task = tokio::spawn(async move {
            let mut c = RegistryClient::connect(url).await.expect("connect watch");
            let req = registry_core::wire::v1::WatchRequest { group };
            let mut stream = c.watch(req).await.expect("watch").into_inner();
            while let Ok(Some(snap)) = stream.message().await {
                let services: Vec<Service> = snap.services.into_iter().map(Service::from).collect();
                let ids = services.iter().map(|s| s.id.clone()).collect();
                out.snapshots
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((Instant::now(), ids, services));
            }
        });
        (log, task)
    }

    /// The snapshots so far.
    pub fn take(&self) -> Vec<Seen> {
        self.snapshots.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Starts `program` with `args` (JSON logs at info) without waiting for
/// it: every stderr line arrives on the receiver, from a thread that keeps
/// the pipe drained.
pub fn spawn_piped(program: &str, args: &[String]) -> (Proc, std::sync::mpsc::Receiver<String>) {
    let (proc, stderr) = spawn_logging(program, args);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (proc, rx)
}

/// A loopback address with a port that was free a moment ago (UDP when
/// `udp`, else TCP), for a process that must restart at the same address.
pub fn free_addr(udp: bool) -> String {
    let addr = if udp {
        std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr())
    } else {
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|s| s.local_addr())
    };
    addr.expect("a free loopback port").to_string()
}

/// Polls `cond` every 20 ms for up to 20 s, blocking the thread; panics
/// naming `what` if it never holds.
pub fn block_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
