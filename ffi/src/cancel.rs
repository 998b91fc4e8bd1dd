//! Cancellation tokens: a caller stops a blocking call from another thread,
//! or bounds it by a deadline, and the call's work in the core stops (its
//! future is dropped).

use crate::args::arg_out;
use crate::error::{guard, registry_status, FfiError, FfiResult};
use crate::handle::{free_box, to_box};
use registry_core::runtime;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// A cancellation token for the calls that wait on the network
/// (`registry_client_new`, `registry_client_match`, `_match_n`, `_members`,
/// `_groups`, `registry_view_new`, `registry_registration_start`). Opaque;
/// created with `registry_cancel_new`, fired with `registry_cancel_fire`
/// from any thread, released with `registry_cancel_free` once no call uses
/// it. One token may serve several calls (every call of one request, say);
/// once fired or past its deadline it stays so, and each call given it
/// returns at once.
pub struct registry_cancel {
    fired: AtomicBool,
    wake: Notify,
    deadline: Option<Instant>,
}

impl registry_cancel {
    /// Resolves once the token is fired (`REGISTRY_CANCELLED`) or its
    /// deadline passes (`REGISTRY_TIMEOUT`).
    async fn done(&self) -> FfiError {
        let fired = async {
            loop {
                let woken = self.wake.notified();
                tokio::pin!(woken);
                // Registered before the flag is read: a fire in between wakes it.
                woken.as_mut().enable();
                if self.fired.load(Ordering::Acquire) {
                    return;
                }
                woken.await;
            }
        };
        let cancelled = || FfiError {
            status: registry_status::REGISTRY_CANCELLED,
            message: "cancelled by the caller".into(),
        };
        match self.deadline {
            None => {
                fired.await;
                cancelled()
            }
            Some(at) => tokio::select! {
                biased;
                () = fired => cancelled(),
                () = tokio::time::sleep_until(at.into()) => FfiError {
                    status: registry_status::REGISTRY_TIMEOUT,
                    message: "the caller's deadline passed".into(),
                },
            },
        }
    }
}

/// Runs `fut` on the shared runtime from the caller's thread until it ends
/// or `cancel` (NULL: never) fires; on cancellation `fut` is dropped, which
/// stops its work.
pub(crate) fn block_on<T>(
    cancel: Option<&registry_cancel>,
    fut: impl Future<Output = registry_core::Result<T>>,
) -> FfiResult<T> {
    let Some(token) = cancel else {
        return Ok(runtime::block_on(fut)??);
    };
    runtime::block_on(async {
        tokio::select! {
            biased;
            e = token.done() => Err(e),
            r = fut => Ok(r?),
        }
    })?
}

/// The token behind a `cancel` argument (NULL: none).
///
/// # Safety
/// `p` is NULL or a live token.
pub(crate) unsafe fn token<'a>(p: *const registry_cancel) -> Option<&'a registry_cancel> {
    // SAFETY: NULL or live (contract above).
    unsafe { p.as_ref() }
}

/// Creates a cancellation token. `timeout_ms` > 0 gives it a deadline that
/// many milliseconds from now, after which the calls given it fail with
/// `REGISTRY_TIMEOUT`; 0 = no deadline. `registry_cancel_fire` makes them
/// fail with `REGISTRY_CANCELLED`.
///
/// # Safety
/// `out` points to a writable pointer. Ownership: on `REGISTRY_OK` the
/// caller owns `*out` and releases it with `registry_cancel_free`.
#[no_mangle]
pub unsafe extern "C" fn registry_cancel_new(
    timeout_ms: u32,
    out: *mut *mut registry_cancel,
) -> registry_status {
    guard("registry_cancel_new", || {
        let out = arg_out!(mut_ptr out);
        let deadline = (timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(timeout_ms.into()));
        *out = to_box(registry_cancel {
            fired: AtomicBool::new(false),
            wake: Notify::new(),
            deadline,
        });
        Ok(())
    })
}

/// Fires the token: every call given it, running or later, returns
/// `REGISTRY_CANCELLED` at once and its work stops. Safe from any thread,
/// also while a call uses the token; firing twice is harmless; NULL is a
/// no-op.
///
/// # Safety
/// `cancel` is NULL or a token from `registry_cancel_new` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn registry_cancel_fire(cancel: *const registry_cancel) {
    guard("registry_cancel_fire", || {
        // SAFETY: NULL or a live token (contract above).
        if let Some(token) = unsafe { cancel.as_ref() } {
            token.fired.store(true, Ordering::Release);
            token.wake.notify_waiters();
        }
        Ok(())
    });
}

/// Releases a token. NULL is a no-op.
///
/// # Safety
/// `cancel` is NULL or a token from `registry_cancel_new`, released once,
/// after every call given it has returned and no thread fires it any more.
#[no_mangle]
pub unsafe extern "C" fn registry_cancel_free(cancel: *mut registry_cancel) {
    // SAFETY: NULL or from `to_box`, released once (contract above).
    unsafe { free_box("registry_cancel_free", cancel) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr;

    fn token(timeout_ms: u32) -> *mut registry_cancel {
        let mut p = ptr::null_mut();
        assert_eq!(
            unsafe { registry_cancel_new(timeout_ms, &mut p) },
            registry_status::REGISTRY_OK
        );
        p
    }

    #[test]
    fn a_fired_token_stops_a_pending_call_at_once() {
        let p = token(0);
        let t = unsafe { &*p };
        let start = Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                unsafe { registry_cancel_fire(t) };
            });
            let r = block_on(Some(t), std::future::pending::<registry_core::Result<()>>());
            assert_eq!(r.unwrap_err().status, registry_status::REGISTRY_CANCELLED);
        });
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
        // Fired stays fired: a later call returns at once, even a ready one.
        let r = block_on(Some(t), async { Ok(1) });
        assert_eq!(r.unwrap_err().status, registry_status::REGISTRY_CANCELLED);
        unsafe { registry_cancel_free(p) };
    }

    #[test]
    fn a_deadline_times_out_and_an_unfired_token_lets_calls_finish() {
        let p = token(30);
        let start = Instant::now();
        let r = block_on(
            Some(unsafe { &*p }),
            std::future::pending::<registry_core::Result<()>>(),
        );
        assert_eq!(r.unwrap_err().status, registry_status::REGISTRY_TIMEOUT);
        assert!(start.elapsed() >= Duration::from_millis(30));
        unsafe { registry_cancel_free(p) };
        let p = token(0);
        assert_eq!(block_on(Some(unsafe { &*p }), async { Ok(7) }).unwrap(), 7);
        assert_eq!(block_on(None, async { Ok(8) }).unwrap(), 8);
        unsafe { registry_cancel_free(p) };
        unsafe { registry_cancel_fire(ptr::null()) };
        unsafe { registry_cancel_free(ptr::null_mut()) };
    }
}
