//! The one process-wide tokio runtime behind the blocking front doors
//! (C ABI and Python), created on first use.

use crate::error::{Error, Result};
use once_cell::sync::OnceCell;
use tokio::runtime::{Builder, Runtime};

static RUNTIME: OnceCell<Runtime> = OnceCell::new();

/// The shared multi-threaded runtime (2 worker threads, named
/// `registry-rt`). Fails only if the OS refuses to create threads.
pub fn shared() -> Result<&'static Runtime> {
    RUNTIME.get_or_try_init(|| {
        Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("registry-rt")
            .on_thread_start(block_sigpipe)
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the runtime: {e}")))
    })
}

/// Blocks SIGPIPE in the calling (runtime) thread. A C host keeps the
/// default action for SIGPIPE, which kills the process when a socket write
/// finds the peer gone — as when a TLS registry refuses a client
/// certificate and closes the connection. Blocked in the threads that do
/// the writing, the write fails with EPIPE instead (reported as an
/// unavailable registry), and the host's own signal settings stay as they
/// are. (Rust and Python programs ignore SIGPIPE already.)
fn block_sigpipe() {
    #[cfg(unix)]
    // SAFETY: plain libc calls on a local, initialized signal set; they
    // change only this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Runs `fut` to completion on the shared runtime from a thread that is not
/// a runtime worker (a C or Python caller's thread).
pub fn block_on<F: std::future::Future>(fut: F) -> Result<F::Output> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::Internal(
            "a blocking registry call was made from inside an async runtime; use the async API".into(),
        ));
    }
    Ok(shared()?.block_on(fut))
}

#[cfg(test)]
mod tests {
    #[test]
    fn block_on_runs_and_refuses_nesting() {
        assert_eq!(super::block_on(async { 41 + 1 }), Ok(42));
        let nested = super::block_on(async { super::block_on(async { 1 }) });
        assert!(matches!(nested, Ok(Err(crate::Error::Internal(_)))));
    }
}
