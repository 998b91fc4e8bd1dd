//! Service-side API: join the cluster so registries see this service.
//!
//! A [`Registration`] is a [`GossipNode`] whose metadata is the service.
//! It joins through the registries' gossip addresses, keeps retrying them
//! while none answers (registries not up yet, or all restarting), and
//! re-announces periodically so a registry that restarted, or a partition,
//! finds it again. [`Registration::stop`] leaves gracefully: registries
//! drop the service at once.
//!
//! One id, one live holder, cluster-wide (any group). A new instance
//! publishes its metadata only once it holds its id
//! ([`Claim`](crate::gossip::Claim)): it pulls the cluster's records from
//! a registry, and when another member at another gossip address holds
//! the id it asks that member for its record, directly.
//!
//! * The holder answers (it is alive): [`Registration::start`] fails with
//!   `AlreadyExists` ("id … is already registered by a live member at
//!   ADDR"), and the running instance keeps its place, in its group,
//!   untouched (the newcomer leaves at once).
//! * No answer within `claim_timeout` (250 ms by default): the holder
//!   crashed and this is its restart (same id, same or another address
//!   or port). It takes the id, and registries replace the old entry at
//!   once, without waiting for the failure detector. A restart on the
//!   same gossip address needs no probe at all (its previous life is not
//!   a rival).
//!
//! So what tells a restart from a duplicate is whether the previous holder
//! still answers, not anything the newcomer says about itself.
//! [`Registration::start`] waits for the decision at most
//! [`RegistrationConfig::claim_wait`]; when no registry answers by then
//! it returns `Ok` and the check completes in the background (a refusal
//! found then is logged, listed by [`GossipNode::conflicts`], and the
//! metadata is never published). Two instances started within a round
//! trip of each other, or on both sides of a partition, can both take the
//! id: then every registry keeps the newest start and both report the
//! conflict.
//!
//! ```no_run
//! # async fn f() -> registry_core::Result<()> {
//! use registry_core::registration::{Registration, RegistrationConfig};
//! let reg = Registration::start(
//!     RegistrationConfig::new("api-1", "api", "127.0.0.1:8080").registry("127.0.0.1:7370"),
//! )
//! .await?;
//! // ... serve ...
//! reg.stop().await?;
//! # Ok(()) }
//! ```

use crate::error::Result;
use crate::gossip::{GossipConfig, GossipNode, GossipStats, Keyring};
use crate::service::{MemberEvent, Service};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::broadcast;

/// Everything needed to register one service instance.
#[derive(Debug, Clone)]
pub struct RegistrationConfig {
    /// Unique id of this instance.
    pub id: String,
    /// Service group it belongs to.
    pub group: String,
    /// Address clients use to reach it (e.g. its gRPC or HTTP address), as
    /// `host:port` (see [`crate::validate::addr`]).
    pub addr: String,
    /// Local UDP address for gossip. Default `127.0.0.1:0` (free port,
    /// works on a laptop); use `0.0.0.0:port` across hosts.
    pub bind: SocketAddr,
    /// Gossip address others reach this instance at, if not `bind` (NAT).
    pub advertise: Option<SocketAddr>,
    /// Gossip `host:port` of the registries to join through.
    pub registries: Vec<String>,
    /// Share of keys (1 ..= `MAX_WEIGHT`). Default 1.
    pub weight: u32,
    /// Free-form metadata (at most `MAX_TAGS_BYTES`).
    pub tags: BTreeMap<String, String>,
    /// Encryption keys; must match the registries'. Default none.
    pub keyring: Option<Keyring>,
    /// Protocol tuning; its bind, advertise, seeds and keyring are replaced
    /// by the fields above. Default [`GossipConfig::lan`].
    pub gossip: GossipConfig,
    /// How long [`Registration::start`] waits to learn whether the id is
    /// free (see the module docs). Default 2 s: two announces when the
    /// first is lost; a registry normally answers in a round trip.
    pub claim_wait: Duration,
    /// Join draining: listed but owning no keys until
    /// [`Registration::set_draining`]`(false)` (e.g. while warming a
    /// cache). Default false.
    pub draining: bool,
}

/// Default of [`RegistrationConfig::claim_wait`].
pub const DEFAULT_CLAIM_WAIT: Duration = Duration::from_secs(2);

impl RegistrationConfig {
    /// A weight-1, untagged registration bound to a free loopback port.
    pub fn new(id: impl Into<String>, group: impl Into<String>, addr: impl Into<String>) -> Self {
        RegistrationConfig {
            id: id.into(),
            group: group.into(),
            addr: addr.into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise: None,
            registries: Vec::new(),
            weight: 1,
            tags: BTreeMap::new(),
            keyring: None,
            gossip: GossipConfig::lan(),
            claim_wait: DEFAULT_CLAIM_WAIT,
            draining: false,
        }
    }

    /// Adds a registry gossip address to join through.
    pub fn registry(mut self, addr: impl Into<String>) -> Self {
        self.registries.push(addr.into());
        self
    }

    /// The service this configuration registers.
    pub fn service(&self) -> Service {
        Service {
            id: self.id.clone(),
            group: self.group.clone(),
            addr: self.addr.clone(),
            weight: self.weight,
            tags: self.tags.clone(),
            draining: self.draining,
        }
    }
}

/// A metadata change; `None` fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceUpdate {
    /// New group.
    pub group: Option<String>,
    /// New client address.
    pub addr: Option<String>,
    /// New weight.
    pub weight: Option<u32>,
    /// New tags (replace all of them).
    pub tags: Option<BTreeMap<String, String>>,
    /// Start (`true`) or stop (`false`) draining (see [`Service::draining`]).
    pub draining: Option<bool>,
}

impl ServiceUpdate {
    /// Applies the change to `service`: each given field replaces its own,
    /// `None` fields stay. Checks nothing (see [`Service::validate`]).
    pub fn apply(&self, service: &mut Service) {
        if let Some(g) = &self.group {
            service.group.clone_from(g);
        }
        if let Some(a) = &self.addr {
            service.addr.clone_from(a);
        }
        if let Some(w) = self.weight {
            service.weight = w;
        }
        if let Some(t) = &self.tags {
            service.tags.clone_from(t);
        }
        if let Some(d) = self.draining {
            service.draining = d;
        }
    }
}

impl RegistrationConfig {
    /// Applies a metadata change to what this configuration registers
    /// (before [`Registration::start`]); an invalid result is refused and
    /// changes nothing.
    pub fn update(&mut self, change: &ServiceUpdate) -> Result<()> {
        let mut s = self.service();
        change.apply(&mut s);
        s.validate()?;
        self.group = s.group;
        self.addr = s.addr;
        self.weight = s.weight;
        self.tags = s.tags;
        self.draining = s.draining;
        Ok(())
    }
}

/// A registered service instance, live until [`Registration::stop`].
#[derive(Debug)]
pub struct Registration {
    node: GossipNode,
    service: Mutex<Service>,
}

impl Registration {
    /// Validates the metadata (a clear `InvalidArgument` or
    /// `LimitExceeded` error names the field), binds, joins, and waits (at
    /// most `claim_wait`) to learn whether the id is free: `AlreadyExists`
    /// when a live member holds it (see the module docs). When no registry
    /// answers in that time it returns `Ok` and joining continues in the
    /// background.
    pub async fn start(config: RegistrationConfig) -> Result<Registration> {
        let service = config.service();
        service.validate()?;
        let mut gossip = config.gossip;
        gossip.bind = config.bind;
        gossip.advertise = config.advertise;
        gossip.seeds = config.registries;
        gossip.keyring = config.keyring;
        let node = GossipNode::start(gossip, service.clone()).await?;
        if let Err(e) = node.wait_claim(config.claim_wait).await {
            // Our record never went out: leaving only ends our membership.
            let _ = node.leave().await;
            return Err(e);
        }
        Ok(Registration {
            node,
            service: Mutex::new(service),
        })
    }

    /// The metadata currently registered.
    pub fn service(&self) -> Service {
        self.service.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Changes metadata at runtime; registries see `Updated`, never a
    /// failure. Invalid changes are refused and change nothing.
    pub async fn update(&self, change: ServiceUpdate) -> Result<()> {
        let mut s = self.service();
        change.apply(&mut s);
        self.node.update(s.clone()).await?;
        *self.service.lock().unwrap_or_else(|e| e.into_inner()) = s;
        Ok(())
    }

    /// Starts or stops draining: while draining this instance stays listed
    /// but owns no keys, so registries and local views route its keys to
    /// their next owners (exactly those they get when it leaves); it can
    /// hand their state over, then [`Registration::stop`] moves no key.
    /// Draining again and back is exact: it gets back the keys it had.
    pub async fn set_draining(&self, draining: bool) -> Result<()> {
        self.update(ServiceUpdate {
            draining: Some(draining),
            ..ServiceUpdate::default()
        })
        .await
    }

    /// Every member this instance knows (registries and services), itself
    /// included.
    pub fn members(&self) -> Vec<Service> {
        self.node.members()
    }

    /// Membership events, as the old system's handler interface offered.
    pub fn events(&self) -> broadcast::Receiver<MemberEvent> {
        self.node.events()
    }

    /// True once at least one other member (a registry) knows this one.
    pub fn is_joined(&self) -> bool {
        self.node.stats().live_members > 0
    }

    /// Gossip counters.
    pub fn stats(&self) -> GossipStats {
        self.node.stats()
    }

    /// The local gossip address (real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.node.local_addr()
    }

    /// The gossip node underneath.
    pub fn node(&self) -> &GossipNode {
        &self.node
    }

    /// Leaves gracefully: registries remove the service at once.
    pub async fn stop(self) -> Result<()> {
        self.node.leave().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_changes_only_its_fields_and_refuses_invalid_results() {
        let mut cfg = RegistrationConfig::new("a", "g", "127.0.0.1:1");
        let change = ServiceUpdate {
            weight: Some(5),
            ..ServiceUpdate::default()
        };
        cfg.update(&change).unwrap();
        assert_eq!((cfg.weight, cfg.group.as_str()), (5, "g"));
        let bad = ServiceUpdate {
            group: Some("h".into()),
            weight: Some(0),
            ..ServiceUpdate::default()
        };
        assert!(cfg.update(&bad).unwrap_err().message().contains("weight 0"));
        assert_eq!((cfg.weight, cfg.group.as_str()), (5, "g"));
        let mut s = cfg.service();
        bad.apply(&mut s);
        assert_eq!(
            (s.weight, s.group.as_str(), s.addr.as_str()),
            (0, "h", "127.0.0.1:1")
        );
    }
}
