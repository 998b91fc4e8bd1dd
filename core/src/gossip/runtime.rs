//! The tokio driver: one task drives a [`Machine`], a UDP socket and the
//! timers.
//!
//! The machine's view is the node's member list: the handle's getters read
//! it under the same lock the task holds while it feeds the machine an
//! input and sends the events that input produced. So [`GossipNode::members`]
//! always equals the events sent so far, and [`GossipNode::subscribe`]
//! (members and a receiver taken under that lock) has no gap and no
//! duplicate. Datagrams go out after the lock is released.

use super::config::GossipConfig;
use super::identity::NodeId;
use super::keyring::Keyring;
use super::machine::{Claim, Machine, MachineTimer, Output};
use super::stats::GossipStats;
use crate::error::{Error, Result};
use crate::service::{MemberEvent, Service};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The machine and the event channel, shared by the task and the handle.
struct Shared {
    /// Locked for each input together with the sending of its events.
    machine: Mutex<Machine>,
    events: broadcast::Sender<MemberEvent>,
    /// Datagrams the socket refused (the machine only counts its own).
    send_errors: AtomicU64,
}

impl Shared {
    /// Feeds the machine one input, sends the events it produced (under
    /// the same lock) and returns the rest of its output.
    fn step<R>(&self, input: impl FnOnce(&mut Machine) -> R) -> (R, Output) {
        let mut machine = lock(&self.machine);
        let r = input(&mut machine);
        let mut out = machine.drain();
        for ev in out.events.drain(..) {
            let _ = self.events.send(ev);
        }
        (r, out)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

enum Command {
    Update(Service, oneshot::Sender<Result<()>>),
    Leave(oneshot::Sender<Result<()>>),
    SetKeyring(Option<Keyring>, oneshot::Sender<()>),
    Announce(Vec<SocketAddr>),
}

/// A running gossip member: a UDP socket and a task driving the protocol.
///
/// Dropping the handle (or [`GossipNode::shutdown`]) stops the task at once
/// without telling anyone, as a crash would: the others declare the node
/// failed. Call [`GossipNode::leave`] for a graceful exit.
pub struct GossipNode {
    shared: Arc<Shared>,
    cmd: mpsc::UnboundedSender<Command>,
    task: Option<JoinHandle<()>>,
    local_addr: SocketAddr,
    identity: NodeId,
}

impl std::fmt::Debug for GossipNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GossipNode")
            .field("local_addr", &self.local_addr)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Drop for GossipNode {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl GossipNode {
    /// Binds the UDP socket, starts the protocol task and announces to the
    /// seeds (retrying until one answers). `local` is this node's service;
    /// it appears in [`GossipNode::members`] and as the first `Joined`
    /// event. Fails with `InvalidArgument` for bad settings or metadata and
    /// `Unavailable` when the address cannot be bound.
    pub async fn start(config: GossipConfig, local: Service) -> Result<GossipNode> {
        config.validate()?;
        local.validate()?;
        let socket = UdpSocket::bind(config.bind)
            .await
            .map_err(|e| Error::Unavailable(format!("gossip: cannot bind UDP {}: {e}", config.bind)))?;
        let local_addr = socket
            .local_addr()
            .map_err(|e| Error::Unavailable(format!("gossip: socket has no address: {e}")))?;
        let seeds = resolve(&config.seeds).await;
        let advertise = match config.advertise {
            Some(a) => a,
            None if local_addr.ip().is_unspecified() => {
                SocketAddr::new(route_ip(seeds.first().copied()), local_addr.port())
            }
            None => local_addr,
        };
        let identity = NodeId::new(advertise);
        let mut machine = Machine::new(&config, identity, local, rand::random())?;
        machine.set_seeds(seeds);
        let (events, _) = broadcast::channel(config.event_capacity);
        let shared = Arc::new(Shared {
            machine: Mutex::new(machine),
            events,
            send_errors: AtomicU64::new(0),
        });
        let (cmd, cmd_rx) = mpsc::unbounded_channel();
        let mut driver = Driver {
            socket,
            timers: BTreeMap::new(),
            seq: 0,
            shared: shared.clone(),
            config,
        };
        let ((), out) = shared.step(|_| ());
        driver.flush(out).await;
        let task = tokio::spawn(driver.run(cmd_rx));
        tracing::info!(%local_addr, %identity, "gossip: node started");
        Ok(GossipNode {
            shared,
            cmd,
            task: Some(task),
            local_addr,
            identity,
        })
    }

    /// A new subscription to membership events, starting now. The channel
    /// is a `broadcast`: if a subscriber falls more than `event_capacity`
    /// events behind it gets `RecvError::Lagged` and should resync from
    /// [`GossipNode::members`] (or use [`GossipNode::subscribe`]).
    pub fn events(&self) -> broadcast::Receiver<MemberEvent> {
        self.shared.events.subscribe()
    }

    /// The current members and a subscription to every event after them,
    /// taken atomically: applying the snapshot then the events loses
    /// nothing. The way to feed a catalog (and to resync after a lag).
    pub fn subscribe(&self) -> (Vec<Service>, broadcast::Receiver<MemberEvent>) {
        let machine = lock(&self.shared.machine);
        (machine.members(), self.shared.events.subscribe())
    }

    /// Live members with full metadata, sorted by id, this node included
    /// (until it leaves).
    pub fn members(&self) -> Vec<Service> {
        lock(&self.shared.machine).members()
    }

    /// Changes this node's metadata at runtime (weight, addr, tags, group;
    /// not the id). Others see `Updated`, never a failure.
    pub async fn update(&self, service: Service) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Command::Update(service, tx))
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Replaces the keyring at runtime (key rotation with no downtime:
    /// add the new key as accepted everywhere, then make it primary
    /// everywhere, then drop the old one). `None` turns encryption off.
    pub async fn set_keyring(&self, keyring: Option<Keyring>) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Command::SetKeyring(keyring, tx))
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())
    }

    /// Leaves gracefully: every live member is told directly and through
    /// gossip, then the task stops. Others emit `Left` at once.
    pub async fn leave(mut self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.cmd.send(Command::Leave(tx)).map_err(|_| stopped())?;
        let r = rx.await.map_err(|_| stopped())?;
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        r
    }

    /// Stops the task now without telling anyone (others will declare this
    /// node failed). Same as dropping the handle.
    pub fn shutdown(self) {
        drop(self);
    }

    /// Live members with their gossip address, this node included, sorted
    /// by id.
    pub fn members_at(&self) -> Vec<(SocketAddr, Service)> {
        lock(&self.shared.machine).members_at()
    }

    /// Asks the members at `addrs` to let this node join (as to a seed),
    /// e.g. members remembered from before a restart. Does nothing once
    /// the node has left.
    pub fn announce_to(&self, addrs: Vec<SocketAddr>) {
        let _ = self.cmd.send(Command::Announce(addrs));
    }

    /// Whether this node's sync answers still say it is joining (see
    /// [`GossipConfig::joining`]).
    pub fn is_joining(&self) -> bool {
        lock(&self.shared.machine).is_joining()
    }

    /// This node's joining gate opened: its sync answers now count as a
    /// sync with the cluster for the members that receive them.
    pub fn set_joined(&self) {
        lock(&self.shared.machine).set_joined();
    }

    /// Packet and membership counters.
    pub fn stats(&self) -> GossipStats {
        let mut stats = lock(&self.shared.machine).stats();
        stats.send_errors += self.shared.send_errors.load(Ordering::Relaxed);
        stats
    }

    /// Other live processes that claim this node's service id (empty when
    /// all is well). Every node keeps the newest start, so the cluster does
    /// not flap; the duplicate should be stopped.
    pub fn conflicts(&self) -> Vec<SocketAddr> {
        lock(&self.shared.machine).conflicts()
    }

    /// Where this node's claim on its service id stands: its record
    /// reaches the others only once it holds the id (see
    /// [`Claim`]).
    pub fn claim(&self) -> Claim {
        lock(&self.shared.machine).claim().clone()
    }

    /// Waits until the claim is decided, at most `timeout`: `Ok(true)`
    /// once the id is held, `Ok(false)` if still undecided (no member
    /// answered), `AlreadyExists` naming the holder when a live member
    /// holds the id.
    pub async fn wait_claim(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.claim() {
                Claim::Held => return Ok(true),
                Claim::Pending if Instant::now() < deadline => {}
                Claim::Pending => return Ok(false),
                refused => return Err(refused.error().unwrap_or_else(stopped)),
            }
            tokio::time::sleep(CLAIM_POLL).await;
        }
    }

    /// The address the UDP socket is bound to (the real port when bound to 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address other members reach this node at (advertise address).
    pub fn advertise_addr(&self) -> SocketAddr {
        self.identity.addr
    }
}

/// How often [`GossipNode::wait_claim`] looks at the claim.
const CLAIM_POLL: Duration = Duration::from_millis(5);

fn stopped() -> Error {
    Error::Unavailable("the gossip node is stopped".into())
}

/// Resolves `host:port` strings; unresolvable ones are logged and skipped.
async fn resolve(seeds: &[String]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for s in seeds {
        match tokio::net::lookup_host(s.as_str()).await {
            Ok(addrs) => out.extend(addrs),
            Err(e) => tracing::debug!(seed = %s, error = %e, "gossip: cannot resolve seed"),
        }
    }
    out
}

/// The local IP that routes to `towards` (loopback when unknown).
/// Connecting a UDP socket sends nothing.
pub fn route_ip(towards: Option<SocketAddr>) -> IpAddr {
    let fallback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let Some(to) = towards else { return fallback };
    let any: SocketAddr = if to.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    std::net::UdpSocket::bind(any)
        .and_then(|s| s.connect(to).and_then(|_| s.local_addr()))
        .map(|a| a.ip())
        .unwrap_or(fallback)
}

struct Driver {
    socket: UdpSocket,
    timers: BTreeMap<(Instant, u64), MachineTimer>,
    seq: u64,
    shared: Arc<Shared>,
    config: GossipConfig,
}

impl Driver {
    async fn run(mut self, mut cmd_rx: mpsc::UnboundedReceiver<Command>) {
        let mut buf = vec![0u8; 65_536];
        let mut paused_at = None;
        loop {
            // The machine always has its repair tick pending.
            let wake = self.timers.keys().next().map_or_else(Instant::now, |k| k.0);
            // A timer long overdue: this process did not run (stopped, or
            // starved of CPU). Told once, before the datagrams that waited.
            let late = Instant::now().saturating_duration_since(wake);
            if late >= self.config.suspect_to_down_after && paused_at != Some(wake) {
                paused_at = Some(wake);
                let ((), out) = self.shared.step(|m| m.resumed_after(late));
                self.flush(out).await;
            }
            let out = tokio::select! {
                biased;
                cmd = cmd_rx.recv() => match cmd {
                    Some(Command::Update(s, tx)) => {
                        let (r, out) = self.shared.step(|m| m.update(s));
                        self.flush(out).await;
                        let _ = tx.send(r);
                        continue;
                    }
                    Some(Command::Leave(tx)) => {
                        let (r, out) = self.shared.step(Machine::leave);
                        self.flush(out).await;
                        let _ = tx.send(r);
                        tracing::info!("gossip: left the cluster");
                        return;
                    }
                    Some(Command::Announce(addrs)) => self.shared.step(|m| m.announce(&addrs)).1,
                    Some(Command::SetKeyring(k, tx)) => {
                        let ((), out) = self.shared.step(|m| m.set_keyring(k));
                        let _ = tx.send(());
                        out
                    }
                    None => return,
                },
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, from)) => self.shared.step(|m| m.handle_packet(from, &buf[..n])).1,
                    // e.g. ICMP port unreachable surfacing on some platforms
                    Err(e) => {
                        tracing::trace!(error = %e, "gossip: recv error");
                        continue;
                    }
                },
                _ = tokio::time::sleep_until(wake) => self.fire_due().await,
            };
            self.flush(out).await;
        }
    }

    /// Hands every due timer to the machine.
    async fn fire_due(&mut self) -> Output {
        let now = Instant::now();
        let mut out = Output::default();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            // Seeds are names: re-resolved before each announce.
            let seeds = match timer {
                MachineTimer::Announce(_) => Some(resolve(&self.config.seeds).await),
                _ => None,
            };
            let ((), more) = self.shared.step(|m| {
                if let Some(seeds) = seeds {
                    m.set_seeds(seeds);
                }
                m.handle_timer(timer);
            });
            out.packets.extend(more.packets);
            out.timers.extend(more.timers);
        }
        out
    }

    /// Sends the datagrams and schedules the timers of `out` (its events
    /// are sent already).
    async fn flush(&mut self, out: Output) {
        for (to, data) in out.packets {
            if let Err(e) = self.socket.send_to(&data, to).await {
                self.shared.send_errors.fetch_add(1, Ordering::Relaxed);
                tracing::trace!(%to, error = %e, "gossip: send failed");
            }
        }
        let now = Instant::now();
        for (after, t) in out.timers {
            self.seq += 1;
            self.timers.insert((now + after, self.seq), t);
        }
    }
}
