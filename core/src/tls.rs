//! TLS settings of a discovery [`Client`](crate::Client): which CA the
//! registries' certificates must chain to, and optionally the client's own
//! certificate for registries that require one (mutual TLS).
//!
//! Every front door (Rust, C, Go, Python) builds one of these; the checks
//! live here so that each gets the same errors.

use crate::error::{Error, Result};
use std::path::Path;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// TLS settings of a client. With them the client speaks `https` to every
/// registry, including those it discovers.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM CA certificates that registry certificates must chain to.
    /// Required: the client trusts no system roots, since a registry's
    /// certificate comes from the operator's own CA.
    pub ca_pem: Vec<u8>,
    /// PEM certificate chain the client presents (mutual TLS), with
    /// [`TlsConfig::client_key_pem`].
    pub client_cert_pem: Option<Vec<u8>>,
    /// PEM private key of [`TlsConfig::client_cert_pem`].
    pub client_key_pem: Option<Vec<u8>>,
    /// Name the registry certificates must carry [default: the host of
    /// each registry address, e.g. `127.0.0.1` or `registry-1.example`].
    pub domain: Option<String>,
}

impl std::fmt::Debug for TlsConfig {
    /// Never prints the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_pem", &format_args!("{} bytes", self.ca_pem.len()))
            .field("client_cert", &self.client_cert_pem.is_some())
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Trusts the CA certificates in `ca_pem`; no client certificate.
    pub fn new(ca_pem: impl Into<Vec<u8>>) -> Self {
        TlsConfig {
            ca_pem: ca_pem.into(),
            client_cert_pem: None,
            client_key_pem: None,
            domain: None,
        }
    }

    /// Presents this certificate and key to registries (mutual TLS).
    pub fn with_identity(mut self, cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        self.client_cert_pem = Some(cert_pem.into());
        self.client_key_pem = Some(key_pem.into());
        self
    }

    /// Expects `domain` in every registry certificate instead of the host
    /// of the address dialed.
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Reads the CA file and, when given, the client certificate and key
    /// files (both or neither). Errors name the file.
    pub fn from_files(
        ca: impl AsRef<Path>,
        client_cert: Option<&Path>,
        client_key: Option<&Path>,
    ) -> Result<Self> {
        let names = ["CA", "client certificate", "client key", "domain"];
        Self::from_sources(
            Some(Pem::File(ca.as_ref())),
            client_cert.map(Pem::File),
            client_key.map(Pem::File),
            None,
            names,
        )?
        .ok_or_else(|| Error::Internal("TLS settings without a CA".into()))
    }

    /// The settings a front door's optional TLS options ask for: `None`
    /// when none is given; the CA is required once any other is; the
    /// files are read now. `names` are the option names used in errors
    /// (CA, certificate, key, domain), e.g. `["--tls-ca", "--tls-cert",
    /// "--tls-key", "--tls-domain"]`.
    pub fn from_options(
        ca: Option<&Path>,
        client_cert: Option<&Path>,
        client_key: Option<&Path>,
        domain: Option<&str>,
        names: [&str; 4],
    ) -> Result<Option<Self>> {
        Self::from_sources(
            ca.map(Pem::File),
            client_cert.map(Pem::File),
            client_key.map(Pem::File),
            domain,
            names,
        )
    }

    /// [`TlsConfig::from_options`] where each PEM is a file or given
    /// in memory.
    pub fn from_sources(
        ca: Option<Pem<'_>>,
        client_cert: Option<Pem<'_>>,
        client_key: Option<Pem<'_>>,
        domain: Option<&str>,
        names: [&str; 4],
    ) -> Result<Option<Self>> {
        let Some(ca) = ca else {
            if client_cert.is_some() || client_key.is_some() || domain.is_some() {
                return Err(Error::invalid(format!(
                    "TLS: {}, {} and {} need {} (the CA of the registries' certificates)",
                    names[1], names[2], names[3], names[0]
                )));
            }
            return Ok(None);
        };
        let config = TlsConfig::new(ca.load("CA")?);
        let tls = match (client_cert, client_key) {
            (Some(cert), Some(key)) => {
                config.with_identity(cert.load("client certificate")?, key.load("client key")?)
            }
            (None, None) => config,
            _ => {
                return Err(Error::invalid(
                    "TLS: a client certificate needs its key and a key needs its certificate",
                ))
            }
        };
        Ok(Some(match domain {
            Some(d) => tls.with_domain(d),
            None => tls,
        }))
    }

    /// Checks the PEM contents (so that a wrong file fails when the client
    /// is made, not at the first call) and builds tonic's configuration.
    pub(crate) fn to_tonic(&self) -> Result<ClientTlsConfig> {
        let cas = CertificateDer::pem_slice_iter(&self.ca_pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::invalid(format!("TLS: CA is not PEM certificates: {e}")))?;
        if cas.is_empty() {
            return Err(Error::invalid(
                "TLS: no CA certificate (-----BEGIN CERTIFICATE-----) given",
            ));
        }
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem));
        match (&self.client_cert_pem, &self.client_key_pem) {
            (Some(cert), Some(key)) => {
                let certs = CertificateDer::pem_slice_iter(cert)
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| Error::invalid(format!("TLS: client certificate is not PEM: {e}")))?;
                if certs.is_empty() {
                    return Err(Error::invalid(
                        "TLS: no client certificate (-----BEGIN CERTIFICATE-----) given",
                    ));
                }
                PrivateKeyDer::from_pem_slice(key).map_err(|e| {
                    Error::invalid(format!("TLS: no usable PEM private key for the client: {e}"))
                })?;
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            (None, None) => {}
            _ => {
                return Err(Error::invalid(
                    "TLS: a client certificate needs its key and a key needs its certificate",
                ))
            }
        }
        if let Some(domain) = &self.domain {
            if domain.trim().is_empty() {
                return Err(Error::invalid("TLS: the domain is empty"));
            }
            tls = tls.domain_name(domain.trim());
        }
        Ok(tls)
    }
}

/// Where a PEM block comes from.
#[derive(Debug, Clone, Copy)]
pub enum Pem<'a> {
    /// A file, read when the settings are built.
    File(&'a Path),
    /// The PEM text itself.
    Contents(&'a [u8]),
}

impl Pem<'_> {
    /// The PEM bytes; a file that cannot be read is named in the error.
    fn load(self, what: &str) -> Result<Vec<u8>> {
        match self {
            Pem::File(path) => read_pem(what, path),
            Pem::Contents(pem) => Ok(pem.to_vec()),
        }
    }
}

fn read_pem(what: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::invalid(format!(
            "TLS: cannot read the {what} file {}: {e}",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_settings_are_refused_with_a_clear_error() {
        let no_ca = TlsConfig::new(Vec::new()).to_tonic().unwrap_err();
        assert!(no_ca.to_string().contains("no CA certificate"), "{no_ca}");
        let garbage = TlsConfig::new(b"not a certificate".to_vec())
            .to_tonic()
            .unwrap_err();
        assert!(matches!(garbage, Error::InvalidArgument(_)), "{garbage}");
        let mut half = TlsConfig::new(b"x".to_vec());
        half.client_key_pem = Some(b"k".to_vec());
        assert!(half.to_tonic().is_err());
        let names = ["ca", "cert", "key", "domain"];
        let no_ca = TlsConfig::from_options(None, None, None, Some("d"), names).unwrap_err();
        assert!(no_ca.to_string().contains("need ca"), "{no_ca}");
        assert_eq!(TlsConfig::from_options(None, None, None, None, names), Ok(None));
        let missing = TlsConfig::from_files("/no/such/ca.pem", None, None).unwrap_err();
        assert!(missing.to_string().contains("/no/such/ca.pem"), "{missing}");
    }

    #[test]
    fn pem_from_files_or_memory_gives_the_same_settings() {
        let dir = std::env::temp_dir().join(format!("registry-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (ca, cert, key) = (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"));
        for (path, text) in [(&ca, "ca"), (&cert, "cert"), (&key, "key")] {
            std::fs::write(path, text).unwrap();
        }
        let names = ["ca", "cert", "key", "domain"];
        let from_files = TlsConfig::from_options(Some(&ca), Some(&cert), Some(&key), Some("d"), names);
        let mixed = TlsConfig::from_sources(
            Some(Pem::Contents(b"ca")),
            Some(Pem::File(&cert)),
            Some(Pem::Contents(b"key")),
            Some("d"),
            names,
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let want = TlsConfig::new(b"ca".to_vec())
            .with_identity(b"cert".to_vec(), b"key".to_vec())
            .with_domain("d");
        assert_eq!(from_files, Ok(Some(want.clone())));
        assert_eq!(mixed, Ok(Some(want)));
        let half = TlsConfig::from_sources(
            Some(Pem::Contents(b"ca")),
            Some(Pem::Contents(b"c")),
            None,
            None,
            names,
        );
        assert!(half.unwrap_err().to_string().contains("needs its key"));
    }

    #[test]
    fn the_private_key_is_never_printed() {
        let c = TlsConfig::new(b"ca".to_vec()).with_identity(b"cert".to_vec(), b"SECRET".to_vec());
        assert!(!format!("{c:?}").contains("SECRET"));
    }
}
