//! The messages a person sees for the common failures, one table per front
//! door written here: the Rust client (`registry_core::Client`) and the
//! `registry` CLI. No registry, an unknown group, an empty group (empty
//! name, and a group whose last member left), a bad address, and a TLS
//! mismatch (plain text against TLS, TLS against plain text, a CA that did
//! not sign the registry's certificate). Each row names the substrings a
//! person needs: the address tried, what to do, the group, the flag.

#[path = "common/certs.rs"]
mod certs;
mod common;

use certs::{TempDir, TestPki};
use common::{feed, start, start_with, svc, Proc};
use registry_core::client::{Client, ClientConfig, TlsConfig, NOT_RUNNING_HINT};
use registry_core::{Error, MemberEvent};
use registry_server::cli::REGISTRY_FLAG_HINT;
use registry_server::config::Settings;
use registry_server::daemon::Running;
use registry_server::tls::TlsFiles;
use std::process::{Command, Stdio};
use std::time::Duration;

const CLI: &str = env!("CARGO_BIN_EXE_registry");

/// The group that had a member, which then left.
const EMPTIED: &str = "emptied";

/// The registries every row runs against.
struct Fixture {
    /// A plain-text registry where `EMPTIED` lost its only member.
    plain: Running,
    /// A registry serving TLS only (no client certificate asked for).
    tls: Running,
    /// A registry serving TLS that asks for a client certificate.
    mutual: Running,
    /// Its certificates (`ca.pem`, `other-ca.pem`, ...).
    pki: TestPki,
    dir: TempDir,
    /// Two loopback ports nothing listens on.
    dead: [String; 2],
}

impl Fixture {
    async fn start() -> Fixture {
        let plain = start("errors-plain").await;
        let member = svc("m-1", EMPTIED);
        feed(
            &plain,
            vec![MemberEvent::Joined(member.clone()), MemberEvent::Left(member)],
        )
        .await;
        let pki = TestPki::generate();
        let dir = TempDir::new("errors");
        pki.write_to(&dir.0).expect("write certificates");
        let mut settings = Settings::loopback("errors-tls");
        settings.tls = Some(TlsFiles {
            cert: dir.file("server.pem"),
            key: dir.file("server-key.pem"),
            client_ca: None,
        });
        let tls = start_with(settings).await;
        let mut settings = Settings::loopback("errors-mutual");
        settings.tls = Some(TlsFiles {
            cert: dir.file("server.pem"),
            key: dir.file("server-key.pem"),
            client_ca: Some(dir.file("ca.pem")),
        });
        let mutual = start_with(settings).await;
        Fixture {
            plain,
            tls,
            mutual,
            pki,
            dir,
            dead: [dead_port(), dead_port()],
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.file(name).to_string_lossy().to_string()
    }
}

/// A loopback address nothing listens on: bound, noted, closed.
fn dead_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").to_string()
}

/// A client of `addrs` that only uses them (no discovery) and gives up fast.
async fn client(addrs: &[String], tls: Option<TlsConfig>) -> Result<Client, Error> {
    let mut config = ClientConfig::new(addrs.iter().map(String::as_str));
    config.discover_registries = false;
    config.max_backoff = Duration::from_millis(100);
    config.connect_timeout = Duration::from_millis(500);
    config.request_timeout = Duration::from_secs(2);
    config.tls = tls;
    Client::with_config(config).await
}

/// One row: what was done, what it gave, the kind and text expected.
struct Row {
    name: &'static str,
    got: Result<(), Error>,
    kind: &'static str,
    /// Substrings the message must contain.
    want: Vec<String>,
    /// Substrings it must not contain (a hint that would mislead).
    not: Vec<&'static str>,
}

fn kind(e: &Error) -> &'static str {
    match e {
        Error::InvalidArgument(_) => "InvalidArgument",
        Error::NotFound(_) => "NotFound",
        Error::AlreadyExists(_) => "AlreadyExists",
        Error::Unavailable(_) => "Unavailable",
        Error::Timeout(_) => "Timeout",
        Error::LimitExceeded(_) => "LimitExceeded",
        Error::Internal(_) => "Internal",
    }
}

/// Checks every row; panics listing each row that failed, with its text.
fn check(rows: Vec<Row>) {
    let mut wrong = Vec::new();
    for row in &rows {
        let e = match &row.got {
            Ok(()) => {
                wrong.push(format!("{}: no error", row.name));
                continue;
            }
            Err(e) => e,
        };
        let text = e.to_string();
        let missing: Vec<&String> = row.want.iter().filter(|w| !text.contains(w.as_str())).collect();
        let extra: Vec<&&str> = row.not.iter().filter(|n| text.contains(**n)).collect();
        if kind(e) != row.kind || !missing.is_empty() || !extra.is_empty() {
            wrong.push(format!(
                "{}: got {} {text:?}; want {} with {missing:?}, without {extra:?}",
                row.name,
                kind(e),
                row.kind
            ));
        }
        println!("{:<40} {text}", row.name);
    }
    assert!(wrong.is_empty(), "wrong messages:\n{}", wrong.join("\n"));
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_says_what_it_tried_and_what_to_do() {
    let f = Fixture::start().await;
    let plain = vec![f.plain.grpc_addr().to_string()];
    let tls = vec![f.tls.grpc_addr().to_string()];
    let [d1, d2] = f.dead.clone();
    let ca = |pem: &str| Some(TlsConfig::new(pem.as_bytes().to_vec()));

    let dead = client(&[d1.clone(), d2.clone()], None)
        .await
        .expect("lazy client");
    let up = client(&plain, None).await.expect("client");
    let emptied_view = up.group(EMPTIED).await.expect("view of an empty group");
    let rows = vec![
        Row {
            name: "no registry: match",
            got: dead.match_key("web", "k").await.map(drop),
            kind: "Unavailable",
            want: vec![
                format!("no registry reachable: tried {d1} (connection refused), {d2} (connection refused)"),
                NOT_RUNNING_HINT.to_string(),
            ],
            not: vec!["transport error", "tcp connect"],
        },
        Row {
            name: "no registry: local view",
            got: dead.group("web").await.map(drop),
            kind: "Unavailable",
            want: vec![
                "no registry sent a snapshot of group \"web\"".into(),
                format!("tried {d1} (connection refused)"),
                NOT_RUNNING_HINT.to_string(),
            ],
            not: vec![],
        },
        Row {
            name: "unknown group: match",
            got: up.match_key("never-seen", "k").await.map(drop),
            kind: "NotFound",
            want: strings(&["group \"never-seen\" has no members: none has registered"]),
            not: vec![],
        },
        Row {
            name: "empty group (last member left): match",
            got: up.match_key(EMPTIED, "k").await.map(drop),
            kind: "NotFound",
            want: strings(&["group \"emptied\" has no members: its last member left"]),
            not: vec![],
        },
        Row {
            name: "empty group: local view match",
            got: emptied_view.match_key("k").map(drop),
            kind: "NotFound",
            want: strings(&["group \"emptied\" has no members"]),
            not: vec![],
        },
        Row {
            name: "empty group name",
            got: up.match_key("", "k").await.map(drop),
            kind: "InvalidArgument",
            want: strings(&["group is empty: a name is required"]),
            not: vec![],
        },
        Row {
            name: "bad address: no port",
            got: client(&["127.0.0.1".into()], None).await.map(drop),
            kind: "InvalidArgument",
            want: strings(&[
                "bad registry address \"127.0.0.1\": no port",
                "expected host:port, e.g. 127.0.0.1:9800",
            ]),
            not: vec![],
        },
        Row {
            name: "bad address: port out of range",
            got: client(&["127.0.0.1:99999".into()], None).await.map(drop),
            kind: "InvalidArgument",
            want: strings(&["\"127.0.0.1:99999\"", "port \"99999\" is not 1 to 65535"]),
            not: vec![],
        },
        Row {
            name: "bad address: not an address",
            got: client(&["not an address".into()], None).await.map(drop),
            kind: "InvalidArgument",
            want: strings(&["bad registry address \"not an address\"", "expected host:port"]),
            not: vec![],
        },
        Row {
            name: "bad address: empty",
            got: client(&["".into()], None).await.map(drop),
            kind: "InvalidArgument",
            want: strings(&["registry address is empty"]),
            not: vec![],
        },
        Row {
            name: "TLS mismatch: plain client, TLS registry",
            got: client(&tls, None)
                .await
                .expect("client")
                .match_key("web", "k")
                .await
                .map(drop),
            kind: "Unavailable",
            want: vec![
                format!("no registry reachable: tried {}", tls[0]),
                "does the registry serve TLS only? then the client needs its CA".into(),
            ],
            not: vec![NOT_RUNNING_HINT, "transport error"],
        },
        Row {
            name: "TLS mismatch: CA that did not sign it",
            got: client(&tls, ca(&f.pki.other_ca.cert))
                .await
                .expect("client")
                .match_key("web", "k")
                .await
                .map(drop),
            kind: "Unavailable",
            want: vec![
                format!("tried https://{}", tls[0]),
                "TLS: invalid peer certificate: UnknownIssuer".into(),
                "not signed by the client's TLS CA".into(),
            ],
            not: vec![NOT_RUNNING_HINT],
        },
        Row {
            name: "TLS mismatch: no client certificate",
            got: client(&[f.mutual.grpc_addr().to_string()], ca(&f.pki.ca.cert))
                .await
                .expect("client")
                .match_key("web", "k")
                .await
                .map(drop),
            kind: "Unavailable",
            want: vec![
                format!("tried https://{} (", f.mutual.grpc_addr()),
                "client certificate".into(),
            ],
            not: vec![NOT_RUNNING_HINT],
        },
        Row {
            name: "TLS mismatch: TLS client, plain registry",
            got: client(&plain, ca(&f.pki.ca.cert))
                .await
                .expect("client")
                .match_key("web", "k")
                .await
                .map(drop),
            kind: "Unavailable",
            want: vec![
                format!("tried https://{}", plain[0]),
                "does the registry serve plain text? then the client needs no TLS settings".into(),
            ],
            not: vec![NOT_RUNNING_HINT],
        },
    ];
    check(rows);
    // The same client, with the right CA, is answered: the rows above
    // failed for the reason they name.
    let good = client(&tls, ca(&f.pki.ca.cert)).await.expect("client");
    assert!(matches!(
        good.match_key("web", "k").await,
        Err(Error::NotFound(_))
    ));
}

/// Runs the `registry` CLI with `args` and `env` (every `REGISTRY*`
/// variable of the test's own environment removed); its exit code and
/// standard error.
async fn run_cli(args: Vec<String>, env: Vec<(&'static str, String)>) -> (Option<i32>, String) {
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(CLI);
        for var in [
            "REGISTRY",
            "REGISTRY_TLS_CA",
            "REGISTRY_TLS_CERT",
            "REGISTRY_TLS_KEY",
            "REGISTRY_TLS_DOMAIN",
        ] {
            cmd.env_remove(var);
        }
        let child = cmd
            .args(&args)
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn registry");
        let out = Proc::new(child).finish(Duration::from_secs(30));
        (out.code, String::from_utf8_lossy(&out.stderr).to_string())
    })
    .await
    .expect("CLI thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_says_what_it_tried_which_flag_sets_it_and_what_to_do() {
    let f = Fixture::start().await;
    let plain = f.plain.grpc_addr().to_string();
    let tls = f.tls.grpc_addr().to_string();
    let [d1, d2] = f.dead.clone();
    let args = |items: &[&str]| -> Vec<String> { strings(items) };

    // name, args, env, substrings wanted, substrings that must be absent.
    type CliRow = (
        &'static str,
        Vec<String>,
        Vec<(&'static str, String)>,
        Vec<String>,
        Vec<&'static str>,
    );
    let rows: Vec<CliRow> = vec![
        (
            "no registry (--registry)",
            args(&["--registry", &format!("{d1},{d2}"), "groups"]),
            vec![],
            vec![
                format!(
                    "registry: UNAVAILABLE: no registry reachable: tried {d1} (connection refused), {d2} (connection refused)"
                ),
                NOT_RUNNING_HINT.into(),
                REGISTRY_FLAG_HINT.into(),
            ],
            vec!["transport error"],
        ),
        (
            "no registry (env REGISTRY)",
            args(&["match", "web", "k"]),
            vec![("REGISTRY", d1.clone())],
            vec![
                format!("tried {d1} (connection refused)"),
                NOT_RUNNING_HINT.into(),
                "--registry".into(),
                "env REGISTRY".into(),
            ],
            vec![],
        ),
        (
            "unknown group",
            args(&["--registry", &plain, "match", "never-seen", "k"]),
            vec![],
            strings(&["registry: NOT_FOUND: group \"never-seen\" has no members: none has registered"]),
            vec![REGISTRY_FLAG_HINT],
        ),
        (
            "empty group (last member left)",
            args(&["--registry", &plain, "match", EMPTIED, "k"]),
            vec![],
            strings(&["registry: NOT_FOUND: group \"emptied\" has no members: its last member left"]),
            vec![],
        ),
        (
            "empty group name",
            args(&["--registry", &plain, "members", ""]),
            vec![],
            strings(&["registry: INVALID_ARGUMENT: group is empty: a name is required"]),
            vec![],
        ),
        (
            "bad address",
            args(&["--registry", "127.0.0.1", "groups"]),
            vec![],
            strings(&[
                "registry: INVALID_ARGUMENT: bad registry address \"127.0.0.1\": no port; expected host:port",
            ]),
            vec![],
        ),
        (
            "TLS mismatch: no --tls-ca, TLS registry",
            args(&["--registry", &tls, "groups"]),
            vec![],
            vec![
                format!("registry: UNAVAILABLE: no registry reachable: tried {tls}"),
                "does the registry serve TLS only? then the client needs its CA".into(),
            ],
            vec![NOT_RUNNING_HINT],
        ),
        (
            "TLS mismatch: --tls-ca that did not sign it",
            args(&[
                "--registry",
                &tls,
                "--tls-ca",
                &f.path("other-ca.pem"),
                "groups",
            ]),
            vec![],
            strings(&[
                "registry: UNAVAILABLE: no registry reachable: tried https://",
                "UnknownIssuer",
                "not signed by the client's TLS CA",
            ]),
            vec![NOT_RUNNING_HINT],
        ),
        (
            "TLS mismatch: no client certificate",
            args(&[
                "--registry",
                &f.mutual.grpc_addr().to_string(),
                "--tls-ca",
                &f.path("ca.pem"),
                "groups",
            ]),
            vec![],
            strings(&["registry: UNAVAILABLE: no registry reachable: tried https://", "client certificate"]),
            vec![NOT_RUNNING_HINT],
        ),
    ];
    let mut wrong = Vec::new();
    for (name, args, env, want, not) in rows {
        let (code, stderr) = run_cli(args, env).await;
        println!("{name:<45} {}", stderr.trim());
        let lines = stderr.trim().lines().count();
        let missing: Vec<&String> = want.iter().filter(|w| !stderr.contains(w.as_str())).collect();
        let extra: Vec<&&str> = not.iter().filter(|n| stderr.contains(**n)).collect();
        if code != Some(1) || lines != 1 || !missing.is_empty() || !extra.is_empty() {
            wrong.push(format!(
                "{name}: exit {code:?}, {lines} line(s) {stderr:?}; want exit 1, one line with {missing:?}, without {extra:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "wrong CLI messages:\n{}", wrong.join("\n"));
}
