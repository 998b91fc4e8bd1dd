//! Test certificates made at test time with rcgen (no private key is ever
//! checked in): a CA, a server certificate for 127.0.0.1 and localhost and
//! a client certificate signed by it, and a second, unrelated CA with a
//! client certificate of its own.
#![allow(dead_code)]

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// A certificate and its private key, PEM.
pub struct Pem {
    /// The certificate.
    pub cert: String,
    /// Its private key.
    pub key: String,
}

/// Every certificate a TLS test needs.
pub struct TestPki {
    /// The CA that signs the server and the good client.
    pub ca: Pem,
    /// Server certificate for 127.0.0.1, ::1 and localhost.
    pub server: Pem,
    /// Client certificate signed by `ca`.
    pub client: Pem,
    /// A CA nobody trusts.
    pub other_ca: Pem,
    /// Client certificate signed by `other_ca`.
    pub other_client: Pem,
}

fn new_ca(name: &str) -> (Pem, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("self-signed CA");
    let pem = Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    };
    (pem, Issuer::new(params, key))
}

fn leaf(names: &[&str], purpose: ExtendedKeyUsagePurpose, issuer: &Issuer<'static, KeyPair>) -> Pem {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(names.clone()).expect("leaf params");
    params
        .distinguished_name
        .push(DnType::CommonName, names[0].as_str());
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![purpose];
    let key = KeyPair::generate().expect("leaf key");
    let cert = params.signed_by(&key, issuer).expect("signed leaf");
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

impl TestPki {
    /// Fresh keys and certificates.
    pub fn generate() -> TestPki {
        let (ca, issuer) = new_ca("registry test CA");
        let (other_ca, other_issuer) = new_ca("unrelated test CA");
        TestPki {
            server: leaf(
                &["localhost", "127.0.0.1", "::1"],
                ExtendedKeyUsagePurpose::ServerAuth,
                &issuer,
            ),
            client: leaf(&["test-client"], ExtendedKeyUsagePurpose::ClientAuth, &issuer),
            other_client: leaf(&["stranger"], ExtendedKeyUsagePurpose::ClientAuth, &other_issuer),
            ca,
            other_ca,
        }
    }

    /// Writes every file into `dir`: `ca.pem`, `server.pem`,
    /// `server-key.pem`, `client.pem`, `client-key.pem`, `other-ca.pem`,
    /// `other-client.pem`, `other-client-key.pem`.
    pub fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let files = [
            ("ca.pem", &self.ca.cert),
            ("server.pem", &self.server.cert),
            ("server-key.pem", &self.server.key),
            ("client.pem", &self.client.cert),
            ("client-key.pem", &self.client.key),
            ("other-ca.pem", &self.other_ca.cert),
            ("other-client.pem", &self.other_client.cert),
            ("other-client-key.pem", &self.other_client.key),
        ];
        for (name, text) in files {
            std::fs::write(dir.join(name), text)?;
        }
        Ok(())
    }
}

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates `<tmp>/registry-<tag>-<pid>-<n>`.
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("registry-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    /// A path inside the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
