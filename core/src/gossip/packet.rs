//! Datagram layout and the service metadata record.
//!
//! ```text
//! datagram := 0x52 body                       (plain)
//!           | 0x53 nonce[24] sealed(body)     (XChaCha20-Poly1305, see keyring)
//! body     := 0x01 meta_version:varint foca-packet
//!           | 0x02                            (metadata request: "send me yours")
//!           | 0x03 record                     (metadata answer)
//!           | 0x04 record                     (sync: "here is mine, send all yours")
//!           | 0x05 (len:varint record)*       (sync answer, as many as fit)
//!           | 0x06 record                     (a record to apply and gossip on)
//!           | 0x07 (len:varint record)*       (sync answer of a node still joining)
//! record   := node_id version:varint flags:u8 id group addr weight:varint
//!             tag_count:varint (key value)*   (strings: varint length + UTF-8)
//! flags    := bit 0 leaving | bit 1 draining  (other bits: invalid record)
//! ```
//!
//! Nodes older than the draining bit refuse a record that sets it (an
//! invalid record): during an upgrade they keep a draining member's last
//! serving record until they are upgraded.
//!
//! `0x07` is `0x05` from a registry whose joining gate is still closed:
//! its records are applied, but a joining receiver does not count it as a
//! sync with the cluster. Nodes older than this kind drop it as a bad
//! envelope (they never take a still-joining peer's answer: they ask
//! again), so mixing versions during an upgrade only slows such a sync.
//!
//! The same `record` bytes are also foca custom broadcasts, so metadata
//! spreads epidemically with membership updates. `meta_version` in every
//! foca packet lets a receiver notice it holds an older record of the
//! sender and ask for the new one (repairs a lost broadcast).

use super::codec::{get_id, get_str, get_u8, get_varint, put_id, put_str, put_varint, CodecError};
use super::identity::NodeId;
use crate::service::{Service, MAX_NAME_LEN, MAX_TAGS_BYTES, MAX_WEIGHT};
use std::collections::BTreeMap;

/// First byte of an unencrypted datagram.
pub const WIRE_PLAIN: u8 = 0x52;
/// First byte of an encrypted datagram.
pub const WIRE_SEALED: u8 = 0x53;

/// Body kind: a foca packet, prefixed by the sender's metadata version.
pub const KIND_FOCA: u8 = 0x01;
/// Body kind: a request for the receiver's metadata record.
pub const KIND_META_REQUEST: u8 = 0x02;
/// Body kind: a metadata record (answer to a request).
pub const KIND_META: u8 = 0x03;
/// Body kind: push-pull sync request carrying the sender's record.
pub const KIND_SYNC_REQUEST: u8 = 0x04;
/// Body kind: several length-prefixed records (answer to a sync).
pub const KIND_META_BATCH: u8 = 0x05;
/// Body kind: a record the receiver should also gossip on (sent to seeds
/// with an announce, so the record spreads with the join).
pub const KIND_META_SPREAD: u8 = 0x06;

/// Body kind: several length-prefixed records (answer to a sync) from a
/// node that has not learnt the cluster itself yet (its gate is closed).
pub const KIND_META_BATCH_JOINING: u8 = 0x07;

/// Bytes the envelope adds around a foca packet at most: wire tag, nonce,
/// AEAD tag, body kind and a 10-byte varint.
pub const ENVELOPE_OVERHEAD: usize = 1 + 24 + 16 + 1 + 10;

/// Record flag: the member's last record, sent as it leaves gracefully.
const FLAG_LEAVING: u8 = 1;
/// Record flag: the member is draining ([`Service::draining`]).
const FLAG_DRAINING: u8 = 2;

/// Largest encoded metadata record accepted for gossip; leaves room in a
/// 1,400-byte datagram for the envelope and a foca header.
pub const MAX_RECORD_LEN: usize = 1_200;

/// A member's metadata at one version, as gossiped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaRecord {
    /// The gossip identity the metadata belongs to.
    pub node: NodeId,
    /// Version within `node.gen`; a larger `(gen, version)` is newer.
    pub version: u64,
    /// Set in the last record a member sends when it leaves gracefully.
    pub leaving: bool,
    /// The service the member registers.
    pub service: Service,
}

impl MetaRecord {
    /// Ordering key: newer records have larger `(gen, version)`.
    pub fn stamp(&self) -> (u64, u64) {
        (self.node.gen, self.version)
    }

    /// Encodes the record (without a body kind byte).
    pub fn encode(&self) -> Vec<u8> {
        let s = &self.service;
        let mut b = Vec::with_capacity(64 + s.id.len() + s.group.len() + s.addr.len());
        put_id(&mut b, &self.node);
        put_varint(&mut b, self.version);
        b.push(if self.leaving { FLAG_LEAVING } else { 0 } | if s.draining { FLAG_DRAINING } else { 0 });
        put_str(&mut b, &s.id);
        put_str(&mut b, &s.group);
        put_str(&mut b, &s.addr);
        put_varint(&mut b, u64::from(s.weight));
        put_varint(&mut b, s.tags.len() as u64);
        for (k, v) in &s.tags {
            put_str(&mut b, k);
            put_str(&mut b, v);
        }
        b
    }

    /// Decodes a record; every field is checked against the service limits.
    pub fn decode(mut buf: &[u8]) -> Result<MetaRecord, CodecError> {
        let node = get_id(&mut buf)?;
        let version = get_varint(&mut buf)?;
        let flags = get_u8(&mut buf)?;
        if flags & !(FLAG_LEAVING | FLAG_DRAINING) != 0 {
            return Err(CodecError::Invalid("record flags"));
        }
        let id = get_str(&mut buf, MAX_NAME_LEN)?;
        let group = get_str(&mut buf, MAX_NAME_LEN)?;
        let addr = get_str(&mut buf, MAX_NAME_LEN)?;
        let weight = get_varint(&mut buf)?;
        if weight > u64::from(MAX_WEIGHT) {
            return Err(CodecError::Invalid("weight"));
        }
        let count = get_varint(&mut buf)?;
        if count > MAX_TAGS_BYTES as u64 {
            return Err(CodecError::Invalid("tag count"));
        }
        let mut tags = BTreeMap::new();
        for _ in 0..count {
            let k = get_str(&mut buf, MAX_TAGS_BYTES)?;
            let v = get_str(&mut buf, MAX_TAGS_BYTES)?;
            tags.insert(k, v);
        }
        if !buf.is_empty() {
            return Err(CodecError::Invalid("trailing bytes"));
        }
        let service = Service {
            id,
            group,
            addr,
            weight: weight as u32,
            tags,
            draining: flags & FLAG_DRAINING != 0,
        };
        service
            .validate()
            .map_err(|_| CodecError::Invalid("service metadata"))?;
        Ok(MetaRecord {
            node,
            version,
            leaving: flags & FLAG_LEAVING != 0,
            service,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_rejects_garbage() {
        let mut svc = Service::new("a", "g", "127.0.0.1:80");
        svc.weight = 7;
        svc.tags.insert("zone".into(), "eu".into());
        let r = MetaRecord {
            node: NodeId::with_gen("127.0.0.1:5".parse().unwrap(), 42),
            version: 3,
            leaving: true,
            service: svc,
        };
        let bytes = r.encode();
        assert_eq!(MetaRecord::decode(&bytes).unwrap(), r);
        for cut in 0..bytes.len() {
            assert!(MetaRecord::decode(&bytes[..cut]).is_err());
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(MetaRecord::decode(&extra).is_err());
        // The draining flag round-trips; an unknown flag is refused.
        let mut draining = r.clone();
        draining.service.draining = true;
        let mut bytes = draining.encode();
        assert_eq!(MetaRecord::decode(&bytes).unwrap(), draining);
        let mut head = Vec::new();
        put_id(&mut head, &r.node);
        put_varint(&mut head, r.version);
        assert_eq!(bytes[head.len()], FLAG_LEAVING | FLAG_DRAINING);
        bytes[head.len()] |= 4;
        assert!(MetaRecord::decode(&bytes).is_err());
    }
}
