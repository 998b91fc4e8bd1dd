//! The ring checksum: one `u64` that names what defines a ring.
//!
//! Two rings with the same checksum were built by the same algorithm from
//! the same members and weights, so they give the same answers; registries
//! and clients compare it to make disagreement visible.
//!
//! # Definition (what every front door must reproduce)
//!
//! `checksum = XXH3_64bits_withSeed(encoding, HASH_SEED)` over this byte
//! string (every integer little-endian):
//!
//! 1. `u32` byte length of [`super::RING_ALGORITHM`], then its UTF-8 bytes
//!    (`"xxh3-vnode-v2"`);
//! 2. `u32` member count;
//! 3. per member, in the order of their ids' UTF-8 bytes (the ring's own
//!    order, so the order the members were given in does not matter):
//!    `u32` byte length of the id, the id's bytes, `u32` weight, then one
//!    state byte.
//!
//! The state byte is the member's ring state: `0` serving, `1` draining
//! (listed, owns no keys). A draining member changes which keys the others
//! own, so it changes the checksum. The empty ring's checksum is that of
//! step 1 followed by a count of 0.

use super::hash::HASH_SEED;
use super::{Member, RING_ALGORITHM};
use twox_hash::XxHash3_64;

/// State byte of a member that serves its share of the keys.
pub const STATE_SERVING: u8 = 0;

/// State byte of a draining member: listed, owns no keys.
pub const STATE_DRAINING: u8 = 1;

/// Checksum of a ring of `members`, which must be sorted by id.
pub(crate) fn of_sorted(members: &[Member]) -> u64 {
    let ids: usize = members.iter().map(|m| m.id.len() + 9).sum();
    let mut bytes = Vec::with_capacity(8 + RING_ALGORITHM.len() + ids);
    push_str(&mut bytes, RING_ALGORITHM);
    bytes.extend_from_slice(&(members.len() as u32).to_le_bytes());
    for m in members {
        push_str(&mut bytes, &m.id);
        bytes.extend_from_slice(&m.weight.to_le_bytes());
        bytes.push(m.state.byte());
    }
    XxHash3_64::oneshot_with_seed(HASH_SEED, &bytes)
}

/// Appends `s` as its `u32` little-endian byte length and its bytes.
fn push_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A checksum as the wire and the front doors show it: 16 lowercase hex
/// digits.
pub fn checksum_hex(checksum: u64) -> String {
    format!("{checksum:016x}")
}

/// Parses [`checksum_hex`]'s form back (exactly 16 hex digits).
pub fn parse_checksum_hex(text: &str) -> Option<u64> {
    if text.len() != 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

/// The low 53 bits of a checksum: exact as an `f64` (a metric's value).
pub fn checksum_low53(checksum: u64) -> u64 {
    checksum & ((1 << 53) - 1)
}

#[cfg(test)]
mod tests {
    use super::super::{MemberState, Ring};
    use super::*;

    fn sum(members: &[(&str, u32)]) -> u64 {
        Ring::new(members.iter().copied())
            .expect("valid members")
            .checksum()
    }

    #[test]
    fn the_order_of_the_members_does_not_matter() {
        assert_eq!(
            sum(&[("a", 1), ("b", 2), ("c", 3)]),
            sum(&[("c", 3), ("a", 1), ("b", 2)])
        );
    }

    #[test]
    fn joins_leaves_and_weights_change_it() {
        let base = sum(&[("a", 1), ("b", 1)]);
        assert_ne!(base, sum(&[("a", 1), ("b", 1), ("c", 1)]));
        assert_ne!(base, sum(&[("a", 1)]));
        assert_ne!(base, sum(&[("a", 1), ("b", 2)]));
        assert_ne!(base, Ring::default().checksum());
        let draining = Ring::with_states([("a", 1, MemberState::Serving), ("b", 1, MemberState::Draining)])
            .expect("valid members")
            .checksum();
        assert_ne!(base, draining);
        // Lengths keep ids apart: "ab"+"c" is not "a"+"bc".
        assert_ne!(sum(&[("ab", 1), ("c", 1)]), sum(&[("a", 1), ("bc", 1)]));
    }

    #[test]
    fn the_empty_ring_hashes_the_algorithm_and_a_zero_count() {
        let mut bytes = (RING_ALGORITHM.len() as u32).to_le_bytes().to_vec();
        bytes.extend_from_slice(RING_ALGORITHM.as_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        let want = XxHash3_64::oneshot_with_seed(HASH_SEED, &bytes);
        assert_eq!(Ring::default().checksum(), want);
    }

    #[test]
    fn hex_round_trips_and_refuses_other_forms() {
        let c = sum(&[("a", 1)]);
        assert_eq!(parse_checksum_hex(&checksum_hex(c)), Some(c));
        assert_eq!(checksum_hex(1), "0000000000000001");
        assert_eq!(parse_checksum_hex("1"), None);
        assert_eq!(parse_checksum_hex("+000000000000001"), None);
        assert_eq!(parse_checksum_hex("000000000000000g"), None);
        assert_eq!(checksum_low53(u64::MAX), (1 << 53) - 1);
    }
}
