//! registry-server: the registry daemon's building blocks, shared by the
//! `registry-server` binary, the `registry` command-line client, the
//! example service (`examples/service/`) and the tests. The load and soak
//! tools live in their own crate, `tools/` (`registry-tools`).
//!
//! - [`config`]: flags, environment variables and checked settings
//! - [`daemon`]: bind, start, graceful shutdown
//! - [`cluster`]: wiring of core's gossip → catalog bridge (`registry_core::bridge`:
//!   batched feeder, resync after lag, joining gate): settings → node, group
//!   history, gossip counters for `/metrics`
//! - [`api`]: the queries both front doors answer, checks in one place
//! - [`grpc`], [`http`]: the two front doors
//! - [`errors`]: core errors → gRPC codes → HTTP statuses, in one place
//! - [`metrics`]: counters and histograms, and the one collector registry
//!   encoded at `/metrics` (prometheus-client)
//! - [`cli`]: the `registry` command-line client
//! - [`listener`]: accepting on both listeners: connection cap, header-read
//!   and idle timeouts, backoff on accept errors
//! - [`tls`]: TLS for both listeners, with counted handshake failures
#![warn(missing_docs)]

pub mod api;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod convert;
pub mod daemon;
pub mod datadir;
pub mod errors;
pub mod grpc;
pub mod http;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod shutdown;
pub mod tls;
