//! Core types to wire messages (registry.v1 and the compat service `R`).

use registry_core::ring::RING_ALGORITHM;
use registry_core::wire::{compat, v1};
use registry_core::{GroupSnapshot, Service};

/// A service as a `registry.v1.Service`.
pub fn service(s: &Service) -> v1::Service {
    v1::Service {
        id: s.id.clone(),
        group: s.group.clone(),
        addr: s.addr.clone(),
        weight: s.weight,
        tags: s.tags.clone(),
    }
}

/// A group snapshot as a `registry.v1.Snapshot` (what Watch sends).
pub fn snapshot(snap: &GroupSnapshot) -> v1::Snapshot {
    v1::Snapshot {
        group: snap.group().to_string(),
        version: snap.version(),
        services: snap.members().iter().map(|s| service(s)).collect(),
        ring: RING_ALGORITHM.to_string(),
    }
}

/// A service as the compat `MatchResponse` (id, group, addr).
pub fn compat_service(s: &Service) -> compat::MatchResponse {
    compat::MatchResponse {
        id: s.id.clone(),
        group: s.group.clone(),
        addr: s.addr.clone(),
    }
}
