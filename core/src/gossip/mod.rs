//! SWIM gossip membership over UDP, driven by foca.
//!
//! * [`GossipNode`]: a running member (tokio + UDP). Start it with a
//!   [`GossipConfig`] and the local [`Service`](crate::Service); read
//!   [`GossipNode::members`], subscribe to [`MemberEvent`](crate::MemberEvent)s,
//!   [`GossipNode::update`] metadata, [`GossipNode::leave`] gracefully.
//! * [`Machine`]: the sans-IO state machine inside (foca + metadata), also
//!   run by the simulator (`sim`, behind the `sim` cargo feature, for tests
//!   and benches only) under virtual time.
//! * Wire: [`identity`] (small foca identity), [`codec`] (foca messages),
//!   [`packet`] (datagram envelope and metadata records), [`keyring`]
//!   (optional encryption).
//!
//! Tuning knobs and the figures behind the defaults: [`config`].

pub mod codec;
pub mod config;
pub mod identity;
pub mod keyring;
pub mod machine;
pub mod packet;
mod runtime;
/// The simulated network (feature `sim`): not part of the production library.
#[cfg(feature = "sim")]
pub mod sim;
pub mod stats;

pub use config::GossipConfig;
pub use identity::NodeId;
pub use keyring::Keyring;
pub use machine::{Claim, Machine};
pub use runtime::{route_ip, GossipNode};
pub use stats::GossipStats;
