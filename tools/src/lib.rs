//! registry-tools: programs that measure a registry from the outside, kept
//! out of the daemon's crate (`registry-server` ships none of them).
//!
//! - `registry-bench` (`src/bin/registry-bench.rs`): load generator for one
//!   running registry (gRPC and HTTP `Match`, requests/s, p50/p99, the
//!   server's RSS and CPU time per request)
//! - `registry-soak` (`src/bin/registry-soak.rs`): a bounded soak run of a
//!   small real cluster with churn and steady load, then a report
//! - [`load`]: latency percentiles, RSS and CPU time, shared by both
#![warn(missing_docs)]

pub mod load;
