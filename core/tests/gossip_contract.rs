//! One contract for both gossip drivers: the same scenarios run on the UDP
//! node over 127.0.0.1 and on the simulator. Each asserts behaviour seen
//! by peers (member lists with full metadata) within generous deadlines:
//! join, a metadata update, a graceful leave, a crash, a rejoin after a
//! restart at the same address.

use registry_core::gossip::sim::{Sim, SimConfig};
use registry_core::gossip::{GossipConfig, GossipNode};
use registry_core::Service;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A cluster driven by one of the drivers; nodes are indexes in start order.
trait Cluster {
    /// Starts a node registering `svc`, joining through nodes `seeds`.
    fn start(&mut self, svc: Service, seeds: &[usize]) -> usize;
    /// Changes node `i`'s metadata.
    fn update(&mut self, i: usize, svc: Service);
    /// Node `i` leaves gracefully.
    fn leave(&mut self, i: usize);
    /// Node `i` stops without a word.
    fn crash(&mut self, i: usize);
    /// Node `i` starts again at the same address.
    fn restart(&mut self, i: usize, svc: Service);
    /// What node `i` lists, sorted by id (empty when it is not running).
    fn members(&self, i: usize) -> Vec<Service>;
    /// Lets the protocol run until `done` holds or `limit` passes (in the
    /// driver's time); true when it held.
    fn wait(&mut self, limit: Duration, done: &dyn Fn(&Self) -> bool) -> bool;
}

fn svc(id: &str, port: u16) -> Service {
    let mut s = Service::new(id, "g", format!("10.0.0.1:{port}"));
    s.tags.insert("zone".into(), format!("z-{id}"));
    s
}

/// Generous: a crash takes ~2-4 s to be declared with the LAN defaults.
const LIMIT: Duration = Duration::from_secs(30);

fn lists<C: Cluster>(c: &C, i: usize, want: &[&Service]) -> bool {
    let mut want: Vec<Service> = want.iter().map(|s| (*s).clone()).collect();
    want.sort_by(|a, b| a.id.cmp(&b.id));
    c.members(i) == want
}

fn join_and_update<C: Cluster>(c: &mut C) {
    let (a, b, d) = (svc("a", 1), svc("b", 2), svc("d", 3));
    let na = c.start(a.clone(), &[]);
    let nb = c.start(b.clone(), &[na]);
    let nd = c.start(d.clone(), &[na]);
    let all = [na, nb, nd];
    assert!(
        c.wait(LIMIT, &|c| all.iter().all(|&i| lists(c, i, &[&a, &b, &d]))),
        "join: not every node lists every node with its metadata"
    );
    let mut b2 = b.clone();
    b2.weight = 7;
    b2.tags.insert("version".into(), "2".into());
    c.update(nb, b2.clone());
    assert!(
        c.wait(LIMIT, &|c| all.iter().all(|&i| lists(c, i, &[&a, &b2, &d]))),
        "update: not every node sees the new metadata"
    );
}

/// Services a, b and d on three nodes joined through the first, once
/// each node lists all three.
fn three_nodes<C: Cluster>(c: &mut C) -> ([Service; 3], [usize; 3]) {
    let (a, b, d) = (svc("a", 1), svc("b", 2), svc("d", 3));
    let na = c.start(a.clone(), &[]);
    let nb = c.start(b.clone(), &[na]);
    let nd = c.start(d.clone(), &[na]);
    assert!(c.wait(LIMIT, &|c| [na, nb, nd].iter().all(|&i| c.members(i).len() == 3)));
    ([a, b, d], [na, nb, nd])
}

fn leave<C: Cluster>(c: &mut C) {
    let ([a, b, _], [na, nb, nd]) = three_nodes(c);
    c.leave(nd);
    assert!(
        c.wait(LIMIT, &|c| [na, nb].iter().all(|&i| lists(c, i, &[&a, &b]))),
        "leave: the others still list the node that left"
    );
}

fn crash_and_rejoin<C: Cluster>(c: &mut C) {
    let ([a, b, d], [na, nb, nd]) = three_nodes(c);
    c.crash(nd);
    assert!(
        c.wait(LIMIT, &|c| [na, nb].iter().all(|&i| lists(c, i, &[&a, &b]))),
        "crash: the others still list the crashed node"
    );
    let mut d2 = d.clone();
    d2.addr = "10.0.0.2:3".into();
    c.restart(nd, d2.clone());
    assert!(
        c.wait(LIMIT, &|c| [na, nb, nd].iter().all(|&i| lists(
            c,
            i,
            &[&a, &b, &d2]
        ))),
        "rejoin: the restarted node is not listed by all with its new metadata"
    );
}

/// The simulator: virtual time, no loss.
struct SimCluster {
    sim: Sim,
}

impl SimCluster {
    fn new() -> Self {
        SimCluster {
            sim: Sim::new(SimConfig::default()),
        }
    }
}

impl Cluster for SimCluster {
    fn start(&mut self, svc: Service, seeds: &[usize]) -> usize {
        self.sim.add_node(svc, seeds)
    }
    fn update(&mut self, i: usize, svc: Service) {
        self.sim.update(i, svc).expect("valid update");
    }
    fn leave(&mut self, i: usize) {
        self.sim.leave(i);
    }
    fn crash(&mut self, i: usize) {
        self.sim.crash(i);
    }
    fn restart(&mut self, i: usize, svc: Service) {
        self.sim.restart(i, svc);
    }
    fn members(&self, i: usize) -> Vec<Service> {
        self.sim.node(i).map(|m| m.members()).unwrap_or_default()
    }
    fn wait(&mut self, limit: Duration, done: &dyn Fn(&Self) -> bool) -> bool {
        let end = self.sim.now() + limit;
        while !done(self) {
            if self.sim.now() >= end {
                return false;
            }
            self.sim.run_for(Duration::from_millis(5));
        }
        true
    }
}

/// Real UDP nodes on 127.0.0.1, driven by a tokio runtime.
struct UdpCluster {
    rt: tokio::runtime::Runtime,
    nodes: Vec<(Option<GossipNode>, SocketAddr, Vec<usize>)>,
}

impl UdpCluster {
    fn new() -> Self {
        UdpCluster {
            rt: tokio::runtime::Runtime::new().expect("tokio runtime"),
            nodes: Vec::new(),
        }
    }

    fn config(&self, bind: SocketAddr, seeds: &[usize]) -> GossipConfig {
        GossipConfig {
            bind,
            seeds: seeds.iter().map(|&s| self.nodes[s].1.to_string()).collect(),
            ..GossipConfig::local()
        }
    }
}

impl Cluster for UdpCluster {
    fn start(&mut self, svc: Service, seeds: &[usize]) -> usize {
        let cfg = self.config(GossipConfig::local().bind, seeds);
        let node = self
            .rt
            .block_on(GossipNode::start(cfg, svc))
            .expect("gossip node starts");
        let addr = node.local_addr();
        self.nodes.push((Some(node), addr, seeds.to_vec()));
        self.nodes.len() - 1
    }
    fn update(&mut self, i: usize, svc: Service) {
        let node = self.nodes[i].0.as_ref().expect("running node");
        self.rt.block_on(node.update(svc)).expect("valid update");
    }
    fn leave(&mut self, i: usize) {
        if let Some(node) = self.nodes[i].0.take() {
            self.rt.block_on(node.leave()).expect("leave");
        }
    }
    fn crash(&mut self, i: usize) {
        if let Some(node) = self.nodes[i].0.take() {
            node.shutdown();
        }
    }
    fn restart(&mut self, i: usize, svc: Service) {
        let (addr, seeds) = (self.nodes[i].1, self.nodes[i].2.clone());
        let end = Instant::now() + Duration::from_secs(5);
        // The aborted task releases the port as soon as the runtime drops it.
        let node = loop {
            let cfg = self.config(addr, &seeds);
            match self.rt.block_on(GossipNode::start(cfg, svc.clone())) {
                Ok(n) => break n,
                Err(e) if Instant::now() < end => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("cannot restart node {i} at {addr}: {e}"),
            }
        };
        self.nodes[i].0 = Some(node);
    }
    fn members(&self, i: usize) -> Vec<Service> {
        self.nodes[i].0.as_ref().map(|n| n.members()).unwrap_or_default()
    }
    fn wait(&mut self, limit: Duration, done: &dyn Fn(&Self) -> bool) -> bool {
        let end = Instant::now() + limit;
        while !done(self) {
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

/// The contract, instantiated for one driver.
macro_rules! contract {
    ($driver:ident, $new:expr) => {
        mod $driver {
            use super::*;

            #[test]
            fn join_and_metadata_update_are_seen_by_peers() {
                join_and_update(&mut $new);
            }

            #[test]
            fn a_leave_is_seen_by_peers() {
                leave(&mut $new);
            }

            #[test]
            fn a_crash_is_detected_and_a_restart_rejoins() {
                crash_and_rejoin(&mut $new);
            }
        }
    };
}

contract!(sim, SimCluster::new());
contract!(udp, UdpCluster::new());
