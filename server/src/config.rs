//! Command-line flags and environment variables of `registry-server`, and
//! the checked settings the daemon runs with.
//!
//! Flag names keep those of the system we replace (`--id --bind
//! --bind-advertise --addr --advertise --registries`); every flag can also
//! be set through an environment variable (`REGISTRY_ID`…). The defaults
//! start a working single-node registry on a laptop.

use clap::{Parser, ValueEnum};
use registry_core::gossip::Keyring;
use registry_core::limits::{Limit, DEFAULT_MAX_GROUPS, DEFAULT_MAX_MEMBERS_PER_GROUP};
use registry_core::ring::MAX_MEMBERS;
use registry_core::service::check_name;
use registry_core::{CatalogLimits, Error};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

pub use crate::listener::{
    ConnectionLimits, DEFAULT_HEADER_READ_TIMEOUT_SECS, DEFAULT_IDLE_TIMEOUT_SECS, DEFAULT_MAX_CONNECTIONS,
};
pub use crate::tls::TlsFiles;

/// Default gossip (UDP) address: the port of the old system.
pub const DEFAULT_BIND: &str = "0.0.0.0:7370";
/// Default gRPC address: the port of the old system.
pub const DEFAULT_ADDR: &str = "0.0.0.0:9800";
/// Default HTTP/JSON address: next to the gRPC port, easy to remember.
pub const DEFAULT_HTTP_ADDR: &str = "0.0.0.0:9801";
pub use registry_core::limits::{
    DEFAULT_MAX_KEY_BYTES, DEFAULT_MAX_RING_MEMORY_MIB, DEFAULT_MAX_WATCH_STREAMS,
};
/// Default longest wait, when started with `--registries`, for the first
/// sync with the cluster before serving anyway: a sync on a LAN takes a
/// few milliseconds; 5 s covers a slow or lossy network and still starts
/// a registry whose seeds are all down.
pub const DEFAULT_SYNC_TIMEOUT_SECS: f64 = 5.0;

/// How log lines are written (to standard error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// A flag value that must never be printed (checked after parsing, so
/// that a parse error cannot echo it either).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(pub String);

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(..)")
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        SecretString(s)
    }
}

/// The flags of `registry-server`, as parsed by clap.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "registry-server",
    version,
    about = "Service registry with consistent-hashing discovery: gossip membership, gRPC and HTTP API",
    long_about = None
)]
pub struct Flags {
    /// Unique id of this registry in the cluster [default: <hostname>-<random suffix>]
    #[arg(long, env = "REGISTRY_ID")]
    pub id: Option<String>,

    /// Gossip (UDP) listen address.
    #[arg(long, env = "REGISTRY_BIND", default_value = DEFAULT_BIND, value_parser = parse_socket_addr)]
    pub bind: SocketAddr,

    /// Gossip address other nodes reach this one at (NAT) [default: --bind; for 0.0.0.0 the local IP that routes to the first of --registries, else 127.0.0.1]
    #[arg(long = "bind-advertise", env = "REGISTRY_BIND_ADVERTISE", value_parser = parse_socket_addr)]
    pub bind_advertise: Option<SocketAddr>,

    /// gRPC listen address.
    #[arg(long, env = "REGISTRY_ADDR", default_value = DEFAULT_ADDR, value_parser = parse_socket_addr)]
    pub addr: SocketAddr,

    /// gRPC address clients are told to use (HOST:PORT) [default: --addr; for 0.0.0.0 the IP gossip advertises]
    #[arg(long, env = "REGISTRY_ADVERTISE", value_parser = parse_advertise)]
    pub advertise: Option<String>,

    /// Gossip addresses of other registries to join through, comma-separated (HOST:PORT,...).
    #[arg(long, env = "REGISTRY_REGISTRIES", value_delimiter = ',', value_parser = parse_seed)]
    pub registries: Vec<String>,

    /// HTTP/JSON listen address (/v1/..., /healthz, /metrics).
    #[arg(long = "http-addr", env = "REGISTRY_HTTP_ADDR", default_value = DEFAULT_HTTP_ADDR, value_parser = parse_socket_addr)]
    pub http_addr: SocketAddr,

    /// Gossip encryption keys, 64 hex digits each, comma-separated: the first encrypts, all are accepted [default: no encryption]
    #[arg(long = "encrypt-key", env = "REGISTRY_ENCRYPT_KEY", hide_env_values = true)]
    pub encrypt_key: Option<SecretString>,

    /// Log format; the level comes from RUST_LOG (default "info").
    #[arg(long = "log-format", env = "REGISTRY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// See [`Limit::KeyBytes`] (flag, default and help from the limits table).
    #[arg(help = Limit::KeyBytes.describe(), long = "max-key-bytes", env = "REGISTRY_MAX_KEY_BYTES", default_value_t = DEFAULT_MAX_KEY_BYTES, value_parser = parse_max_key_bytes)]
    pub max_key_bytes: usize,

    /// See [`Limit::Groups`] (flag, default and help from the limits table).
    #[arg(help = Limit::Groups.describe(), long = "max-groups", env = "REGISTRY_MAX_GROUPS", default_value_t = DEFAULT_MAX_GROUPS, value_parser = parse_count)]
    pub max_groups: usize,

    /// See [`Limit::MembersPerGroup`] (flag, default and help from the limits table).
    #[arg(help = Limit::MembersPerGroup.describe(), long = "max-members-per-group", env = "REGISTRY_MAX_MEMBERS_PER_GROUP", default_value_t = DEFAULT_MAX_MEMBERS_PER_GROUP, value_parser = parse_members)]
    pub max_members_per_group: usize,

    /// See [`Limit::WatchStreams`] (flag, default and help from the limits table).
    #[arg(help = Limit::WatchStreams.describe(), long = "max-watch-streams", env = "REGISTRY_MAX_WATCH_STREAMS", default_value_t = DEFAULT_MAX_WATCH_STREAMS, value_parser = parse_count)]
    pub max_watch_streams: usize,

    /// See [`Limit::RingMemory`] (flag, default and help from the limits table).
    #[arg(help = Limit::RingMemory.describe(), long = "max-ring-memory", env = "REGISTRY_MAX_RING_MEMORY", default_value_t = DEFAULT_MAX_RING_MEMORY_MIB, value_parser = parse_mib, value_name = "MIB")]
    pub max_ring_memory: usize,

    /// With --registries (or remembered members in --data-dir): longest wait, in seconds, to learn the cluster before serving anyway (a sync with a member that is not itself joining, and every remembered member back or found down); until then queries get UNAVAILABLE and health is NOT_SERVING (0: serve at once)
    #[arg(long = "sync-timeout", env = "REGISTRY_SYNC_TIMEOUT", default_value_t = DEFAULT_SYNC_TIMEOUT_SECS, value_parser = parse_sync_timeout, value_name = "SECONDS")]
    pub sync_timeout: f64,

    /// Directory where this registry keeps the last membership it knew, so that after a restart (even of every registry at once) it waits for the members it remembers before answering; one directory per registry [default: none, a restarted registry remembers nothing]
    #[arg(long = "data-dir", env = "REGISTRY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Server certificate chain (PEM); with --tls-key, the gRPC and HTTP listeners serve TLS only [default: plain text]
    #[arg(long = "tls-cert", env = "REGISTRY_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// Private key of --tls-cert (PEM).
    #[arg(long = "tls-key", env = "REGISTRY_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// CA certificates (PEM) that clients must present a certificate from (mutual TLS) [default: no client certificate asked]
    #[arg(long = "tls-client-ca", env = "REGISTRY_TLS_CLIENT_CA", value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,

    /// See [`Limit::Connections`] (flag, default and help from the limits table).
    #[arg(help = Limit::Connections.describe(), long = "max-connections", env = "REGISTRY_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS, value_parser = parse_count)]
    pub max_connections: usize,

    /// Seconds a new connection has to send its first bytes (after the TLS handshake), else it is closed
    #[arg(long = "header-read-timeout", env = "REGISTRY_HEADER_READ_TIMEOUT", default_value_t = DEFAULT_HEADER_READ_TIMEOUT_SECS, value_parser = parse_timeout, value_name = "SECONDS")]
    pub header_read_timeout: f64,

    /// Seconds without a byte from the client before its connection is closed; gRPC connections are pinged (HTTP/2 keepalive) at half of it, so a live client stays
    #[arg(long = "idle-timeout", env = "REGISTRY_IDLE_TIMEOUT", default_value_t = DEFAULT_IDLE_TIMEOUT_SECS, value_parser = parse_timeout, value_name = "SECONDS")]
    pub idle_timeout: f64,
}

/// Checked settings the daemon runs with (flags resolved, defaults filled).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Id of this registry in the cluster.
    pub id: String,
    /// Gossip (UDP) listen address.
    pub bind: SocketAddr,
    /// Gossip address advertised to other nodes; `None`: the gossip layer
    /// picks it (the bound address, or the local IP that routes to the
    /// first seed when bound to an unspecified IP).
    pub bind_advertise: Option<SocketAddr>,
    /// gRPC listen address (port 0: any free port).
    pub grpc_addr: SocketAddr,
    /// gRPC address advertised in the registry group; `None`: derived from
    /// the bound gRPC address once it is known.
    pub advertise: Option<String>,
    /// Gossip addresses of other registries.
    pub registries: Vec<String>,
    /// HTTP listen address (port 0: any free port).
    pub http_addr: SocketAddr,
    /// Gossip encryption keys, if any (never printed).
    pub keyring: Option<Keyring>,
    /// Log format.
    pub log_format: LogFormat,
    /// Request limits.
    pub limits: Limits,
    /// TLS certificate files; `None`: both listeners serve plain text.
    pub tls: Option<TlsFiles>,
    /// With `registries`: longest wait for the first sync with the
    /// cluster, during which queries are refused (zero: no wait).
    pub sync_timeout: Duration,
    /// Connection cap and timeouts of each listener.
    pub connections: ConnectionLimits,
    /// Where the last known membership is kept (`None`: nowhere).
    pub data_dir: Option<PathBuf>,
}

/// Limits applied to every request, whatever the front door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest key accepted, in bytes.
    pub max_key_bytes: usize,
    /// Most Watch streams open at once.
    pub max_watch_streams: usize,
    /// Count limits of the catalog (groups, members per group).
    pub catalog: CatalogLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_bytes: DEFAULT_MAX_KEY_BYTES,
            max_watch_streams: DEFAULT_MAX_WATCH_STREAMS,
            catalog: CatalogLimits::default(),
        }
    }
}

impl Flags {
    /// Checks the flags together and fills the defaults that need the
    /// machine (id). The error is one line, for the operator.
    pub fn into_settings(self) -> Result<Settings, String> {
        let id = match self.id {
            Some(id) => {
                check_name("--id", &id).map_err(|e| e.to_string())?;
                id
            }
            None => default_id(),
        };
        if self.addr == self.http_addr && self.addr.port() != 0 {
            return Err(format!("--addr and --http-addr are both {}", self.addr));
        }
        Ok(Settings {
            id,
            bind: self.bind,
            bind_advertise: self.bind_advertise,
            grpc_addr: self.addr,
            advertise: self.advertise,
            registries: self.registries.into_iter().filter(|r| !r.is_empty()).collect(),
            http_addr: self.http_addr,
            keyring: match self.encrypt_key {
                Some(k) => Some(parse_keys(&k.0).map_err(|e| format!("--encrypt-key: {e}"))?),
                None => None,
            },
            log_format: self.log_format,
            limits: Limits {
                max_key_bytes: self.max_key_bytes,
                max_watch_streams: self.max_watch_streams,
                catalog: CatalogLimits {
                    max_groups: self.max_groups,
                    max_members_per_group: self.max_members_per_group,
                    max_ring_memory: self.max_ring_memory << 20,
                },
            },
            tls: tls_files(self.tls_cert, self.tls_key, self.tls_client_ca)?,
            sync_timeout: Duration::from_secs_f64(self.sync_timeout),
            connections: ConnectionLimits {
                max_connections: self.max_connections,
                header_read_timeout: Duration::from_secs_f64(self.header_read_timeout),
                idle_timeout: Duration::from_secs_f64(self.idle_timeout),
            },
            data_dir: self.data_dir,
        })
    }
}

impl Settings {
    /// Settings for a registry on loopback with free ports: for tests and
    /// embedding.
    pub fn loopback(id: impl Into<String>) -> Settings {
        let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        Settings {
            id: id.into(),
            bind: any,
            bind_advertise: None,
            grpc_addr: any,
            advertise: None,
            registries: Vec::new(),
            http_addr: any,
            keyring: None,
            log_format: LogFormat::Text,
            limits: Limits::default(),
            tls: None,
            sync_timeout: Duration::from_secs_f64(DEFAULT_SYNC_TIMEOUT_SECS),
            connections: ConnectionLimits::default(),
            data_dir: None,
        }
    }
}

impl Settings {
    /// The gRPC address this registry advertises when `--advertise` is not
    /// given: the bound address, or for an unspecified IP (0.0.0.0) the IP
    /// gossip advertises: `--bind-advertise`, else `--bind`, else the local
    /// IP that routes to the first seed, else loopback.
    pub fn grpc_advertise(&self, grpc_bound: SocketAddr) -> String {
        if let Some(a) = &self.advertise {
            return a.clone();
        }
        if !grpc_bound.ip().is_unspecified() {
            return grpc_bound.to_string();
        }
        let ip = match self.bind_advertise {
            Some(a) => a.ip(),
            None if !self.bind.ip().is_unspecified() => self.bind.ip(),
            None => route_ip(self.registries.first().map(String::as_str)),
        };
        SocketAddr::new(ip, grpc_bound.port()).to_string()
    }
}

/// The local IP that routes to `seed` (loopback when there is none or it
/// does not resolve).
fn route_ip(seed: Option<&str>) -> IpAddr {
    let to = seed
        .and_then(|s| s.to_socket_addrs().ok())
        .and_then(|mut a| a.next());
    registry_core::gossip::route_ip(to)
}

/// `<hostname>-<6 random hex digits>`: unique enough for two registries on
/// one host, readable in logs.
fn default_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && check_name("id", h).is_ok() && h.len() <= 100)
        .unwrap_or_else(|| "registry".to_string());
    let suffix: u32 = rand::random::<u32>() & 0xff_ffff;
    format!("{host}-{suffix:06x}")
}

/// Parses `IP:PORT`, or `HOST:PORT` resolved now (first address).
fn parse_socket_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    parse_host_port(s, true)?;
    s.to_socket_addrs()
        .map_err(|e| format!("cannot resolve {s:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{s:?} resolves to no address"))
}

/// Checks `HOST:PORT` (a name or an IP, `[v6]:port` too) without
/// resolving, by the rule of a member's address
/// (`registry_core::validate::addr`); `listen` also allows port 0 (any
/// free port).
fn parse_host_port(s: &str, listen: bool) -> Result<String, String> {
    let s = s.trim();
    let checked = match s.strip_suffix(":0") {
        Some(host) if listen => format!("{host}:1"),
        _ => s.to_string(),
    };
    registry_core::validate::addr(&checked).map_err(|e| e.message().replace(":1\"", ":0\""))?;
    Ok(s.to_string())
}

/// The gRPC address advertised in the registry group: a member's address
/// (`registry_core::validate::addr`), refused here rather than at start.
fn parse_advertise(s: &str) -> Result<String, String> {
    let s = s.trim();
    registry_core::validate::addr(s).map_err(|e| e.message().to_string())?;
    Ok(s.to_string())
}

/// A seed address: `HOST:PORT`, or empty (ignored: `REGISTRY_REGISTRIES=`
/// means no seeds).
fn parse_seed(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Ok(String::new())
    } else {
        parse_host_port(s, false)
    }
}

/// Parses comma-separated 64-hex-digit keys: the first encrypts, every
/// one is accepted.
pub fn parse_keys(s: &str) -> Result<Keyring, String> {
    Keyring::parse_list(s).map_err(|e| match e {
        Error::InvalidArgument(m) => m,
        other => other.to_string(),
    })
}

/// Checks that the TLS flags come together: certificate and key both or
/// neither, and a client CA only with them.
fn tls_files(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
) -> Result<Option<TlsFiles>, String> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key, client_ca })),
        (None, None) if client_ca.is_some() => {
            Err("--tls-client-ca needs --tls-cert and --tls-key".to_string())
        }
        (None, None) => Ok(None),
        (Some(_), None) => Err("--tls-cert needs --tls-key (give both or neither)".to_string()),
        (None, Some(_)) => Err("--tls-key needs --tls-cert (give both or neither)".to_string()),
    }
}

fn parse_max_key_bytes(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a byte count of at least 1")),
    }
}

/// A count limit: at least 1.
fn parse_count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a count of at least 1")),
    }
}

/// A memory budget in MiB: 1 to 2^24 (16 TiB).
fn parse_mib(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=1 << 24).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a number of MiB from 1 to {}", 1 << 24)),
    }
}

/// Seconds from 0 to 600 (decimals allowed).
fn parse_sync_timeout(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=600.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds from 0 to 600")),
    }
}

/// Seconds above 0 and at most a day (decimals allowed).
fn parse_timeout(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of seconds above 0 and at most 86400"
        )),
    }
}

/// Members per group: 1 to what one ring indexes ([`MAX_MEMBERS`]).
fn parse_members(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_MEMBERS).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a count from 1 to {MAX_MEMBERS}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        Flags::try_parse_from(std::iter::once("registry-server").chain(args.iter().copied()))
    }

    #[test]
    fn no_flags_gives_working_defaults() {
        let s = parse(&[]).unwrap().into_settings().unwrap();
        assert_eq!(s.grpc_addr, DEFAULT_ADDR.parse().unwrap());
        assert_eq!(s.http_addr, DEFAULT_HTTP_ADDR.parse().unwrap());
        assert_eq!(s.bind, DEFAULT_BIND.parse().unwrap());
        assert_eq!(s.bind_advertise, None);
        assert_eq!(
            s.grpc_advertise("0.0.0.0:9800".parse().unwrap()),
            "127.0.0.1:9800"
        );
        assert_eq!(
            s.grpc_advertise("127.0.0.2:9800".parse().unwrap()),
            "127.0.0.2:9800"
        );
        assert_eq!(s.limits.max_key_bytes, 65536);
        assert_eq!(s.limits, Limits::default());
        assert_eq!(s.limits.max_watch_streams, 10_000);
        assert_eq!(s.limits.catalog.max_groups, 10_000);
        assert_eq!(s.limits.catalog.max_members_per_group, 10_000);
        assert!(s.registries.is_empty());
        assert!(check_name("id", &s.id).is_ok());
        assert_eq!(s.data_dir, None, "no data directory unless asked");
        let d = parse(&["--data-dir", "/var/lib/registry"])
            .unwrap()
            .into_settings()
            .unwrap();
        assert_eq!(d.data_dir, Some(PathBuf::from("/var/lib/registry")));
        assert!(parse(&["--data-dir", ""]).is_err(), "an empty path is refused");
    }

    #[test]
    fn old_flag_names_parse() {
        let f = parse(&[
            "--id",
            "r1",
            "--bind",
            "127.0.0.1:7371",
            "--bind-advertise",
            "10.0.0.1:7371",
            "--addr",
            "127.0.0.1:9900",
            "--advertise",
            "registry-1.example:9900",
            "--registries",
            "127.0.0.1:7370,reg2.example:7370",
            "--encrypt-key",
            &"ab".repeat(32),
        ])
        .unwrap();
        let s = f.into_settings().unwrap();
        assert_eq!(s.id, "r1");
        assert_eq!(s.bind_advertise, Some("10.0.0.1:7371".parse().unwrap()));
        assert_eq!(s.advertise.as_deref(), Some("registry-1.example:9900"));
        assert_eq!(s.registries, vec!["127.0.0.1:7370", "reg2.example:7370"]);
        assert_eq!(s.keyring.unwrap(), Keyring::new([0xab; 32]));
    }

    #[test]
    fn bad_values_are_rejected() {
        assert!(parse(&["--addr", "nonsense"]).is_err());
        assert!(parse(&["--registries", "a:1,:2"]).is_err());
        // Seeds follow a member address's rule, with its wording.
        for bad in ["reg:0", "reg:99999", "http://reg:1", "::1:7370", "bad host:1"] {
            let e = parse(&["--registries", bad]).unwrap_err().to_string();
            assert!(e.contains("is not host:port"), "{bad}: {e}");
        }
        assert!(parse(&["--registries", "[::1]:7370"]).is_ok());
        // A listen address may take any free port, by name too.
        assert!(parse(&["--bind", "localhost:0"]).is_ok());
        let e = parse(&["--bind", "local host:0"]).unwrap_err().to_string();
        assert!(e.contains("\"local host:0\" is not host:port"), "{e}");
        let empty = parse(&["--registries", ""]).unwrap().into_settings().unwrap();
        assert!(empty.registries.is_empty());
        assert!(parse(&["--registries", "host-without-port"]).is_err());
        let short = parse(&["--encrypt-key", "abc"])
            .unwrap()
            .into_settings()
            .unwrap_err();
        assert!(
            short.contains("64 hex digits") && !short.contains("abc"),
            "{short}"
        );
        let bad = parse(&["--encrypt-key", &"zz".repeat(32)])
            .unwrap()
            .into_settings();
        assert!(bad.unwrap_err().contains("non-hex"));
        let two = parse(&[
            "--encrypt-key",
            &format!("{},{}", "ab".repeat(32), "cd".repeat(32)),
        ]);
        assert_eq!(
            two.unwrap().into_settings().unwrap().keyring,
            Some(Keyring::new([0xab; 32]).with_accepted([0xcd; 32]))
        );
        assert!(parse(&["--max-key-bytes", "0"]).is_err());
        for bad in ["registry:0", "no-port", "a b:1"] {
            assert!(parse(&["--advertise", bad]).is_err(), "{bad}");
        }
        assert!(parse(&["--log-format", "xml"]).is_err());
        assert!(parse(&["--no-such-flag"]).is_err());
        let same = parse(&["--addr", "127.0.0.1:9000", "--http-addr", "127.0.0.1:9000"]).unwrap();
        assert!(same.into_settings().unwrap_err().contains("both"));
        let empty_id = parse(&["--id", ""]).unwrap();
        assert!(empty_id.into_settings().unwrap_err().contains("empty"));
    }

    #[test]
    fn count_limits_parse_and_are_checked() {
        let s = parse(&[
            "--max-groups",
            "5",
            "--max-members-per-group",
            "3",
            "--max-watch-streams",
            "2",
        ])
        .unwrap()
        .into_settings()
        .unwrap();
        assert_eq!(s.limits.catalog.max_groups, 5);
        assert_eq!(s.limits.catalog.max_members_per_group, 3);
        assert_eq!(s.limits.max_watch_streams, 2);
        let s = parse(&["--max-ring-memory", "64"])
            .unwrap()
            .into_settings()
            .unwrap();
        assert_eq!(s.limits.catalog.max_ring_memory, 64 << 20);
        assert!(parse(&["--max-ring-memory", "0"]).is_err());
        assert!(parse(&["--max-ring-memory", "99999999999"]).is_err());
        for flag in ["--max-groups", "--max-members-per-group", "--max-watch-streams"] {
            assert!(parse(&[flag, "0"]).is_err(), "{flag} 0");
            assert!(parse(&[flag, "x"]).is_err(), "{flag} x");
        }
        assert!(parse(&["--max-members-per-group", "65537"]).is_err());
    }

    #[test]
    fn every_limit_flag_is_the_tables() {
        use clap::CommandFactory;
        let cmd = Flags::command();
        for limit in Limit::ALL {
            let Some(flag) = limit.flag() else { continue };
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_long() == Some(flag.long))
                .unwrap_or_else(|| panic!("{limit:?}: no flag --{}", flag.long));
            assert_eq!(arg.get_env(), Some(std::ffi::OsStr::new(flag.env)), "{limit:?}");
            let default = limit.default_value().to_string();
            assert_eq!(arg.get_default_values(), [default.as_str()], "{limit:?}");
            let help = arg.get_help().map(ToString::to_string);
            assert_eq!(help.as_deref(), Some(limit.describe()), "{limit:?}");
        }
        for arg in cmd.get_arguments() {
            let long = arg.get_long().unwrap_or_default();
            if long.starts_with("max-") {
                let known = Limit::ALL
                    .iter()
                    .any(|l| l.flag().is_some_and(|f| f.long == long));
                assert!(known, "--{long} is not in the limits table");
            }
        }
    }

    /// The rows of server/README.md's limits table, by name: the flag /
    /// env cell and the default cell.
    fn readme_limit_rows() -> Vec<(String, String, String)> {
        let readme = include_str!("../README.md");
        let section = readme.split("\n## Limits\n").nth(1).expect("## Limits");
        let section = section.split("\n## ").next().unwrap_or(section);
        section
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split(" | ").map(str::trim).collect();
                let name = cells.first()?.strip_prefix("| `")?.strip_suffix('`')?;
                Some((
                    name.to_string(),
                    cells.get(1)?.to_string(),
                    cells.get(2)?.to_string(),
                ))
            })
            .collect()
    }

    /// `n` with a comma every three digits, as the README writes numbers.
    fn with_commas(n: u64) -> String {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    }

    #[test]
    fn readme_limits_table_is_the_tables() {
        let rows = readme_limit_rows();
        let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        let labels: Vec<&str> = Limit::ALL.iter().map(|l| l.label()).collect();
        assert_eq!(names, labels, "README limits rows, in the table's order");
        for (limit, (_, flag_cell, default_cell)) in Limit::ALL.iter().zip(&rows) {
            match limit.flag() {
                Some(f) => assert_eq!(*flag_cell, format!("`--{}` / `{}`", f.long, f.env)),
                None => assert!(flag_cell.starts_with("fixed"), "{limit:?}: {flag_cell}"),
            }
            let default = with_commas(limit.default_value());
            assert!(
                default_cell.contains(&default),
                "{limit:?}: README says {default_cell:?}, the table {default}"
            );
        }
        assert_eq!(with_commas(65_536), "65,536");
        assert_eq!(with_commas(128), "128");
    }

    #[test]
    fn tls_flags_come_together() {
        let none = parse(&[]).unwrap().into_settings().unwrap();
        assert_eq!(none.tls, None);
        let both = parse(&[
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--tls-client-ca",
            "ca.pem",
        ]);
        let tls = both.unwrap().into_settings().unwrap().tls.unwrap();
        assert_eq!(tls.cert, PathBuf::from("c.pem"));
        assert_eq!(tls.key, PathBuf::from("k.pem"));
        assert_eq!(tls.client_ca, Some(PathBuf::from("ca.pem")));
        let cert_only = parse(&["--tls-cert", "c.pem"]).unwrap().into_settings();
        assert!(cert_only.unwrap_err().contains("--tls-key"));
        let key_only = parse(&["--tls-key", "k.pem"]).unwrap().into_settings();
        assert!(key_only.unwrap_err().contains("--tls-cert"));
        let ca_only = parse(&["--tls-client-ca", "ca.pem"]).unwrap().into_settings();
        assert!(ca_only.unwrap_err().contains("needs --tls-cert"));
    }

    #[test]
    fn keys_are_never_printed() {
        let f = parse(&["--encrypt-key", &"ab".repeat(32)]).unwrap();
        assert!(!format!("{f:?}").contains("abab"));
    }
}
