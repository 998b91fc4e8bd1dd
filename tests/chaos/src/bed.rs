//! Network namespaces as hosts, and real processes in them.
//!
//! Host `i` is the namespace `rchaos-<pid>-h<i>` with address
//! `10.213.0.<10+i>/24` on its `eth0`, a veth pair whose other end is a
//! port of the bridge `br0` in the namespace `rchaos-<pid>-br`. Nothing is
//! added to the root namespace: the subnet exists only inside the bed, so
//! no packet of a test leaves it (every process binds a bed address or
//! loopback). Processes start with `ip netns exec` (which execs the
//! binary: the child's pid is the process itself, so signals reach it).
//!
//! On drop (also while a failed test unwinds) every process is killed and
//! every namespace deleted. Namespaces of an earlier run whose test
//! process is gone (killed before it could clean up) are swept at start,
//! with whatever still runs in them.

use crate::history::{Action, Event, Role};
use crate::now_ms;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Prefix of every namespace the bed makes.
pub const PREFIX: &str = "rchaos";
/// First three octets of the test subnet (a /24).
pub const SUBNET: &str = "10.213.0";
/// Gossip port of a registry.
pub const GOSSIP_PORT: u16 = 7370;
/// gRPC port of a registry.
pub const GRPC_PORT: u16 = 9800;
/// HTTP port of a registry.
pub const HTTP_PORT: u16 = 9801;

/// How a partition drops packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// `prohibit` route: the sender gets an error at once.
    Prohibit,
    /// `blackhole` route: packets vanish.
    Blackhole,
}

/// A process the bed started.
struct Proc {
    child: Child,
    host: usize,
    role: Role,
    bin: PathBuf,
    args: Vec<String>,
    log: PathBuf,
}

/// The bed: its hosts, the processes in them and the log of every action.
pub struct Bed {
    run: String,
    hosts: usize,
    dir: PathBuf,
    procs: BTreeMap<String, Proc>,
    /// Generations of each node name (for log file names).
    generation: BTreeMap<String, u32>,
    events: Vec<Event>,
    blocked: BTreeSet<(usize, usize)>,
    slowed: BTreeSet<usize>,
}

/// The log filter of every process the bed starts: `REGISTRY_CHAOS_LOG`
/// (e.g. `info,registry_core::gossip=debug` to see each verdict), else
/// `info`.
fn log_filter() -> String {
    std::env::var("REGISTRY_CHAOS_LOG").unwrap_or_else(|_| "info".into())
}

/// The address of host `i` on the test subnet.
pub fn host_ip(i: usize) -> String {
    format!("{SUBNET}.{}", 10 + i)
}

fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip` (iproute2): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Deletes namespaces of earlier runs whose test process is gone, killing
/// what still runs in them. Returns how many were deleted.
pub fn sweep() -> Result<usize, String> {
    let list = ip(&["netns", "list"])?;
    let mut n = 0;
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(&format!("{PREFIX}-")) else {
            continue;
        };
        let pid: u32 = rest.split('-').next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if pid != 0 && alive(pid) {
            continue;
        }
        remove_namespace(name);
        n += 1;
    }
    Ok(n)
}

/// Kills every process in namespace `ns` and deletes it (best effort).
fn remove_namespace(ns: &str) {
    if let Ok(pids) = ip(&["netns", "pids", ns]) {
        for pid in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            // SAFETY: kill(2) with a pid read from the kernel; no memory involved.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let _ = ip(&["netns", "del", ns]);
}

impl Bed {
    /// Makes `hosts` hosts on a bridge; logs and answers go under `dir`.
    /// Fails with a clear message when namespaces cannot be made.
    pub fn new(hosts: usize, dir: &Path) -> Result<Bed, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(
                "the chaos bed needs root (it makes network namespaces): run scripts/test-chaos as root"
                    .into(),
            );
        }
        let swept = sweep()?;
        if swept > 0 {
            eprintln!("chaos bed: swept {swept} namespaces of an earlier run");
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let run = format!("{PREFIX}-{}-{}", std::process::id(), now_ms() % 100_000);
        let mut bed = Bed {
            run,
            hosts,
            dir: dir.to_path_buf(),
            procs: BTreeMap::new(),
            generation: BTreeMap::new(),
            events: Vec::new(),
            blocked: BTreeSet::new(),
            slowed: BTreeSet::new(),
        };
        bed.make_network()?;
        Ok(bed)
    }

    fn bridge(&self) -> String {
        format!("{}-br", self.run)
    }

    /// Namespace of host `i`.
    pub fn ns(&self, i: usize) -> String {
        format!("{}-h{i}", self.run)
    }

    fn make_network(&mut self) -> Result<(), String> {
        let br = self.bridge();
        ip(&["netns", "add", &br])?;
        ip(&["-n", &br, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &br, "link", "set", "br0", "up"])?;
        for i in 0..self.hosts {
            let ns = self.ns(i);
            let port = format!("p{i}");
            ip(&["netns", "add", &ns])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns", &br,
            ])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", host_ip(i)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &br, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &br, "link", "set", &port, "up"])?;
        }
        Ok(())
    }

    /// Number of hosts.
    pub fn hosts(&self) -> usize {
        self.hosts
    }

    /// Folder of the run's logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends to the log an action begun at `begun` (ms since the epoch)
    /// and done now: it took effect in between.
    fn note(&mut self, begun: u64, action: Action) {
        self.events.push(Event {
            t_ms: now_ms(),
            begun_ms: Some(begun),
            action,
        });
    }

    /// Adds something observed (not done by the bed) to the log.
    pub fn observe(&mut self, e: Event) {
        self.events.push(e);
    }

    /// The log so far.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Starts `bin args` as node `node` on host `host` (stdout and stderr
    /// to `<dir>/<node>.<generation>.log`), replacing a process of that
    /// name the caller has killed.
    pub fn spawn(
        &mut self,
        node: &str,
        role: Role,
        host: usize,
        bin: &Path,
        args: Vec<String>,
    ) -> Result<(), String> {
        if let Some(mut old) = self.procs.remove(node) {
            let _ = old.child.kill();
            let _ = old.child.wait();
        }
        let g = self.generation.entry(node.to_string()).or_insert(0);
        *g += 1;
        let log = self.dir.join(format!("{node}.{g}.log"));
        let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let begun = now_ms();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(host)])
            .arg(bin)
            .args(&args)
            .env("RUST_LOG", log_filter())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // SAFETY: prctl in the child before exec; async-signal-safe. The
        // process dies with the thread that started it, so a test process
        // killed outright leaves nothing running.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        self.note(
            begun,
            Action::Start {
                node: node.to_string(),
                role: role.clone(),
                host,
            },
        );
        self.procs.insert(
            node.to_string(),
            Proc {
                child,
                host,
                role,
                bin: bin.to_path_buf(),
                args,
                log,
            },
        );
        Ok(())
    }

    /// Starts node `node` again, on the same host with the same arguments.
    pub fn restart(&mut self, node: &str) -> Result<(), String> {
        let p = self.procs.get(node).ok_or_else(|| format!("no node {node}"))?;
        let (role, host, bin, args) = (p.role.clone(), p.host, p.bin.clone(), p.args.clone());
        self.spawn(node, role, host, &bin, args)
    }

    /// Host and arguments of `node`.
    pub fn spec(&self, node: &str) -> Option<(usize, &[String])> {
        self.procs.get(node).map(|p| (p.host, p.args.as_slice()))
    }

    /// Log file of the current process of `node`.
    pub fn log_of(&self, node: &str) -> Option<&Path> {
        self.procs.get(node).map(|p| p.log.as_path())
    }

    /// Kills `node` with SIGKILL and reaps it.
    pub fn kill(&mut self, node: &str) {
        if let Some(p) = self.procs.get_mut(node) {
            let begun = now_ms();
            let _ = p.child.kill();
            let _ = p.child.wait();
            self.note(
                begun,
                Action::Kill {
                    node: node.to_string(),
                },
            );
        }
    }

    fn signal(&mut self, node: &str, sig: i32) -> bool {
        let Some(p) = self.procs.get_mut(node) else {
            return false;
        };
        if p.child.try_wait().ok().flatten().is_some() {
            return false;
        }
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(p.child.id() as i32, sig) == 0 }
    }

    /// Asks `node` to stop (SIGTERM), as an operator or a supervisor does;
    /// see [`Bed::running`] for when it has.
    pub fn terminate(&mut self, node: &str) -> bool {
        self.signal(node, libc::SIGTERM)
    }

    /// Pauses `node` (SIGSTOP).
    pub fn stop(&mut self, node: &str) {
        let begun = now_ms();
        if self.signal(node, libc::SIGSTOP) {
            self.note(
                begun,
                Action::Stop {
                    node: node.to_string(),
                },
            );
        }
    }

    /// Resumes `node` (SIGCONT).
    pub fn cont(&mut self, node: &str) {
        let begun = now_ms();
        if self.signal(node, libc::SIGCONT) {
            self.note(
                begun,
                Action::Cont {
                    node: node.to_string(),
                },
            );
        }
    }

    /// Whether `node`'s process is running (not exited).
    pub fn running(&mut self, node: &str) -> bool {
        self.procs
            .get_mut(node)
            .is_some_and(|p| p.child.try_wait().ok().flatten().is_none())
    }

    /// Drops packets from host `from` to host `to` (a route to the
    /// other's address in `from`).
    pub fn block(&mut self, from: usize, to: usize, cut: Cut) -> Result<(), String> {
        if from == to || !self.blocked.insert((from, to)) {
            return Ok(());
        }
        let begun = now_ms();
        let kind = match cut {
            Cut::Prohibit => "prohibit",
            Cut::Blackhole => "blackhole",
        };
        ip(&[
            "-n",
            &self.ns(from),
            "route",
            "add",
            kind,
            &format!("{}/32", host_ip(to)),
        ])?;
        self.note(begun, Action::Block { from, to });
        Ok(())
    }

    /// Lifts the block from `from` to `to`.
    pub fn unblock(&mut self, from: usize, to: usize) -> Result<(), String> {
        if !self.blocked.remove(&(from, to)) {
            return Ok(());
        }
        let begun = now_ms();
        ip(&[
            "-n",
            &self.ns(from),
            "route",
            "del",
            &format!("{}/32", host_ip(to)),
        ])?;
        self.note(begun, Action::Unblock { from, to });
        Ok(())
    }

    /// Lifts every block and congestion.
    pub fn heal(&mut self) -> Result<(), String> {
        let slow: Vec<usize> = self.slowed.iter().copied().collect();
        for h in slow {
            self.unslow(h)?;
        }
        let all: Vec<(usize, usize)> = self.blocked.iter().copied().collect();
        for (f, t) in all {
            self.unblock(f, t)?;
        }
        Ok(())
    }

    /// Congests host `host`'s outgoing link (a token bucket: `kbit`
    /// kbit/s, packets queued up to `latency_ms` and dropped beyond): delay
    /// and loss from the kernel, which has no netem here.
    pub fn slow(&mut self, host: usize, kbit: u32, latency_ms: u32) -> Result<(), String> {
        let begun = now_ms();
        let (rate, lat) = (format!("{kbit}kbit"), format!("{latency_ms}ms"));
        let ns = self.ns(host);
        let args = [
            "netns", "exec", &ns, "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", &rate,
            "burst", "4kbit", "latency", &lat,
        ];
        ip(&args)?;
        self.slowed.insert(host);
        self.note(
            begun,
            Action::Slow {
                host,
                kbit,
                latency_ms,
            },
        );
        Ok(())
    }

    /// Lifts the congestion of host `host`.
    pub fn unslow(&mut self, host: usize) -> Result<(), String> {
        if !self.slowed.remove(&host) {
            return Ok(());
        }
        // What the congestion did: packets sent, dropped, held back.
        let ns = self.ns(host);
        if let Ok(stats) = ip(&["netns", "exec", &ns, "tc", "-s", "qdisc", "show", "dev", "eth0"]) {
            let line = stats.lines().find(|l| l.contains("Sent")).unwrap_or("").trim();
            eprintln!("chaos bed: host {host} congestion lifted: {line}");
        }
        let begun = now_ms();
        ip(&[
            "netns",
            "exec",
            &self.ns(host),
            "tc",
            "qdisc",
            "del",
            "dev",
            "eth0",
            "root",
        ])?;
        self.note(begun, Action::Unslow { host });
        Ok(())
    }

    /// Waits up to `timeout` until `node`'s log contains `needle`.
    pub fn wait_log(&self, node: &str, needle: &str, timeout: Duration) -> Result<(), String> {
        let log = self.log_of(node).ok_or_else(|| format!("no node {node}"))?;
        let deadline = Instant::now() + timeout;
        loop {
            if std::fs::read_to_string(log).is_ok_and(|s| s.contains(needle)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let tail = std::fs::read_to_string(log).unwrap_or_default();
                return Err(format!(
                    "{node} did not log {needle:?} within {timeout:?}; its log:\n{tail}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Writes the nemesis log to `<dir>/events.jsonl`.
    pub fn save_events(&self) -> Result<PathBuf, String> {
        let path = self.dir.join("events.jsonl");
        let text: String = self
            .events
            .iter()
            .filter_map(|e| serde_json::to_string(e).ok())
            .map(|l| l + "\n")
            .collect();
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }

    /// Stops every process (SIGKILL) and deletes every namespace.
    pub fn teardown(&mut self) {
        for p in self.procs.values_mut() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        self.procs.clear();
        for i in 0..self.hosts {
            remove_namespace(&self.ns(i));
        }
        remove_namespace(&self.bridge());
        self.hosts = 0;
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        self.teardown();
    }
}
