//! Protobuf decoding of the gRPC wire types (prost), both directions: the
//! requests a server decodes and the answers and Watch snapshots a client
//! decodes. Whatever decodes must re-encode to the same message; a Watch
//! snapshot becomes a local `GroupSnapshot` (the client-side ring) exactly
//! when its members are acceptable ring members, and then answers with
//! members of the snapshot.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use registry_core::wire::{compat, v1};
use registry_core::{GroupSnapshot, Service};
use std::sync::Arc;

fuzz_target!(
    init: {
        registry_fuzz::dump_seeds_if_asked(|| {
            let svc = |id: &str, w: u32| v1::Service {
                id: id.into(),
                group: "g".into(),
                addr: format!("10.0.0.1:{w}"),
                weight: w,
                tags: [("zone".to_string(), "eu".to_string())].into(),
                draining: id == "b",
            };
            let snapshot = v1::Snapshot {
                group: "g".into(),
                version: 7,
                services: vec![svc("a", 1), svc("b", 3), svc("c", 2)],
                ring: registry_core::ring::RING_ALGORITHM.into(),
                checksum: 0,
            };
            let with_kind = |kind: u8, m: Vec<u8>| [vec![kind], m].concat();
            vec![
                with_kind(0, v1::MatchRequest { group: "g".into(), key: "user:1".into() }.encode_to_vec()),
                with_kind(1, v1::MatchNRequest { group: "g".into(), key: "k".into(), n: 3 }.encode_to_vec()),
                with_kind(2, v1::MembersResponse { services: snapshot.services.clone(), version: 7, checksum: 0 }.encode_to_vec()),
                with_kind(3, compat::MatchResponse { id: "a".into(), group: "g".into(), addr: "x".into() }.encode_to_vec()),
                with_kind(5, snapshot.encode_to_vec()),
            ]
        });
    },
    |data: &[u8]| {
        let Some((&kind, bytes)) = data.split_first() else {
            return;
        };
        match kind % 6 {
            0 => {
                round_trip::<v1::MatchRequest>(bytes);
                round_trip::<compat::MatchRequest>(bytes);
                round_trip::<v1::WatchRequest>(bytes);
            }
            1 => {
                round_trip::<v1::MatchNRequest>(bytes);
                round_trip::<v1::MembersRequest>(bytes);
                round_trip::<compat::MembersRequest>(bytes);
            }
            2 => {
                round_trip::<v1::MatchResponse>(bytes);
                round_trip::<v1::MatchNResponse>(bytes);
                round_trip::<v1::MembersResponse>(bytes);
            }
            3 => {
                round_trip::<compat::MatchResponse>(bytes);
                round_trip::<compat::MembersResponse>(bytes);
            }
            4 => {
                round_trip::<v1::GroupsResponse>(bytes);
            }
            _ => {
                if let Some(s) = round_trip::<v1::Snapshot>(bytes) {
                    snapshot(s);
                }
            }
        }
    }
);

/// Decodes `bytes` as `M`; a decoded message must survive encode + decode.
fn round_trip<M: Message + Default + PartialEq>(bytes: &[u8]) -> Option<M> {
    let m = M::decode(bytes).ok()?;
    let again = M::decode(&m.encode_to_vec()[..]).expect("a decoded message re-decodes");
    assert!(again == m, "protobuf round trip changed the message");
    Some(m)
}

/// A Watch snapshot as the client turns it into its local ring.
fn snapshot(msg: v1::Snapshot) {
    // Rings cost 1,792 points per unit of weight: keep inputs fast.
    if msg.services.iter().map(|s| u64::from(s.weight)).sum::<u64>() > 64 {
        return;
    }
    let services: Vec<Arc<Service>> = msg
        .services
        .into_iter()
        .map(|s| Arc::new(Service::from(s)))
        .collect();
    let mut ids: Vec<&str> = services.iter().map(|s| s.id.as_str()).collect();
    ids.sort_unstable();
    let valid = ids.windows(2).all(|w| w[0] != w[1])
        && services
            .iter()
            .all(|s| registry_core::validate::id(&s.id).is_ok() && (1..=1000).contains(&s.weight));
    match GroupSnapshot::new(msg.group.clone(), msg.version, services.clone()) {
        Ok(snap) => {
            assert!(valid, "accepted a snapshot the ring cannot hold");
            assert_eq!(snap.members().len(), services.len());
            assert!(snap.members().windows(2).all(|w| w[0].id < w[1].id));
            // Draining members are listed but own no keys: answers come
            // from the serving ones only.
            let serving = services.iter().filter(|s| !s.draining).count();
            for key in ["user:1", "k", msg.group.as_str()] {
                match snap.match_key(key) {
                    Ok(s) => assert!(
                        !s.draining && services.iter().any(|x| x == s),
                        "matched a draining service or one not in the snapshot"
                    ),
                    Err(_) => assert!(key.is_empty() || serving == 0),
                }
                if let Ok(v) = snap.match_n(key, 3) {
                    assert_eq!(v.len(), serving.min(3));
                    assert!(v.iter().all(|s| !s.draining), "match_n listed a draining service");
                    assert_eq!(v[0], snap.match_key(key).expect("same key"));
                }
            }
        }
        Err(e) => assert!(!valid, "refused a valid snapshot: {e}"),
    }
}
