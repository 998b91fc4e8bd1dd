//! The `registry` command-line client: `members`, `match`, `groups` and
//! `watch` against one or more registry servers, as a table or JSON. The
//! calls and their failover are `registry_core::client::Client`'s; this
//! module only parses flags and prints.

use crate::errors::code_name;
use clap::{Parser, Subcommand};
use registry_core::client::{Client, ClientConfig, GroupInfo, TlsConfig};
use registry_core::{Error, Service};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;
use tonic::Status;

/// Longest wait to connect to one registry.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for one answer from one registry (not for Watch).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

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

    /// CA certificates (PEM) the registries' certificates must chain to; connects with TLS [default: plain text]
    #[arg(long = "tls-ca", global = true, env = "REGISTRY_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// Client certificate (PEM) for registries that require one (mutual TLS); needs --tls-key and --tls-ca.
    #[arg(
        long = "tls-cert",
        global = true,
        env = "REGISTRY_TLS_CERT",
        value_name = "FILE"
    )]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert.
    #[arg(
        long = "tls-key",
        global = true,
        env = "REGISTRY_TLS_KEY",
        value_name = "FILE"
    )]
    pub tls_key: Option<PathBuf>,

    /// Name the registries' certificates must carry [default: the host of each address]
    #[arg(
        long = "tls-domain",
        global = true,
        env = "REGISTRY_TLS_DOMAIN",
        value_name = "NAME"
    )]
    pub tls_domain: Option<String>,

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

/// Appended to an `UNAVAILABLE` error: where this command's registry
/// addresses come from.
pub const REGISTRY_FLAG_HINT: &str = "; the registry addresses are set by --registry HOST:PORT[,HOST:PORT] or env REGISTRY (default 127.0.0.1:9800)";

impl From<Error> for CliError {
    /// `NOT_FOUND: group "web" has no members: ...`: the gRPC code name,
    /// then the message; for `UNAVAILABLE`, then the flag that sets the
    /// addresses.
    fn from(e: Error) -> Self {
        let hint = if matches!(e, Error::Unavailable(_)) {
            REGISTRY_FLAG_HINT
        } else {
            ""
        };
        let status = Status::from(e);
        CliError(format!(
            "{}: {}{hint}",
            code_name(status.code()),
            status.message()
        ))
    }
}

/// Runs the command, printing to standard output.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let mut config = ClientConfig::new(cli.registry.iter().map(String::as_str));
    config.connect_timeout = CONNECT_TIMEOUT;
    config.request_timeout = REQUEST_TIMEOUT;
    config.tls = tls_config(&cli)?;
    let client = Client::with_config(config).await?;
    match cli.command {
        Command::Members { group } => {
            let m = client.members(&group).await?;
            if cli.json {
                println!(
                    "{}",
                    json!({"group": group, "version": m.version, "services": services_json(&m.services)})
                );
            } else {
                print!("{}", services_table(&m.services));
            }
        }
        Command::Match { group, key, n: None } => {
            let owner = client.match_key(&group, &key).await?;
            if cli.json {
                println!("{}", json!({ "service": service_json(&owner) }));
            } else {
                print!("{}", services_table(std::slice::from_ref(&owner)));
            }
        }
        Command::Match {
            group,
            key,
            n: Some(n),
        } => {
            let owners = client.match_n(&group, &key, n as usize).await?;
            if cli.json {
                println!("{}", json!({ "services": services_json(&owners) }));
            } else {
                print!("{}", services_table(&owners));
            }
        }
        Command::Groups => {
            let groups = client.groups().await?;
            if cli.json {
                let groups: Vec<Value> = groups
                    .iter()
                    .map(|g| json!({"name": g.name, "members": g.members, "version": g.version}))
                    .collect();
                println!("{}", json!({ "groups": groups }));
            } else {
                print!("{}", groups_table(&groups));
            }
        }
        Command::Watch { group } => watch(&client, &group, cli.json).await?,
    }
    Ok(())
}

/// The TLS settings the flags ask for (`None` without `--tls-ca`).
fn tls_config(cli: &Cli) -> Result<Option<TlsConfig>, CliError> {
    Ok(TlsConfig::from_options(
        cli.tls_ca.as_deref(),
        cli.tls_cert.as_deref(),
        cli.tls_key.as_deref(),
        cli.tls_domain.as_deref(),
        ["--tls-ca", "--tls-cert", "--tls-key", "--tls-domain"],
    )?)
}

/// Prints every snapshot of `group`. When a registry's stream ends or
/// breaks, opens a new one (the client moves on to the next registry);
/// fails once no registry answers.
async fn watch(client: &Client, group: &str, as_json: bool) -> Result<(), CliError> {
    loop {
        let mut stream = client.watch(group).await?;
        loop {
            match stream.message().await {
                Ok(Some(snap)) => {
                    let services: Vec<Service> = snap.services.into_iter().map(Service::from).collect();
                    if as_json {
                        println!(
                            "{}",
                            json!({
                                "group": snap.group,
                                "version": snap.version,
                                "services": services_json(&services),
                                "ring": snap.ring,
                            })
                        );
                    } else {
                        println!(
                            "# {} version {}: {} member(s)",
                            printable(&snap.group),
                            snap.version,
                            services.len()
                        );
                        print!("{}", services_table(&services));
                    }
                }
                Ok(None) => {
                    eprintln!("registry: the watch stream ended; reconnecting");
                    break;
                }
                Err(s) => {
                    let e = Error::from(s);
                    if !matches!(e, Error::Unavailable(_) | Error::Timeout(_)) {
                        return Err(e.into());
                    }
                    eprintln!("registry: the watch stream broke ({e}); reconnecting");
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A service as a JSON object (the field names of `registry.v1.Service`).
pub fn service_json(s: &Service) -> Value {
    json!({"id": s.id, "group": s.group, "addr": s.addr, "weight": s.weight, "tags": s.tags})
}

/// Services as JSON objects.
pub fn services_json(services: &[Service]) -> Vec<Value> {
    services.iter().map(service_json).collect()
}

/// Services as an aligned table with a header; "(no members)" when empty.
pub fn services_table(services: &[Service]) -> String {
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
pub fn groups_table(groups: &[GroupInfo]) -> String {
    if groups.is_empty() {
        return "(no groups)\n".to_string();
    }
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| vec![g.name.clone(), g.members.to_string(), g.version.to_string()])
        .collect();
    table(&["GROUP", "MEMBERS", "VERSION"], &rows)
}

/// A cell as printed: control characters escaped (`\n`, `\u{1b}`), so
/// that no value, whatever a registry sends, can start a row of its own
/// or move the terminal's cursor.
fn printable(cell: &str) -> String {
    if !cell.chars().any(char::is_control) {
        return cell.to_string();
    }
    cell.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|c| printable(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
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
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(id: &str, addr: &str) -> Service {
        let mut s = Service::new(id, "web", addr);
        s.tags.insert("zone".into(), "a".into());
        s
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
    fn a_row_is_one_member_whatever_its_values() {
        let mut s = svc("web-1", "127.0.0.1:8080");
        s.tags.insert("zone".into(), "a\nfake-9  10.6.6.6:1  1".into());
        s.tags.insert("x".into(), "\u{1b}[2J\r".into());
        let mut g = svc("web-2\n", "127.0.0.1:8081");
        g.addr.push('\n');
        let t = services_table(&[s, g]);
        assert_eq!(t.lines().count(), 3, "{t}");
        assert!(
            t.contains("zone=a\\nfake-9") && t.contains("x=\\u{1b}[2J\\r"),
            "{t}"
        );
        assert!(!t.contains('\u{1b}') && !t.contains('\r'), "{t}");
        let groups = groups_table(&[GroupInfo {
            name: "g\nh".into(),
            members: 1,
            version: 2,
        }]);
        assert_eq!(groups.lines().count(), 2, "{groups}");
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
