//! `registry-example-service`: a tiny HTTP service that registers itself in
//! a group (like the old `webservice` example). `GET /` answers with its
//! id, so you can see which instance a key was sent to.
//!
//! ```text
//! registry-example-service --id web-1 --group web --addr 127.0.0.1:8081 --registries 127.0.0.1:7370
//! curl 127.0.0.1:8081/      # {"id":"web-1","group":"web","addr":"127.0.0.1:8081"}
//! ```
//! SIGINT/SIGTERM leave the cluster gracefully (registries drop the
//! instance at once). With `--drain-grace 5s` the instance first drains
//! for that long (listed, owning no keys, still answering requests), so
//! that a stateful service could hand its keys over before it leaves. A bad flag or metadata (an empty group…) or an
//! address that cannot be bound exits non-zero with one line.

use axum::routing::get;
use axum::{Json, Router};
use clap::error::ErrorKind;
use clap::Parser;
use registry_core::registration::{Registration, RegistrationConfig};
use registry_server::config::{LogFormat, SecretString};
use registry_server::{logging, shutdown};
use serde_json::json;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

/// Flags of the example service.
#[derive(Debug, Parser)]
#[command(
    name = "registry-example-service",
    version,
    about = "Example service: registers itself in a group and answers GET / with its id"
)]
struct Flags {
    /// Unique id of this instance.
    #[arg(long, env = "SERVICE_ID")]
    id: String,
    /// Service group to join.
    #[arg(long, env = "SERVICE_GROUP", default_value = "web")]
    group: String,
    /// HTTP listen address (port 0: any free port).
    #[arg(long, env = "SERVICE_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Address registered for clients [default: the bound HTTP address].
    #[arg(long, env = "SERVICE_ADVERTISE")]
    advertise: Option<String>,
    /// Gossip (UDP) listen address (port 0: any free port).
    #[arg(long, env = "SERVICE_BIND", default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// Gossip addresses of the registries, comma-separated.
    #[arg(
        long,
        env = "SERVICE_REGISTRIES",
        value_delimiter = ',',
        default_value = "127.0.0.1:7370"
    )]
    registries: Vec<String>,
    /// Share of the keys (1..=1000).
    #[arg(long, env = "SERVICE_WEIGHT", default_value_t = 1)]
    weight: u32,
    /// Gossip encryption keys (64 hex digits, comma-separated), as the registries'.
    #[arg(long = "encrypt-key", env = "SERVICE_ENCRYPT_KEY", hide_env_values = true)]
    encrypt_key: Option<SecretString>,
    /// On SIGINT/SIGTERM, drain this long before leaving (e.g. `5s`,
    /// `500ms`; default 0: leave at once).
    #[arg(long = "drain-grace", env = "SERVICE_DRAIN_GRACE", value_parser = parse_grace, default_value = "0s")]
    drain_grace: Duration,
    /// Log format (to standard error).
    #[arg(long = "log-format", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// Parses a duration written `N`, `Ns` or `Nms`.
fn parse_grace(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration such as 5s or 500ms");
    let (digits, unit) = match text.strip_suffix("ms") {
        Some(d) => (d, 1),
        None => (text.strip_suffix('s').unwrap_or(text), 1000),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(unit).map(Duration::from_millis).ok_or_else(bad)
}

fn main() -> ExitCode {
    let flags = match Flags::try_parse() {
        Ok(f) => f,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => e.exit(),
        Err(e) => {
            let msg = e.to_string();
            let line = msg.lines().next().unwrap_or("");
            eprintln!(
                "registry-example-service: {} (see --help)",
                line.strip_prefix("error: ").unwrap_or(line)
            );
            return ExitCode::from(2);
        }
    };
    logging::init(flags.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("registry-example-service: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, msg)) => {
            eprintln!("registry-example-service: {msg}");
            ExitCode::from(code)
        }
    }
}

async fn run(flags: Flags) -> Result<(), (u8, String)> {
    let keyring = match &flags.encrypt_key {
        Some(k) => {
            Some(registry_server::config::parse_keys(&k.0).map_err(|e| (2, format!("--encrypt-key: {e}")))?)
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(flags.addr).await.map_err(|e| {
        (
            1,
            format!("cannot bind the HTTP address {} (--addr): {e}", flags.addr),
        )
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| (1, format!("HTTP listener: {e}")))?;
    let addr = flags.advertise.clone().unwrap_or_else(|| bound.to_string());

    let mut config = RegistrationConfig::new(flags.id.clone(), flags.group.clone(), addr.clone());
    config.bind = flags.bind;
    config.registries = flags.registries.clone();
    config.weight = flags.weight;
    config.keyring = keyring;
    let registration = Registration::start(config)
        .await
        .map_err(|e| (2, format!("cannot register: {e}")))?;

    let answer = json!({"id": flags.id, "group": flags.group, "addr": addr});
    let router = Router::new().route("/", get(move || async move { Json(answer) }));
    let stop = registry_server::shutdown::Shutdown::new();
    let server = {
        let stop = stop.wait();
        tokio::spawn(async move { axum::serve(listener, router).with_graceful_shutdown(stop).await })
    };
    tracing::info!(
        id = %flags.id,
        group = %flags.group,
        http = %bound,
        gossip = %registration.local_addr(),
        "ready"
    );

    // Report a duplicate id clearly while running.
    let mut check = tokio::time::interval(Duration::from_secs(1));
    let mut reported = Vec::new();
    let signal = shutdown::os_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            sig = &mut signal => {
                tracing::info!(signal = sig, "leaving");
                break;
            }
            _ = check.tick() => {
                let others = registration.node().conflicts();
                if !others.is_empty() && others != reported {
                    tracing::error!(id = %flags.id, ?others, "another live process uses this id; stop one of them");
                }
                reported = others;
            }
        }
    }
    if !flags.drain_grace.is_zero() {
        match registration.set_draining(true).await {
            Ok(()) => {
                tracing::info!(grace = ?flags.drain_grace, "draining");
                tokio::time::sleep(flags.drain_grace).await;
            }
            Err(e) => tracing::warn!(error = %e, "drain failed"),
        }
    }
    if let Err(e) = registration.stop().await {
        tracing::warn!(error = %e, "leave failed");
    }
    stop.trigger();
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    tracing::info!("stopped");
    Ok(())
}
