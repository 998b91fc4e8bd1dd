//! registry-core: everything the registry's front doors share.
//!
//! Layers, dependencies pointing down only (`core/tests/layers.rs` fails on
//! an upward import; `core/tests/sizes.rs` keeps files under 500 lines and
//! functions under 60). Where each decision lives:
//!
//! 0. [`validate`]: what a valid id, group, key, address, weight and count
//!    is, one wording per failure; [`limits`]: every size and count limit;
//!    [`error`]: the error kinds front doors translate; [`service`]: a
//!    member and its events.
//! 1. [`ring`]: pure consistent hashing (who owns a key).
//! 2. [`catalog`]: groups → ring snapshots, admission under the limits.
//! 3. [`gossip`]: SWIM over UDP with foca; inside, one module per seam of
//!    the machine (metadata, push-pull sync, identity conflicts, failure
//!    hold, view diff, announce timer), every knob in [`gossip::config`].
//! 4. [`bridge`]: gossip → catalog (the batched feeder, resync after lag,
//!    the joining gate and the id-conflict watch), for any embedder of a
//!    registry; the server only wires it up.
//! 5. [`wire`]: gRPC types and their conversions.
//! 6. [`client`] (discovery, failover, local views) and [`registration`]
//!    (a service joining the cluster).
#![warn(missing_docs)]

pub mod bridge;
pub mod catalog;
pub mod client;
pub mod error;
pub mod gossip;
pub mod limits;
pub mod registration;
pub mod ring;
pub mod runtime;
pub mod service;
pub mod tls;
pub mod validate;
pub mod wire;

pub use catalog::{Catalog, GroupSnapshot, Route};
pub use client::{Client, ClientConfig, GroupInfo, GroupView, Members, ViewChange};
pub use error::{Error, Result};
pub use limits::{CatalogLimits, Limit};
pub use ring::{MovedRange, Moves, Ring};
pub use service::{MemberEvent, Service, REGISTRY_GROUP};
pub use tls::{Pem, TlsConfig};
