//! TLS for the gRPC and HTTP listeners (`--tls-cert`, `--tls-key`,
//! `--tls-client-ca`).
//!
//! One acceptor of our own (tokio-rustls, ring provider) serves both
//! listeners, so that every failed handshake — a plain-text client on a TLS
//! port, a client without a certificate or with one from another CA when
//! client certificates are required — is counted in
//! `registry_tls_handshake_failures_total` and logged at debug level,
//! instead of vanishing inside a server library. Handshakes run in their own
//! tasks, so a slow or silent client never holds up the accept loop.

use crate::metrics;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};

/// Longest time a client gets to complete its handshake: long enough for
/// any real client on a slow link, short enough that idle connections
/// opened by a scanner do not pile up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections handshaken but not yet taken by the server, per listener.
const QUEUE: usize = 64;

/// The certificate files named by the flags (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate chain (`--tls-cert`).
    pub cert: PathBuf,
    /// The server's private key (`--tls-key`).
    pub key: PathBuf,
    /// CA certificates that client certificates must chain to
    /// (`--tls-client-ca`); `None`: no client certificate asked for.
    pub client_ca: Option<PathBuf>,
}

/// Which listener a connection came to (the metric's `listener` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The gRPC listener (`--addr`), ALPN `h2`.
    Grpc,
    /// The HTTP listener (`--http-addr`), ALPN `http/1.1`.
    Http,
}

impl Listener {
    fn name(self) -> &'static str {
        match self {
            Listener::Grpc => "grpc",
            Listener::Http => "http",
        }
    }
}

/// Loaded certificates and the handshake counters, shared by both
/// listeners.
pub struct Tls {
    grpc: TlsAcceptor,
    http: TlsAcceptor,
    mutual: bool,
    failures: [AtomicU64; 2],
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("mutual", &self.mutual)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads and checks the files. The error is one line naming the flag
    /// and the file, e.g. `--tls-key /etc/registry/key.pem: no private key
    /// found in the file`.
    pub fn load(files: &TlsFiles) -> Result<Tls, String> {
        let certs = read_certs("--tls-cert", &files.cert)?;
        let key = read_key(&files.key)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?;
        let builder = match &files.client_ca {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for cert in read_certs("--tls-client-ca", path)? {
                    roots.add(cert).map_err(|e| {
                        format!("--tls-client-ca {}: unusable CA certificate: {e}", path.display())
                    })?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| format!("--tls-client-ca {}: {e}", path.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let base = builder.with_single_cert(certs, key).map_err(|e| {
            format!(
                "--tls-cert {} and --tls-key {} do not make a usable pair: {e}",
                files.cert.display(),
                files.key.display()
            )
        })?;
        let with_alpn = |protocol: &[u8]| {
            let mut config = base.clone();
            config.alpn_protocols = vec![protocol.to_vec()];
            TlsAcceptor::from(Arc::new(config))
        };
        Ok(Tls {
            grpc: with_alpn(b"h2"),
            http: with_alpn(b"http/1.1"),
            mutual: files.client_ca.is_some(),
            failures: [AtomicU64::new(0), AtomicU64::new(0)],
        })
    }

    /// True when clients must present a certificate.
    pub fn is_mutual(&self) -> bool {
        self.mutual
    }

    /// Failed handshakes on `listener` so far.
    pub fn handshake_failures(&self, listener: Listener) -> u64 {
        self.failures[listener as usize].load(Ordering::Relaxed)
    }

    /// Accepts TCP connections on `tcp` and hands out those whose TLS
    /// handshake succeeded; failures are counted and logged.
    pub fn incoming(self: &Arc<Self>, tcp: TcpListener, listener: Listener) -> TlsIncoming {
        let local_addr = tcp.local_addr();
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(accept_loop(self.clone(), tcp, listener, tx));
        TlsIncoming {
            rx,
            local_addr,
            task: AbortOnDrop(task),
        }
    }

    fn failed(&self, listener: Listener, peer: SocketAddr, error: &dyn std::fmt::Display) {
        self.failures[listener as usize].fetch_add(1, Ordering::Relaxed);
        tracing::debug!(listener = listener.name(), %peer, %error, "TLS handshake failed");
    }
}

/// `registry_tls_handshake_failures_total{listener}` of `/metrics`, read
/// at each scrape.
impl Collector for Tls {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        metrics::counter(
            &mut enc,
            "registry_tls_handshake_failures",
            "TLS handshakes that failed or timed out (plain-text client, missing or untrusted client certificate...).",
            [Listener::Grpc, Listener::Http].map(|l| ([("listener", l.name())], self.handshake_failures(l))),
        )
    }
}

async fn accept_loop(
    tls: Arc<Tls>,
    tcp: TcpListener,
    listener: Listener,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let acceptor = match listener {
        Listener::Grpc => tls.grpc.clone(),
        Listener::Http => tls.http.clone(),
    };
    loop {
        let accepted = tokio::select! {
            r = tcp.accept() => r,
            // The server is gone (shut down): stop accepting.
            _ = tx.closed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: wait a little
                // instead of spinning.
                tracing::debug!(listener = listener.name(), error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Small answers: send them at once, not after a delayed ACK.
        let _ = stream.set_nodelay(true);
        let (tls, acceptor, tx) = (tls.clone(), acceptor.clone(), tx.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    let _ = tx.send((stream, peer)).await;
                }
                Ok(Err(e)) => tls.failed(listener, peer, &e),
                Err(_) => tls.failed(listener, peer, &"timed out"),
            }
        });
    }
}

/// Connections to one listener that completed their TLS handshake. Serves
/// axum (as a [`axum::serve::Listener`]) and tonic (through
/// [`TlsIncoming::into_stream`]). Dropping it stops accepting.
pub struct TlsIncoming {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
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

impl TlsIncoming {
    /// The connections as the stream tonic's `serve_with_incoming` takes.
    pub fn into_stream(self) -> impl Stream<Item = Result<TlsStream<TcpStream>, io::Error>> + Send + 'static {
        let TlsIncoming { rx, task, .. } = self;
        // The accept task lives as long as the stream.
        ReceiverStream::new(rx).map(move |(stream, _peer)| {
            let _task = &task;
            Ok(stream)
        })
    }
}

impl axum::serve::Listener for TlsIncoming {
    type Io = TlsStream<TcpStream>;
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

fn read_file(flag: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{flag} {}: cannot read: {e}", path.display()))
}

fn read_certs(flag: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_file(flag, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{flag} {}: not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{flag} {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
            path.display()
        ));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read_file("--tls-key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        format!(
            "--tls-key {}: no usable PEM private key in the file: {e}",
            path.display()
        )
    })
}
