//! Shutdown: a signal every long-lived task can wait on, and the OS
//! signals (SIGINT, SIGTERM) that fire it.

use std::sync::Arc;
use tokio::sync::watch;

/// A one-way switch shared by the server's tasks: once triggered it stays
/// triggered, and every waiter wakes up.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A switch not yet triggered.
    pub fn new() -> Self {
        Shutdown {
            tx: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Fires the switch; idempotent.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// True once [`Shutdown::trigger`] was called.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once the switch is triggered (at once if it already is).
    pub fn wait(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            // The sender lives as long as any clone of `Shutdown`; if every
            // clone is gone nobody can trigger it, so treat that as done.
            let _ = rx.wait_for(|v| *v).await;
        }
    }
}

/// Waits for SIGINT or SIGTERM and returns its name.
pub async fn os_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "ctrl-c"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_completes_after_trigger_even_for_late_waiters() {
        let s = Shutdown::new();
        assert!(!s.is_triggered());
        let early = tokio::spawn(s.wait());
        s.trigger();
        early.await.unwrap();
        s.wait().await;
        assert!(s.is_triggered());
    }
}
