//! The registry's multi-host chaos bed.
//!
//! * [`bed`]: network namespaces ("hosts") on a private subnet joined by a
//!   bridge that lives in a namespace of its own, and real release
//!   binaries (registries, services, the chaos client) running in them.
//! * [`nemesis`]: faults from a seeded RNG (kill -9 and restart, SIGSTOP
//!   and SIGCONT, one- and two-way partitions, a service moved to another
//!   host), each logged with its time.
//! * [`history`]: what was recorded: the nemesis' log and every answer the
//!   clients got.
//! * [`checker`]: replays the history and asserts the guarantees; pure
//!   logic, tested without root.

pub mod bed;
pub mod checker;
pub mod history;
pub mod nemesis;
pub mod world;

/// Milliseconds since the Unix epoch: every process of a run shares this
/// clock (they run on one machine), so answers and faults line up.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
