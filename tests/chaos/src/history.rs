//! What a run recorded: the nemesis' log of what it did (and of every
//! process it started) and every answer a client got, one JSON line each.

use serde::{Deserialize, Serialize};

/// What a node of the bed is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Role {
    /// A registry-server.
    Registry,
    /// A service registered in `group`.
    Service {
        /// Its group.
        group: String,
    },
    /// The chaos client.
    Client,
}

/// One thing the bed or the nemesis did, at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum Action {
    /// `node` was started on host `host` (a restart too).
    Start {
        /// Node name (a registry or service id).
        node: String,
        /// What it is.
        role: Role,
        /// Index of the host it runs on.
        host: usize,
    },
    /// `node` was killed with SIGKILL.
    Kill {
        /// Node name.
        node: String,
    },
    /// `node` was paused with SIGSTOP.
    Stop {
        /// Node name.
        node: String,
    },
    /// `node` was resumed with SIGCONT.
    Cont {
        /// Node name.
        node: String,
    },
    /// Packets from host `from` to host `to` are dropped from now on.
    Block {
        /// Sending host.
        from: usize,
        /// Receiving host.
        to: usize,
    },
    /// The block from `from` to `to` was lifted.
    Unblock {
        /// Sending host.
        from: usize,
        /// Receiving host.
        to: usize,
    },
    /// Host `host`'s outgoing link is congested: capped at `kbit` kbit/s
    /// with a queue of at most `latency_ms` (packets are delayed up to
    /// that long, and dropped beyond it).
    Slow {
        /// The host.
        host: usize,
        /// Rate cap, kbit/s.
        kbit: u32,
        /// Longest queueing delay, ms.
        latency_ms: u32,
    },
    /// Host `host`'s link is back to full speed.
    Unslow {
        /// The host.
        host: usize,
    },
    /// Observed, not done: `node` logged that the cluster had declared it
    /// down (and rejoined).
    DeclaredDown {
        /// The node.
        node: String,
    },
}

impl Action {
    /// Whether this action is a fault: a kill, a pause, one blocked
    /// direction of a link, a congestion (starts and heals are not).
    pub fn is_fault(&self) -> bool {
        !matches!(
            self,
            Action::Start { .. }
                | Action::Cont { .. }
                | Action::Unblock { .. }
                | Action::Unslow { .. }
                | Action::DeclaredDown { .. }
        )
    }
}

/// One entry of the nemesis' log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When it was done (ms since the epoch): the bed logs an action once
    /// it is complete (a kill once the process is reaped, a route once
    /// `ip` returns).
    pub t_ms: u64,
    /// When the bed began the action: it took effect at some time in
    /// `[begun_ms, t_ms]`. `None` for what was observed, not done, and in
    /// logs recorded before the bed wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub begun_ms: Option<u64>,
    /// What was done.
    #[serde(flatten)]
    pub action: Action,
}

/// Which call an answer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `Members` of one registry.
    Members,
    /// `Match` of one registry.
    Match,
    /// `Match` through a client given every registry (with failover).
    Failover,
}

/// One answer a client got (or its error), as the chaos client prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// When the call was sent (ms since the epoch).
    pub start_ms: u64,
    /// When the answer (or error) arrived.
    pub t_ms: u64,
    /// Registry node asked; "*" for a failover call.
    pub registry: String,
    /// Call.
    pub op: Op,
    /// Group asked about.
    pub group: String,
    /// Key (Match and failover calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Owner of the key (Match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Member ids, sorted (Members).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<String>>,
    /// Ring version on the registry that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Ring checksum, when the registry sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// Error kind and message, when the call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Answer {
    /// Whether the call failed with anything but NOT_FOUND.
    pub fn refused(&self) -> bool {
        self.error.as_deref().is_some_and(|e| !e.starts_with("not found"))
    }

    /// Whether a Match found no owner (an empty ring on that registry).
    pub fn not_found(&self) -> bool {
        self.error.as_deref().is_some_and(|e| e.starts_with("not found"))
    }
}

/// Parses JSON lines (blank lines and lines that are not an answer, such
/// as a log line, are skipped).
pub fn parse_answers(text: &str) -> Vec<Answer> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_answers_round_trip_as_json_lines() {
        let mut e = Event {
            t_ms: 5,
            begun_ms: None,
            action: Action::Block { from: 1, to: 2 },
        };
        let line = serde_json::to_string(&e).unwrap();
        assert_eq!(line, r#"{"t_ms":5,"do":"block","from":1,"to":2}"#);
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), e);
        e.begun_ms = Some(3);
        let line = serde_json::to_string(&e).unwrap();
        assert_eq!(line, r#"{"t_ms":5,"begun_ms":3,"do":"block","from":1,"to":2}"#);
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), e);
        let text = "noise\n{\"start_ms\":1,\"t_ms\":2,\"registry\":\"r1\",\"op\":\"members\",\"group\":\"web\",\"members\":[\"a\"],\"version\":3}\n";
        let a = parse_answers(text);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].members.as_deref(), Some(&["a".to_string()][..]));
        assert!(!a[0].refused());
    }
}

/// Milliseconds since the epoch of a log line's RFC 3339 UTC timestamp
/// (`2026-12-03T18:10:09.382194Z ...`), if it starts with one.
pub fn log_time_ms(line: &str) -> Option<u64> {
    let ts = line.get(..26)?;
    let num = |r: std::ops::Range<usize>| ts.get(r).and_then(|x| x.parse::<i64>().ok());
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s, us) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..26)?);
    // Days from the civil date (proleptic Gregorian).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = ((days * 86_400 + h * 3_600 + mi * 60 + s) * 1_000) + us / 1_000;
    u64::try_from(ms).ok()
}

#[cfg(test)]
mod time_tests {
    #[test]
    fn log_timestamps_are_read_as_epoch_ms() {
        assert_eq!(super::log_time_ms("1970-01-01T00:00:01.500000Z x"), Some(1_500));
        assert_eq!(
            super::log_time_ms("2026-12-03T18:10:09.382194Z  INFO x"),
            Some(1_796_321_409_382)
        );
        assert_eq!(super::log_time_ms("not a time"), None);
    }
}
