//! One group's immutable state: members sorted by id and their ring.

use crate::error::Result;
use crate::ring::{MemberState, Moves, Ring};
use crate::service::Service;
use crate::validate;
use std::sync::Arc;

/// Where a request for a key goes, seen from one member of the group
/// (handle-or-forward): see [`GroupSnapshot::route`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This member owns the key: handle the request here.
    Here,
    /// Another member owns the key: forward the request to it (its `addr`).
    Forward(Arc<Service>),
}

/// The state of one group at one version: members sorted by id and the ring
/// built from them. Immutable; shared by `Arc`.
#[derive(Debug, Clone)]
pub struct GroupSnapshot {
    group: String,
    version: u64,
    services: Vec<Arc<Service>>,
    ring: Ring,
}

impl GroupSnapshot {
    /// Builds a snapshot from a group's members (any order; ids must be
    /// unique). Used by the catalog and by clients that rebuild a group
    /// locally from a Watch snapshot.
    pub fn new(group: impl Into<String>, version: u64, services: Vec<Arc<Service>>) -> Result<Self> {
        let mut services = services;
        services.sort_by(|a, b| a.id.cmp(&b.id));
        if let Some(w) = services.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(validate::duplicate_id(&w[0].id));
        }
        let ring = Ring::with_states(
            services
                .iter()
                .map(|s| (s.id.as_str(), s.weight, MemberState::draining(s.draining))),
        )?;
        Ok(GroupSnapshot {
            group: group.into(),
            version,
            services,
            ring,
        })
    }

    /// An empty snapshot of `group` at `version`.
    pub fn empty(group: impl Into<String>, version: u64) -> Self {
        GroupSnapshot {
            group: group.into(),
            version,
            services: Vec::new(),
            ring: Ring::default(),
        }
    }

    /// The group's name.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Version of this snapshot; a later change has a larger version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Checksum of the group's ring ([`Ring::checksum`]): equal on every
    /// registry and client that holds the same members and weights.
    pub fn checksum(&self) -> u64 {
        self.ring.checksum()
    }

    /// Members sorted by id, draining ones included (empty when the group
    /// has none).
    pub fn members(&self) -> &[Arc<Service>] {
        &self.services
    }

    /// True when the group has no members.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// The ring built from the members.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// The member that owns `key` (never a draining one).
    pub fn match_key(&self, key: &str) -> Result<&Arc<Service>> {
        Ok(&self.services[self.match_index(key)?])
    }

    /// Position in [`GroupSnapshot::members`] of the member that owns `key`
    /// (for callers that keep per-member state alongside the snapshot).
    pub fn match_index(&self, key: &str) -> Result<usize> {
        validate::key(key)?;
        self.check_serving()?;
        self.ring.locate(key)
    }

    /// Handle-or-forward for the member `me` (its id): [`Route::Here`] when
    /// `me` owns `key`, else [`Route::Forward`] to the owner. A draining
    /// `me` owns no key, so every request is forwarded to the member that
    /// will own it once `me` leaves. Errors as [`GroupSnapshot::match_key`].
    pub fn route(&self, key: &str, me: &str) -> Result<Route> {
        let owner = self.match_key(key)?;
        Ok(if owner.id == me {
            Route::Here
        } else {
            Route::Forward(owner.clone())
        })
    }

    /// What moved from `old` (an earlier snapshot of the group) to this
    /// one: the key ranges whose owner changed, with the old and new owner
    /// ([`Moves`]). A member walks the keys it holds through
    /// [`Moves::of_key`] (or its [`Moves::lost_by`] ranges) and hands off
    /// exactly the ones it lost.
    pub fn moves_since(&self, old: &GroupSnapshot) -> Moves {
        Moves::between(&old.ring, &self.ring)
    }

    /// Up to `n` distinct serving members for `key`, in preference order;
    /// the first is always `match_key(key)`. Fewer than `n` when the group
    /// has fewer serving members; draining members are never listed.
    pub fn match_n(&self, key: &str, n: usize) -> Result<Vec<&Arc<Service>>> {
        Ok(self
            .match_n_indexes(key, n)?
            .into_iter()
            .map(|i| &self.services[i])
            .collect())
    }

    /// Positions in [`GroupSnapshot::members`] of `match_n(key, n)`.
    pub fn match_n_indexes(&self, key: &str, n: usize) -> Result<Vec<usize>> {
        validate::key(key)?;
        validate::count(n)?;
        self.check_serving()?;
        self.ring.locate_n(key, n)
    }

    /// `NotFound` when no member owns keys: none at all, or all draining.
    fn check_serving(&self) -> Result<()> {
        if self.services.is_empty() {
            return Err(validate::no_members(&self.group, None));
        }
        if self.ring.serving() == 0 {
            return Err(validate::all_draining(&self.group, self.services.len()));
        }
        Ok(())
    }
}
