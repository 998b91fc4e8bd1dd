//! Accepting connections on the gRPC and HTTP listeners, plain or TLS, so
//! that no client — nor a few hundred silent sockets, nor running out of
//! file descriptors — can take the server down:
//!
//! - an accept error (EMFILE, ENFILE…) repeats at once if retried at
//!   once: the loop waits instead, 10 ms doubling up to 1 s;
//! - at most [`ConnectionLimits::max_connections`] connections are open on
//!   each listener; one more is closed at once and counted
//!   (`registry_limit_rejections_total{limit="connections"}`);
//! - a connection must send its first bytes within the header-read timeout
//!   (after its TLS handshake), and is closed after the idle timeout
//!   without a byte from the client (gRPC clients are pinged by HTTP/2
//!   keepalive, so a live one always answers in time).
//!
//! Both servers (tonic, axum) take their connections from an [`Incoming`].

use crate::metrics::Metrics;
use crate::tls::Tls;
use registry_core::Limit;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::{Connected, TcpConnectInfo};

pub use registry_core::limits::DEFAULT_MAX_CONNECTIONS;
/// Default time a new connection has to send its first bytes: a real client
/// sends them at once.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: f64 = 10.0;
/// Default time without a byte from a client before its connection is
/// closed (gRPC clients are pinged at half of it).
pub const DEFAULT_IDLE_TIMEOUT_SECS: f64 = 120.0;

/// Shortest and longest wait after a failed accept.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));
/// Connections accepted but not yet taken by the server, per listener.
const QUEUE: usize = 64;

/// Connection cap and timeouts, the same for each listener.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectionLimits {
    /// Most connections open at once per listener (`--max-connections`).
    pub max_connections: usize,
    /// Time a new connection has to send its first bytes
    /// (`--header-read-timeout`).
    pub header_read_timeout: Duration,
    /// Time without a byte from the client before its connection is closed
    /// (`--idle-timeout`).
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: Duration::from_secs_f64(DEFAULT_HEADER_READ_TIMEOUT_SECS),
            idle_timeout: Duration::from_secs_f64(DEFAULT_IDLE_TIMEOUT_SECS),
        }
    }
}

impl ConnectionLimits {
    /// Interval of the HTTP/2 keepalive pings on gRPC connections, and the
    /// time allowed for their answer: half the idle timeout, so a live
    /// client is heard from before its connection counts as idle.
    pub fn keepalive(&self) -> Duration {
        self.idle_timeout / 2
    }
}

/// Which listener a connection came to (the `listener` label of metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The gRPC listener (`--addr`), ALPN `h2`.
    Grpc,
    /// The HTTP listener (`--http-addr`), ALPN `http/1.1`.
    Http,
}

impl Listener {
    /// The label value: `grpc` or `http`.
    pub fn name(self) -> &'static str {
        match self {
            Listener::Grpc => "grpc",
            Listener::Http => "http",
        }
    }
}

/// What the accept loop of one listener needs.
pub struct Accept {
    /// Which listener.
    pub listener: Listener,
    /// Its cap and timeouts.
    pub limits: ConnectionLimits,
    /// TLS, when the listeners serve it.
    pub tls: Option<Arc<Tls>>,
    /// Where refusals are counted.
    pub metrics: Arc<Metrics>,
}

/// Accepts connections on `tcp` (a task, until the [`Incoming`] is
/// dropped) and hands out those within the cap, TLS-handshaken if asked.
pub fn incoming(tcp: TcpListener, accept: Accept) -> Incoming {
    let local_addr = tcp.local_addr();
    let (tx, rx) = mpsc::channel(QUEUE);
    let task = tokio::spawn(accept_loop(tcp, Arc::new(accept), tx));
    Incoming {
        rx,
        local_addr,
        task: AbortOnDrop(task),
    }
}

async fn accept_loop(tcp: TcpListener, accept: Arc<Accept>, tx: mpsc::Sender<(Conn, SocketAddr)>) {
    let open = Arc::new(Semaphore::new(accept.limits.max_connections));
    let name = accept.listener.name();
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            r = tcp.accept() => r,
            // The server is gone (shut down): stop accepting.
            _ = tx.closed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff = Duration::ZERO;
                a
            }
            Err(e) => {
                // Out of file descriptors and the like: the same error
                // comes back at once, so wait instead of spinning.
                if backoff.is_zero() {
                    tracing::warn!(listener = name, error = %e, "accept failed; retrying with backoff");
                }
                backoff = (backoff * 2).clamp(ACCEPT_BACKOFF.0, ACCEPT_BACKOFF.1);
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            accept.metrics.limit_rejected(Limit::Connections);
            tracing::debug!(listener = name, %peer, "connection refused: --max-connections open");
            continue;
        };
        // Small answers: send them at once, not after a delayed ACK.
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok();
        let Some(tls) = accept.tls.clone() else {
            let conn = Conn::new(Io::Plain(stream), permit, &accept.limits, local, peer);
            if tx.send((conn, peer)).await.is_err() {
                return;
            }
            continue;
        };
        let (accept, tx) = (accept.clone(), tx.clone());
        tokio::spawn(async move {
            if let Some(stream) = tls.handshake(accept.listener, stream, peer).await {
                let conn = Conn::new(Io::Tls(Box::new(stream)), permit, &accept.limits, local, peer);
                let _ = tx.send((conn, peer)).await;
            }
        });
    }
}

/// The accepted connections of one listener. Serves axum (as a
/// [`axum::serve::Listener`]) and tonic (through [`Incoming::into_stream`]).
/// Dropping it stops accepting.
pub struct Incoming {
    rx: mpsc::Receiver<(Conn, SocketAddr)>,
    local_addr: io::Result<SocketAddr>,
    task: AbortOnDrop,
}

/// Aborts the accept task when the last user of the listener goes away.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Incoming {
    /// The connections as the stream tonic's `serve_with_incoming` takes.
    pub fn into_stream(self) -> impl Stream<Item = Result<Conn, io::Error>> + Send + 'static {
        let Incoming { rx, task, .. } = self;
        // The accept task lives as long as the stream.
        ReceiverStream::new(rx).map(move |(conn, _peer)| {
            let _task = &task;
            Ok(conn)
        })
    }
}

impl axum::serve::Listener for Incoming {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept task ended (it does only once the server is
            // shutting down): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        match &self.local_addr {
            Ok(a) => Ok(*a),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
    }
}

/// A connection's byte stream.
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// One accepted connection: holds its place under the cap until dropped,
/// and fails its read (which closes it) once the client has been silent
/// past the header-read timeout (no byte yet) or the idle timeout.
pub struct Conn {
    io: Io,
    _permit: OwnedSemaphorePermit,
    /// Fires at or before the deadline; re-armed lazily, so a read costs
    /// a clock read, not a timer update.
    timer: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    /// When the client last sent bytes; `None` before its first.
    last_read: Option<Instant>,
    local: Option<SocketAddr>,
    remote: SocketAddr,
}

impl Conn {
    fn new(
        io: Io,
        permit: OwnedSemaphorePermit,
        limits: &ConnectionLimits,
        local: Option<SocketAddr>,
        remote: SocketAddr,
    ) -> Conn {
        Conn {
            io,
            _permit: permit,
            timer: Box::pin(tokio::time::sleep(limits.header_read_timeout)),
            idle_timeout: limits.idle_timeout,
            last_read: None,
            local,
            remote,
        }
    }

    /// Ready with an error once the client's time is up; otherwise
    /// pending, with the timer armed to wake the reader.
    fn expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        while self.timer.as_mut().poll(cx).is_ready() {
            let due = match self.last_read {
                Some(at) => at + self.idle_timeout,
                None => return Poll::Ready(timed_out("no request bytes within the header-read timeout")),
            };
            if Instant::now() >= due {
                return Poll::Ready(timed_out("idle timeout"));
            }
            self.timer.as_mut().reset(due);
        }
        Poll::Pending
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_string())
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        match read {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                let now = Instant::now();
                if this.last_read.is_none() {
                    // From the header-read deadline to the idle one.
                    this.timer.as_mut().reset(now + this.idle_timeout);
                }
                this.last_read = Some(now);
                Poll::Ready(Ok(()))
            }
            Poll::Pending => this.expired(cx).map(Err),
            done => done,
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        TcpConnectInfo {
            local_addr: self.local,
            remote_addr: Some(self.remote),
        }
    }
}
