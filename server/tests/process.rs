//! The real binaries: `registry-server` flags and start-up failures, a
//! single-node registry queried with the `registry` CLI and curl-like HTTP,
//! and graceful shutdown on SIGTERM.

mod common;

use common::{http_get, wait_ready, Finished, Proc};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::Duration;

const SERVER: &str = env!("CARGO_BIN_EXE_registry-server");
const CLI: &str = env!("CARGO_BIN_EXE_registry");

/// Runs the server with `env`, expecting it to exit by itself within 20 s.
fn run_to_exit_env(args: &[&str], env: &[(&str, &str)]) -> Finished {
    let child = Command::new(SERVER)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn registry-server");
    let out = Proc::new(child).finish(Duration::from_secs(20));
    assert!(
        out.code.is_some(),
        "registry-server {args:?} should have exited by itself"
    );
    out
}

/// Runs the server, expecting it to exit by itself within 20 s.
fn run_to_exit(args: &[&str]) -> Finished {
    run_to_exit_env(args, &[])
}

fn one_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr).to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr, got {text:?}");
    lines[0].to_string()
}

#[test]
fn an_address_in_use_exits_non_zero_with_one_line_naming_the_flag() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");

    let out = run_to_exit(&[
        "--addr",
        &addr,
        "--http-addr",
        "127.0.0.1:0",
        "--bind",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.code, Some(1));
    let line = one_line(&out.stderr);
    assert!(
        line.starts_with("registry-server: cannot bind the gRPC address"),
        "{line}"
    );
    assert!(line.contains(&addr) && line.contains("--addr"), "{line}");

    let out = run_to_exit(&[
        "--addr",
        "127.0.0.1:0",
        "--http-addr",
        &addr,
        "--bind",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.code, Some(1));
    let line = one_line(&out.stderr);
    assert!(
        line.contains("HTTP address") && line.contains("--http-addr"),
        "{line}"
    );
    assert!(out.stdout.is_empty(), "nothing started, nothing printed");
}

#[test]
fn bad_flags_exit_2_with_one_line() {
    for args in [
        vec!["--no-such-flag"],
        vec!["--addr", "not-an-address"],
        vec!["--log-format", "xml"],
        vec!["--encrypt-key", "tooshort"],
        vec!["--max-key-bytes", "0"],
        vec!["--id", ""],
        vec!["--registries", "127.0.0.1:7370,:1"],
    ] {
        let out = run_to_exit(&args);
        assert_eq!(out.code, Some(2), "{args:?}");
        let line = one_line(&out.stderr);
        assert!(line.starts_with("registry-server: "), "{args:?}: {line}");
    }
    // A bad value from the environment is caught the same way.
    let out = run_to_exit_env(&[], &[("REGISTRY_ADDR", "nonsense")]);
    assert_eq!(out.code, Some(2));
    assert!(one_line(&out.stderr).contains("nonsense"));
    // --help still prints in full and succeeds.
    let out = run_to_exit(&["--help"]);
    assert_eq!(out.code, Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--id",
        "--bind",
        "--bind-advertise",
        "--addr",
        "--advertise",
        "--registries",
        "--http-addr",
        "--encrypt-key",
        "--log-format",
        "--max-key-bytes",
        "REGISTRY_ID",
    ] {
        assert!(help.contains(flag), "--help mentions {flag}");
    }
}

fn cli(grpc: &str, args: &[&str]) -> std::process::Output {
    Command::new(CLI)
        .arg("--registry")
        .arg(grpc)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run registry")
}

#[test]
fn a_single_node_registry_serves_the_cli_and_http_then_stops_on_sigterm() {
    let child = Command::new(SERVER)
        .args(["--id", "solo", "--log-format", "json"])
        .env("REGISTRY_ADDR", "127.0.0.1:0")
        .env("REGISTRY_HTTP_ADDR", "127.0.0.1:0")
        .env("REGISTRY_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn registry-server");
    let mut server = Proc::new(child);
    let stderr = server.child.stderr.take().expect("stderr");
    let (ready, logs) = wait_ready(stderr);
    let grpc = ready["fields"]["grpc"].as_str().expect("grpc addr").to_string();
    let http: SocketAddr = ready["fields"]["http"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("http addr");
    assert_eq!(ready["fields"]["id"], "solo");

    // The CLI: groups, members (table and JSON), match on an empty group.
    let out = cli(&grpc, &["groups"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(
        lines.next().map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["GROUP", "MEMBERS", "VERSION", "CHECKSUM"])
    );
    let row: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(&row[..2], ["registry-group", "1"]);
    let solo = registry_core::ring::Ring::new([("solo", 1)])
        .expect("ring")
        .checksum();
    assert_eq!(
        row.get(3).copied(),
        Some(registry_core::ring::checksum_hex(solo).as_str())
    );

    let out = cli(&grpc, &["members", "registry-group", "--json"]);
    assert!(out.status.success());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(j["services"][0]["id"], "solo");
    assert_eq!(j["services"][0]["addr"], grpc.as_str());

    let out = cli(&grpc, &["match", "web", "user-1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NOT_FOUND") && err.contains("\"web\""), "{err}");

    let out = cli(&grpc, &["members", "web"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "(no members)\n");

    // Failover: a dead address first, then the live one.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = cli(&format!("{dead},{grpc}"), &["groups", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Only dead addresses: a clear error, exit 1.
    let out = cli(&dead.to_string(), &["groups"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("UNAVAILABLE"));

    // HTTP.
    let a = http_get(http, "/healthz");
    assert_eq!(a.status, 200);
    let a = http_get(http, "/v1/members?group=registry-group");
    assert_eq!(a.json()["services"][0]["id"], "solo");

    // SIGTERM: exit 0 promptly, "stopped" logged.
    server.terminate();
    let code = server.wait_timeout(Duration::from_secs(15));
    assert_eq!(code, Some(0), "graceful exit");
    // The reader thread ends at EOF, once the process is gone.
    let rest: Vec<String> = logs.iter().collect();
    assert!(
        rest.iter().any(|l| l.contains("\"stopped\"")),
        "logs after SIGTERM: {rest:?}"
    );
}
