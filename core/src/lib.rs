//! registry-core: everything the registry's front doors share.
//!
//! Layers, dependencies pointing down only: [`ring`] (pure consistent
//! hashing), [`catalog`] (groups → ring snapshots), [`gossip`] (SWIM over
//! UDP with foca), [`bridge`] (gossip → catalog: the batched feeder, resync
//! after lag, the joining gate and the id-conflict watch, for any embedder
//! of a registry), [`wire`] (gRPC types), and on top [`client`] and
//! [`registration`].
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

pub use catalog::{Catalog, GroupSnapshot};
pub use client::{Client, ClientConfig, GroupInfo, GroupView, Members};
pub use error::{Error, Result};
pub use limits::{CatalogLimits, Limit};
pub use ring::Ring;
pub use service::{MemberEvent, Service, REGISTRY_GROUP};
pub use tls::{Pem, TlsConfig};
