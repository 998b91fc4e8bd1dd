//! Change callbacks of a view: each registered callback runs on a thread
//! of its own, once per change of the view's snapshot, until the view is
//! freed.

use crate::args::arg_ref;
use crate::error::{guard, registry_status, FfiError};
use crate::ring::registry_ring;
use crate::view::registry_view;
use registry_core::{runtime, Error, ViewChange};
use std::ffi::c_void;
use std::thread::JoinHandle;
use tokio::sync::watch;
use tokio_stream::StreamExt;

/// One change of a view's snapshot, as given to a
/// `registry_view_change_fn`. Every field is valid only during the call.
#[repr(C)]
#[derive(Debug)]
pub struct registry_view_change {
    /// Ring version before the change.
    pub old_version: u64,
    /// Ring version after it (the view's version now).
    pub new_version: u64,
    /// Ring checksum before the change.
    pub old_checksum: u64,
    /// Ring checksum after it.
    pub new_checksum: u64,
    /// The ring before the change; borrowed: do not free it. Pass it with
    /// `new_ring` to `registry_ring_moves` for the key ranges that moved.
    pub old_ring: *const registry_ring,
    /// The ring after the change; borrowed: do not free it.
    pub new_ring: *const registry_ring,
}

/// A change callback: `user_data` as given to `registry_view_on_change`,
/// and the change (valid only during the call).
pub type registry_view_change_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, change: *const registry_view_change)>;

/// The callback threads of one view; dropping it (with the view) stops
/// them and waits for a running callback to return.
#[derive(Default)]
pub(crate) struct Watchers {
    /// Dropped to stop the threads.
    stop: Option<watch::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for Watchers {
    fn drop(&mut self) {
        self.stop.take();
        let me = std::thread::current().id();
        for t in self.threads.drain(..) {
            // A callback that frees its own view: its thread ends by itself.
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
    }
}

/// `user_data` crosses to the callback thread; the caller vouches for it.
struct UserData(*mut c_void);
// SAFETY: `registry_view_on_change` documents that `user_data` is used
// from the callback thread.
unsafe impl Send for UserData {}

/// Calls `cb` once per change of `view` from now on, on a thread of its
/// own: calls never overlap and come in order. A consumer slower than the
/// changes gets them merged: each call goes from the last snapshot it was
/// told of to the newest, so `registry_ring_moves(old_ring, new_ring)` is
/// exactly what moved. Several callbacks may be registered; each gets
/// every change. They stop when the view is freed: `registry_view_free`
/// waits for a running call to return (from inside a callback, it frees
/// the view without waiting for that callback's own thread).
///
/// # Safety
/// `view` is a live view; `cb` is a function safe to call from another
/// thread with `user_data` until the view is freed; it must not unwind.
#[no_mangle]
pub unsafe extern "C" fn registry_view_on_change(
    view: *const registry_view,
    cb: registry_view_change_fn,
    user_data: *mut c_void,
) -> registry_status {
    guard("registry_view_on_change", || {
        let view = arg_ref!(view);
        let cb = cb.ok_or_else(|| FfiError::invalid("cb is NULL"))?;
        let mut changes = view.inner().changes();
        let mut watchers = view
            .watchers()
            .lock()
            .map_err(|_| Error::Internal("the view's callback list is poisoned".into()))?;
        let mut stopped = watchers
            .stop
            .get_or_insert_with(|| watch::channel(()).0)
            .subscribe();
        let data = UserData(user_data);
        let thread = std::thread::Builder::new()
            .name("registry-view-changes".into())
            .spawn(move || {
                let data = data;
                loop {
                    let next = runtime::block_on(async {
                        tokio::select! {
                            change = changes.next() => change,
                            _ = stopped.changed() => None,
                        }
                    });
                    let Ok(Some(change)) = next else { break };
                    call(cb, data.0, &change);
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the callback thread: {e}")))?;
        watchers.threads.push(thread);
        Ok(())
    })
}

/// Hands `change` to the C callback.
fn call(
    cb: unsafe extern "C" fn(*mut c_void, *const registry_view_change),
    user_data: *mut c_void,
    change: &ViewChange,
) {
    let old_ring = registry_ring::of_snapshot(change.old.clone());
    let new_ring = registry_ring::of_snapshot(change.new.clone());
    let c = registry_view_change {
        old_version: change.old.version(),
        new_version: change.new.version(),
        old_checksum: change.old.checksum(),
        new_checksum: change.new.checksum(),
        old_ring: &old_ring,
        new_ring: &new_ring,
    };
    // SAFETY: the caller of `registry_view_on_change` vouched for `cb`
    // and `user_data`; `c` and the rings outlive the call.
    unsafe { cb(user_data, &c) };
}
