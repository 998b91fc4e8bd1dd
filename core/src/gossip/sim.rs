//! An in-memory network for many [`Machine`]s under virtual time.
//!
//! The same state machine as the UDP node runs here; only the driver
//! differs. Datagrams are delivered after a random delay, lost with a set
//! probability, and dropped between partitions. Time jumps from event to
//! event, so a 1,000-member cluster runs minutes of protocol in seconds.
//!
//! ```
//! use registry_core::gossip::sim::{Sim, SimConfig};
//! use registry_core::Service;
//! use std::time::Duration;
//! let mut sim = Sim::new(SimConfig::default());
//! let a = sim.add_node(Service::new("a", "g", "x:1"), &[]);
//! let b = sim.add_node(Service::new("b", "g", "x:2"), &[a]);
//! assert!(sim.run_until(Duration::from_secs(5), |s| s.all_know("b")).is_some());
//! # let _ = b;
//! ```

use super::config::GossipConfig;
use super::identity::NodeId;
use super::machine::{Machine, MachineTimer};
use crate::service::{MemberEvent, Service};
use rand_foca::rngs::SmallRng;
use rand_foca::{RngExt, SeedableRng};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Network and protocol settings of a simulation.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Probability that a datagram is lost (0.0 ..= 1.0). Default 0.
    pub loss: f64,
    /// Shortest one-way delay. Default 0.2 ms (loopback-like LAN).
    pub min_delay: Duration,
    /// Longest one-way delay. Default 1 ms.
    pub max_delay: Duration,
    /// Seed of the network's and the nodes' randomness. Default 1.
    pub seed: u64,
    /// Protocol settings of every node (bind, seeds, keyring are ignored;
    /// the keyring is kept if set). Default [`GossipConfig::lan`].
    pub gossip: GossipConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            loss: 0.0,
            min_delay: Duration::from_micros(200),
            max_delay: Duration::from_millis(1),
            seed: 1,
            gossip: GossipConfig::lan(),
        }
    }
}

enum Ev {
    Packet {
        to: usize,
        from: SocketAddr,
        data: Vec<u8>,
    },
    Timer {
        node: usize,
        life: u32,
        timer: MachineTimer,
    },
}

struct Entry {
    at: Duration,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> Ordering {
        // BinaryHeap is a max-heap: earliest first.
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// Which events [`Sim`] records.
type EventFilter = Box<dyn Fn(&MemberEvent) -> bool>;

struct SimNode {
    machine: Option<Machine>,
    addr: SocketAddr,
    seeds: Vec<SocketAddr>,
    life: u32,
    group: u32,
    /// Paused (see [`Sim::pause`]): since when and until when.
    paused: Option<(Duration, Duration)>,
}

/// A simulated cluster. See the module docs.
pub struct Sim {
    cfg: SimConfig,
    now: Duration,
    seq: u64,
    queue: BinaryHeap<Entry>,
    nodes: Vec<SimNode>,
    by_addr: BTreeMap<SocketAddr, usize>,
    rng: SmallRng,
    watch: Option<EventFilter>,
    log: Vec<(Duration, usize, MemberEvent)>,
    partitioned: bool,
    /// With `partitioned`: only nodes of group 0 reach other groups.
    one_way: bool,
    delivered: u64,
    tap: Vec<Vec<u8>>,
    tap_max: usize,
}

impl Sim {
    /// An empty simulation.
    pub fn new(cfg: SimConfig) -> Sim {
        let rng = SmallRng::seed_from_u64(cfg.seed);
        Sim {
            cfg,
            now: Duration::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes: Vec::new(),
            by_addr: BTreeMap::new(),
            rng,
            watch: None,
            log: Vec::new(),
            partitioned: false,
            one_way: false,
            delivered: 0,
            tap: Vec::new(),
            tap_max: 0,
        }
    }

    /// Virtual time since the simulation began.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Changes the loss probability from now on.
    pub fn set_loss(&mut self, loss: f64) {
        self.cfg.loss = loss;
    }

    /// Adds a node registering `service`, joining through the nodes
    /// `seeds` (indexes). Returns its index.
    ///
    /// Panics if the service metadata is invalid (a test bug).
    pub fn add_node(&mut self, service: Service, seeds: &[usize]) -> usize {
        let i = self.nodes.len();
        let addr = SocketAddr::from((Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8), 7370));
        let seeds = seeds.iter().map(|&s| self.nodes[s].addr).collect();
        self.by_addr.insert(addr, i);
        self.nodes.push(SimNode {
            machine: None,
            addr,
            seeds,
            life: 0,
            group: 0,
            paused: None,
        });
        self.boot(i, service);
        i
    }

    /// Restarts a crashed or departed node at the same address with a new
    /// generation (a process restart).
    pub fn restart(&mut self, i: usize, service: Service) {
        self.nodes[i].machine = None;
        self.boot(i, service);
    }

    fn boot(&mut self, i: usize, service: Service) {
        let node = &mut self.nodes[i];
        node.life += 1;
        // Generations grow with virtual time, like start timestamps.
        let gen = 1_000_000 + self.now.as_millis() as u64 * 16 + u64::from(node.life);
        let seed = self.cfg.seed ^ ((i as u64) << 20) ^ u64::from(node.life);
        let mut m = match Machine::new(&self.cfg.gossip, NodeId::with_gen(node.addr, gen), service, seed) {
            Ok(m) => m,
            Err(e) => panic!("sim: cannot start node {i}: {e}"),
        };
        m.set_seeds(node.seeds.clone());
        node.machine = Some(m);
        self.flush(i);
    }

    /// Pauses node `i` for `d` (SIGSTOP, then SIGCONT): its datagrams and
    /// timers wait, and once resumed it is told how long it was paused
    /// (as the UDP driver tells it), then runs them in order.
    pub fn pause(&mut self, i: usize, d: Duration) {
        self.nodes[i].paused = Some((self.now, self.now + d));
    }

    /// Stops node `i` abruptly, as a crash: no leave.
    pub fn crash(&mut self, i: usize) {
        self.nodes[i].machine = None;
    }

    /// Node `i` leaves gracefully, then stops.
    pub fn leave(&mut self, i: usize) {
        if let Some(m) = self.nodes[i].machine.as_mut() {
            let _ = m.leave();
            self.flush(i);
        }
        self.nodes[i].machine = None;
    }

    /// Changes node `i`'s metadata.
    pub fn update(&mut self, i: usize, service: Service) -> crate::Result<()> {
        let m = self.nodes[i]
            .machine
            .as_mut()
            .ok_or_else(|| crate::Error::Unavailable("node is down".into()))?;
        m.update(service)?;
        self.flush(i);
        Ok(())
    }

    /// Splits the network: node `i` can only talk to nodes with the same
    /// `group_of(i)`. [`Sim::heal`] undoes it.
    pub fn partition(&mut self, group_of: impl Fn(usize) -> u32) {
        for (i, n) in self.nodes.iter_mut().enumerate() {
            n.group = group_of(i);
        }
        self.partitioned = true;
        self.one_way = false;
    }

    /// Mutes nodes: a node with `group_of(i) != 0` can send only to nodes
    /// of its own group, while every node still reaches it (a one-way
    /// partition: its host cannot send out). [`Sim::heal`] undoes it.
    pub fn partition_one_way(&mut self, group_of: impl Fn(usize) -> u32) {
        self.partition(group_of);
        self.one_way = true;
    }

    /// Removes any partition.
    pub fn heal(&mut self) {
        self.partitioned = false;
        self.one_way = false;
    }

    /// The machine of node `i`, if it is running.
    pub fn node(&self, i: usize) -> Option<&Machine> {
        self.nodes[i].machine.as_ref()
    }

    /// Number of nodes ever added.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when no node was added.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Running machines.
    pub fn running(&self) -> impl Iterator<Item = (usize, &Machine)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.machine.as_ref().map(|m| (i, m)))
    }

    /// True when every running node lists `id`.
    pub fn all_know(&self, id: &str) -> bool {
        self.running().all(|(_, m)| m.knows_id(id))
    }

    /// True when no running node lists `id`.
    pub fn none_know(&self, id: &str) -> bool {
        self.running().all(|(_, m)| !m.knows_id(id))
    }

    /// True when every running node lists exactly the running nodes.
    pub fn converged(&self) -> bool {
        let n = self.running().count();
        self.running().all(|(_, m)| m.member_count() == n)
    }

    /// Records every event about service `id` from now on (see [`Sim::take_log`]).
    pub fn watch(&mut self, id: impl Into<String>) {
        let id = id.into();
        self.watch_where(move |ev| ev.service().id == id);
    }

    /// Records every event matching `filter` from now on.
    pub fn watch_where(&mut self, filter: impl Fn(&MemberEvent) -> bool + 'static) {
        self.watch = Some(Box::new(filter));
        self.log.clear();
    }

    /// The events recorded for the watched id: (time, node, event).
    pub fn take_log(&mut self) -> Vec<(Duration, usize, MemberEvent)> {
        std::mem::take(&mut self.log)
    }

    /// Sum of bytes sent by all nodes since they started.
    pub fn bytes_sent(&self) -> u64 {
        self.running().map(|(_, m)| m.stats().bytes_sent).sum()
    }

    /// Datagrams delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// The address of node `i`.
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.nodes[i].addr
    }

    /// Delivers raw bytes to node `i` now, as if sent from `from` (for
    /// malformed-input tests).
    pub fn inject(&mut self, i: usize, from: SocketAddr, data: &[u8]) {
        if let Some(m) = self.nodes[i].machine.as_mut() {
            m.handle_packet(from, data);
            self.flush(i);
        }
    }

    /// Keeps a copy of the next `max` datagrams sent (see [`Sim::take_tapped`]).
    pub fn tap(&mut self, max: usize) {
        self.tap_max = max;
        self.tap.clear();
    }

    /// The datagrams kept by [`Sim::tap`].
    pub fn take_tapped(&mut self) -> Vec<Vec<u8>> {
        self.tap_max = 0;
        std::mem::take(&mut self.tap)
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(e) = self.queue.peek() {
            if e.at > end {
                break;
            }
            self.step();
        }
        self.now = end;
    }

    /// Runs until `done` holds (checked every 5 ms of virtual time) or
    /// `limit` passes; returns the time it took, or `None`.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Sim) -> bool) -> Option<Duration> {
        let start = self.now;
        let check = Duration::from_millis(5);
        loop {
            if done(self) {
                return Some(self.now - start);
            }
            if self.now - start >= limit {
                return None;
            }
            self.run_for(check);
        }
    }

    fn push(&mut self, at: Duration, ev: Ev) {
        self.seq += 1;
        self.queue.push(Entry {
            at,
            seq: self.seq,
            ev,
        });
    }

    fn step(&mut self) {
        let Some(e) = self.queue.pop() else { return };
        self.now = self.now.max(e.at);
        let node = match &e.ev {
            Ev::Packet { to, .. } => *to,
            Ev::Timer { node, .. } => *node,
        };
        if let Some((since, until)) = self.nodes[node].paused {
            if self.now < until {
                self.push(until, e.ev);
                return;
            }
            self.nodes[node].paused = None;
            if let Some(m) = self.nodes[node].machine.as_mut() {
                m.resumed_after(until - since);
                self.flush(node);
            }
        }
        // Logs name the node and the virtual time (in ms).
        let _span = tracing::debug_span!("sim", node, ms = self.now.as_millis() as u64).entered();
        match e.ev {
            Ev::Packet { to, from, data } => {
                if let Some(m) = self.nodes[to].machine.as_mut() {
                    self.delivered += 1;
                    m.handle_packet(from, &data);
                    self.flush(to);
                }
            }
            Ev::Timer { node, life, timer } => {
                if self.nodes[node].life == life {
                    if let Some(m) = self.nodes[node].machine.as_mut() {
                        m.handle_timer(timer);
                        self.flush(node);
                    }
                }
            }
        }
    }

    fn flush(&mut self, i: usize) {
        let Some(m) = self.nodes[i].machine.as_mut() else {
            return;
        };
        let out = m.drain();
        let from = self.nodes[i].addr;
        let life = self.nodes[i].life;
        for (after, timer) in out.timers {
            self.push(self.now + after, Ev::Timer { node: i, life, timer });
        }
        if let Some(w) = &self.watch {
            for ev in out.events {
                if w(&ev) {
                    self.log.push((self.now, i, ev));
                }
            }
        }
        for (to, data) in out.packets {
            if self.tap.len() < self.tap_max {
                self.tap.push(data.clone());
            }
            let Some(&j) = self.by_addr.get(&to) else { continue };
            let (gi, gj) = (self.nodes[i].group, self.nodes[j].group);
            if self.partitioned && gi != gj && !(self.one_way && gi == 0) {
                continue;
            }
            if self.cfg.loss > 0.0 && self.rng.random::<f64>() < self.cfg.loss {
                continue;
            }
            let span = self.cfg.max_delay.saturating_sub(self.cfg.min_delay);
            let jitter = span.mul_f64(self.rng.random::<f64>());
            let at = self.now + self.cfg.min_delay + jitter;
            self.push(at, Ev::Packet { to: j, from, data });
        }
    }
}
