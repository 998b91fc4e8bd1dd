//! Whole-cluster restart with real processes on loopback: two
//! `registry-server`s (each naming the other in `--registries`) and five
//! `registry-example-service`s. Both registries are killed with SIGKILL
//! and started again at once with the same flags; from the moment each
//! accepts connections it is asked `Members` and `Match` every few
//! milliseconds until the cluster is whole again. No answer other than
//! UNAVAILABLE "joining" may come from a ring that misses a live member.

mod common;

use common::{free_addr, registry_args, spawn_piped, spawn_service, Proc, Started};
use registry_core::wire::v1::registry_client::RegistryClient;
use registry_core::wire::v1::{MatchRequest, MembersRequest};
use registry_core::REGISTRY_GROUP;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

const SERVICES: [&str; 5] = ["web-1", "web-2", "web-3", "web-4", "web-5"];
const REGISTRIES: [&str; 2] = ["reg-1", "reg-2"];
/// Keys asked with `Match` (one per round, in turn).
const KEYS: usize = 32;
/// How often each registry is asked.
const POLL: Duration = Duration::from_millis(15);
/// Upper bound for the cluster to be whole again after the restart.
const WHOLE_DEADLINE: Duration = Duration::from_secs(30);
/// How long answers keep being checked once both registries are whole.
const AFTER_WHOLE: Duration = Duration::from_secs(1);
/// The gate's bound: long enough that, in this test, no gate opens
/// because of it (a registry whose gate timed out may answer from what it
/// knows, which is allowed and not what is tested here).
const SYNC_TIMEOUT: &str = "15";

/// One registry's fixed addresses and flags.
struct Reg {
    id: &'static str,
    grpc: String,
    gossip: String,
    data_dir: Option<PathBuf>,
}

impl Reg {
    fn args(&self, other: &Reg) -> Vec<String> {
        let mut extra = vec!["--sync-timeout".to_string(), SYNC_TIMEOUT.to_string()];
        if let Some(dir) = &self.data_dir {
            extra.push("--data-dir".into());
            extra.push(dir.display().to_string());
        }
        registry_args(
            self.id,
            &self.grpc,
            &self.gossip,
            std::slice::from_ref(&other.gossip),
            &extra,
        )
    }
}

/// Two registries, each seeded with the other, started at once.
fn start_both(regs: &[Reg; 2]) -> [(Proc, Receiver<String>); 2] {
    let server = env!("CARGO_BIN_EXE_registry-server");
    [
        spawn_piped(server, &regs[0].args(&regs[1])),
        spawn_piped(server, &regs[1].args(&regs[0])),
    ]
}

/// Waits for the "ready" log line on `logs`; its `synced` field.
fn wait_ready(logs: &Receiver<String>, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = logs
            .recv_timeout(left)
            .expect("the registry logs \"ready\" in time");
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
            if v["fields"]["message"] == "ready" {
                return v["fields"]["synced"] == true;
            }
        }
    }
}

/// A client of `grpc`, or `None` while it does not accept connections.
async fn try_connect(grpc: &str) -> Option<RegistryClient<Channel>> {
    let endpoint = Endpoint::from_shared(format!("http://{grpc}"))
        .ok()?
        .connect_timeout(Duration::from_millis(200));
    endpoint.connect().await.ok().map(RegistryClient::new)
}

/// What one registry answered during the restart.
#[derive(Default)]
struct Seen {
    /// Answers refused as "joining".
    joining: usize,
    /// Answers given (not refused).
    answers: usize,
    /// Since the restart: when it first accepted a connection, first
    /// answered (gate open), first answered with the whole cluster.
    accepting: Option<Duration>,
    open: Option<Duration>,
    whole: Option<Duration>,
    /// Answers from a ring missing a live member, described.
    violations: Vec<String>,
    /// `Match` owners given, by key, with when.
    owners: Vec<(Duration, String, String)>,
}

impl Seen {
    /// Classifies a refusal: "joining" is allowed, anything else is an
    /// answer (NOT_FOUND from an empty group, …) and a violation.
    fn refused(&mut self, at: Duration, what: &str, s: &tonic::Status) {
        if s.code() == Code::Unavailable && s.message().contains("joining") {
            self.joining += 1;
        } else {
            self.answers += 1;
            self.open.get_or_insert(at);
            self.violations
                .push(format!("{at:?} {what}: {:?} {}", s.code(), s.message()));
        }
    }

    /// Checks a member list: it must be `want`.
    fn members(&mut self, at: Duration, group: &str, got: Vec<String>, want: &[&str]) -> bool {
        self.answers += 1;
        self.open.get_or_insert(at);
        if got != want {
            self.violations
                .push(format!("{at:?} Members({group}) = {got:?}, live: {want:?}"));
            return false;
        }
        true
    }
}

/// One round of questions to one registry: both groups' members and one
/// key's owner. True when both groups were whole.
async fn ask(c: &mut RegistryClient<Channel>, seen: &mut Seen, at: Duration, key: &str) -> bool {
    let mut whole = true;
    for (group, want) in [("web", &SERVICES[..]), (REGISTRY_GROUP, &REGISTRIES[..])] {
        let req = MembersRequest { group: group.into() };
        match c.members(req).await {
            Ok(r) => {
                let mut ids: Vec<String> = r.into_inner().services.into_iter().map(|s| s.id).collect();
                ids.sort();
                whole &= seen.members(at, group, ids, want);
            }
            Err(s) => {
                seen.refused(at, &format!("Members({group})"), &s);
                whole = false;
            }
        }
    }
    let req = MatchRequest {
        group: "web".into(),
        key: key.into(),
    };
    match c.r#match(req).await {
        Ok(r) => {
            seen.answers += 1;
            seen.open.get_or_insert(at);
            let owner = r.into_inner().service.map(|s| s.id).unwrap_or_default();
            seen.owners.push((at, key.to_string(), owner));
        }
        Err(s) => seen.refused(at, "Match(web)", &s),
    }
    whole
}

fn key(i: usize) -> String {
    format!("user-{}", i % KEYS)
}

/// Polls both registries from `restart` on until both are whole (then
/// [`AFTER_WHOLE`] more).
async fn watch_restart(regs: &[Reg; 2], restart: Instant) -> [Seen; 2] {
    let mut seen = [Seen::default(), Seen::default()];
    let mut clients: [Option<RegistryClient<Channel>>; 2] = [None, None];
    let mut round = 0;
    loop {
        let at = restart.elapsed();
        assert!(
            at < WHOLE_DEADLINE,
            "the cluster is not whole {WHOLE_DEADLINE:?} after the restart: {:?}",
            seen.iter().map(|s| s.violations.last()).collect::<Vec<_>>()
        );
        for (i, reg) in regs.iter().enumerate() {
            if clients[i].is_none() {
                clients[i] = try_connect(&reg.grpc).await;
                if clients[i].is_some() {
                    seen[i].accepting = Some(restart.elapsed());
                }
            }
            if let Some(c) = &mut clients[i] {
                let at = restart.elapsed();
                if ask(c, &mut seen[i], at, &key(round)).await && seen[i].whole.is_none() {
                    seen[i].whole = Some(at);
                }
            }
        }
        round += 1;
        let done = seen
            .iter()
            .filter_map(|s| s.whole)
            .max()
            .filter(|_| seen.iter().all(|s| s.whole.is_some()));
        if done.is_some_and(|t| restart.elapsed() > t + AFTER_WHOLE) {
            return seen;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The owner of every key on the whole cluster (both registries agree).
async fn whole_owners(regs: &[Reg; 2]) -> BTreeMap<String, String> {
    let mut all = Vec::new();
    for reg in regs {
        let mut c = try_connect(&reg.grpc).await.expect("connect");
        let mut owners = BTreeMap::new();
        for i in 0..KEYS {
            let req = MatchRequest {
                group: "web".into(),
                key: key(i),
            };
            let owner = c.r#match(req).await.expect("Match").into_inner().service;
            owners.insert(key(i), owner.map(|s| s.id).unwrap_or_default());
        }
        all.push(owners);
    }
    assert_eq!(all[0], all[1], "both registries agree once whole");
    all.remove(0)
}

/// Waits until every registry's data directory names every member.
fn wait_remembered(regs: &[Reg; 2]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for dir in regs.iter().filter_map(|r| r.data_dir.as_ref()) {
        loop {
            let text: String = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect();
            if SERVICES.iter().chain(&REGISTRIES).all(|id| text.contains(id)) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} never names every member",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A fresh empty directory under the target dir's temp space.
fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Runs the scenario: start, fill, kill -9 both registries, start both,
/// watch. Returns what each registry answered and the whole ring's owners.
async fn restart_scenario(data_dir: bool) -> ([Seen; 2], BTreeMap<String, String>) {
    let regs = REGISTRIES.map(|id| Reg {
        id,
        grpc: free_addr(false),
        gossip: free_addr(true),
        data_dir: data_dir.then(|| temp_dir(id)),
    });
    // Services first (they wait for a registry): a registry whose only
    // peer is the other, joining too, would wait out --sync-timeout.
    let seeds: Vec<String> = regs.iter().map(|r| r.gossip.clone()).collect();
    let services: Vec<Started> = SERVICES
        .iter()
        .map(|id| spawn_service(id, "web", &seeds))
        .collect();
    let first = Instant::now();
    let mut procs = start_both(&regs);
    for (_, logs) in &procs {
        wait_ready(logs, Duration::from_secs(30));
    }
    println!("first start: both ready after {:?}", first.elapsed());
    let mut clients = Vec::new();
    for r in &regs {
        clients.push(try_connect(&r.grpc).await.expect("connect"));
    }
    common::wait_members(&mut clients, "web", &SERVICES, Duration::from_secs(20)).await;
    common::wait_members(&mut clients, REGISTRY_GROUP, &REGISTRIES, Duration::from_secs(20)).await;
    let before = whole_owners(&regs).await;
    wait_remembered(&regs);

    // kill -9 both, start both again with the same flags.
    drop(procs);
    let restart = Instant::now();
    procs = start_both(&regs);
    let seen = watch_restart(&regs, restart).await;
    let after = whole_owners(&regs).await;
    assert_eq!(
        before, after,
        "the same members own the same keys after the restart"
    );
    for (i, (_, logs)) in procs.iter().enumerate() {
        let synced = wait_ready(logs, Duration::from_secs(1));
        report(REGISTRIES[i], &seen[i], synced);
    }
    drop((procs, services));
    for dir in regs.iter().filter_map(|r| r.data_dir.as_ref()) {
        let _ = std::fs::remove_dir_all(dir);
    }
    (seen, after)
}

/// Prints the figures of one registry's restart.
fn report(id: &str, s: &Seen, synced: bool) {
    println!(
        "{id}: accepting after {:?}, gate open after {:?} (ready synced={synced}), whole after {:?}; \
         {} refused as joining, {} answered, {} from a partial ring",
        s.accepting,
        s.open,
        s.whole,
        s.joining,
        s.answers,
        s.violations.len()
    );
}

/// Every answer either refused as "joining" or from the whole ring.
fn assert_no_partial_answers(seen: &[Seen; 2], owners: &BTreeMap<String, String>) {
    for (i, s) in seen.iter().enumerate() {
        let wrong: Vec<String> = s
            .owners
            .iter()
            .filter(|(_, key, owner)| owners.get(key) != Some(owner))
            .map(|(at, key, owner)| format!("{at:?} Match({key}) = {owner:?}, whole ring: {:?}", owners[key]))
            .collect();
        let first: Vec<&String> = s.violations.iter().chain(&wrong).take(8).collect();
        assert!(
            s.violations.is_empty() && wrong.is_empty(),
            "{} answered {} times from a partial ring after the restart; the first:\n{first:#?}",
            REGISTRIES[i],
            s.violations.len() + wrong.len(),
        );
        assert!(s.answers > 0, "{} answered", REGISTRIES[i]);
    }
}

/// With a data directory, each registry remembers the membership and
/// refuses queries until every remembered live member is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_cluster_restart_with_a_data_dir_never_answers_from_a_partial_ring() {
    let (seen, owners) = restart_scenario(true).await;
    assert_no_partial_answers(&seen, &owners);
}

/// Without one, a sync with the other registry (itself joining) does not
/// open the gate: it opens once a member that did not restart (a service)
/// has answered a sync, and the catalog holds what gossip knows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_cluster_restart_without_a_data_dir_waits_for_a_member_that_did_not_restart() {
    let (seen, owners) = restart_scenario(false).await;
    assert_no_partial_answers(&seen, &owners);
}
