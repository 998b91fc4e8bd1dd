//! How a failed call is worded: registry addresses, gRPC statuses, TLS
//! and connection failures, and the error of a call no registry answered.

use crate::error::{Error, Result};
use tonic::transport::Endpoint;

/// What a registry address looks like, for the errors about one.
pub(super) const ADDRESS_FORM: &str = "expected host:port, e.g. 127.0.0.1:9800";

/// What to do when no registry could be connected to at all: the
/// wording every front door shows after the addresses tried.
pub const NOT_RUNNING_HINT: &str = "is a registry-server running there? (its gRPC port is its --addr)";

/// The URL of a registry address: `https://` with TLS, `http://` without;
/// an explicit scheme that contradicts the TLS settings is an error rather
/// than a silent downgrade or a handshake that cannot succeed. Without a
/// scheme the port is required (a registry has no well-known port).
pub(super) fn normalize(addr: &str, tls: bool) -> Result<String> {
    let addr = addr.trim();
    if addr.is_empty() {
        return Err(Error::invalid("registry address is empty"));
    }
    let bad = |why: &dyn std::fmt::Display| {
        Error::invalid(format!("bad registry address {addr:?}: {why}; {ADDRESS_FORM}"))
    };
    let (url, explicit_scheme) = match (addr.strip_prefix("http://"), addr.strip_prefix("https://")) {
        (Some(_), _) if tls => {
            return Err(Error::invalid(format!(
                "registry address {addr:?} says http:// but TLS is configured"
            )))
        }
        (_, Some(_)) if !tls => {
            return Err(Error::invalid(format!(
                "registry address {addr:?} says https:// but no TLS settings (CA) are given"
            )))
        }
        (Some(_), _) | (_, Some(_)) => (addr.to_string(), true),
        (None, None) if tls => (format!("https://{addr}"), false),
        (None, None) => (format!("http://{addr}"), false),
    };
    let uri: tonic::codegen::http::Uri = url.parse().map_err(|e| bad(&e))?;
    let authority = uri.authority().ok_or_else(|| bad(&"no host"))?.as_str();
    // The port follows the last ':' after an IPv6 literal's ']'.
    let after_host = authority.rsplit_once(']').map_or(authority, |(_, rest)| rest);
    match after_host.rsplit_once(':').map(|(_, port)| port) {
        Some("") => return Err(bad(&"no port after the ':'")),
        Some(port) if !matches!(port.parse::<u16>(), Ok(1..)) => {
            return Err(bad(&format_args!("port {port:?} is not 1 to 65535")))
        }
        None if !explicit_scheme => return Err(bad(&"no port")),
        _ => {}
    }
    Endpoint::from_shared(url.clone()).map_err(|e| bad(&e))?;
    Ok(url)
}

/// A registry URL as shown in errors: as the user writes it (no
/// `http://`; `https://` stays, it says TLS was used).
pub(super) fn shown(url: &str) -> &str {
    url.strip_prefix("http://").unwrap_or(url)
}

/// The error of a failed call, and whether the registry could not be
/// connected to at all (nothing listening, host unreachable). [`Error::from`] decides the kind (a status made by our own
/// transport is `Unavailable`); this words the transport's causes for a
/// person: the connection failure alone (`connection refused`), or `TLS:`
/// with what the refusal means, or a hint when a plain-text client got an
/// answer it cannot read.
pub(super) fn status_error(status: tonic::Status, tls: bool) -> (Error, bool) {
    let source = std::error::Error::source(&status);
    let transport = source.is_some();
    let tls_error = source.and_then(find_tls_error).cloned();
    let connect = source.and_then(connect_failure);
    // tonic's message for a status it made itself is "transport error".
    let error = match Error::from(status) {
        Error::Unavailable(m) => match m.strip_prefix("transport error: ") {
            Some(rest) => Error::Unavailable(rest.to_string()),
            None => Error::Unavailable(m),
        },
        e => e,
    };
    let error = match (error, &connect) {
        // A TLS alert from the registry reaches us inside an h2 error
        // that hides its cause: only the text tells.
        (Error::Unavailable(m), _) if tls_error.is_some() || m.contains("received fatal alert") => {
            let hint = tls_hint(tls_error.as_ref(), &m);
            Error::Unavailable(format!("TLS: {m}{hint}"))
        }
        (Error::Unavailable(_), Some((cause, _))) => Error::Unavailable(cause.clone()),
        // Connected, then the connection failed before any answer (closed,
        // broken, or bytes that are not HTTP/2): what a TLS-only registry
        // does to a plain-text client.
        (Error::Unavailable(m), None) if !tls && transport => Error::Unavailable(format!(
            "{m}; does the registry serve TLS only? then the client needs its CA"
        )),
        // The same for a TLS client: with TLS 1.3 the registry checks the
        // client's certificate after the client's side of the handshake
        // is done, so its refusal often shows only as a closed connection.
        (Error::Unavailable(m), None) if tls && transport => {
            Error::Unavailable(format!("{m}; {CLIENT_CERT_HINT}"))
        }
        (e, _) => e,
    };
    (error, connect.is_some_and(|(_, not_running)| not_running))
}

/// The rustls error among the causes (directly or inside an I/O error).
pub(super) fn find_tls_error<'a>(
    mut source: &'a (dyn std::error::Error + 'static),
) -> Option<&'a tokio_rustls::rustls::Error> {
    use tokio_rustls::rustls;
    loop {
        if let Some(e) = source.downcast_ref::<rustls::Error>() {
            return Some(e);
        }
        if let Some(e) = source
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(e);
        }
        source = source.source()?;
    }
}

/// What a registry that refuses a TLS client after the handshake most
/// likely wants.
pub(super) const CLIENT_CERT_HINT: &str =
    "does the registry require a client certificate (its --tls-client-ca)? then give the client one signed by that CA";

/// What a TLS refusal means for the person setting up the client, as
/// `; ...` to append, or "".
pub(super) fn tls_hint(error: Option<&tokio_rustls::rustls::Error>, message: &str) -> &'static str {
    use tokio_rustls::rustls::{CertificateError, Error as Tls, InvalidMessage};
    match error {
        Some(Tls::InvalidCertificate(CertificateError::UnknownIssuer)) => {
            "; the registry's certificate is not signed by the client's TLS CA"
        }
        Some(Tls::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => "; the registry's certificate does not name the host dialed: set the TLS domain to a name it has",
        Some(Tls::InvalidMessage(InvalidMessage::InvalidContentType)) => {
            "; does the registry serve plain text? then the client needs no TLS settings"
        }
        _ if message.contains("CertificateRequired") => {
            "; the registry asks for a client certificate (its --tls-client-ca): give the client one signed by that CA"
        }
        _ if message.contains("received fatal alert") => {
            "; the registry refused the client's certificate: it must be signed by the registry's --tls-client-ca"
        }
        _ => "",
    }
}

/// When the transport could not open a connection: the cause as a person
/// says it (`connection refused`), and whether it suggests that nothing
/// runs there (not for a name that does not resolve).
pub(super) fn connect_failure(mut source: &(dyn std::error::Error + 'static)) -> Option<(String, bool)> {
    use std::io::ErrorKind::*;
    loop {
        if let Some(io) = source.downcast_ref::<std::io::Error>() {
            let kind = io.kind();
            if matches!(
                kind,
                ConnectionRefused | AddrNotAvailable | HostUnreachable | NetworkUnreachable | TimedOut
            ) {
                return Some((kind.to_string(), true));
            }
        }
        // hyper's connector names a failed name lookup "dns error".
        if source.to_string() == "dns error" {
            let why = source.source().map(|e| e.to_string()).unwrap_or_default();
            return Some((format!("cannot resolve the host name: {why}"), false));
        }
        source = source.source()?;
    }
}

/// True when opening the connection timed out: the registry (or the
/// network) never answered the connect.
pub(super) fn connect_timed_out(mut source: &(dyn std::error::Error + 'static)) -> bool {
    loop {
        if let Some(io) = source.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return true;
            }
        }
        match source.source() {
            Some(next) => source = next,
            None => return false,
        }
    }
}

/// Records `failure` in `failures`: one entry per registry, in the order
/// first tried, with its latest cause.
pub(super) fn note(failures: &mut Vec<Failure>, failure: Failure) {
    match failures.iter_mut().find(|f| f.addr == failure.addr) {
        Some(f) => *f = failure,
        None => failures.push(failure),
    }
}

/// Errors another registry may not give: unreachable, too slow, or full
/// (a registry at its `--max-watch-streams` answers RESOURCE_EXHAUSTED).
pub(super) fn is_retryable(e: &Error) -> bool {
    matches!(
        e,
        Error::Unavailable(_) | Error::Timeout(_) | Error::LimitExceeded(_)
    )
}

/// The latest failed try on one registry.
pub(super) struct Failure {
    /// The registry's URL.
    pub(super) addr: String,
    /// What went wrong there.
    pub(super) error: Error,
    /// Nothing could be connected to there (see [`status_error`]).
    pub(super) not_running: bool,
}

/// The error of a call that no registry answered: every registry tried,
/// with its cause, and what to do. The kind is that of the failure on
/// `last` (the registry tried last):
///
/// `no registry reachable: tried 127.0.0.1:1 (connection refused); is a
/// registry-server running there? (its gRPC port is its --addr)`
pub(super) fn exhausted(failures: &[Failure], last: &str) -> Error {
    let tried = failures
        .iter()
        .map(|f| format!("{} ({})", shown(&f.addr), f.error.message()))
        .collect::<Vec<_>>()
        .join(", ");
    if tried.is_empty() {
        return Error::Unavailable("no registry was tried (attempts is 0)".into());
    }
    match failures.iter().find(|f| f.addr == last).map(|f| &f.error) {
        Some(Error::Timeout(_)) => Error::Timeout(format!("no registry answered in time: tried {tried}")),
        Some(Error::LimitExceeded(_)) => {
            Error::LimitExceeded(format!("every registry refused by a limit: tried {tried}"))
        }
        _ if failures.iter().any(|f| f.not_running) => Error::Unavailable(format!(
            "no registry reachable: tried {tried}; {NOT_RUNNING_HINT}"
        )),
        _ => Error::Unavailable(format!("no registry reachable: tried {tried}")),
    }
}
