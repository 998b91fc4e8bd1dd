//! Ownership of the handles the library gives to C, decided once per type.
//!
//! Every handle type implements [`Handle`] with exactly one ownership kind:
//! [`Boxed`] (one owner, created with [`to_box`], released with
//! [`free_box`] / [`free_box_with`]) or [`Shared`] (reference-counted,
//! created with [`to_arc`], copied with [`clone_arc`], released with
//! [`free_arc`]). The helpers are bound to the kind, so releasing a shared
//! handle as a boxed one (or the reverse) does not compile. A release
//! helper treats NULL as a no-op and runs inside the panic boundary.

use crate::error::guard_value;
use std::sync::Arc;

/// Handles owned by one `Box`: `*mut T` from [`to_box`].
pub(crate) enum Boxed {}

/// Reference-counted handles: `*const T` from [`to_arc`], one count per
/// pointer handed out.
pub(crate) enum Shared {}

/// A type the library hands to C behind a pointer, with its one ownership
/// kind ([`Boxed`] or [`Shared`]).
pub(crate) trait Handle: Sized {
    /// How the pointer owns the value.
    type Ownership;
}

/// Implements [`Handle`] for handle types: `handle!(Boxed: a, b; Shared: c)`.
macro_rules! handle {
    ($($kind:ident: $($t:ty),+);+ $(;)?) => {
        $($(impl $crate::handle::Handle for $t {
            type Ownership = $crate::handle::$kind;
        })+)+
    };
}

// Every handle type of the C API, with its one ownership kind.
handle!(
    Boxed:
        crate::cancel::registry_cancel,
        crate::client::registry_client,
        crate::moves::registry_moves,
        crate::registration::registry_registration,
        crate::ring::registry_ring,
        crate::view::registry_view,
        crate::service::registry_service_list,
        crate::service::registry_group_list;
    Shared:
        crate::service::registry_service;
);

/// Hands `value` to the caller as a boxed handle.
pub(crate) fn to_box<T: Handle<Ownership = Boxed>>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Releases a boxed handle; `finish` gets the box to drop (e.g. inside the
/// runtime, or after a graceful stop). NULL is a no-op; a panic is caught
/// and reported under `func`.
///
/// # Safety
/// `p` is NULL or came from [`to_box`] and is released only once.
pub(crate) unsafe fn free_box_with<T: Handle<Ownership = Boxed>>(
    func: &'static str,
    p: *mut T,
    finish: impl FnOnce(Box<T>),
) {
    if p.is_null() {
        return;
    }
    guard_value(func, (), || {
        // SAFETY: not NULL, from `Box::into_raw` in `to_box`, released once
        // (contract above).
        finish(unsafe { Box::from_raw(p) })
    })
}

/// Releases a boxed handle by dropping it; see [`free_box_with`].
///
/// # Safety
/// `p` is NULL or came from [`to_box`] and is released only once.
pub(crate) unsafe fn free_box<T: Handle<Ownership = Boxed>>(func: &'static str, p: *mut T) {
    // SAFETY: the same contract.
    unsafe { free_box_with(func, p, drop) }
}

/// Hands one reference of `value` to the caller as a shared handle.
pub(crate) fn to_arc<T: Handle<Ownership = Shared>>(value: Arc<T>) -> *const T {
    Arc::into_raw(value)
}

/// A new reference to a shared handle, leaving the caller's own in place;
/// `None` for NULL. (No exported function copies a handle today; this is
/// the one way to, should one.)
///
/// # Safety
/// `p` is NULL or came from [`to_arc`] (or is borrowed from a live owner
/// of such an `Arc`) and is live.
#[allow(dead_code)]
pub(crate) unsafe fn clone_arc<T: Handle<Ownership = Shared>>(p: *const T) -> Option<Arc<T>> {
    if p.is_null() {
        return None;
    }
    // SAFETY: not NULL and points into a live `Arc` (contract above); the
    // count is raised before the new `Arc` is made from it.
    unsafe {
        Arc::increment_strong_count(p);
        Some(Arc::from_raw(p))
    }
}

/// Releases one reference of a shared handle. NULL is a no-op; a panic is
/// caught and reported under `func`.
///
/// # Safety
/// `p` is NULL or came from [`to_arc`] and this reference is released
/// only once.
pub(crate) unsafe fn free_arc<T: Handle<Ownership = Shared>>(func: &'static str, p: *const T) {
    if p.is_null() {
        return;
    }
    guard_value(func, (), || {
        // SAFETY: not NULL, from `Arc::into_raw` in `to_arc`, this reference
        // released once (contract above).
        drop(unsafe { Arc::from_raw(p) })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static DROPS: AtomicUsize = AtomicUsize::new(0);

    struct Counted;
    impl Drop for Counted {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::SeqCst);
        }
    }
    struct One(#[allow(dead_code)] Counted);
    struct Many(#[allow(dead_code)] Counted);
    handle!(Boxed: One; Shared: Many);

    #[test]
    fn each_kind_is_created_copied_and_released_once() {
        let before = DROPS.load(Ordering::SeqCst);
        unsafe {
            free_box::<One>("t", std::ptr::null_mut());
            free_arc::<Many>("t", std::ptr::null());
            assert!(clone_arc::<Many>(std::ptr::null()).is_none());

            free_box("t", to_box(One(Counted)));
            assert_eq!(DROPS.load(Ordering::SeqCst), before + 1);

            let mut seen = false;
            free_box_with("t", to_box(One(Counted)), |b| {
                seen = true;
                drop(b)
            });
            assert!(seen);
            assert_eq!(DROPS.load(Ordering::SeqCst), before + 2);

            let p = to_arc(Arc::new(Many(Counted)));
            let copy = clone_arc(p).expect("not NULL");
            assert_eq!(Arc::strong_count(&copy), 2);
            free_arc("t", p);
            assert_eq!(Arc::strong_count(&copy), 1);
            assert_eq!(DROPS.load(Ordering::SeqCst), before + 2);
            drop(copy);
            assert_eq!(DROPS.load(Ordering::SeqCst), before + 3);
        }
    }
}
