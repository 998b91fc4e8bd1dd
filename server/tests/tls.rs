//! TLS end to end: real `registry-server` processes with `--tls-cert`,
//! `--tls-key` and `--tls-client-ca`, queried by the core client (Match,
//! Members, Watch), by HTTPS and by the `registry` CLI; plain-text clients
//! and clients with a missing or foreign certificate are refused, and each
//! refusal shows in `registry_tls_handshake_failures_total`. Certificates
//! are generated at test time.

#[path = "common/certs.rs"]
mod certs;
mod common;

use certs::{Pem, TempDir, TestPki};
use common::{parse_answer, spawn_registry_with, HttpAnswer, Proc, Started};
use registry_core::client::{Client, ClientConfig, TlsConfig};
use registry_core::{Error, REGISTRY_GROUP};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, RootCertStore};

const SERVER: &str = env!("CARGO_BIN_EXE_registry-server");
const CLI: &str = env!("CARGO_BIN_EXE_registry");

/// A registry serving TLS, with the certificates it was started from.
struct TlsRegistry {
    started: Started,
    pki: TestPki,
    dir: TempDir,
}

impl TlsRegistry {
    /// Starts a registry with TLS; with `mutual`, clients need a
    /// certificate from the test CA.
    fn start(id: &str, mutual: bool) -> TlsRegistry {
        let pki = TestPki::generate();
        let dir = TempDir::new("tls");
        pki.write_to(&dir.0).expect("write certificates");
        let path = |name: &str| dir.file(name).to_string_lossy().to_string();
        let mut extra = vec![
            "--tls-cert".to_string(),
            path("server.pem"),
            "--tls-key".to_string(),
            path("server-key.pem"),
        ];
        if mutual {
            extra.extend(["--tls-client-ca".to_string(), path("ca.pem")]);
        }
        let started = spawn_registry_with(id, "127.0.0.1:0", &[], &extra);
        assert_eq!(started.ready["fields"]["tls"], true, "{}", started.ready);
        TlsRegistry { started, pki, dir }
    }

    fn grpc(&self) -> String {
        self.started.field("grpc")
    }

    fn http(&self) -> SocketAddr {
        self.started.field("http").parse().expect("http address")
    }

    fn path(&self, name: &str) -> String {
        self.dir.file(name).to_string_lossy().to_string()
    }

    /// A core client with `tls`; no discovery, few retries (refusals are
    /// expected in some tests).
    async fn client(&self, tls: Option<TlsConfig>) -> Result<Client, Error> {
        let mut config = ClientConfig::new([self.grpc()]);
        config.tls = tls;
        config.discover_registries = false;
        config.attempts = Some(1);
        Client::with_config(config).await
    }

    /// `GET path` over HTTPS trusting `ca`, presenting `identity` if any.
    async fn https_get(&self, path: &str, ca: &Pem, identity: Option<&Pem>) -> Result<HttpAnswer, String> {
        https_get(self.http(), path, ca, identity).await
    }

    /// The failure counter of `listener` as shown by /metrics (read over
    /// mutual-capable HTTPS with the good client certificate).
    async fn handshake_failures(&self, listener: &str) -> u64 {
        let metrics = self
            .https_get("/metrics", &self.pki.ca, Some(&self.pki.client))
            .await
            .expect("read /metrics over TLS");
        let prefix = format!("registry_tls_handshake_failures_total{{listener=\"{listener}\"}} ");
        metrics
            .body
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in /metrics:\n{}", metrics.body))
    }

    /// Waits until the failure counter of `listener` reaches `at_least`.
    async fn wait_failures(&self, listener: &str, at_least: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let n = self.handshake_failures(listener).await;
            if n >= at_least {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{listener} handshake failures stayed at {n}, expected at least {at_least}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One HTTPS request (`Connection: close`) with a rustls client.
async fn https_get(
    addr: SocketAddr,
    path: &str,
    ca: &Pem,
    identity: Option<&Pem>,
) -> Result<HttpAnswer, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.cert.as_bytes()) {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match identity {
        Some(id) => {
            let certs = CertificateDer::pem_slice_iter(id.cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let key = PrivateKeyDer::from_pem_slice(id.key.as_bytes()).map_err(|e| e.to_string())?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| e.to_string())?
        }
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    tls.read_to_end(&mut raw)
        .await
        .map_err(|e| format!("read: {e}"))?;
    if !raw.starts_with(b"HTTP/1.1 ") {
        return Err(format!("no HTTP answer: {:?}", String::from_utf8_lossy(&raw)));
    }
    Ok(parse_answer(&raw))
}

/// Sends a plain-text HTTP request to `addr`; the bytes that come back.
async fn plain_get(addr: SocketAddr) -> Vec<u8> {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let _ = tcp
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut raw)).await;
    raw
}

fn tls_ca(pki: &TestPki) -> TlsConfig {
    TlsConfig::new(pki.ca.cert.clone())
}

#[tokio::test]
async fn a_client_trusting_the_ca_gets_answers_over_tls_and_plain_text_is_refused() {
    let reg = TlsRegistry::start("tls-1", false);
    let id = reg.started.field("id");

    // gRPC: Match, Members and Watch through the core client.
    let client = reg.client(Some(tls_ca(&reg.pki))).await.expect("client");
    let owner = client
        .match_key(REGISTRY_GROUP, "any key")
        .await
        .expect("match over TLS");
    assert_eq!(owner.id, id);
    let members = client.members(REGISTRY_GROUP).await.expect("members over TLS");
    assert_eq!(members.services.len(), 1);
    let view = client.group(REGISTRY_GROUP).await.expect("watch over TLS");
    assert_eq!(view.match_key("any key").expect("local match").id, id);

    // The registry's own address is discovered as https too.
    let mut config = ClientConfig::new([reg.grpc()]);
    config.tls = Some(tls_ca(&reg.pki));
    let discovering = Client::with_config(config).await.expect("client");
    assert!(discovering.registries().iter().all(|r| r.starts_with("https://")));

    // HTTP over TLS.
    let health = reg.https_get("/healthz", &reg.pki.ca, None).await.expect("https");
    assert_eq!(health.status, 200);
    let m = reg
        .https_get(
            &format!("/v1/match?group={REGISTRY_GROUP}&key=k"),
            &reg.pki.ca,
            None,
        )
        .await
        .expect("https match");
    assert_eq!(m.json()["service"]["id"], id);

    // Plain text on both ports is refused, and counted.
    let plain = reg.client(None).await.expect("plain client");
    let err = plain.members(REGISTRY_GROUP).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    let raw = plain_get(reg.http()).await;
    assert!(!raw.starts_with(b"HTTP/"), "plain HTTP was answered: {raw:?}");
    reg.wait_failures("grpc", 1).await;
    reg.wait_failures("http", 1).await;

    // A client trusting another CA refuses the server, with a clear error.
    let stranger = reg
        .client(Some(TlsConfig::new(reg.pki.other_ca.cert.clone())))
        .await
        .expect("client");
    let err = stranger.members(REGISTRY_GROUP).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Unavailable(_)), "{text}");
    assert!(text.contains("certificate"), "{text}");
    let refused = reg.https_get("/healthz", &reg.pki.other_ca, None).await;
    assert!(
        matches!(&refused, Err(e) if e.contains("handshake")),
        "{:?}",
        refused.map(|a| a.status)
    );
}

#[tokio::test]
async fn with_a_client_ca_only_clients_with_a_certificate_from_it_get_in() {
    let reg = TlsRegistry::start("tls-2", true);
    let id = reg.started.field("id");
    let pki = &reg.pki;

    // The right certificate: gRPC (Match, Members, Watch) and HTTP.
    let good = tls_ca(pki).with_identity(pki.client.cert.clone(), pki.client.key.clone());
    let client = reg.client(Some(good)).await.expect("client");
    assert_eq!(client.match_key(REGISTRY_GROUP, "k").await.expect("match").id, id);
    assert_eq!(
        client
            .members(REGISTRY_GROUP)
            .await
            .expect("members")
            .services
            .len(),
        1
    );
    let view = client.group(REGISTRY_GROUP).await.expect("watch");
    assert_eq!(view.members().len(), 1);
    let health = reg.https_get("/healthz", &pki.ca, Some(&pki.client)).await;
    assert_eq!(health.expect("https with a client certificate").status, 200);
    assert_eq!(reg.handshake_failures("grpc").await, 0);

    // No certificate: refused on both ports.
    let anonymous = reg.client(Some(tls_ca(pki))).await.expect("client");
    let err = anonymous.members(REGISTRY_GROUP).await.unwrap_err();
    // TLS 1.3: the client may see the registry's alert or only the
    // connection closing after it, depending on timing.
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    assert!(reg.https_get("/healthz", &pki.ca, None).await.is_err());

    // A certificate from an unrelated CA: refused on both ports.
    let foreign = tls_ca(pki).with_identity(pki.other_client.cert.clone(), pki.other_client.key.clone());
    let stranger = reg.client(Some(foreign)).await.expect("client");
    let err = stranger.match_key(REGISTRY_GROUP, "k").await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    assert!(reg
        .https_get("/healthz", &pki.ca, Some(&pki.other_client))
        .await
        .is_err());

    // Every refusal was counted.
    reg.wait_failures("grpc", 2).await;
    reg.wait_failures("http", 2).await;
}

#[test]
fn the_cli_talks_tls_with_its_flags() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let reg = rt.block_on(async { TlsRegistry::start("tls-cli", true) });
    let id = reg.started.field("id");
    let run = |extra: &[String]| {
        let child = Command::new(CLI)
            .args(["--registry", &reg.grpc(), "--json"])
            .args(extra)
            .args(["members", REGISTRY_GROUP])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn registry");
        Proc::new(child).finish(Duration::from_secs(30))
    };
    let flags = |names: &[(&str, &str)]| -> Vec<String> {
        names
            .iter()
            .flat_map(|(flag, file)| [flag.to_string(), reg.path(file)])
            .collect()
    };

    let ok = run(&[
        flags(&[
            ("--tls-ca", "ca.pem"),
            ("--tls-cert", "client.pem"),
            ("--tls-key", "client-key.pem"),
        ]),
        vec!["--tls-domain".into(), "localhost".into()],
    ]
    .concat());
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(
        ok.code,
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let answer: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(answer["services"][0]["id"], id);

    // Without a client certificate the registry refuses: one error line.
    let refused = run(&flags(&[("--tls-ca", "ca.pem")]));
    assert_eq!(refused.code, Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("UNAVAILABLE"), "{stderr}");

    // A key without a certificate is a usage error, before any call.
    let half = run(&flags(&[("--tls-ca", "ca.pem"), ("--tls-key", "client-key.pem")]));
    assert_ne!(half.code, Some(0));
    assert!(String::from_utf8_lossy(&half.stderr).contains("certificate"));
}

#[test]
fn unreadable_or_wrong_certificate_files_stop_the_server_with_the_file_named() {
    let pki = TestPki::generate();
    let dir = TempDir::new("tls-bad");
    pki.write_to(&dir.0).expect("write certificates");
    let path = |name: &str| dir.file(name).to_string_lossy().to_string();
    let run = |cert: &str, key: &str| {
        let child = Command::new(SERVER)
            .args([
                "--addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
                "--bind",
                "127.0.0.1:0",
            ])
            .args(["--tls-cert", cert, "--tls-key", key])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn registry-server");
        let out = Proc::new(child).finish(Duration::from_secs(20));
        assert_eq!(out.code, Some(1), "should fail at start");
        String::from_utf8_lossy(&out.stderr).trim().to_string()
    };

    let missing = path("nope.pem");
    let err = run(&missing, &path("server-key.pem"));
    assert!(err.contains("--tls-cert") && err.contains(&missing), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // A certificate given as the key, and a key given as the certificate.
    let err = run(&path("server.pem"), &path("server.pem"));
    assert!(err.contains("--tls-key") && err.contains("private key"), "{err}");
    let err = run(&path("server-key.pem"), &path("server-key.pem"));
    assert!(err.contains("--tls-cert") && err.contains("certificate"), "{err}");

    // A key that does not belong to the certificate.
    let err = run(&path("server.pem"), &path("client-key.pem"));
    assert!(err.contains("usable pair"), "{err}");
}
