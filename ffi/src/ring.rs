//! A standalone consistent-hash ring: the very ring the registry servers
//! and local views use, built from ids and weights the caller gives, or
//! taken from a local view.

use crate::args::{arg_out, arg_ref, arg_slice, arg_str};
use crate::error::{guard, registry_status, FfiError, FfiResult};
use crate::handle::{free_box, to_box};
use crate::service::c_string;
use registry_core::ring::MemberState;
use registry_core::{GroupSnapshot, Ring};
use std::ffi::{c_char, CString};
use std::sync::Arc;

/// An immutable ring of members (id, weight, draining). Opaque; created
/// with `registry_ring_new`, `registry_ring_new_with_states` or
/// `registry_view_ring`, released with `registry_ring_free`. Thread-safe:
/// lookups from several threads run in parallel.
pub struct registry_ring {
    source: Source,
    /// C forms of the ring's member ids, in the order of its members.
    ids: Vec<CString>,
}

/// Where a ring handle's ring lives.
enum Source {
    /// Built for this handle.
    Own(Ring),
    /// The ring of a view's snapshot, shared with it (no point copied).
    Snapshot(Arc<GroupSnapshot>),
}

impl Source {
    /// The ring itself.
    fn ring(&self) -> &Ring {
        match self {
            Source::Own(ring) => ring,
            Source::Snapshot(snapshot) => snapshot.ring(),
        }
    }
}

impl registry_ring {
    /// A handle on `source`, with the C forms of its member ids.
    fn from_source(source: Source) -> Self {
        let ids = source.ring().members().iter().map(|m| c_string(&m.id)).collect();
        registry_ring { source, ids }
    }

    /// A handle on the ring of `snapshot`, which it keeps alive.
    pub(crate) fn of_snapshot(snapshot: Arc<GroupSnapshot>) -> Self {
        Self::from_source(Source::Snapshot(snapshot))
    }

    /// The ring itself.
    pub(crate) fn ring(&self) -> &Ring {
        self.source.ring()
    }

    /// The owner of `key`; the ring checks the key and its members.
    fn locate(&self, key: &str) -> FfiResult<*const c_char> {
        let i = self.ring().locate(key)?;
        self.id(i)
    }

    fn id(&self, i: usize) -> FfiResult<*const c_char> {
        self.ids
            .get(i)
            .map(|s| s.as_ptr())
            .ok_or_else(|| registry_core::Error::Internal(format!("ring index {i} out of range")).into())
    }

    fn locate_n(&self, key: &str, n: usize, ids_out: *mut *const c_char, count_out: &mut usize) -> FfiResult {
        if ids_out.is_null() {
            return Err(FfiError::invalid("ids_out is NULL"));
        }
        let found = self.ring().locate_n(key, n)?;
        for (slot, &i) in found.iter().take(n).enumerate() {
            let id = self.id(i)?;
            // SAFETY: `ids_out` has room for `n` pointers (caller contract)
            // and `slot < n`.
            unsafe { ids_out.add(slot).write(id) };
        }
        *count_out = found.len().min(n);
        Ok(())
    }
}

/// Name of the ring algorithm (`"xxh3-vnode-v2"`): the registries send it
/// with every snapshot, and the shared test vectors name the algorithm
/// their answers hold for.
///
/// # Safety
/// Always safe to call. Ownership: static string; never free it.
#[no_mangle]
pub extern "C" fn registry_ring_algorithm() -> *const c_char {
    static NAME: once_cell::sync::Lazy<CString> =
        once_cell::sync::Lazy::new(|| c_string(registry_core::ring::RING_ALGORITHM));
    NAME.as_ptr()
}

/// Builds a ring from `count` members: `ids[i]` with weight `weights[i]`
/// (1..=1000). `weights` may be NULL for weight 1 everywhere. The order of
/// the members does not matter. `REGISTRY_INVALID_ARGUMENT` for an empty,
/// duplicate or non-UTF-8 id or a weight out of range.
///
/// # Safety
/// `ids` points to `count` NUL-terminated strings; `weights` is NULL or
/// points to `count` `uint32_t`; `out` points to a writable pointer.
/// Ownership: the ring copies the ids; on `REGISTRY_OK` the caller owns
/// `*out` and releases it with `registry_ring_free`.
#[no_mangle]
pub unsafe extern "C" fn registry_ring_new(
    ids: *const *const c_char,
    weights: *const u32,
    count: usize,
    out: *mut *mut registry_ring,
) -> registry_status {
    guard("registry_ring_new", || {
        let out = arg_out!(mut_ptr out);
        // SAFETY: the contract above, with no draining flags.
        *out = unsafe { new_ring(ids, weights, std::ptr::null(), count) }?;
        Ok(())
    })
}

/// `registry_ring_new` with a state per member: `draining[i]` true makes
/// member `i` draining (listed, `registry_ring_member` gives it, but it
/// owns no keys: the ring answers as that of the serving members alone).
/// `draining` may be NULL for every member serving. A ring whose members
/// all drain has members but owns no key (`REGISTRY_NOT_FOUND` to locate).
///
/// # Safety
/// As `registry_ring_new`; `draining` is NULL or points to `count` `bool`.
/// Ownership: as `registry_ring_new`.
#[no_mangle]
pub unsafe extern "C" fn registry_ring_new_with_states(
    ids: *const *const c_char,
    weights: *const u32,
    draining: *const bool,
    count: usize,
    out: *mut *mut registry_ring,
) -> registry_status {
    guard("registry_ring_new_with_states", || {
        let out = arg_out!(mut_ptr out);
        // SAFETY: the contract above.
        *out = unsafe { new_ring(ids, weights, draining, count) }?;
        Ok(())
    })
}

/// The body of `registry_ring_new` and `registry_ring_new_with_states`.
///
/// # Safety
/// `ids` points to `count` NUL-terminated strings; `weights` and
/// `draining` are NULL or point to `count` values.
unsafe fn new_ring(
    ids: *const *const c_char,
    weights: *const u32,
    draining: *const bool,
    count: usize,
) -> FfiResult<*mut registry_ring> {
    let id_ptrs = arg_slice!(ids, count);
    let weights: &[u32] = if weights.is_null() {
        &[]
    } else {
        arg_slice!(weights, count)
    };
    let draining: &[bool] = if draining.is_null() {
        &[]
    } else {
        arg_slice!(draining, count)
    };
    let mut members = Vec::with_capacity(count);
    for (i, &p) in id_ptrs.iter().enumerate() {
        // SAFETY: NULL or NUL-terminated (contract above).
        let id = unsafe { crate::args::as_str(p, &format!("ids[{i}]")) }?;
        let state = MemberState::draining(draining.get(i).copied().unwrap_or(false));
        members.push((id, weights.get(i).copied().unwrap_or(1), state));
    }
    // Ids, weights (`weights[i]: ...`), duplicates and the ring's own
    // caps: checked by the ring.
    let ring = Ring::with_states(members)?;
    Ok(to_box(registry_ring::from_source(Source::Own(ring))))
}

/// Releases a ring. NULL is a no-op.
///
/// # Safety
/// `ring` is NULL or a ring from `registry_ring_new`,
/// `registry_ring_new_with_states` or `registry_view_ring`, released only
/// once, and not in use by another thread. Ids it returned become
/// invalid (moves computed from it keep their own copies).
#[no_mangle]
pub unsafe extern "C" fn registry_ring_free(ring: *mut registry_ring) {
    // SAFETY: NULL or from `to_box`, released once (contract above).
    unsafe { free_box("registry_ring_free", ring) }
}

/// Number of members of the ring; 0 if `ring` is NULL.
///
/// # Safety
/// `ring` is NULL or a live ring.
#[no_mangle]
pub unsafe extern "C" fn registry_ring_len(ring: *const registry_ring) -> usize {
    // SAFETY: NULL or live (contract above).
    unsafe { ring.as_ref() }.map_or(0, |r| r.ids.len())
}

/// The ring's checksum: an xxh3-64 of the algorithm name and the members'
/// ids and weights (tests/vectors/README.md defines it byte by byte), the
/// same as a registry reports for a group with these members.
///
/// # Safety
/// `ring` is a live ring; `out` points to a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn registry_ring_checksum(
    ring: *const registry_ring,
    out: *mut u64,
) -> registry_status {
    guard("registry_ring_checksum", || {
        let out = arg_out!(out);
        *out = arg_ref!(ring).ring().checksum();
        Ok(())
    })
}

/// Member number `index` of the ring (members are sorted by id): its id
/// and weight. `REGISTRY_NOT_FOUND` when `index >= registry_ring_len()`.
/// The id pointer is the one `registry_ring_locate` returns for that member.
///
/// # Safety
/// `ring` is a live ring; `id_out` and `weight_out` are writable.
/// Ownership: the id belongs to the ring; never free it.
#[no_mangle]
pub unsafe extern "C" fn registry_ring_member(
    ring: *const registry_ring,
    index: usize,
    id_out: *mut *const c_char,
    weight_out: *mut u32,
) -> registry_status {
    guard("registry_ring_member", || {
        let id_out = arg_out!(ptr id_out);
        let weight_out = arg_out!(weight_out);
        let ring = arg_ref!(ring);
        let member = ring.ring().members().get(index).ok_or_else(|| {
            registry_core::Error::not_found(format!(
                "member index {index} is out of range (the ring has {})",
                ring.ids.len()
            ))
        })?;
        *id_out = ring.id(index)?;
        *weight_out = member.weight;
        Ok(())
    })
}

/// The id of the member that owns `key`. `REGISTRY_NOT_FOUND` when the
/// ring has no members; `REGISTRY_INVALID_ARGUMENT` for an empty key.
///
/// # Safety
/// `ring` is a live ring; `key` is NUL-terminated; `id_out` points to a
/// writable pointer. Ownership: the id belongs to the ring and lives as
/// long as it; never free it.
#[no_mangle]
pub unsafe extern "C" fn registry_ring_locate(
    ring: *const registry_ring,
    key: *const c_char,
    id_out: *mut *const c_char,
) -> registry_status {
    guard("registry_ring_locate", || {
        let id_out = arg_out!(ptr id_out);
        let ring = arg_ref!(ring);
        *id_out = ring.locate(arg_str!(key))?;
        Ok(())
    })
}

/// `registry_ring_locate` with a key given as `key_len` bytes (no NUL
/// needed; NULL is accepted when `key_len` is 0).
///
/// # Safety
/// As `registry_ring_locate`, with `key` pointing to `key_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn registry_ring_locate_len(
    ring: *const registry_ring,
    key: *const c_char,
    key_len: usize,
    id_out: *mut *const c_char,
) -> registry_status {
    guard("registry_ring_locate_len", || {
        let id_out = arg_out!(ptr id_out);
        let ring = arg_ref!(ring);
        *id_out = ring.locate(arg_str!(key, key_len))?;
        Ok(())
    })
}

/// Up to `n` distinct member ids for `key`, in preference order (the first
/// is `registry_ring_locate`'s answer), written to `ids_out[0..*count_out]`;
/// fewer than `n` when the ring is smaller. `REGISTRY_INVALID_ARGUMENT`
/// when `n` is 0.
///
/// # Safety
/// `ring` is a live ring; `key` is NUL-terminated; `ids_out` points to an
/// array of at least `n` writable `const char *`; `count_out` is writable.
/// Ownership: the ids belong to the ring; never free them.
#[no_mangle]
pub unsafe extern "C" fn registry_ring_locate_n(
    ring: *const registry_ring,
    key: *const c_char,
    n: usize,
    ids_out: *mut *const c_char,
    count_out: *mut usize,
) -> registry_status {
    guard("registry_ring_locate_n", || {
        let count_out = arg_out!(count_out);
        *count_out = 0;
        let ring = arg_ref!(ring);
        ring.locate_n(arg_str!(key), n, ids_out, count_out)
    })
}

/// `registry_ring_locate_n` with a key given as `key_len` bytes.
///
/// # Safety
/// As `registry_ring_locate_n`, with `key` pointing to `key_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn registry_ring_locate_n_len(
    ring: *const registry_ring,
    key: *const c_char,
    key_len: usize,
    n: usize,
    ids_out: *mut *const c_char,
    count_out: *mut usize,
) -> registry_status {
    guard("registry_ring_locate_n_len", || {
        let count_out = arg_out!(count_out);
        *count_out = 0;
        let ring = arg_ref!(ring);
        ring.locate_n(arg_str!(key, key_len), n, ids_out, count_out)
    })
}
