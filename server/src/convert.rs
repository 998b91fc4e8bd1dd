//! Core types to wire messages that core does not convert itself
//! (services convert with `From` in `registry_core::wire`).

use registry_core::ring::RING_ALGORITHM;
use registry_core::wire::v1;
use registry_core::GroupSnapshot;

/// A group snapshot as a `registry.v1.Snapshot` (what Watch sends).
pub fn snapshot(snap: &GroupSnapshot) -> v1::Snapshot {
    v1::Snapshot {
        group: snap.group().to_string(),
        version: snap.version(),
        services: snap.members().iter().map(|s| v1::Service::from(&**s)).collect(),
        ring: RING_ALGORITHM.to_string(),
        checksum: snap.checksum(),
    }
}
