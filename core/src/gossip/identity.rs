//! The identity foca gossips about: a socket address and a generation.
//!
//! foca writes identities into every message header (twice) and into every
//! membership update, so ours is kept to a socket address plus a number:
//! 8 to 28 bytes on the wire. The service's metadata (id, group, addr,
//! weight, tags) travels separately, as versioned records (see
//! [`super::packet`]).
//!
//! The generation is the wall-clock time in milliseconds when the process
//! started. Two identities with the same address are the same member at two
//! points in time, and the larger generation wins (`win_addr_conflict`), so a
//! process restarted on the same address replaces its previous life at once.
//! When the cluster wrongly declares a node down, foca calls `renew` (`foca::Identity::renew`)
//! and the node rejoins with a larger generation (auto-rejoin).

use std::fmt;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// A gossip member's identity: where it listens and which life it is in.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Address other members send datagrams to (the advertise address).
    pub addr: SocketAddr,
    /// Start time in ms since the Unix epoch, bumped on each auto-rejoin.
    pub gen: u64,
}

impl NodeId {
    /// An identity for a process starting now at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        NodeId {
            addr,
            gen: now_millis(),
        }
    }

    /// An identity with an explicit generation (simulation, tests, seeds).
    pub fn with_gen(addr: SocketAddr, gen: u64) -> Self {
        NodeId { addr, gen }
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.addr, self.gen)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl foca::Identity for NodeId {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        // Strictly larger than the old one, and than any earlier restart.
        Some(NodeId {
            addr: self.addr,
            gen: now_millis().max(self.gen.saturating_add(1)),
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.gen > adversary.gen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::Identity;

    #[test]
    fn renew_wins_the_conflict() {
        let a = NodeId::with_gen("127.0.0.1:1".parse().unwrap(), 5);
        let b = a.renew().unwrap();
        assert!(b.gen > a.gen);
        assert!(b.win_addr_conflict(&a));
        assert!(!a.win_addr_conflict(&b));
    }
}
