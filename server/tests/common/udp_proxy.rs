//! A lossy, slow UDP network between real gossip nodes on loopback.
//!
//! Every node gets a *front* address on the proxy and advertises it
//! (`--bind-advertise`, `RegistrationConfig::advertise`), so every datagram
//! to a node goes through the proxy. A datagram that node Y sends from its
//! real socket to X's front is forwarded to X's real socket *from Y's
//! front*: X sees Y's advertised address as the source, so replies to the
//! source also go through the proxy. Each datagram is dropped with
//! probability `loss`, or delivered after a uniform random delay in
//! `0..=max_delay` (so datagrams are also reordered). A node can be cut off
//! entirely ([`UdpProxy::isolate`]), which looks like a crash to the others.
//!
//! Threads, not tasks: the proxy keeps working while the test's runtime is
//! busy. Everything stops when the proxy is dropped.

use std::collections::BinaryHeap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One node behind the proxy.
struct Route {
    front: Arc<UdpSocket>,
    real: Option<SocketAddr>,
    isolated: bool,
}

/// A datagram waiting for its delivery time.
struct Due {
    at: Instant,
    seq: u64,
    via: Arc<UdpSocket>,
    to: SocketAddr,
    data: Vec<u8>,
}

impl PartialEq for Due {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // BinaryHeap is a max-heap: earliest first.
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

struct Shared {
    routes: Mutex<Vec<Route>>,
    loss: Mutex<f64>,
    max_delay: Duration,
    stop: AtomicBool,
    forwarded: AtomicU64,
    dropped: AtomicU64,
    seq: AtomicU64,
}

/// The proxy; see the module docs.
pub struct UdpProxy {
    shared: Arc<Shared>,
    delay_tx: Mutex<mpsc::Sender<Due>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl UdpProxy {
    /// A proxy dropping `loss` (0.0..=1.0) of the datagrams and delaying
    /// the others by up to `max_delay`.
    pub fn new(loss: f64, max_delay: Duration) -> UdpProxy {
        let shared = Arc::new(Shared {
            routes: Mutex::new(Vec::new()),
            loss: Mutex::new(loss),
            max_delay,
            stop: AtomicBool::new(false),
            forwarded: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            seq: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::channel::<Due>();
        let deliverer = {
            let shared = shared.clone();
            std::thread::spawn(move || deliver(&shared, &rx))
        };
        UdpProxy {
            shared,
            delay_tx: Mutex::new(tx),
            threads: Mutex::new(vec![deliverer]),
        }
    }

    /// Opens a front address for a new node; give it to the node as the
    /// address it advertises, then tell the proxy its real address with
    /// [`UdpProxy::set_real`].
    pub fn add_node(&self) -> SocketAddr {
        let front = UdpSocket::bind("127.0.0.1:0").expect("bind a proxy front");
        front
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        let addr = front.local_addr().expect("front address");
        let front = Arc::new(front);
        let index = {
            let mut routes = self.shared.routes.lock().unwrap();
            routes.push(Route {
                front: front.clone(),
                real: None,
                isolated: false,
            });
            routes.len() - 1
        };
        let shared = self.shared.clone();
        let tx = self.delay_tx.lock().unwrap().clone();
        let t = std::thread::spawn(move || receive(&shared, index, &front, &tx));
        self.threads.lock().unwrap().push(t);
        addr
    }

    /// Records where the node behind `front` really listens. Until then
    /// datagrams to it, and from it, are dropped (the node retries).
    pub fn set_real(&self, front: SocketAddr, real: SocketAddr) {
        self.with_route(front, |r| r.real = Some(real));
    }

    /// Cuts the node behind `front` off (true) or reconnects it (false).
    pub fn isolate(&self, front: SocketAddr, cut: bool) {
        self.with_route(front, |r| r.isolated = cut);
    }

    /// Changes the loss probability from now on.
    pub fn set_loss(&self, loss: f64) {
        *self.shared.loss.lock().unwrap() = loss;
    }

    /// Datagrams delivered and dropped so far (lost or isolated).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.shared.forwarded.load(Ordering::Relaxed),
            self.shared.dropped.load(Ordering::Relaxed),
        )
    }

    fn with_route(&self, front: SocketAddr, f: impl FnOnce(&mut Route)) {
        let mut routes = self.shared.routes.lock().unwrap();
        let route = routes
            .iter_mut()
            .find(|r| r.front.local_addr().ok() == Some(front))
            .unwrap_or_else(|| panic!("no proxy front {front}"));
        f(route);
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.threads.lock().unwrap().drain(..) {
            let _ = t.join();
        }
    }
}

/// Reads datagrams sent to route `index`'s front and queues the survivors.
fn receive(shared: &Shared, index: usize, front: &UdpSocket, tx: &mpsc::Sender<Due>) {
    let mut buf = vec![0u8; 64 * 1024];
    while !shared.stop.load(Ordering::Relaxed) {
        let Ok((n, src)) = front.recv_from(&mut buf) else {
            continue;
        };
        let plan = {
            let routes = shared.routes.lock().unwrap();
            let to = &routes[index];
            let from = routes.iter().find(|r| r.real == Some(src));
            match (from, to.real) {
                (Some(from), Some(real)) if !from.isolated && !to.isolated => {
                    Some((from.front.clone(), real))
                }
                _ => None,
            }
        };
        let loss = *shared.loss.lock().unwrap();
        let Some((via, to)) = plan.filter(|_| rand::random::<f64>() >= loss) else {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let delay = shared.max_delay.mul_f64(rand::random::<f64>());
        let due = Due {
            at: Instant::now() + delay,
            seq: shared.seq.fetch_add(1, Ordering::Relaxed),
            via,
            to,
            data: buf[..n].to_vec(),
        };
        if tx.send(due).is_err() {
            break;
        }
    }
}

/// Sends queued datagrams when they are due.
fn deliver(shared: &Shared, rx: &mpsc::Receiver<Due>) {
    let mut heap = BinaryHeap::new();
    while !shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while heap.peek().is_some_and(|d: &Due| d.at <= now) {
            if let Some(d) = heap.pop() {
                if d.via.send_to(&d.data, d.to).is_ok() {
                    shared.forwarded.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let wait = heap
            .peek()
            .map(|d| d.at.saturating_duration_since(now))
            .unwrap_or(Duration::from_millis(50))
            .min(Duration::from_millis(50));
        match rx.recv_timeout(wait) {
            Ok(d) => heap.push(d),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
}
