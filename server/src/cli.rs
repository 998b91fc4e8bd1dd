//! The `registry` command-line client: `members`, `match`, `groups` and
//! `watch` against one or more registry servers, as a table or JSON.

use clap::{Parser, Subcommand};
use registry_core::wire::v1;
use registry_core::wire::v1::registry_client::RegistryClient;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::future::Future;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// Longest wait to connect to one registry.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for one answer (not for Watch).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Flags and command of `registry`.
#[derive(Debug, Parser)]
#[command(
    name = "registry",
    version,
    about = "Query a registry server: members, match, groups, watch"
)]
pub struct Cli {
    /// gRPC addresses of registry servers, comma-separated; the next is tried when one is unavailable.
    #[arg(
        long,
        global = true,
        env = "REGISTRY",
        value_delimiter = ',',
        default_value = "127.0.0.1:9800"
    )]
    pub registry: Vec<String>,

    /// Print JSON instead of a table (watch: one JSON object per line).
    #[arg(long, global = true)]
    pub json: bool,

    /// What to ask.
    #[command(subcommand)]
    pub command: Command,
}

/// A `registry` subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every member of GROUP (empty when it has none).
    Members {
        /// Service group.
        group: String,
    },
    /// The member of GROUP that owns KEY (with -n: the first N, in preference order).
    Match {
        /// Service group.
        group: String,
        /// The key to place.
        key: String,
        /// How many distinct members to return.
        #[arg(short, long)]
        n: Option<u32>,
    },
    /// Every group that has members.
    Groups,
    /// GROUP's members now, then again at every change, until interrupted.
    Watch {
        /// Service group.
        group: String,
    },
}

/// Why a command failed: a one-line message.
#[derive(Debug)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn status_error(addr: &str, s: &Status) -> CliError {
    CliError(format!(
        "{}: {} (from {addr})",
        crate::errors::code_name(s.code()),
        s.message()
    ))
}

async fn connect(addr: &str) -> Result<RegistryClient<Channel>, Status> {
    let uri = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    let endpoint = Endpoint::from_shared(uri)
        .map_err(|e| Status::invalid_argument(format!("bad registry address {addr:?}: {e}")))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| Status::unavailable(format!("cannot connect: {e}")))?;
    Ok(RegistryClient::new(channel))
}

/// Runs `call` against each registry in turn until one answers with
/// anything but Unavailable. Returns the answer and the address used.
async fn with_failover<T, F, Fut>(addrs: &[String], mut call: F) -> Result<(T, String), CliError>
where
    F: FnMut(RegistryClient<Channel>) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let mut last = CliError("no registry address given".into());
    for addr in addrs {
        let result = match connect(addr).await {
            Ok(client) => match tokio::time::timeout(REQUEST_TIMEOUT, call(client)).await {
                Ok(r) => r,
                Err(_) => Err(Status::unavailable("no answer in time")),
            },
            Err(s) => Err(s),
        };
        match result {
            Ok(v) => return Ok((v, addr.clone())),
            Err(s) if matches!(s.code(), Code::Unavailable | Code::DeadlineExceeded) => {
                last = status_error(addr, &s);
            }
            Err(s) => return Err(status_error(addr, &s)),
        }
    }
    Err(last)
}

/// Runs the command, printing to standard output.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let addrs = cli.registry.clone();
    match cli.command {
        Command::Members { group } => {
            let (r, _) = with_failover(&addrs, |mut c| {
                let group = group.clone();
                async move {
                    c.members(v1::MembersRequest { group })
                        .await
                        .map(|r| r.into_inner())
                }
            })
            .await?;
            if cli.json {
                println!(
                    "{}",
                    json!({"group": group, "version": r.version, "services": services_json(&r.services)})
                );
            } else {
                print!("{}", services_table(&r.services));
            }
        }
        Command::Match { group, key, n: None } => {
            let (r, _) = with_failover(&addrs, |mut c| {
                let req = v1::MatchRequest {
                    group: group.clone(),
                    key: key.clone(),
                };
                async move { c.r#match(req).await.map(|r| r.into_inner()) }
            })
            .await?;
            let services: Vec<v1::Service> = r.service.into_iter().collect();
            if cli.json {
                let service = services_json(&services).into_iter().next().unwrap_or(Value::Null);
                println!("{}", json!({"service": service, "version": r.version}));
            } else {
                print!("{}", services_table(&services));
            }
        }
        Command::Match {
            group,
            key,
            n: Some(n),
        } => {
            let (r, _) = with_failover(&addrs, |mut c| {
                let req = v1::MatchNRequest {
                    group: group.clone(),
                    key: key.clone(),
                    n,
                };
                async move { c.match_n(req).await.map(|r| r.into_inner()) }
            })
            .await?;
            if cli.json {
                println!(
                    "{}",
                    json!({"services": services_json(&r.services), "version": r.version})
                );
            } else {
                print!("{}", services_table(&r.services));
            }
        }
        Command::Groups => {
            let (r, _) = with_failover(&addrs, |mut c| async move {
                c.groups(v1::GroupsRequest {}).await.map(|r| r.into_inner())
            })
            .await?;
            if cli.json {
                let groups: Vec<Value> = r
                    .groups
                    .iter()
                    .map(|g| json!({"name": g.name, "members": g.members, "version": g.version}))
                    .collect();
                println!("{}", json!({ "groups": groups }));
            } else {
                print!("{}", groups_table(&r.groups));
            }
        }
        Command::Watch { group } => watch(&addrs, &group, cli.json).await?,
    }
    Ok(())
}

/// Prints every snapshot of `group`; when a registry goes away, goes on
/// with the next one. Fails once no registry answers.
async fn watch(addrs: &[String], group: &str, as_json: bool) -> Result<(), CliError> {
    if addrs.is_empty() {
        return Err(CliError("no registry address given".into()));
    }
    let mut start = 0;
    loop {
        // Rotate so that after a failure the next registry is tried first.
        let order: Vec<String> = addrs
            .iter()
            .cycle()
            .skip(start)
            .take(addrs.len())
            .cloned()
            .collect();
        let (mut stream, addr) = with_failover(&order, |mut c| {
            let group = group.to_string();
            async move { c.watch(v1::WatchRequest { group }).await.map(|r| r.into_inner()) }
        })
        .await?;
        loop {
            match stream.message().await {
                Ok(Some(snap)) => {
                    if as_json {
                        println!(
                            "{}",
                            json!({
                                "group": snap.group,
                                "version": snap.version,
                                "services": services_json(&snap.services),
                                "ring": snap.ring,
                            })
                        );
                    } else {
                        println!(
                            "# {} version {}: {} member(s)",
                            snap.group,
                            snap.version,
                            snap.services.len()
                        );
                        print!("{}", services_table(&snap.services));
                    }
                }
                Ok(None) => {
                    eprintln!("registry: the watch stream from {addr} ended; trying the next registry");
                    break;
                }
                Err(s) if s.code() == Code::Unavailable || s.code() == Code::Unknown => {
                    eprintln!(
                        "registry: the watch stream from {addr} broke ({}); trying the next registry",
                        s.message()
                    );
                    break;
                }
                Err(s) => return Err(status_error(&addr, &s)),
            }
        }
        let used = addrs.iter().position(|a| *a == addr).unwrap_or(0);
        start = used + 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Services as JSON objects (the field names of `registry.v1.Service`).
pub fn services_json(services: &[v1::Service]) -> Vec<Value> {
    services
        .iter()
        .map(|s| json!({"id": s.id, "group": s.group, "addr": s.addr, "weight": s.weight, "tags": s.tags}))
        .collect()
}

/// Services as an aligned table with a header; "(no members)" when empty.
pub fn services_table(services: &[v1::Service]) -> String {
    if services.is_empty() {
        return "(no members)\n".to_string();
    }
    let rows: Vec<Vec<String>> = services
        .iter()
        .map(|s| {
            let tags: Vec<String> = s.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            vec![s.id.clone(), s.addr.clone(), s.weight.to_string(), tags.join(",")]
        })
        .collect();
    table(&["ID", "ADDR", "WEIGHT", "TAGS"], &rows)
}

/// Groups as an aligned table with a header; "(no groups)" when empty.
pub fn groups_table(groups: &[v1::GroupInfo]) -> String {
    if groups.is_empty() {
        return "(no groups)\n".to_string();
    }
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| vec![g.name.clone(), g.members.to_string(), g.version.to_string()])
        .collect();
    table(&["GROUP", "MEMBERS", "VERSION"], &rows)
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(id: &str, addr: &str) -> v1::Service {
        v1::Service {
            id: id.into(),
            group: "web".into(),
            addr: addr.into(),
            weight: 1,
            tags: [("zone".to_string(), "a".to_string())].into_iter().collect(),
        }
    }

    #[test]
    fn tables_are_aligned() {
        let t = services_table(&[svc("web-1", "127.0.0.1:8080"), svc("w2", "10.0.0.1:1")]);
        assert_eq!(
            t,
            "ID     ADDR            WEIGHT  TAGS\n\
             web-1  127.0.0.1:8080  1       zone=a\n\
             w2     10.0.0.1:1      1       zone=a\n"
        );
        assert_eq!(services_table(&[]), "(no members)\n");
    }

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from(["registry", "--registry", "a:1,b:2", "match", "web", "k", "--json"])
            .unwrap();
        assert_eq!(cli.registry, vec!["a:1", "b:2"]);
        assert!(cli.json);
        assert!(matches!(cli.command, Command::Match { n: None, .. }));
    }
}
