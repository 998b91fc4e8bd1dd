//! What a valid argument is, worded once. Every layer of the core and
//! every front door (server, C/Go, Python) calls these checks, so that one
//! failure has one message everywhere; front doors only translate the
//! error kind (gRPC status, C code, Python class).

use crate::error::{Error, Result};
use crate::limits::{MAX_TAGS_BYTES, MAX_WEIGHT};
use std::collections::BTreeMap;
use std::net::SocketAddr;

pub use crate::limits::MAX_NAME_LEN;

/// Checks a required name (id, group): non-empty, at most [`MAX_NAME_LEN`]
/// bytes, no control characters. `what` names the argument.
pub fn check_name(what: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        // "a name is required": not to be read as a group with no members.
        return Err(Error::invalid(format!("{what} is empty: a name is required")));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "{what} is {} bytes, the limit is {MAX_NAME_LEN}",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(format!("{what} contains a control character")));
    }
    Ok(())
}

/// Checks a service id (see [`check_name`]).
pub fn id(value: &str) -> Result<()> {
    check_name("id", value)
}

/// Checks a group name (see [`check_name`]).
pub fn group(value: &str) -> Result<()> {
    check_name("group", value)
}

/// Checks a lookup key: any non-empty string.
pub fn key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid("key is empty"));
    }
    Ok(())
}

/// Checks a group name and a lookup key, in that order.
pub fn group_key(group_name: &str, lookup_key: &str) -> Result<()> {
    group(group_name)?;
    key(lookup_key)
}

/// The error for a count below 1; `what` names it (`n`, `attempts`).
fn below_one(what: &str) -> Error {
    Error::invalid(format!("{what} must be at least 1"))
}

/// Checks the member count of a `match_n`: at least 1. A larger `n` than
/// the group has members is no error: the answer has every member.
pub fn count(n: usize) -> Result<()> {
    if n == 0 {
        return Err(below_one("n"));
    }
    Ok(())
}

/// Checks a count a front door received as a signed integer (a Python
/// int): at least 1, with [`count`]'s wording; `what` names it.
pub fn signed_count(what: &str, n: i64) -> Result<usize> {
    usize::try_from(n)
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| below_one(what))
}

/// The member count of a `match_n` on the wire: a `usize` beyond `u32`
/// is clamped to `u32::MAX` (no group has that many members).
pub fn clamp_count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Checks a member's address: `host:port`, the host an IP address
/// (IPv6 in brackets) or a DNS name, the port 1 to 65535; at most
/// [`MAX_NAME_LEN`] bytes, no control characters.
pub fn addr(value: &str) -> Result<()> {
    if value.len() > MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "addr is {} bytes, the limit is {MAX_NAME_LEN}",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid("addr contains a control character"));
    }
    host_port(value).map_err(|why| Error::invalid(format!("addr {value:?} is not host:port: {why}")))
}

/// Reads a gossip socket address (a node's bind or advertised gossip
/// address): `ip:port`, an IP and never a name, since a node binds and is
/// reached by it before any lookup. `what` names the argument.
pub fn socket_addr(what: &str, value: &str) -> Result<SocketAddr> {
    value
        .parse()
        .map_err(|e| Error::invalid(format!("{what} {value:?} is not an ip:port address: {e}")))
}

/// Why `value` is not `host:port` (host an IP, `[v6]`, or a DNS name;
/// port 1 to 65535), in the words of [`addr`]'s error.
fn host_port(value: &str) -> std::result::Result<(), String> {
    if value.is_empty() {
        return Err("it is empty".into());
    }
    if value.contains("://") {
        return Err("give it without a scheme".into());
    }
    let (host, port) = match value.strip_prefix('[') {
        Some(rest) => {
            let (v6, after) = rest.split_once(']').ok_or("no ']' after the IPv6 address")?;
            if v6.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("{v6:?} is not an IPv6 address"));
            }
            (None, after.strip_prefix(':').ok_or("no port")?)
        }
        None => {
            let (host, port) = value.rsplit_once(':').ok_or("no port")?;
            if host.contains(':') {
                return Err("an IPv6 host needs brackets ([::1]:80)".into());
            }
            (Some(host), port)
        }
    };
    if port.is_empty() {
        return Err("no port after the ':'".into());
    }
    if !matches!(port.parse::<u16>(), Ok(1..)) || port.starts_with('+') {
        return Err(format!("port {port:?} is not 1 to 65535"));
    }
    match host {
        Some("") => Err("no host".into()),
        Some(h) if !is_host_name(h) => Err(format!("host {h:?} is not an IP address or DNS name")),
        _ => Ok(()),
    }
}

/// An IPv4 address, or a DNS name: dot-separated labels of letters,
/// digits, `-` and `_` (1 to 63 bytes, no `-` at either end), at most 253
/// bytes, one trailing dot allowed, the last label not all digits.
fn is_host_name(host: &str) -> bool {
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let last_numeric = name
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    name.len() <= 253 && name.split('.').all(label_ok) && !last_numeric
}

/// Checks a service's tags: at most [`MAX_TAGS_BYTES`] in all (keys plus
/// values), no empty key, no control character in a key or a value.
pub fn tags(tags: &BTreeMap<String, String>) -> Result<()> {
    let bytes: usize = tags.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_TAGS_BYTES {
        return Err(Error::invalid(format!(
            "tags take {bytes} bytes, the limit is {MAX_TAGS_BYTES}"
        )));
    }
    if tags.keys().any(|k| k.is_empty()) {
        return Err(Error::invalid("a tag key is empty"));
    }
    if tags.keys().any(|k| k.chars().any(char::is_control)) {
        return Err(Error::invalid("a tag key contains a control character"));
    }
    if let Some(k) = tags
        .iter()
        .find(|(_, v)| v.chars().any(char::is_control))
        .map(|(k, _)| k)
    {
        return Err(Error::invalid(format!("tag {k:?} contains a control character")));
    }
    Ok(())
}

/// The error for a weight outside 1 ..= [`MAX_WEIGHT`].
fn weight_out_of_range(weight: impl std::fmt::Display) -> Error {
    Error::invalid(format!("weight {weight} is out of range 1..={MAX_WEIGHT}"))
}

/// Checks a member's weight: 1 ..= [`MAX_WEIGHT`].
pub fn weight(weight: u32) -> Result<()> {
    if weight == 0 || weight > MAX_WEIGHT {
        return Err(weight_out_of_range(weight));
    }
    Ok(())
}

/// Checks a weight a front door received as a signed integer (a Python
/// int), with [`weight`]'s rule and wording.
pub fn signed_weight(value: i64) -> Result<u32> {
    let w = u32::try_from(value).map_err(|_| weight_out_of_range(value))?;
    weight(w)?;
    Ok(w)
}

/// Checks the `i`-th weight given to a ring (by the ring itself, and by
/// a front door converting a signed integer such as a Python int): the
/// rule and wording of [`signed_weight`], prefixed `weights[i]: `, as the
/// ring names the `i`-th id `ids[i]`.
pub fn ring_weight(i: usize, value: i64) -> Result<u32> {
    signed_weight(value).map_err(|e| Error::invalid(format!("weights[{i}]: {}", e.message())))
}

/// Checks the `i`-th id given to a ring by a front door (C, Go, Python):
/// the id rule of [`check_name`], named `ids[i]`, so that every front door
/// refuses the same ids (a 129-byte id included).
pub fn ring_id(i: usize, id: &str) -> Result<()> {
    check_name(&format!("ids[{i}]"), id)
}

/// The error for two members with one id.
pub fn duplicate_id(id: &str) -> Error {
    Error::invalid(format!("duplicate id {id:?}"))
}

/// The `NotFound` error for a lookup in a group with no members; `why`,
/// when known, says whether it never had any or lost its last one.
pub fn no_members(group: &str, why: Option<&str>) -> Error {
    match why {
        Some(why) => Error::not_found(format!("group {group:?} has no members: {why}")),
        None => Error::not_found(format!("group {group:?} has no members")),
    }
}

/// The `NotFound` error for a lookup in a ring with no serving member (of
/// `members` in all, the others draining): a ring built on its own,
/// outside any group (a group's is [`no_members`] or [`all_draining`]).
pub fn empty_ring(members: usize) -> Error {
    if members == 0 {
        Error::not_found("the ring has no members")
    } else {
        Error::not_found(format!(
            "the ring has no serving members: all {members} are draining"
        ))
    }
}

/// The `NotFound` error for a lookup in a group whose `members` are all
/// draining: listed, but none owns keys.
pub fn all_draining(group: &str, members: usize) -> Error {
    Error::not_found(format!(
        "group {group:?} has no serving members: all {members} are draining"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_wording() {
        assert_eq!(key("").unwrap_err().message(), "key is empty");
        assert_eq!(count(0).unwrap_err().message(), "n must be at least 1");
        assert!(count(1).is_ok());
        assert_eq!(clamp_count(usize::MAX), u32::MAX);
        assert_eq!(
            group("").unwrap_err().message(),
            "group is empty: a name is required"
        );
        assert!(id(&"a".repeat(MAX_NAME_LEN)).is_ok());
        assert!(id(&"a".repeat(MAX_NAME_LEN + 1))
            .unwrap_err()
            .message()
            .contains("the limit is 128"));
        assert!(weight(0).is_err() && weight(MAX_WEIGHT + 1).is_err() && weight(1).is_ok());
        assert_eq!(
            ring_weight(1, 0).unwrap_err().message(),
            "weights[1]: weight 0 is out of range 1..=1000"
        );
        assert_eq!(ring_weight(1, MAX_WEIGHT.into()), Ok(MAX_WEIGHT));
        assert_eq!(
            ring_weight(2, -2).unwrap_err().message(),
            "weights[2]: weight -2 is out of range 1..=1000"
        );
        assert_eq!(signed_weight(7), Ok(7));
        assert_eq!(
            signed_weight(-2).unwrap_err().message(),
            "weight -2 is out of range 1..=1000"
        );
        assert_eq!(
            signed_weight(1 << 40).unwrap_err().message(),
            format!("weight {} is out of range 1..=1000", 1u64 << 40)
        );
        assert_eq!(signed_count("n", 3), Ok(3));
        assert_eq!(signed_count("n", 0).unwrap_err(), count(0).unwrap_err());
        assert_eq!(
            signed_count("attempts", -5).unwrap_err().message(),
            "attempts must be at least 1"
        );
        assert_eq!(no_members("g", None).message(), "group \"g\" has no members");
    }

    #[test]
    fn a_gossip_socket_address_is_ip_colon_port() {
        assert_eq!(
            socket_addr("bind", "127.0.0.1:7946"),
            Ok(SocketAddr::from(([127, 0, 0, 1], 7946)))
        );
        assert!(socket_addr("bind", "[::1]:0").is_ok());
        for bad in ["localhost:7946", "127.0.0.1", "127.0.0.1:99999", ""] {
            let e = socket_addr("config.bind", bad).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{bad}");
            assert!(
                e.message()
                    .starts_with(&format!("config.bind {bad:?} is not an ip:port address: ")),
                "{e}"
            );
        }
    }

    #[test]
    fn an_addr_is_host_colon_port() {
        for ok in [
            "127.0.0.1:8080",
            "10.0.0.1:1",
            "[::1]:9800",
            "[2001:db8::7]:65535",
            "localhost:80",
            "api-1.svc.cluster.local:443",
            "my_service:8080",
            "example.com.:80",
            "h:1",
        ] {
            assert_eq!(addr(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "is not host:port: it is empty"),
            ("127.0.0.1", "no port"),
            ("localhost:", "no port after the ':'"),
            ("h:0", "port \"0\" is not 1 to 65535"),
            ("h:65536", "port \"65536\" is not 1 to 65535"),
            ("h:+80", "port \"+80\" is not 1 to 65535"),
            (":80", "no host"),
            ("::1:80", "needs brackets"),
            ("[::1]", "no port"),
            ("[::zz]:80", "not an IPv6 address"),
            (
                "bad host:80",
                "host \"bad host\" is not an IP address or DNS name",
            ),
            ("a/b:80", "is not an IP address or DNS name"),
            ("-a.b:80", "is not an IP address or DNS name"),
            ("1.2.3.999:80", "is not an IP address or DNS name"),
            ("http://h:80", "without a scheme"),
            ("h:80\n", "addr contains a control character"),
            ("h\u{1b}[2J:80", "addr contains a control character"),
        ] {
            let e = addr(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{bad:?}");
            assert!(e.message().contains(why), "{bad:?}: {}", e.message());
        }
        let long = format!("{}.example:80", "a".repeat(MAX_NAME_LEN));
        assert!(addr(&long).unwrap_err().message().contains("the limit is 128"));
    }

    #[test]
    fn tags_have_no_control_characters() {
        let mut t = BTreeMap::new();
        t.insert("zone".to_string(), "eu-1 (rack 7)".to_string());
        assert_eq!(tags(&t), Ok(()));
        t.insert("note".to_string(), "a\nfake-row".to_string());
        assert_eq!(
            tags(&t).unwrap_err().message(),
            "tag \"note\" contains a control character"
        );
        let mut t = BTreeMap::new();
        t.insert("k\r".to_string(), "v".to_string());
        assert_eq!(
            tags(&t).unwrap_err().message(),
            "a tag key contains a control character"
        );
        t.clear();
        t.insert(String::new(), "v".to_string());
        assert_eq!(tags(&t).unwrap_err().message(), "a tag key is empty");
    }
}
