//! `registry-chaos-client`: asks every registry of the bed, each on its
//! own, for a group's members and for the owners of a few keys (with the
//! ring's version and checksum), and once
//! more through one client given every registry (with failover); prints
//! one JSON line per answer ([`registry_chaos::history::Answer`]). A local
//! view of the group (`GroupView`, fed by Watch) answers too, as registry
//! "view": its members and its owner of a key, from one snapshot.
//!
//! ```text
//! registry-chaos-client --registry r1=10.213.0.10:9800 --registry r2=10.213.0.11:9800 --group web
//! ```

use clap::Parser;
use registry_chaos::history::{Answer, Op};
use registry_chaos::now_ms;
use registry_core::client::{Client, ClientConfig};
use registry_core::ring::checksum_hex;
use registry_core::wire::v1::{registry_client::RegistryClient, MatchRequest};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// Flags of the chaos client.
#[derive(Debug, Parser)]
#[command(name = "registry-chaos-client")]
struct Flags {
    /// A registry to ask, NAME=HOST:PORT (gRPC); repeat for each.
    #[arg(long = "registry", required = true)]
    registries: Vec<String>,
    /// Group to ask about.
    #[arg(long, default_value = "web")]
    group: String,
    /// Number of keys to match (key-0, key-1, ...), one per round.
    #[arg(long, default_value_t = 8)]
    keys: usize,
    /// Pause between rounds, ms.
    #[arg(long = "interval-ms", default_value_t = 100)]
    interval_ms: u64,
}

fn print(a: &Answer) {
    if let Ok(line) = serde_json::to_string(a) {
        println!("{line}");
    }
}

fn answer(start_ms: u64, registry: &str, op: Op, group: &str, key: Option<&str>) -> Answer {
    Answer {
        start_ms,
        t_ms: now_ms(),
        registry: registry.to_string(),
        op,
        group: group.to_string(),
        key: key.map(str::to_string),
        owner: None,
        members: None,
        version: None,
        checksum: None,
        error: None,
    }
}

/// One registry on its own: no failover, short timeouts, so each answer
/// says what that registry holds.
async fn ask_one(name: String, addr: String, flags: std::sync::Arc<Flags>) {
    let mut config = ClientConfig::new([addr.clone()]);
    config.discover_registries = false;
    config.attempts = Some(1);
    config.connect_timeout = Duration::from_millis(500);
    config.request_timeout = Duration::from_secs(1);
    config.max_backoff = Duration::from_millis(100);
    let client = match Client::with_config(config).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("registry-chaos-client: {name}: {e}");
            return;
        }
    };
    let endpoint = match Endpoint::from_shared(format!("http://{addr}")) {
        Ok(e) => e.connect_timeout(Duration::from_millis(500)),
        Err(e) => {
            eprintln!("registry-chaos-client: {name}: {e}");
            return;
        }
    };
    let mut raw = RegistryClient::new(endpoint.connect_lazy());
    let mut round = 0usize;
    loop {
        let start = now_ms();
        let got = client.members(&flags.group).await;
        let mut a = answer(start, &name, Op::Members, &flags.group, None);
        match got {
            Ok(m) => {
                let mut ids: Vec<String> = m.services.into_iter().map(|s| s.id).collect();
                ids.sort();
                a.members = Some(ids);
                a.version = Some(m.version);
                a.checksum = Some(checksum_hex(m.checksum));
            }
            Err(e) => a.error = Some(e.to_string()),
        }
        print(&a);
        let key = format!("key-{}", round % flags.keys.max(1));
        print(&match_one(&mut raw, &name, &flags.group, &key).await);
        round += 1;
        tokio::time::sleep(Duration::from_millis(flags.interval_ms)).await;
    }
}

/// One Match on the wire, for the version and checksum of the ring that
/// answered (the client's `match_key` returns the owner only).
async fn match_one(raw: &mut RegistryClient<Channel>, name: &str, group: &str, key: &str) -> Answer {
    let start = now_ms();
    let req = MatchRequest {
        group: group.into(),
        key: key.into(),
    };
    let got = tokio::time::timeout(Duration::from_secs(1), raw.r#match(req)).await;
    let mut a = answer(start, name, Op::Match, group, Some(key));
    match got {
        Ok(Ok(resp)) => {
            let resp = resp.into_inner();
            a.owner = resp.service.map(|s| s.id);
            a.version = Some(resp.version);
            a.checksum = Some(checksum_hex(resp.checksum));
        }
        Ok(Err(status)) if status.code() == tonic::Code::NotFound => {
            a.error = Some(format!("not found: {}", status.message()));
        }
        Ok(Err(status)) => a.error = Some(format!("{:?}: {}", status.code(), status.message())),
        Err(_) => a.error = Some("timed out: no answer within 1s".into()),
    }
    a
}

/// Every registry with the client's own failover.
async fn ask_any(addrs: Vec<String>, flags: std::sync::Arc<Flags>) {
    let mut config = ClientConfig::new(addrs);
    config.discover_registries = false;
    let client = match Client::with_config(config).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("registry-chaos-client: {e}");
            return;
        }
    };
    let mut round = 0usize;
    loop {
        let key = format!("key-{}", round % flags.keys.max(1));
        let start = now_ms();
        let got = client.match_key(&flags.group, &key).await;
        let mut a = answer(start, "*", Op::Failover, &flags.group, Some(&key));
        match got {
            Ok(s) => a.owner = Some(s.id),
            Err(e) => a.error = Some(e.to_string()),
        }
        print(&a);
        round += 1;
        tokio::time::sleep(Duration::from_millis(flags.interval_ms)).await;
    }
}

/// A local view through the failover client: members and one owner per
/// round, both from the same snapshot.
async fn ask_view(addrs: Vec<String>, flags: std::sync::Arc<Flags>) {
    let mut config = ClientConfig::new(addrs);
    config.discover_registries = false;
    let Ok(client) = Client::with_config(config).await else {
        return;
    };
    let view = loop {
        match client.group(&flags.group).await {
            Ok(v) => break v,
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    let mut round = 0usize;
    loop {
        let snap = view.snapshot();
        let now = now_ms();
        let mut a = answer(now, "view", Op::Members, &flags.group, None);
        let mut ids: Vec<String> = snap.members().iter().map(|s| s.id.clone()).collect();
        ids.sort();
        a.members = Some(ids);
        a.version = Some(snap.version());
        a.checksum = Some(checksum_hex(snap.checksum()));
        print(&a);
        let key = format!("key-{}", round % flags.keys.max(1));
        let mut a = answer(now, "view", Op::Match, &flags.group, Some(&key));
        a.version = Some(snap.version());
        a.checksum = Some(checksum_hex(snap.checksum()));
        match snap.match_key(&key) {
            Ok(s) => a.owner = Some(s.id.clone()),
            Err(e) => a.error = Some(e.to_string()),
        }
        print(&a);
        round += 1;
        tokio::time::sleep(Duration::from_millis(flags.interval_ms)).await;
    }
}

fn main() {
    let flags = std::sync::Arc::new(Flags::parse());
    let mut named = Vec::new();
    for r in &flags.registries {
        match r.split_once('=') {
            Some((n, a)) => named.push((n.to_string(), a.to_string())),
            None => {
                eprintln!("registry-chaos-client: --registry wants NAME=HOST:PORT, got {r:?}");
                std::process::exit(2);
            }
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("registry-chaos-client: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for (n, a) in &named {
            tasks.push(tokio::spawn(ask_one(n.clone(), a.clone(), flags.clone())));
        }
        let addrs: Vec<String> = named.iter().map(|(_, a)| a.clone()).collect();
        tasks.push(tokio::spawn(ask_any(addrs.clone(), flags.clone())));
        tasks.push(tokio::spawn(ask_view(addrs, flags.clone())));
        for t in tasks {
            let _ = t.await;
        }
    });
}
