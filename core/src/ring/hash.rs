//! The two hash functions that place keys and member points on the ring.
//!
//! Both are part of the ring's wire-level contract ([`super::RING_ALGORITHM`]):
//! every front door and every platform must compute exactly these values.

use twox_hash::XxHash3_64;

/// Seed of every xxHash3-64 the ring computes (keys and member ids): the
/// ASCII bytes of `"registry"` read as a big-endian `u64`.
pub const HASH_SEED: u64 = 0x7265_6769_7374_7279;

/// Odd constant (2^64 / golden ratio) that spaces a member's virtual nodes
/// before mixing; the splitmix64 increment.
pub const VNODE_STEP: u64 = 0x9E37_79B9_7F4A_7C15;

/// Position of `key` on the ring: the top 32 bits of
/// `XXH3_64bits_withSeed(key's UTF-8 bytes, HASH_SEED)`.
#[inline]
pub fn key_position(key: &str) -> u32 {
    (XxHash3_64::oneshot_with_seed(HASH_SEED, key.as_bytes()) >> 32) as u32
}

/// Position of virtual node `vnode` of the member `id`:
/// `top32(mix64(xxh3_64(id, HASH_SEED) + vnode * VNODE_STEP))` where `mix64`
/// is the splitmix64 finalizer (wrapping arithmetic throughout).
#[inline]
pub fn point_position(id: &str, vnode: u32) -> u32 {
    point_from_id_hash(id_hash(id), vnode)
}

/// xxHash3-64 of a member id, the base of all its points.
#[inline]
pub(crate) fn id_hash(id: &str) -> u64 {
    XxHash3_64::oneshot_with_seed(HASH_SEED, id.as_bytes())
}

/// The point of virtual node `vnode` given the member's [`id_hash`].
#[inline]
pub(crate) fn point_from_id_hash(id_hash: u64, vnode: u32) -> u32 {
    (mix64(id_hash.wrapping_add(u64::from(vnode).wrapping_mul(VNODE_STEP))) >> 32) as u32
}

/// The splitmix64 finalizer (Stafford's "mix13"): a bijection on `u64` whose
/// output bits each depend on every input bit.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix64_matches_the_published_splitmix64_sequence() {
        // splitmix64 seeded with 0: the first outputs are mix64(k * step).
        assert_eq!(mix64(VNODE_STEP), 0xE220_A839_7B1D_CDAF);
        assert_eq!(mix64(VNODE_STEP.wrapping_mul(2)), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn positions_depend_on_every_input() {
        assert_ne!(key_position("a"), key_position("b"));
        assert_ne!(point_position("a", 0), point_position("a", 1));
        assert_ne!(point_position("a", 0), point_position("b", 0));
        assert_eq!(point_position("a", 7), point_position("a", 7));
    }
}
