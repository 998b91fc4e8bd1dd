//! Shared harness of the fuzz targets in `fuzz_targets/`.
//!
//! * [`Session`]: one gossip [`Machine`] fed a sequence of [`Frame`]s
//!   (datagrams from one of a few sources, or "fire the next timer"),
//!   checking after every step what the machine must guarantee whatever it
//!   receives (see [`Session::check`]).
//! * [`capture_exchange`]: real datagrams, recorded from a three-node
//!   cluster under virtual time, that seed the gossip corpora.
//! * [`dump_seeds_if_asked`]: writes a target's seeds when the environment
//!   asks for them (`REGISTRY_FUZZ_DUMP_SEEDS=<dir>`), so the committed
//!   corpora come from the real encoders, through the very binary fuzzed.

use foca::Codec;
use registry_core::gossip::codec::NodeCodec;
use registry_core::gossip::machine::{MachineTimer, Output};
use registry_core::gossip::packet::{
    MetaRecord, KIND_FOCA, KIND_META, KIND_META_SPREAD, KIND_SYNC_REQUEST, WIRE_PLAIN, WIRE_SEALED,
};
use registry_core::gossip::{GossipConfig, Keyring, Machine, NodeId};
use registry_core::Service;
use std::net::SocketAddr;
use std::time::Duration;

/// Environment variable naming the directory to write seeds into.
pub const DUMP_ENV: &str = "REGISTRY_FUZZ_DUMP_SEEDS";

/// Gossip address of the fuzzed machine.
pub const TARGET_ADDR: &str = "127.0.0.1:7001";
/// Gossip addresses datagrams may come from: two peers, a stranger and the
/// fuzzed machine itself (indexed by the low two bits of a frame's flags).
pub const SOURCES: [&str; 4] = ["127.0.0.1:7002", "127.0.0.1:7003", "10.9.9.9:9", TARGET_ADDR];

/// Primary key of the fuzzed machine's keyring (sealed sessions).
pub const KEY_PRIMARY: [u8; 32] = [0x11; 32];
/// A second key the fuzzed machine accepts (rotation in progress).
pub const KEY_ACCEPTED: [u8; 32] = [0x22; 32];
/// A key the fuzzed machine does not know.
pub const KEY_UNKNOWN: [u8; 32] = [0x33; 32];

/// Frame flag: fire the machine's earliest pending timer (no payload).
pub const FRAME_TIMER: u8 = 0x80;

/// Frames of one input that are run; the rest is ignored (keeps every
/// input fast: a session is a few hundred microseconds per frame at most).
pub const MAX_FRAMES: usize = 256;

/// One step of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A datagram (or, in sealed sessions, a body to seal), with the flags
    /// byte: bits 0-1 pick the source in [`SOURCES`]; bits 2-3 are free for
    /// the target (sealed sessions pick the key with them).
    Packet {
        /// The flags byte.
        flags: u8,
        /// The bytes.
        data: &'a [u8],
    },
    /// Fire the earliest pending timer.
    Timer,
}

/// Splits fuzz input into frames: `flags:u8`, then for packets
/// `len:u16 big-endian` and `len` bytes (fewer if the input ends first).
pub fn frames(mut input: &[u8]) -> Vec<Frame<'_>> {
    let mut out = Vec::new();
    while let Some((&flags, rest)) = input.split_first() {
        if flags & FRAME_TIMER != 0 {
            out.push(Frame::Timer);
            input = rest;
            continue;
        }
        let len = match rest {
            [hi, lo, ..] => usize::from(u16::from_be_bytes([*hi, *lo])),
            _ => 0,
        };
        let rest = rest.get(2..).unwrap_or(&[]);
        let (data, tail) = rest.split_at(len.min(rest.len()));
        out.push(Frame::Packet { flags, data });
        input = tail;
    }
    out
}

/// Encodes frames in the format [`frames`] reads.
pub fn encode_frames(frames: &[Frame<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        match f {
            Frame::Timer => out.push(FRAME_TIMER),
            Frame::Packet { flags, data } => {
                let len = u16::try_from(data.len()).expect("seed datagrams fit in 64 KiB");
                out.push(flags & !FRAME_TIMER);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(data);
            }
        }
    }
    out
}

/// The gossip configuration of every machine in the harness: the LAN
/// defaults, with an optional keyring.
pub fn config(keyring: Option<Keyring>) -> GossipConfig {
    let mut c = GossipConfig::lan();
    c.keyring = keyring;
    c
}

/// The keyring of the fuzzed machine in sealed sessions.
pub fn target_keyring() -> Keyring {
    Keyring::new(KEY_PRIMARY).with_accepted(KEY_ACCEPTED)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("constant address")
}

/// A machine at `addr` registering service `id` in group `g`.
fn machine(cfg: &GossipConfig, at: &str, id: &str, seed: u64) -> Machine {
    let mut svc = Service::new(id, "g", format!("{id}.svc.example:80"));
    svc.tags.insert("zone".into(), "eu-1".into());
    Machine::new(cfg, NodeId::with_gen(addr(at), 1_000 + seed), svc, seed).expect("valid harness machine")
}

/// A timer due at `due` (virtual time), ordered by `(due, seq)`.
struct Pending {
    due: Duration,
    seq: u64,
    timer: MachineTimer,
}

/// One fuzzed machine and its virtual clock.
pub struct Session {
    /// The machine under test.
    pub machine: Machine,
    keyring: Option<Keyring>,
    max_packet: usize,
    now: Duration,
    seq: u64,
    timers: Vec<Pending>,
    fed: u64,
}

impl Session {
    /// A fresh machine at [`TARGET_ADDR`], encrypting with `keyring` if set.
    pub fn new(keyring: Option<Keyring>) -> Session {
        let cfg = config(keyring.clone());
        let max_packet = cfg.max_packet_size;
        let mut s = Session {
            machine: machine(&cfg, TARGET_ADDR, "target", 1),
            keyring,
            max_packet,
            now: Duration::ZERO,
            seq: 0,
            timers: Vec::new(),
            fed: 0,
        };
        s.collect();
        s
    }

    /// The machine's `max_packet_size`: larger datagrams are dropped unread.
    pub fn max_packet(&self) -> usize {
        self.max_packet
    }

    /// Feeds one datagram from `from`, then checks the machine.
    pub fn packet(&mut self, from: SocketAddr, datagram: &[u8]) {
        self.machine.handle_packet(from, datagram);
        self.fed += 1;
        self.collect();
    }

    /// Fires the earliest pending timer (if any), advancing the clock.
    pub fn fire_timer(&mut self) {
        let Some(i) = (0..self.timers.len()).min_by_key(|&i| (self.timers[i].due, self.timers[i].seq)) else {
            return;
        };
        let t = self.timers.swap_remove(i);
        self.now = self.now.max(t.due);
        self.machine.handle_timer(t.timer);
        self.collect();
    }

    /// Takes the machine's output, schedules its timers and checks it.
    fn collect(&mut self) {
        let out = self.machine.drain();
        self.check(&out);
        for (after, timer) in out.timers {
            self.seq += 1;
            self.timers.push(Pending {
                due: self.now + after,
                seq: self.seq,
                timer,
            });
        }
    }

    /// What must hold whatever the machine was fed:
    /// - every datagram it sends fits `max_packet_size`, carries the right
    ///   envelope, and (plain ones) decodes with our own decoders: a node
    ///   never emits what another node would drop as malformed;
    /// - its view holds valid services with unique ids, and this node's own
    ///   service exactly as set (unless it left, or another live process
    ///   claims its id): nobody else speaks for its address;
    /// - every datagram fed was counted.
    pub fn check(&self, out: &Output) {
        for (to, d) in &out.packets {
            assert!(
                d.len() <= self.max_packet,
                "sent a {}-byte datagram to {to}, over max_packet_size {}",
                d.len(),
                self.max_packet
            );
            match &self.keyring {
                Some(k) => {
                    assert_eq!(d.first(), Some(&WIRE_SEALED), "sent an unsealed datagram");
                    let body = k.open(d).expect("our own keyring opens what we seal");
                    check_body(&body);
                }
                None => {
                    assert_eq!(
                        d.first(),
                        Some(&WIRE_PLAIN),
                        "sent a datagram with a bad envelope"
                    );
                    check_body(&d[1..]);
                }
            }
        }
        let members = self.machine.members();
        for s in &members {
            assert!(s.validate().is_ok(), "the view holds an invalid service {s:?}");
        }
        assert!(
            members.windows(2).all(|w| w[0].id < w[1].id),
            "member ids are not unique and sorted"
        );
        assert_eq!(members.len(), self.machine.member_count());
        let me = self.machine.local_service();
        assert!(
            self.machine.has_left() || !self.machine.conflicts().is_empty() || self.machine.knows(me),
            "the view lost or changed this node's own service {me:?}: {members:?}"
        );
        assert_eq!(self.machine.stats().packets_received, self.fed);
    }

    /// Runs a whole fuzz input: frames from [`frames`]; each packet is
    /// passed to `prepare`, which returns the datagram to feed (or `None`
    /// to skip it).
    pub fn run<'a>(
        &mut self,
        input: &'a [u8],
        mut prepare: impl FnMut(&mut Session, u8, &'a [u8]) -> Option<Vec<u8>>,
    ) {
        for f in frames(input).into_iter().take(MAX_FRAMES) {
            match f {
                Frame::Timer => self.fire_timer(),
                Frame::Packet { flags, data } => {
                    if let Some(d) = prepare(self, flags, data) {
                        self.packet(addr(SOURCES[usize::from(flags & 3)]), &d);
                    }
                }
            }
        }
    }
}

/// Checks a body the machine itself produced: it must decode.
fn check_body(body: &[u8]) {
    match body.split_first() {
        Some((&KIND_FOCA, rest)) => {
            let mut rest = rest;
            // meta_version varint
            while let Some((&b, r)) = rest.split_first() {
                rest = r;
                if b & 0x80 == 0 {
                    break;
                }
            }
            assert!(
                NodeCodec.decode_header(rest).is_ok(),
                "sent a foca packet whose header does not decode"
            );
        }
        // A pull-only sync request: the node does not hold its id yet.
        Some((&KIND_SYNC_REQUEST, [])) => {}
        Some((&(KIND_META | KIND_SYNC_REQUEST | KIND_META_SPREAD), rec)) => {
            assert!(
                MetaRecord::decode(rec).is_ok(),
                "sent a metadata record that does not decode"
            );
        }
        Some((&kind, _)) => assert!((1..=6).contains(&kind), "sent body kind {kind}"),
        None => panic!("sent an empty body"),
    }
}

/// Runs the decoders directly on `bytes`; whatever decodes must encode back
/// to the same value, no longer than the input (encodings are minimal).
pub fn check_decoders(bytes: &[u8]) {
    if let Ok(h) = NodeCodec.decode_header(bytes) {
        let mut out = Vec::new();
        NodeCodec
            .encode_header(&h, &mut out)
            .expect("a decoded header encodes");
        assert_eq!(
            NodeCodec.decode_header(&out[..]).ok(),
            Some(h),
            "header round trip"
        );
        assert!(
            out.len() <= bytes.len(),
            "header re-encodes longer than its input"
        );
    }
    if let Ok(m) = NodeCodec.decode_member(bytes) {
        let mut out = Vec::new();
        NodeCodec
            .encode_member(&m, &mut out)
            .expect("a decoded member encodes");
        assert_eq!(
            NodeCodec.decode_member(&out[..]).ok(),
            Some(m),
            "member round trip"
        );
    }
    if let Ok(r) = MetaRecord::decode(bytes) {
        let out = r.encode();
        assert_eq!(MetaRecord::decode(&out).as_ref(), Ok(&r), "record round trip");
        assert!(
            out.len() <= bytes.len(),
            "record re-encodes longer than its input"
        );
        assert!(r.service.validate().is_ok(), "decoded an invalid service");
    }
}

/// Datagrams a three-node cluster (two peers joining the fuzzed machine's
/// address) delivers to the fuzzed machine over `duration` of virtual time,
/// recorded as frames (timer firings of the fuzzed machine included, in
/// order). With `keyring`, every node encrypts and the recorded datagrams
/// are sealed.
pub fn capture_exchange(keyring: Option<Keyring>, duration: Duration) -> Vec<(u8, Vec<u8>)> {
    let cfg = config(keyring);
    let names = [TARGET_ADDR, SOURCES[0], SOURCES[1]];
    let mut nodes: Vec<Machine> = vec![
        machine(&cfg, names[0], "target", 1),
        machine(&cfg, names[1], "peer-a", 2),
        machine(&cfg, names[2], "peer-c", 3),
    ];
    nodes[1].announce(&[addr(TARGET_ADDR)]);
    nodes[2].announce(&[addr(TARGET_ADDR)]);
    // (due, seq, node, timer) and in-flight datagrams (from, to, bytes).
    let mut timers: Vec<(Duration, u64, usize, MachineTimer)> = Vec::new();
    let mut wire: Vec<(SocketAddr, SocketAddr, Vec<u8>)> = Vec::new();
    let mut seq = 0u64;
    let mut now = Duration::ZERO;
    let mut recorded = Vec::new();
    loop {
        for (i, node) in nodes.iter_mut().enumerate() {
            let out = node.drain();
            for (after, t) in out.timers {
                seq += 1;
                timers.push((now + after, seq, i, t));
            }
            for (to, d) in out.packets {
                wire.push((addr(names[i]), to, d));
            }
        }
        if let Some((from, to, d)) = (!wire.is_empty()).then(|| wire.remove(0)) {
            let Some(i) = names.iter().position(|n| addr(n) == to) else {
                continue;
            };
            if i == 0 {
                let src = SOURCES
                    .iter()
                    .position(|s| addr(s) == from)
                    .expect("known source") as u8;
                recorded.push((src, d.clone()));
            }
            nodes[i].handle_packet(from, &d);
            continue;
        }
        let Some(k) = (0..timers.len()).min_by_key(|&k| (timers[k].0, timers[k].1)) else {
            break;
        };
        if timers[k].0 > duration {
            break;
        }
        let (due, _, i, t) = timers.swap_remove(k);
        now = due;
        if i == 0 {
            recorded.push((FRAME_TIMER, Vec::new()));
        }
        nodes[i].handle_timer(t);
    }
    recorded
}

/// Frames of a capture, as one session input.
pub fn capture_to_input(capture: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let frames: Vec<Frame<'_>> = capture
        .iter()
        .map(|(flags, d)| {
            if *flags & FRAME_TIMER != 0 {
                Frame::Timer
            } else {
                Frame::Packet {
                    flags: *flags,
                    data: d,
                }
            }
        })
        .collect();
    encode_frames(&frames)
}

/// If [`DUMP_ENV`] names a directory, writes `seeds` there as
/// `seed-<n>` files and exits the process; otherwise does nothing. Called
/// from a target's `init`, e.g.
/// `REGISTRY_FUZZ_DUMP_SEEDS=fuzz/corpus/ring cargo fuzz run ring -- -runs=0`.
pub fn dump_seeds_if_asked(seeds: impl FnOnce() -> Vec<Vec<u8>>) {
    let Some(dir) = std::env::var_os(DUMP_ENV) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("create the seed directory");
    let seeds = seeds();
    for (i, s) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:02}")), s).expect("write a seed");
    }
    eprintln!("wrote {} seeds to {}", seeds.len(), dir.display());
    std::process::exit(0);
}
