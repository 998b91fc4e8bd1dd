//! The `registry` command-line client: `members`, `match`, `groups` and
//! `watch` against one or more registry servers, as a table or JSON, and
//! `agree`, which asks every given registry and compares their rings. The
//! calls and their failover are `registry_core::client::Client`'s; this
//! module only parses flags and prints.

use crate::errors::code_name;
use clap::{Parser, Subcommand};
use registry_core::client::{Client, ClientConfig, GroupInfo, TlsConfig};
use registry_core::ring::checksum_hex;
use registry_core::{Error, Service};
use serde_json::{json, Value};
use std::collections::BTreeSet;
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
    about = "Query a registry server: members, match, groups, watch; compare registries: agree"
)]
pub struct Cli {
    /// gRPC addresses of registry servers, comma-separated; the next is tried when one is unavailable (agree: every one is asked).
    #[arg(
        long,
        visible_alias = "registries",
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
    /// Asks every registry of --registry for its groups and compares each group's ring checksum.
    /// Exit status 0 when all agree, 3 when two registries disagree, 1 when a registry cannot be asked.
    Agree {
        /// Groups to compare [default: every group any registry has].
        groups: Vec<String>,
    },
}

/// Exit status of `registry agree` when two registries hold different
/// rings (different checksums, or a group only some of them have).
pub const EXIT_DISAGREE: u8 = 3;

/// Why a command failed: a one-line message and the exit status (1, or
/// [`EXIT_DISAGREE`]).
#[derive(Debug)]
pub struct CliError {
    /// What went wrong.
    pub message: String,
    /// The process's exit status.
    pub exit: u8,
}

impl CliError {
    /// A failure with exit status 1.
    pub fn new(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            exit: 1,
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
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
        CliError::new(format!("{}{hint}", error_text(e)))
    }
}

/// `CODE: message` of an error, as the CLI prints it.
fn error_text(e: Error) -> String {
    let status = Status::from(e);
    format!("{}: {}", code_name(status.code()), status.message())
}

/// Runs the command, printing to standard output.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let mut config = ClientConfig::new(cli.registry.iter().map(String::as_str));
    config.connect_timeout = CONNECT_TIMEOUT;
    config.request_timeout = REQUEST_TIMEOUT;
    config.tls = tls_config(&cli)?;
    if let Command::Agree { groups } = &cli.command {
        return agree(&config, groups, cli.json).await;
    }
    let client = Client::with_config(config).await?;
    match cli.command {
        Command::Members { group } => {
            let m = client.members(&group).await?;
            if cli.json {
                println!(
                    "{}",
                    json!({
                        "group": group,
                        "version": m.version,
                        "checksum": checksum_hex(m.checksum),
                        "services": services_json(&m.services),
                    })
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
                    .map(|g| {
                        json!({
                            "name": g.name,
                            "members": g.members,
                            "version": g.version,
                            "checksum": checksum_hex(g.checksum),
                        })
                    })
                    .collect();
                println!("{}", json!({ "groups": groups }));
            } else {
                print!("{}", groups_table(&groups));
            }
        }
        Command::Watch { group } => watch(&client, &group, cli.json).await?,
        Command::Agree { .. } => {}
    }
    Ok(())
}

/// What one registry said in `agree`: its groups, or why it could not be asked.
type Answer = (String, Result<Vec<GroupInfo>, Error>);

/// `registry agree`: asks each registry of `config` (each on its own, no
/// failover) for its groups, prints per group each registry's version and
/// checksum, and fails with [`EXIT_DISAGREE`] when they differ, or with 1
/// when a registry could not be asked.
async fn agree(config: &ClientConfig, wanted: &[String], as_json: bool) -> Result<(), CliError> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, addr) in config.registries.iter().enumerate() {
        let mut one = config.clone();
        one.registries = vec![addr.clone()];
        one.discover_registries = false;
        one.attempts = Some(1);
        tasks.spawn(async move {
            let groups = match Client::with_config(one).await {
                Ok(client) => client.groups().await,
                Err(e) => Err(e),
            };
            (i, groups)
        });
    }
    let mut answers: Vec<Option<Result<Vec<GroupInfo>, Error>>> = vec![None; config.registries.len()];
    while let Some(done) = tasks.join_next().await {
        let (i, groups) = done.map_err(|e| CliError::new(format!("INTERNAL: {e}")))?;
        answers[i] = Some(groups);
    }
    let answers: Vec<Answer> = config
        .registries
        .iter()
        .cloned()
        .zip(
            answers
                .into_iter()
                .map(|a| a.unwrap_or_else(|| Err(Error::Internal("no answer".into())))),
        )
        .collect();
    let report = Agreement::new(&answers, wanted);
    if as_json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    report.verdict()
}

/// What one registry holds of one group: `(registry, Some((version,
/// checksum)))`, or `None` when it does not have the group.
pub type Held = (String, Option<(u64, u64)>);

/// The comparison `agree` prints: per group, each answering registry's
/// version and checksum.
#[derive(Debug)]
pub struct Agreement {
    /// `(group, what each registry holds)` sorted by group.
    pub groups: Vec<(String, Vec<Held>)>,
    /// Registries that could not be asked, and why.
    pub unreachable: Vec<(String, String)>,
}

impl Agreement {
    /// Compares `answers` on the groups `wanted` (every group any registry
    /// has when empty).
    pub fn new(answers: &[Answer], wanted: &[String]) -> Self {
        let up: Vec<(&String, &Vec<GroupInfo>)> = answers
            .iter()
            .filter_map(|(addr, r)| r.as_ref().ok().map(|g| (addr, g)))
            .collect();
        let names: BTreeSet<String> = if wanted.is_empty() {
            up.iter()
                .flat_map(|(_, g)| g.iter().map(|g| g.name.clone()))
                .collect()
        } else {
            wanted.iter().cloned().collect()
        };
        let groups = names
            .into_iter()
            .map(|name| {
                let seen = up
                    .iter()
                    .map(|(addr, gs)| {
                        let g = gs.iter().find(|g| g.name == name);
                        ((*addr).clone(), g.map(|g| (g.version, g.checksum)))
                    })
                    .collect();
                (name, seen)
            })
            .collect();
        let unreachable = answers
            .iter()
            .filter_map(|(addr, r)| r.as_ref().err().map(|e| (addr.clone(), error_text(e.clone()))))
            .collect();
        Agreement { groups, unreachable }
    }

    /// True when every answering registry has `group`'s ring with the same
    /// checksum (or none of them has the group).
    fn agrees(seen: &[Held]) -> bool {
        seen.windows(2)
            .all(|w| w[0].1.map(|(_, c)| c) == w[1].1.map(|(_, c)| c))
    }

    /// Groups on which the answering registries disagree.
    pub fn disagreeing(&self) -> Vec<&str> {
        self.groups
            .iter()
            .filter(|(_, seen)| !Self::agrees(seen))
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// Ok when all agree and every registry answered; else the error with
    /// its exit status ([`EXIT_DISAGREE`] first: it is a finding, while an
    /// unreachable registry only leaves the comparison incomplete).
    pub fn verdict(&self) -> Result<(), CliError> {
        let differ = self.disagreeing();
        if !differ.is_empty() {
            return Err(CliError {
                message: format!(
                    "registries disagree on {} group(s): {}",
                    differ.len(),
                    differ.join(", ")
                ),
                exit: EXIT_DISAGREE,
            });
        }
        if !self.unreachable.is_empty() {
            let who: Vec<String> = self
                .unreachable
                .iter()
                .map(|(a, e)| format!("{a}: {e}"))
                .collect();
            return Err(CliError::new(format!(
                "cannot compare every registry: {}{REGISTRY_FLAG_HINT}",
                who.join("; ")
            )));
        }
        Ok(())
    }

    /// One row per group and registry, then one per unreachable registry.
    pub fn table(&self) -> String {
        let mut rows = Vec::new();
        for (name, seen) in &self.groups {
            let agree = if Self::agrees(seen) { "yes" } else { "NO" };
            for (addr, ring) in seen {
                let (version, checksum) = match ring {
                    Some((v, c)) => (v.to_string(), checksum_hex(*c)),
                    None => ("-".into(), "(no members)".into()),
                };
                rows.push(vec![name.clone(), addr.clone(), version, checksum, agree.into()]);
            }
        }
        // The error itself goes to standard error, with the verdict.
        for (addr, _) in &self.unreachable {
            rows.push(vec![
                "*".into(),
                addr.clone(),
                "-".into(),
                "(unreachable)".into(),
                "?".into(),
            ]);
        }
        if rows.is_empty() {
            return "(no groups)\n".to_string();
        }
        table(&["GROUP", "REGISTRY", "VERSION", "CHECKSUM", "AGREE"], &rows)
    }

    /// The comparison as one JSON object.
    pub fn json(&self) -> Value {
        let groups: Vec<Value> = self
            .groups
            .iter()
            .map(|(name, seen)| {
                let registries: Vec<Value> = seen
                    .iter()
                    .map(|(addr, ring)| match ring {
                        Some((v, c)) => json!({"registry": addr, "version": v, "checksum": checksum_hex(*c)}),
                        None => json!({"registry": addr, "version": null, "checksum": null}),
                    })
                    .collect();
                json!({"name": name, "agree": Self::agrees(seen), "registries": registries})
            })
            .collect();
        let unreachable: Vec<Value> = self
            .unreachable
            .iter()
            .map(|(a, e)| json!({"registry": a, "error": e}))
            .collect();
        let agree = self.disagreeing().is_empty() && self.unreachable.is_empty();
        json!({"agree": agree, "groups": groups, "unreachable": unreachable})
    }
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
                                "checksum": checksum_hex(snap.checksum),
                            })
                        );
                    } else {
                        println!(
                            "# {} version {} checksum {}: {} member(s)",
                            printable(&snap.group),
                            snap.version,
                            checksum_hex(snap.checksum),
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

/// A service as a JSON object (the field names of `registry.v1.Service`),
/// for the CLI's `--json` and the HTTP API.
pub fn service_json(s: &Service) -> Value {
    json!({
        "id": s.id,
        "group": s.group,
        "addr": s.addr,
        "weight": s.weight,
        "tags": s.tags,
        "draining": s.draining,
    })
}

/// A member's ring state as the CLI table shows it.
fn state_word(s: &Service) -> &'static str {
    if s.draining {
        "draining"
    } else {
        "serving"
    }
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
            vec![
                s.id.clone(),
                s.addr.clone(),
                s.weight.to_string(),
                state_word(s).to_string(),
                tags.join(","),
            ]
        })
        .collect();
    table(&["ID", "ADDR", "WEIGHT", "STATE", "TAGS"], &rows)
}

/// Groups as an aligned table with a header; "(no groups)" when empty.
pub fn groups_table(groups: &[GroupInfo]) -> String {
    if groups.is_empty() {
        return "(no groups)\n".to_string();
    }
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                g.name.clone(),
                g.members.to_string(),
                g.version.to_string(),
                checksum_hex(g.checksum),
            ]
        })
        .collect();
    table(&["GROUP", "MEMBERS", "VERSION", "CHECKSUM"], &rows)
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
        let mut w2 = svc("w2", "10.0.0.1:1");
        w2.draining = true;
        let t = services_table(&[svc("web-1", "127.0.0.1:8080"), w2]);
        assert_eq!(
            t,
            "ID     ADDR            WEIGHT  STATE     TAGS\n\
             web-1  127.0.0.1:8080  1       serving   zone=a\n\
             w2     10.0.0.1:1      1       draining  zone=a\n"
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
            checksum: 0xab,
        }]);
        assert!(groups.contains("00000000000000ab"), "{groups}");
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
