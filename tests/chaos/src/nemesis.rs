//! The cluster of a chaos run and the nemesis that breaks it.
//!
//! [`Cluster`] lays out a bed: registries `r1..rN` on hosts `0..N`,
//! services `s1..sM` (group `web`) spread over the next hosts, and the
//! chaos client alone on the last host, asking every registry. Its
//! methods are the faults, each logged by the bed. [`Nemesis`] draws
//! faults from a seeded RNG: the seed is printed, and the same seed
//! replays the same faults (`REGISTRY_CHAOS_SEED=<seed>`).

use crate::bed::{host_ip, Bed, Cut, GOSSIP_PORT, GRPC_PORT, HTTP_PORT};
use crate::checker::{check, Bounds, Report};
use crate::history::{parse_answers, Answer, Role};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The release binaries a run starts.
#[derive(Debug, Clone)]
pub struct Bins {
    /// registry-server.
    pub server: PathBuf,
    /// registry-example-service.
    pub service: PathBuf,
    /// registry-chaos-client.
    pub client: PathBuf,
}

impl Bins {
    /// The server and service from `REGISTRY_CHAOS_BIN_DIR` (default: the
    /// workspace's target/release), and the given chaos client.
    pub fn find(client: &Path) -> Result<Bins, String> {
        let dir = match std::env::var_os("REGISTRY_CHAOS_BIN_DIR") {
            Some(d) => PathBuf::from(d),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release"),
        };
        let bins = Bins {
            server: dir.join("registry-server"),
            service: dir.join("registry-example-service"),
            client: client.to_path_buf(),
        };
        for b in [&bins.server, &bins.service, &bins.client] {
            if !b.is_file() {
                return Err(format!(
                    "{} is missing: build the release binaries first (scripts/test-chaos does)",
                    b.display()
                ));
            }
        }
        Ok(bins)
    }
}

/// Shape of a run.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Number of registries.
    pub registries: usize,
    /// Number of hosts the services share.
    pub service_hosts: usize,
    /// Number of services.
    pub services: usize,
    /// Whether every registry keeps a data directory (`--data-dir
    /// <run>/<id>-data`, kept across its restarts). Whole-cluster restarts
    /// are guaranteed safe only with one, so the nemesis draws them only
    /// then.
    pub data_dir: bool,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            registries: 3,
            service_hosts: 2,
            services: 4,
            data_dir: false,
        }
    }
}

/// The group every service joins.
pub const GROUP: &str = "web";

/// A running cluster in a bed.
pub struct Cluster {
    /// The bed (hosts, processes, log).
    pub bed: Bed,
    /// Its shape.
    pub layout: Layout,
    bins: Bins,
}

impl Cluster {
    /// Makes the bed and starts registries, services and the client;
    /// returns once every registry lists every service.
    pub fn start(dir: &Path, layout: Layout, bins: Bins) -> Result<Cluster, String> {
        let hosts = layout.registries + layout.service_hosts + 1;
        let bed = Bed::new(hosts, dir)?;
        let mut c = Cluster { bed, layout, bins };
        for i in 0..c.layout.registries {
            c.spawn_registry(i)?;
        }
        for i in 0..c.layout.registries {
            c.bed
                .wait_log(&registry(i), ": ready ", Duration::from_secs(30))?;
        }
        for i in 0..c.layout.services {
            let host = c.service_host(i);
            c.spawn_service(i, host)?;
        }
        let mut args = vec!["--group".to_string(), GROUP.to_string()];
        for i in 0..c.layout.registries {
            args.push("--registry".into());
            args.push(format!("{}={}:{GRPC_PORT}", registry(i), host_ip(i)));
        }
        let client = c.bins.client.clone();
        c.bed.spawn("client", Role::Client, hosts - 1, &client, args)?;
        c.wait_converged(Duration::from_secs(30))?;
        Ok(c)
    }

    /// Host of the client.
    pub fn client_host(&self) -> usize {
        self.bed.hosts() - 1
    }

    /// Default host of service `i`.
    pub fn service_host(&self, i: usize) -> usize {
        self.layout.registries + i % self.layout.service_hosts
    }

    /// Hosts the services may run on.
    pub fn service_hosts(&self) -> std::ops::Range<usize> {
        self.layout.registries..self.layout.registries + self.layout.service_hosts
    }

    fn spawn_registry(&mut self, i: usize) -> Result<(), String> {
        let ip = host_ip(i);
        let seeds: Vec<String> = (0..self.layout.registries)
            .filter(|&j| j != i)
            .map(|j| format!("{}:{GOSSIP_PORT}", host_ip(j)))
            .collect();
        let mut args: Vec<String> = vec![
            "--id".into(),
            registry(i),
            "--bind".into(),
            format!("{ip}:{GOSSIP_PORT}"),
            "--addr".into(),
            format!("{ip}:{GRPC_PORT}"),
            "--http-addr".into(),
            format!("{ip}:{HTTP_PORT}"),
            "--registries".into(),
            seeds.join(","),
        ];
        if self.layout.data_dir {
            let data = self.bed.dir().join(format!("{}-data", registry(i)));
            std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
            args.push("--data-dir".into());
            args.push(data.display().to_string());
        }
        let bin = self.bins.server.clone();
        self.bed.spawn(&registry(i), Role::Registry, i, &bin, args)
    }

    /// Starts service `i` on `host` (also a restart elsewhere, same id).
    pub fn spawn_service(&mut self, i: usize, host: usize) -> Result<(), String> {
        let ip = host_ip(host);
        let seeds: Vec<String> = (0..self.layout.registries)
            .map(|j| format!("{}:{GOSSIP_PORT}", host_ip(j)))
            .collect();
        let args = vec![
            "--id".into(),
            service(i),
            "--group".into(),
            GROUP.into(),
            "--addr".into(),
            format!("{ip}:{}", 8000 + i),
            "--bind".into(),
            format!("{ip}:{}", 7400 + i),
            "--registries".into(),
            seeds.join(","),
        ];
        let bin = self.bins.service.clone();
        self.bed.spawn(
            &service(i),
            Role::Service { group: GROUP.into() },
            host,
            &bin,
            args,
        )
    }

    /// Every answer the client printed so far (all its processes).
    pub fn answers(&self) -> Vec<Answer> {
        let mut all = Vec::new();
        for g in 1..=16 {
            match std::fs::read_to_string(self.bed.dir().join(format!("client.{g}.log"))) {
                Ok(text) => all.extend(parse_answers(&text)),
                Err(_) => break,
            }
        }
        all
    }

    /// Waits until every registry's latest Members answer lists exactly
    /// the services that run, and the answer came after `since`.
    pub fn wait_converged(&mut self, timeout: Duration) -> Result<(), String> {
        let since = crate::now_ms();
        let deadline = Instant::now() + timeout;
        let mut want: Vec<String> = (0..self.layout.services)
            .map(service)
            .filter(|s| self.bed.running(s))
            .collect();
        want.sort();
        loop {
            let answers = self.answers();
            let ok = (0..self.layout.registries).all(|i| {
                answers
                    .iter()
                    .rev()
                    .find(|a| a.registry == registry(i) && a.members.is_some() && a.t_ms > since)
                    .is_some_and(|a| a.members.as_ref() == Some(&want))
            });
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("registries did not all list {want:?} within {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills registry `i` (SIGKILL), waits `down`, starts it again.
    pub fn restart_registry(&mut self, i: usize, down: Duration) -> Result<(), String> {
        self.bed.kill(&registry(i));
        std::thread::sleep(down);
        self.spawn_registry(i)
    }

    /// Kills every registry at once, waits `down`, starts them all.
    pub fn restart_all_registries(&mut self, down: Duration) -> Result<(), String> {
        for i in 0..self.layout.registries {
            self.bed.kill(&registry(i));
        }
        std::thread::sleep(down);
        for i in 0..self.layout.registries {
            self.spawn_registry(i)?;
        }
        Ok(())
    }

    /// Kills service `i`, waits `down`, starts it on `host`.
    pub fn restart_service(&mut self, i: usize, down: Duration, host: usize) -> Result<(), String> {
        self.bed.kill(&service(i));
        std::thread::sleep(down);
        self.spawn_service(i, host)
    }

    /// Pauses `node` for `pause` (SIGSTOP, then SIGCONT).
    pub fn pause(&mut self, node: &str, pause: Duration) {
        self.bed.stop(node);
        std::thread::sleep(pause);
        self.bed.cont(node);
    }

    /// Cuts hosts `side` off from every other host of the bed, both
    /// ways or only outgoing (`two_way` false: `side` cannot send).
    /// `spare` hosts stay linked with everyone.
    pub fn partition(
        &mut self,
        side: &[usize],
        spare: &[usize],
        two_way: bool,
        cut: Cut,
    ) -> Result<(), String> {
        for a in side {
            for b in 0..self.bed.hosts() {
                if side.contains(&b) || spare.contains(&b) {
                    continue;
                }
                self.bed.block(*a, b, cut)?;
                if two_way {
                    self.bed.block(b, *a, cut)?;
                }
            }
        }
        Ok(())
    }

    /// Checks the history so far and writes the report and the logs.
    /// Adds what the services' logs show to the log first: each time one
    /// was declared down by the cluster.
    pub fn check(&mut self, bounds: Bounds) -> Result<Report, String> {
        for e in self.declared_down() {
            self.bed.observe(e);
        }
        self.bed.save_events()?;
        let report = check(self.bed.events(), &self.answers(), bounds);
        let text = report.to_string();
        std::fs::write(self.bed.dir().join("report.txt"), &text).map_err(|e| e.to_string())?;
        eprint!("{text}");
        Ok(report)
    }
}

impl Cluster {
    /// Every "declared down by the cluster" line of every service process.
    fn declared_down(&self) -> Vec<crate::history::Event> {
        let mut out = Vec::new();
        for i in 0..self.layout.services {
            for g in 1..=64 {
                let path = self.bed.dir().join(format!("{}.{g}.log", service(i)));
                let Ok(text) = std::fs::read_to_string(&path) else {
                    break;
                };
                for line in text
                    .lines()
                    .filter(|l| l.contains("declared down by the cluster"))
                {
                    if let Some(t_ms) = crate::history::log_time_ms(line) {
                        let node = service(i);
                        out.push(crate::history::Event {
                            t_ms,
                            begun_ms: None,
                            action: crate::history::Action::DeclaredDown { node },
                        });
                    }
                }
            }
        }
        out
    }
}

/// Node name of registry `i`.
pub fn registry(i: usize) -> String {
    format!("r{}", i + 1)
}

/// Node name of service `i`.
pub fn service(i: usize) -> String {
    format!("s{}", i + 1)
}

/// Faults from a seeded RNG.
pub struct Nemesis {
    rng: StdRng,
    /// The seed (printed at creation).
    pub seed: u64,
}

impl Nemesis {
    /// A nemesis seeded from `REGISTRY_CHAOS_SEED` (a number, or `random`)
    /// or else `seed`; prints the seed so the run can be replayed.
    pub fn new(seed: u64) -> Nemesis {
        let seed = match std::env::var("REGISTRY_CHAOS_SEED").ok().as_deref() {
            Some("random") => crate::now_ms() ^ u64::from(std::process::id()) << 32,
            Some(s) => s.parse().unwrap_or(seed),
            None => seed,
        };
        eprintln!("chaos seed: {seed} (replay: REGISTRY_CHAOS_SEED={seed})");
        Nemesis {
            rng: StdRng::seed_from_u64(seed),
            seed,
        }
    }

    /// A duration between `lo` and `hi` ms.
    pub fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.rng.random_range(lo..=hi))
    }

    /// An index below `n`.
    pub fn pick(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }

    /// Injects one random fault, holds it, heals it, then lets the
    /// cluster settle. Returns what it did, for the run's output.
    pub fn fault(&mut self, c: &mut Cluster) -> Result<String, String> {
        let regs = c.layout.registries;
        let mut kind = self.pick(8);
        if kind == 1 && !c.layout.data_dir {
            kind = 0;
        }
        let what = match kind {
            0 => {
                let i = self.pick(regs);
                let down = self.ms(0, 3_000);
                c.restart_registry(i, down)?;
                format!("kill -9 {} for {down:?}", registry(i))
            }
            1 => {
                let down = self.ms(0, 2_000);
                c.restart_all_registries(down)?;
                format!("kill -9 every registry for {down:?}")
            }
            2 => {
                let i = self.pick(c.layout.services);
                let down = self.ms(0, 3_000);
                let (host, _) = c.bed.spec(&service(i)).ok_or("no service")?;
                c.restart_service(i, down, host)?;
                format!("kill -9 {} for {down:?}", service(i))
            }
            3 => {
                let node = if self.pick(2) == 0 {
                    registry(self.pick(regs))
                } else {
                    service(self.pick(c.layout.services))
                };
                let pause = self.ms(1_000, 10_000);
                c.pause(&node, pause);
                format!("SIGSTOP {node} for {pause:?}")
            }
            4 | 5 => {
                let two_way = self.pick(2) == 0;
                let cut = if self.pick(2) == 0 {
                    Cut::Prohibit
                } else {
                    Cut::Blackhole
                };
                // A minority: one registry host or one service host.
                let host = if self.pick(2) == 0 {
                    self.pick(regs)
                } else {
                    c.service_hosts().start + self.pick(c.layout.service_hosts)
                };
                let hold = self.ms(2_000, 10_000);
                let spare = [c.client_host()];
                c.partition(&[host], &spare, two_way, cut)?;
                std::thread::sleep(hold);
                c.bed.heal()?;
                format!(
                    "partition host {host} ({}, {cut:?}) for {hold:?}",
                    if two_way { "two-way" } else { "one-way" }
                )
            }
            6 => {
                let host = self.pick(c.bed.hosts() - 1);
                let kbit = 8 + 8 * self.pick(4) as u32;
                let latency = 100 + 100 * self.pick(4) as u32;
                let hold = self.ms(2_000, 10_000);
                c.bed.slow(host, kbit, latency)?;
                std::thread::sleep(hold);
                c.bed.heal()?;
                format!("congest host {host} ({kbit} kbit/s, {latency} ms queue) for {hold:?}")
            }
            _ => {
                let i = self.pick(c.layout.services);
                let (host, _) = c.bed.spec(&service(i)).ok_or("no service")?;
                let hosts = c.service_hosts();
                let to = hosts.start + (host - hosts.start + 1) % c.layout.service_hosts;
                c.restart_service(i, Duration::ZERO, to)?;
                format!("move {} from host {host} to host {to}", service(i))
            }
        };
        let quiet = self.ms(4_000, 7_000);
        std::thread::sleep(quiet);
        Ok(what)
    }

    /// Injects random faults for `duration`, then waits for convergence.
    pub fn run(&mut self, c: &mut Cluster, duration: Duration) -> Result<usize, String> {
        let end = Instant::now() + duration;
        let mut n = 0;
        while Instant::now() < end {
            let what = self.fault(c)?;
            n += 1;
            eprintln!("chaos: fault {n}: {what}");
        }
        c.wait_converged(Duration::from_secs(60))?;
        Ok(n)
    }
}
