//! What moved between two rings, as data: the key ranges whose owner
//! changed, with the old and the new owner (`registry_core::Moves`).

use crate::args::{arg_out, arg_ref, arg_str};
use crate::error::{guard, guard_value, registry_status, FfiResult};
use crate::handle::{free_box, to_box};
use crate::ring::registry_ring;
use crate::service::c_string;
use registry_core::{Error, Moves};
use std::collections::BTreeSet;
use std::ffi::{c_char, CString};

/// The key ranges whose owner changed between two rings. Opaque; created
/// with `registry_ring_moves`, read with `registry_moves_len`,
/// `registry_moves_get`, `registry_moves_of_key` and
/// `registry_moves_positions`, released with `registry_moves_free`.
/// Immutable and thread-safe: reads from several threads run in parallel.
pub struct registry_moves {
    moves: Moves,
    /// C forms of every owner id the ranges name, sorted by id.
    ids: Vec<CString>,
}

impl registry_moves {
    /// The moves with one C string per owner id they name.
    fn new(moves: Moves) -> Self {
        let names: BTreeSet<&str> = moves
            .ranges()
            .iter()
            .flat_map(|r| [r.from.as_deref(), r.to.as_deref()])
            .flatten()
            .collect();
        let ids = names.into_iter().map(c_string).collect();
        registry_moves { moves, ids }
    }

    /// The C form of an owner id; NULL for no owner.
    fn id(&self, id: Option<&str>) -> FfiResult<*const c_char> {
        let Some(id) = id else {
            return Ok(std::ptr::null());
        };
        let i = self
            .ids
            .binary_search_by(|c| c.as_bytes().cmp(id.as_bytes()))
            .map_err(|_| Error::Internal(format!("owner id {id:?} missing from the moves")))?;
        Ok(self.ids[i].as_ptr())
    }

    /// Whether `key` moved and, if so, the index of its range (else the
    /// number of ranges).
    fn of_key(&self, key: &str) -> FfiResult<(bool, usize)> {
        let ranges = self.moves.ranges();
        Ok(match self.moves.of_key(key)? {
            // Sorted and disjoint: the ranges before it end before it starts.
            Some(r) => (true, ranges.partition_point(|x| x.last < r.first)),
            None => (false, ranges.len()),
        })
    }
}

/// Writes the answer of `registry_moves_of_key(_len)`.
fn of_key_out(moves: &registry_moves, key: &str, moved_out: &mut bool, index_out: *mut usize) -> FfiResult {
    let (moved, index) = moves.of_key(key)?;
    *moved_out = moved;
    // SAFETY: NULL or writable (contract of the callers).
    unsafe { crate::args::put_opt(index_out, index) };
    Ok(())
}

/// What moved from `old_ring` to `new_ring`: every range of key positions
/// whose owner differs (draining members own nothing, as in the rings'
/// answers). Exact, from the rings' points (no sampling); the rings may
/// be standalone or taken from a view (`registry_view_ring`), e.g. before
/// and after a change of the group.
///
/// # Safety
/// `old_ring` and `new_ring` are live rings; `out` points to a writable
/// pointer. Ownership: the moves copy what they need (the rings may be
/// freed first); on `REGISTRY_OK` the caller owns `*out` and releases it
/// with `registry_moves_free`.
#[no_mangle]
pub unsafe extern "C" fn registry_ring_moves(
    old_ring: *const registry_ring,
    new_ring: *const registry_ring,
    out: *mut *mut registry_moves,
) -> registry_status {
    guard("registry_ring_moves", || {
        let out = arg_out!(mut_ptr out);
        let old_ring = arg_ref!(old_ring);
        let new_ring = arg_ref!(new_ring);
        let moves = Moves::between(old_ring.ring(), new_ring.ring());
        *out = to_box(registry_moves::new(moves));
        Ok(())
    })
}

/// Releases moves. NULL is a no-op.
///
/// # Safety
/// `moves` is NULL or from `registry_ring_moves`, released only once, and
/// not in use by another thread. Ids it returned become invalid.
#[no_mangle]
pub unsafe extern "C" fn registry_moves_free(moves: *mut registry_moves) {
    // SAFETY: NULL or from `to_box`, released once (contract above).
    unsafe { free_box("registry_moves_free", moves) }
}

/// Number of moved ranges (0 when nothing moved); 0 if `moves` is NULL.
///
/// # Safety
/// `moves` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn registry_moves_len(moves: *const registry_moves) -> usize {
    // SAFETY: NULL or live (contract above).
    unsafe { moves.as_ref() }.map_or(0, |m| m.moves.ranges().len())
}

/// Number of key positions that changed owner, over all ranges (at most
/// 2^32, the whole key space); 0 if `moves` is NULL. Divided by 2^32
/// (4294967296.0) it is the fraction of the keys that moved.
///
/// # Safety
/// `moves` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn registry_moves_positions(moves: *const registry_moves) -> u64 {
    guard_value("registry_moves_positions", 0, || {
        // SAFETY: NULL or live (contract above).
        unsafe { moves.as_ref() }.map_or(0, |m| m.moves.ranges().iter().map(|r| r.positions()).sum())
    })
}

/// Range number `index` (ranges are sorted by position, never wrap, and
/// do not touch one with the same owners): key positions `*first_out ..=
/// *last_out` moved from owner `*from_out` to owner `*to_out`, NULL where
/// that ring had no serving member. `REGISTRY_NOT_FOUND` when `index >=
/// registry_moves_len()`.
///
/// # Safety
/// `moves` is live; the four out-parameters are writable. Ownership: the
/// ids belong to the moves and live as long as them; never free them.
#[no_mangle]
pub unsafe extern "C" fn registry_moves_get(
    moves: *const registry_moves,
    index: usize,
    first_out: *mut u32,
    last_out: *mut u32,
    from_out: *mut *const c_char,
    to_out: *mut *const c_char,
) -> registry_status {
    guard("registry_moves_get", || {
        let from_out = arg_out!(ptr from_out);
        let to_out = arg_out!(ptr to_out);
        let first_out = arg_out!(first_out);
        let last_out = arg_out!(last_out);
        let moves = arg_ref!(moves);
        let ranges = moves.moves.ranges();
        let r = ranges.get(index).ok_or_else(|| {
            Error::not_found(format!(
                "range index {index} is out of range (there are {})",
                ranges.len()
            ))
        })?;
        *from_out = moves.id(r.from.as_deref())?;
        *to_out = moves.id(r.to.as_deref())?;
        *first_out = r.first;
        *last_out = r.last;
        Ok(())
    })
}

/// Did `key` move, and from whom to whom: `*moved_out` says whether its
/// owner changed; if it did, `*index_out` is its range (read it with
/// `registry_moves_get`), else `registry_moves_len()`.
/// `REGISTRY_INVALID_ARGUMENT` for an empty key.
///
/// # Safety
/// `moves` is live; `key` is NUL-terminated; `moved_out` is writable;
/// `index_out` is NULL (not wanted) or writable.
#[no_mangle]
pub unsafe extern "C" fn registry_moves_of_key(
    moves: *const registry_moves,
    key: *const c_char,
    moved_out: *mut bool,
    index_out: *mut usize,
) -> registry_status {
    guard("registry_moves_of_key", || {
        let moved_out = arg_out!(moved_out);
        let moves = arg_ref!(moves);
        of_key_out(moves, arg_str!(key), moved_out, index_out)
    })
}

/// `registry_moves_of_key` with a key given as `key_len` bytes (no NUL
/// needed; NULL is accepted when `key_len` is 0).
///
/// # Safety
/// As `registry_moves_of_key`, with `key` pointing to `key_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn registry_moves_of_key_len(
    moves: *const registry_moves,
    key: *const c_char,
    key_len: usize,
    moved_out: *mut bool,
    index_out: *mut usize,
) -> registry_status {
    guard("registry_moves_of_key_len", || {
        let moved_out = arg_out!(moved_out);
        let moves = arg_ref!(moves);
        of_key_out(moves, arg_str!(key, key_len), moved_out, index_out)
    })
}
