//! TLS for the gRPC and HTTP listeners (`--tls-cert`, `--tls-key`,
//! `--tls-client-ca`).
//!
//! One acceptor of our own (tokio-rustls, ring provider) serves both
//! listeners, so that every failed handshake — a plain-text client on a TLS
//! port, a client without a certificate or with one from another CA when
//! client certificates are required — is counted in
//! `registry_tls_handshake_failures_total` and logged at debug level,
//! instead of vanishing inside a server library. Handshakes run in their own
//! tasks (started by the accept loop in `listener.rs`), so a slow or silent
//! client never holds up accepting.

use crate::metrics;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Longest time a client gets to complete its handshake: long enough for
/// any real client on a slow link, short enough that idle connections
/// opened by a scanner do not pile up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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

pub use crate::listener::Listener;

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

    /// The acceptor of `listener` (its ALPN protocol).
    pub(crate) fn acceptor(&self, listener: Listener) -> TlsAcceptor {
        match listener {
            Listener::Grpc => self.grpc.clone(),
            Listener::Http => self.http.clone(),
        }
    }

    /// Handshakes `stream` within [`HANDSHAKE_TIMEOUT`]; a failure is
    /// counted and logged, and gives `None`.
    pub(crate) async fn handshake(
        &self,
        listener: Listener,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<TlsStream<TcpStream>> {
        let accept = self.acceptor(listener).accept(stream);
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(e)) => {
                self.failed(listener, peer, &e);
                None
            }
            Err(_) => {
                self.failed(listener, peer, &"timed out");
                None
            }
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
