//! Unit tests of the client's error wording.

use super::failure::{ADDRESS_FORM, CLIENT_CERT_HINT};
use super::*;

#[test]
fn the_scheme_follows_the_tls_settings() {
    assert_eq!(normalize("h:1", false).unwrap(), "http://h:1");
    assert_eq!(normalize("h:1", true).unwrap(), "https://h:1");
    assert_eq!(normalize("https://h:1", true).unwrap(), "https://h:1");
    assert!(normalize("http://h:1", true)
        .unwrap_err()
        .to_string()
        .contains("TLS"));
    assert!(normalize("https://h:1", false)
        .unwrap_err()
        .to_string()
        .contains("TLS"));
}

#[test]
fn a_bad_address_says_what_is_wrong_and_the_expected_form() {
    for (addr, why) in [
        ("127.0.0.1", "no port"),
        ("localhost:", "no port after"),
        ("127.0.0.1:99999", "port \"99999\" is not 1 to 65535"),
        ("127.0.0.1:0", "port \"0\""),
        ("[::1]", "no port"),
        ("bad host:1", "bad registry address \"bad host:1\""),
    ] {
        let e = normalize(addr, false).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::InvalidArgument(_)), "{addr}: {text}");
        assert!(text.contains(why), "{addr}: {text}");
        assert!(text.contains(ADDRESS_FORM), "{addr}: {text}");
    }
    assert_eq!(normalize("[::1]:9800", false).unwrap(), "http://[::1]:9800");
    // With an explicit scheme the scheme's port applies.
    assert_eq!(
        normalize("https://registry.example", true).unwrap(),
        "https://registry.example"
    );
}

#[test]
fn a_refused_connection_is_named_and_marked_not_running() {
    let mut status = tonic::Status::unknown("tcp connect error");
    status.set_source(Arc::new(std::io::Error::from(
        std::io::ErrorKind::ConnectionRefused,
    )));
    let (e, not_running) = status_error(status, false);
    assert_eq!(e, Error::Unavailable("connection refused".into()));
    assert!(not_running);
    // Connected, then cut off before an answer: a plain-text client
    // is told about TLS; nothing says the registry is not running.
    let mut status = tonic::Status::unknown("transport error");
    status.set_source(Arc::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe)));
    let (e, not_running) = status_error(status, false);
    assert!(
        matches!(&e, Error::Unavailable(m) if m.contains("does the registry serve TLS only?")),
        "{e}"
    );
    assert!(!not_running);
    // A TLS client cut off after its handshake: most likely its
    // certificate was refused.
    let mut status = tonic::Status::unknown("connection closed");
    status.set_source(Arc::new(std::io::Error::other("connection closed")));
    let (e, _) = status_error(status, true);
    assert!(
        matches!(&e, Error::Unavailable(m) if m.contains(CLIENT_CERT_HINT)),
        "{e}"
    );
    // A status the registry sent is left as it is.
    let (e, not_running) = status_error(tonic::Status::unavailable("joining"), false);
    assert_eq!(e, Error::Unavailable("joining".into()));
    assert!(!not_running);
}

#[test]
fn the_exhausted_error_names_every_registry_tried() {
    let failure = |addr: &str, error: Error, not_running| Failure {
        addr: addr.into(),
        error,
        not_running,
    };
    let refused = || Error::Unavailable("connection refused".into());
    let e = exhausted(
        &[
            failure("http://127.0.0.1:1", refused(), true),
            failure("https://10.0.0.1:2", Error::Unavailable("TLS: x".into()), false),
        ],
        "https://10.0.0.1:2",
    );
    assert_eq!(
        e,
        Error::Unavailable(format!(
            "no registry reachable: tried 127.0.0.1:1 (connection refused), https://10.0.0.1:2 (TLS: x); {NOT_RUNNING_HINT}"
        ))
    );
    // No hint when every registry answered (e.g. all joining).
    let e = exhausted(
        &[failure("http://a:1", Error::Unavailable("joining".into()), false)],
        "http://a:1",
    );
    assert_eq!(
        e.to_string(),
        "unavailable: no registry reachable: tried a:1 (joining)"
    );
    // The kind is the last failure's.
    let e = exhausted(
        &[
            failure("http://a:1", refused(), true),
            failure("http://b:1", Error::Timeout("no answer within 2s".into()), false),
        ],
        "http://b:1",
    );
    assert!(
        matches!(e, Error::Timeout(m) if m.contains("a:1 (connection refused), b:1 (no answer within 2s)"))
    );
    assert!(matches!(exhausted(&[], "x"), Error::Unavailable(_)));
}

fn wire_snapshot(checksum: u64) -> v1::Snapshot {
    let svc = |id: &str| v1::Service::from(&Service::new(id, "g", "127.0.0.1:1"));
    v1::Snapshot {
        group: "g".into(),
        version: 7,
        services: vec![svc("b"), svc("a")],
        ring: crate::ring::RING_ALGORITHM.into(),
        checksum,
    }
}

#[test]
fn a_view_keeps_the_checksum_it_checked_and_refuses_a_different_one() {
    let want = crate::ring::Ring::new([("a", 1), ("b", 1)]).unwrap().checksum();
    let snap = view::snapshot_from_wire(wire_snapshot(want)).unwrap();
    assert_eq!(snap.checksum(), want);
    // A registry that sends no checksum (0) is not checked.
    assert_eq!(
        view::snapshot_from_wire(wire_snapshot(0)).unwrap().checksum(),
        want
    );
    let e = view::snapshot_from_wire(wire_snapshot(want ^ 1)).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::Internal(_)), "{text}");
    assert!(text.contains("ring checksum mismatch"), "{text}");
    assert!(text.contains(&crate::ring::checksum_hex(want ^ 1)), "{text}");
    assert!(text.contains(&crate::ring::checksum_hex(want)), "{text}");
}
