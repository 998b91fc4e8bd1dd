//! A stateful service behind the registry: a counter per key, kept by the
//! key's owner, and the client that hammers it. Shows #17's drain →
//! hand-off → leave with handle-or-forward and the moved ranges: instances
//! can be replaced one by one with no failed request and no lost count.
//!
//! ```sh
//! cargo run -p registry-core --example counter -- serve --id counter-1 \
//!     --addr 127.0.0.1:7101 --bind 127.0.0.1:7401 --registries 127.0.0.1:7370 --grpc 127.0.0.1:9800
//! cargo run -p registry-core --example counter -- hammer --grpc 127.0.0.1:9800 --keys 300 --seconds 30
//! ```
//!
//! One request per TCP connection, one line each way:
//! - `INCR <key> <hops>` → `OK <count>`: the owner (by this instance's view)
//!   counts it, anyone else forwards it to the owner (handle-or-forward);
//! - `MERGE <key> <n>` → `OK`: a hand-off, added to the key's count (adding
//!   makes a hand-off and the increments racing it commute);
//! - `DUMP` → one `<key> <count>` line per key held, then `END`.
//!
//! On every change of the group an instance takes the moves from its last
//! snapshot and hands each key it holds in a range it lost to the range's
//! new owner. On SIGTERM it drains (all its ranges move), hands off, waits
//! `--drain-grace` ms, leaves, forwards for `--leave-grace` ms (clients with
//! an older view), and exits. `hammer` sends INCRs for `--seconds`, then
//! asks every member for its counts and prints one `RESULT {json}` line:
//! requests, failures, and increments lost (acknowledged but not counted).

use registry_core::registration::{Registration, RegistrationConfig};
use registry_core::{Client, GroupSnapshot, GroupView, Route};
use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Forwarding hops before an instance waits for its view to move on.
const MAX_HOPS: u32 = 4;
/// How long a request may wait for views to agree or an owner to answer.
const ROUTE_DEADLINE: Duration = Duration::from_secs(5);

/// Returns the value following `--name` on the command line, or `default`.
fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn ms(name: &str, default: &str) -> Duration {
    Duration::from_millis(arg(name, default).parse().unwrap_or(0))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let client = Client::connect(arg("--grpc", "127.0.0.1:9800").split(',')).await?;
    let view = Arc::new(client.group(&arg("--group", "counter")).await?);
    match std::env::args().nth(1).as_deref() {
        Some("serve") => serve(view).await,
        Some("hammer") => hammer(view).await,
        _ => Err("usage: counter serve|hammer [--flags] (see the file's header)".into()),
    }
}

/// One request and its one-line answer.
async fn ask(addr: &str, line: &str) -> std::io::Result<Vec<String>> {
    let conn = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await??;
    let (read, mut write) = conn.into_split();
    write.write_all(format!("{line}\n").as_bytes()).await?;
    let mut lines = BufReader::new(read).lines();
    let mut out = Vec::new();
    while let Some(l) = tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await?? {
        let done = !line.starts_with("DUMP") || l == "END";
        out.push(l);
        if done {
            return Ok(out);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "no answer",
    ))
}

/// An instance's state: the snapshot it routes by and the counts it holds,
/// under one lock, so that every increment counted under an old snapshot
/// is in the counts handed off when the snapshot changes.
struct Node {
    me: String,
    view: Arc<GroupView>,
    state: Mutex<(Arc<GroupSnapshot>, HashMap<String, u64>)>,
    handed: Mutex<Handed>,
}

/// What an instance handed off: in all, and at its own drain.
#[derive(Default)]
struct Handed {
    keys: usize,
    drain_keys: usize,
    /// Share of the key space the drain moved away, and the serving
    /// members before it (so 1/n is the share expected).
    drain_share: f64,
    drain_serving: usize,
}

async fn serve(view: Arc<GroupView>) -> Result<(), Box<dyn Error>> {
    let (id, addr) = (arg("--id", "counter-1"), arg("--addr", "127.0.0.1:7101"));
    let listener = TcpListener::bind(&addr).await?;
    let mut config = RegistrationConfig::new(&id, arg("--group", "counter"), &addr);
    config.bind = arg("--bind", "127.0.0.1:0").parse()?;
    for r in arg("--registries", "127.0.0.1:7370").split(',') {
        config = config.registry(r);
    }
    let registration = Registration::start(config).await?;
    let node = Arc::new(Node {
        me: id.clone(),
        state: Mutex::new((view.snapshot(), HashMap::new())),
        view,
        handed: Mutex::new(Handed::default()),
    });
    tokio::spawn(follow(node.clone()));
    let accept = {
        let node = node.clone();
        async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(answer(node.clone(), conn));
            }
        }
    };
    let serving = tokio::spawn(accept);
    println!("{id}: serving on {addr}");
    shutdown_signal().await;
    // Drain: every range moves away and `follow` hands the keys off.
    registration.set_draining(true).await?;
    while !is_draining(&node.view.snapshot(), &id) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(ms("--drain-grace", "2000")).await;
    registration.stop().await?;
    tokio::time::sleep(ms("--leave-grace", "2000")).await;
    serving.abort();
    // Anything still held (a hand-off that raced the leave) goes to its owner.
    let left: Vec<(String, u64)> = node.state.lock().expect("lock").1.drain().collect();
    for (key, n) in &left {
        hand_off(&node, key, *n).await;
    }
    let h = node.handed.lock().expect("lock");
    println!(
        "{id}: handed off {} keys in all; at its drain {} keys, {:.3} of the key space, with {} serving before it (1/n = {:.3}); {} left at exit",
        h.keys,
        h.drain_keys,
        h.drain_share,
        h.drain_serving,
        1.0 / h.drain_serving.max(1) as f64,
        left.len()
    );
    println!("{id}: exited");
    Ok(())
}

/// Whether `id` is listed as draining in `s`.
fn is_draining(s: &GroupSnapshot, id: &str) -> bool {
    s.members().iter().any(|m| m.id == id && m.draining)
}

/// On every change: hand off the keys held in ranges this instance lost.
async fn follow(node: Arc<Node>) {
    let mut changes = node.view.subscribe();
    while changes.changed().await.is_ok() {
        let outgoing: Vec<(String, u64)> = {
            let mut state = node.state.lock().expect("lock");
            let new = node.view.snapshot();
            let moves = new.moves_since(&state.0);
            let drain = is_draining(&new, &node.me) && !is_draining(&state.0, &node.me);
            let serving_before = state.0.members().iter().filter(|m| !m.draining).count();
            state.0 = new;
            let lost: Vec<String> = state
                .1
                .keys()
                .filter(|k| matches!(moves.of_key(k), Ok(Some(r)) if r.from.as_deref() == Some(&node.me)))
                .cloned()
                .collect();
            let share = moves.lost_by(&node.me).map(|r| r.positions() as f64).sum::<f64>() / 4_294_967_296.0;
            let mut handed = node.handed.lock().expect("lock");
            handed.keys += lost.len();
            if drain {
                (handed.drain_keys, handed.drain_share, handed.drain_serving) =
                    (lost.len(), share, serving_before);
            }
            lost.into_iter()
                .map(|k| (k.clone(), state.1.remove(&k).unwrap_or(0)))
                .collect()
        };
        for (key, n) in outgoing {
            hand_off(&node, &key, n).await;
        }
    }
}

/// Sends `n` of `key`'s count to its owner, until one takes it (back into
/// this instance's own counts if it owns the key again).
async fn hand_off(node: &Node, key: &str, n: u64) {
    loop {
        let owner = {
            let mut state = node.state.lock().expect("lock");
            match state.0.route(key, &node.me) {
                Ok(Route::Here) => {
                    *state.1.entry(key.to_string()).or_default() += n;
                    return;
                }
                Ok(Route::Forward(owner)) => Some(owner),
                // No serving member right now: wait for one.
                Err(_) => None,
            }
        };
        if let Some(owner) = owner {
            if matches!(ask(&owner.addr, &format!("MERGE {key} {n}")).await.as_deref(), Ok([ok]) if ok == "OK")
            {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Answers one connection's request.
async fn answer(node: Arc<Node>, conn: TcpStream) {
    let (read, mut write) = conn.into_split();
    let mut lines = BufReader::new(read).lines();
    let Ok(Some(line)) = lines.next_line().await else {
        return;
    };
    let words: Vec<&str> = line.split(' ').collect();
    let reply = match words.as_slice() {
        ["INCR", key, hops] => incr(&node, key, hops.parse().unwrap_or(MAX_HOPS)).await,
        ["MERGE", key, n] => match n.parse::<u64>() {
            Ok(n) => {
                *node
                    .state
                    .lock()
                    .expect("lock")
                    .1
                    .entry(key.to_string())
                    .or_default() += n;
                "OK".to_string()
            }
            Err(_) => "ERR bad count".to_string(),
        },
        ["DUMP"] => {
            let state = node.state.lock().expect("lock");
            let mut out: String = state.1.iter().map(|(k, n)| format!("{k} {n}\n")).collect();
            out.push_str("END");
            out
        }
        _ => "ERR unknown request".to_string(),
    };
    let _ = write.write_all(format!("{reply}\n").as_bytes()).await;
}

/// Counts `key` here if this instance owns it, else forwards it to the
/// owner. A request bounced `MAX_HOPS` times met views that disagree for
/// the moment: each further hop waits a little for them to agree.
async fn incr(node: &Node, key: &str, hops: u32) -> String {
    let deadline = Instant::now() + ROUTE_DEADLINE;
    loop {
        let owner = {
            let mut state = node.state.lock().expect("lock");
            match state.0.route(key, &node.me) {
                Ok(Route::Here) => {
                    let n = state.1.entry(key.to_string()).or_default();
                    *n += 1;
                    return format!("OK {n}");
                }
                Ok(Route::Forward(owner)) => Some(owner),
                Err(_) => None,
            }
        };
        if let Some(owner) = owner {
            if hops >= MAX_HOPS {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if let Ok(reply) = ask(&owner.addr, &format!("INCR {key} {}", hops + 1)).await {
                if reply.first().is_some_and(|r| r.starts_with("OK")) {
                    return reply[0].clone();
                }
            }
        }
        if Instant::now() > deadline {
            return "ERR no owner answered".to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends INCRs to each key's owner by the client's view for `--seconds`,
/// then compares the acknowledged increments with the counts held.
async fn hammer(view: Arc<GroupView>) -> Result<(), Box<dyn Error>> {
    let keys: usize = arg("--keys", "300").parse()?;
    let until = Instant::now() + Duration::from_secs(arg("--seconds", "30").parse()?);
    let workers: usize = arg("--workers", "4").parse()?;
    println!("hammering {keys} keys with {workers} workers");
    let mut tasks = Vec::new();
    for w in 0..workers {
        let view = view.clone();
        tasks.push(tokio::spawn(async move {
            let (mut acked, mut failures) = (BTreeMap::<String, u64>::new(), Vec::<String>::new());
            let mut i = w;
            while Instant::now() < until {
                let key = format!("key-{}", i % keys);
                i += workers;
                let result = match view.match_key(&key) {
                    Ok(owner) => ask(&owner.addr, &format!("INCR {key} 0"))
                        .await
                        .map_err(|e| format!("{}: {e}", owner.id)),
                    Err(e) => Err(e.to_string()),
                };
                match result {
                    Ok(reply) if reply.first().is_some_and(|r| r.starts_with("OK")) => {
                        *acked.entry(key).or_default() += 1
                    }
                    Ok(reply) => failures.push(format!("{key}: {reply:?}")),
                    Err(e) => failures.push(format!("{key}: {e}")),
                }
            }
            (acked, failures)
        }));
    }
    let (mut acked, mut failures) = (BTreeMap::<String, u64>::new(), Vec::new());
    for t in tasks {
        let (a, f) = t.await?;
        for (k, n) in a {
            *acked.entry(k).or_default() += n;
        }
        failures.extend(f);
    }
    // Let hand-offs in flight land, then count what every member holds.
    tokio::time::sleep(ms("--settle", "3000")).await;
    let snapshot = view.snapshot();
    let mut held = BTreeMap::<String, u64>::new();
    let mut at_owner = 0u64;
    for m in snapshot.members() {
        for line in ask(&m.addr, "DUMP").await? {
            if let Some((k, n)) = line.split_once(' ') {
                let n: u64 = n.parse()?;
                *held.entry(k.to_string()).or_default() += n;
                if snapshot.match_key(k).is_ok_and(|o| o.id == m.id) {
                    at_owner += n;
                }
            }
        }
    }
    let requests: u64 = acked.values().sum::<u64>() + failures.len() as u64;
    let lost: u64 = acked
        .iter()
        .map(|(k, n)| n.saturating_sub(held.get(k).copied().unwrap_or(0)))
        .sum();
    let extra: u64 = held
        .iter()
        .map(|(k, n)| n.saturating_sub(acked.get(k).copied().unwrap_or(0)))
        .sum();
    println!(
        "RESULT {{\"requests\": {requests}, \"failures\": {}, \"lost\": {lost}, \"extra\": {extra}, \"counted\": {}, \"at_owner\": {at_owner}, \"members\": {}, \"first_failures\": {:?}}}",
        failures.len(),
        held.values().sum::<u64>(),
        snapshot.members().len(),
        failures.iter().take(5).collect::<Vec<_>>()
    );
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
