//! The local view of a group: follows the group through Watch and answers
//! matches from a local ring, with no round trip.

use crate::args::{arg_out, arg_ref, arg_str, put_opt};
use crate::cancel::{block_on, registry_cancel, token};
use crate::changes::Watchers;
use crate::client::registry_client;
use crate::error::{guard, registry_status, FfiResult};
use crate::handle::{free_box_with, to_box};
use crate::ring::registry_ring;
use crate::service::{registry_service, registry_service_list};
use arc_swap::ArcSwap;
use registry_core::{runtime, GroupSnapshot, GroupView};
use std::ffi::c_char;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The C forms of one snapshot's members, built once per snapshot so that a
/// match hands out a reference count instead of copying strings.
struct Cached {
    snapshot: Arc<GroupSnapshot>,
    services: Vec<Arc<registry_service>>,
    /// Which cache of this view this is: grows with every rebuild.
    generation: u64,
}

impl Cached {
    fn new(snapshot: Arc<GroupSnapshot>, generation: u64) -> Self {
        let services = snapshot
            .members()
            .iter()
            .map(|s| registry_service::new(s))
            .collect();
        Cached {
            snapshot,
            services,
            generation,
        }
    }

    /// The C form of the member at `index` in `self.snapshot.members()`.
    fn service(&self, index: usize) -> FfiResult<Arc<registry_service>> {
        if let Some(s) = self.services.get(index) {
            return Ok(s.clone());
        }
        let member =
            self.snapshot.members().get(index).ok_or_else(|| {
                registry_core::Error::Internal(format!("member index {index} out of range"))
            })?;
        Ok(registry_service::new(member))
    }
}

/// A local view of one group. Opaque; created with `registry_view_new`,
/// released with `registry_view_free`. Thread-safe: lookups from several
/// threads run in parallel and never wait for an update.
pub struct registry_view {
    inner: GroupView,
    cache: ArcSwap<Cached>,
    /// Source of cache generations.
    generations: AtomicU64,
    /// Threads of `registry_view_on_change`; stopped with the view.
    watchers: Mutex<Watchers>,
}

impl Drop for registry_view {
    /// Stops the change callbacks first: a running one may still read the
    /// view.
    fn drop(&mut self) {
        if let Ok(watchers) = self.watchers.get_mut() {
            drop(std::mem::take(watchers));
        }
    }
}

impl registry_view {
    /// The core view.
    pub(crate) fn inner(&self) -> &GroupView {
        &self.inner
    }

    /// The change callbacks' threads.
    pub(crate) fn watchers(&self) -> &Mutex<Watchers> {
        &self.watchers
    }

    /// Runs `f` on the cache of the view's current snapshot, rebuilding
    /// the cache first when the snapshot changed. The fast path takes no
    /// reference count on the cache (an `arc_swap` guard).
    fn with_current<R>(&self, f: impl FnOnce(&Cached) -> R) -> R {
        let snap = self.inner.snapshot();
        let cached = self.cache.load();
        if Arc::ptr_eq(&cached.snapshot, &snap) {
            return f(&cached);
        }
        drop(cached);
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let fresh = Arc::new(Cached::new(snap, generation));
        self.cache.store(fresh.clone());
        f(&fresh)
    }

    fn match_key(&self, key: &str) -> FfiResult<*const registry_service> {
        self.inner.check_fresh()?;
        self.with_current(|cached| {
            let index = cached.snapshot.match_index(key)?;
            Ok(registry_service::into_raw(cached.service(index)?))
        })
    }

    fn match_n(&self, key: &str, n: usize) -> FfiResult<*mut registry_service_list> {
        self.inner.check_fresh()?;
        self.with_current(|cached| {
            let indexes = cached.snapshot.match_n_indexes(key, n)?;
            let items = indexes
                .into_iter()
                .map(|i| cached.service(i))
                .collect::<FfiResult<_>>()?;
            Ok(registry_service_list::into_raw(items))
        })
    }
}

/// Creates a local view of `group` from a client: it subscribes to the
/// group through a registry and waits for the first snapshot (up to the
/// client's connect plus request timeout) so that it answers at once.
/// `REGISTRY_UNAVAILABLE` when no registry sends one in time;
/// `REGISTRY_LIMIT_EXCEEDED` at once when every registry refuses the
/// stream (each already serves its `--max-watch-streams`). The view
/// keeps following the group (resubscribing through another registry when
/// its stream breaks) until it is freed.
///
/// # Safety
/// `client` is a live client; `group` is NUL-terminated; `out` points to a
/// writable pointer; `cancel` as in `registry_client_match`. Ownership:
/// the view keeps its own reference to the client's connections, so the
/// client may be freed first. On `REGISTRY_OK` the caller owns `*out` and
/// releases it with `registry_view_free`.
#[no_mangle]
pub unsafe extern "C" fn registry_view_new(
    client: *const registry_client,
    group: *const c_char,
    out: *mut *mut registry_view,
    cancel: *const registry_cancel,
) -> registry_status {
    guard("registry_view_new", || {
        let out = arg_out!(mut_ptr out);
        let client = arg_ref!(client);
        let group = arg_str!(group);
        // SAFETY: NULL or live (contract above).
        let inner = block_on(unsafe { token(cancel) }, client.inner.group(group))?;
        let cache = ArcSwap::from_pointee(Cached::new(inner.snapshot(), 1));
        *out = to_box(registry_view {
            inner,
            cache,
            generations: AtomicU64::new(1),
            watchers: Mutex::new(Watchers::default()),
        });
        Ok(())
    })
}

/// Stops following the group and releases the view. NULL is a no-op.
///
/// # Safety
/// `view` is NULL or a view from `registry_view_new`, released only once,
/// and not in use by another thread. Services and lists it returned stay
/// valid until they are freed.
#[no_mangle]
pub unsafe extern "C" fn registry_view_free(view: *mut registry_view) {
    // SAFETY: NULL or from `to_box`, released once (contract above).
    unsafe {
        free_box_with("registry_view_free", view, |view| {
            let _rt = runtime::shared().map(|rt| rt.enter());
            drop(view);
        })
    }
}

/// The member that owns `key`, from the local ring (no round trip).
/// `REGISTRY_NOT_FOUND` when the group has no members;
/// `REGISTRY_INVALID_ARGUMENT` for an empty key.
///
/// # Safety
/// `view` is a live view; `key` is NUL-terminated; `out` points to a
/// writable pointer. Ownership: on `REGISTRY_OK` the caller owns `*out`
/// and releases it with `registry_service_free`.
#[no_mangle]
pub unsafe extern "C" fn registry_view_match(
    view: *const registry_view,
    key: *const c_char,
    out: *mut *const registry_service,
) -> registry_status {
    guard("registry_view_match", || {
        let out = arg_out!(ptr out);
        let view = arg_ref!(view);
        *out = view.match_key(arg_str!(key))?;
        Ok(())
    })
}

/// `registry_view_match` with a key given as `key_len` bytes (no NUL
/// needed; NULL is accepted when `key_len` is 0).
///
/// # Safety
/// As `registry_view_match`, with `key` pointing to `key_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn registry_view_match_len(
    view: *const registry_view,
    key: *const c_char,
    key_len: usize,
    out: *mut *const registry_service,
) -> registry_status {
    guard("registry_view_match_len", || {
        let out = arg_out!(ptr out);
        let view = arg_ref!(view);
        *out = view.match_key(arg_str!(key, key_len))?;
        Ok(())
    })
}

/// Up to `n` distinct members for `key`, in preference order, from the
/// local ring; fewer when the group is smaller. `REGISTRY_INVALID_ARGUMENT`
/// when `n` is 0.
///
/// # Safety
/// `view` is a live view; `key` is NUL-terminated; `out` points to a
/// writable pointer. Ownership: on `REGISTRY_OK` the caller owns `*out`
/// and releases it with `registry_service_list_free`.
#[no_mangle]
pub unsafe extern "C" fn registry_view_match_n(
    view: *const registry_view,
    key: *const c_char,
    n: usize,
    out: *mut *mut registry_service_list,
) -> registry_status {
    guard("registry_view_match_n", || {
        let out = arg_out!(mut_ptr out);
        let view = arg_ref!(view);
        *out = view.match_n(arg_str!(key), n)?;
        Ok(())
    })
}

/// `registry_view_match_n` with a key given as `key_len` bytes.
///
/// # Safety
/// As `registry_view_match_n`, with `key` pointing to `key_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn registry_view_match_n_len(
    view: *const registry_view,
    key: *const c_char,
    key_len: usize,
    n: usize,
    out: *mut *mut registry_service_list,
) -> registry_status {
    guard("registry_view_match_n_len", || {
        let out = arg_out!(mut_ptr out);
        let view = arg_ref!(view);
        *out = view.match_n(arg_str!(key, key_len), n)?;
        Ok(())
    })
}

/// Every member of the group in the local snapshot (sorted by id; empty
/// when the group has none), and that snapshot's ring version and
/// checksum (as `registry_view_checksum`, read with the same snapshot).
///
/// # Safety
/// `view` is a live view; `out` points to a writable pointer;
/// `version_out` and `checksum_out` are each NULL (not wanted) or
/// writable. Ownership: on
/// `REGISTRY_OK` the caller owns `*out` and releases it with
/// `registry_service_list_free`.
#[no_mangle]
pub unsafe extern "C" fn registry_view_members(
    view: *const registry_view,
    out: *mut *mut registry_service_list,
    version_out: *mut u64,
    checksum_out: *mut u64,
) -> registry_status {
    guard("registry_view_members", || {
        let out = arg_out!(mut_ptr out);
        let view = arg_ref!(view);
        let (version, checksum, services) =
            view.with_current(|c| (c.snapshot.version(), c.snapshot.checksum(), c.services.clone()));
        // SAFETY: each NULL or writable (contract above).
        unsafe {
            put_opt(version_out, version);
            put_opt(checksum_out, checksum);
        }
        *out = registry_service_list::into_raw(services);
        Ok(())
    })
}

/// The owner of `key` as an index into the local snapshot's members
/// (sorted by id), and the generation of that snapshot: no object to free,
/// nothing copied. Pair it with `registry_view_members_generation`: when
/// the generations are equal, `index` is the position of the owner in that
/// list (e.g. to pick a connection from a per-member pool). A view's
/// generation grows whenever its snapshot changes.
///
/// # Safety
/// `view` is a live view; `key` points to `key_len` bytes (NULL only with
/// `key_len` 0); `index_out` and `generation_out` are writable.
#[no_mangle]
pub unsafe extern "C" fn registry_view_match_index(
    view: *const registry_view,
    key: *const c_char,
    key_len: usize,
    index_out: *mut usize,
    generation_out: *mut u64,
) -> registry_status {
    guard("registry_view_match_index", || {
        let index_out = arg_out!(index_out);
        let generation_out = arg_out!(generation_out);
        let view = arg_ref!(view);
        let key = arg_str!(key, key_len);
        view.inner.check_fresh()?;
        let (index, generation) = view
            .with_current(|cached| FfiResult::Ok((cached.snapshot.match_index(key)?, cached.generation)))?;
        *index_out = index;
        *generation_out = generation;
        Ok(())
    })
}

/// `registry_view_members`, plus the generation of the snapshot listed
/// (see `registry_view_match_index`).
///
/// # Safety
/// `view` is a live view; `out` points to a writable pointer;
/// `version_out` is NULL or writable; `generation_out` is writable.
/// Ownership: on `REGISTRY_OK` the caller owns `*out` and releases it with
/// `registry_service_list_free`.
#[no_mangle]
pub unsafe extern "C" fn registry_view_members_generation(
    view: *const registry_view,
    out: *mut *mut registry_service_list,
    version_out: *mut u64,
    generation_out: *mut u64,
) -> registry_status {
    guard("registry_view_members_generation", || {
        let out = arg_out!(mut_ptr out);
        let generation_out = arg_out!(generation_out);
        let view = arg_ref!(view);
        let (version, generation, services) =
            view.with_current(|c| (c.snapshot.version(), c.generation, c.services.clone()));
        // SAFETY: NULL or writable (contract above).
        unsafe { put_opt(version_out, version) };
        *generation_out = generation;
        *out = registry_service_list::into_raw(services);
        Ok(())
    })
}

/// The ring version of the snapshot the view answers from, as numbered by
/// the registry that sent it (grows with every change).
///
/// # Safety
/// `view` is a live view; `out` points to a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn registry_view_version(view: *const registry_view, out: *mut u64) -> registry_status {
    guard("registry_view_version", || {
        let out = arg_out!(out);
        *out = arg_ref!(view).inner.version();
        Ok(())
    })
}

/// The ring checksum of the snapshot the view answers from: that of the
/// ring it built locally, which equals the one the registry reported for
/// those members (the view refuses a snapshot whose checksums differ).
/// Equal checksums mean equal answers on any registry or client.
///
/// # Safety
/// `view` is a live view; `out` points to a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn registry_view_checksum(
    view: *const registry_view,
    out: *mut u64,
) -> registry_status {
    guard("registry_view_checksum", || {
        let out = arg_out!(out);
        *out = arg_ref!(view).inner.checksum();
        Ok(())
    })
}

/// Whether the view's Watch stream is open. When false the view answers
/// from its last snapshot while it resubscribes.
///
/// # Safety
/// `view` is a live view; `out` points to a writable `bool`.
#[no_mangle]
pub unsafe extern "C" fn registry_view_is_connected(
    view: *const registry_view,
    out: *mut bool,
) -> registry_status {
    guard("registry_view_is_connected", || {
        let out = arg_out!(out);
        *out = arg_ref!(view).inner.is_connected();
        Ok(())
    })
}

/// How long the view's snapshot has gone unconfirmed, in ms: 0 while its
/// Watch stream is open, else the time since the last stream closed.
/// With `registry_client_options.max_staleness_ms` set, the match calls
/// fail with `REGISTRY_UNAVAILABLE` once it is over that bound.
///
/// # Safety
/// `view` is a live view; `out` points to a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn registry_view_staleness_ms(
    view: *const registry_view,
    out: *mut u64,
) -> registry_status {
    guard("registry_view_staleness_ms", || {
        let out = arg_out!(out);
        let stale = arg_ref!(view).inner.staleness();
        *out = u64::try_from(stale.as_millis()).unwrap_or(u64::MAX);
        Ok(())
    })
}

/// The ring the view answers from now, as a ring handle: a snapshot that
/// later changes of the group do not alter, so that the rings taken before
/// and after a change give what moved (`registry_ring_moves`). It shares
/// the view's ring (no point is copied) and lists draining members too.
///
/// # Safety
/// `view` is a live view; `out` points to a writable pointer. Ownership:
/// on `REGISTRY_OK` the caller owns `*out` and releases it with
/// `registry_ring_free`; it stays valid after the view is freed.
#[no_mangle]
pub unsafe extern "C" fn registry_view_ring(
    view: *const registry_view,
    out: *mut *mut registry_ring,
) -> registry_status {
    guard("registry_view_ring", || {
        let out = arg_out!(mut_ptr out);
        let view = arg_ref!(view);
        *out = to_box(registry_ring::of_snapshot(view.inner.snapshot()));
        Ok(())
    })
}
