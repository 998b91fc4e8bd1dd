//! `registry-example-service`: a tiny HTTP service that registers itself in
//! a group (like the old `webservice` example). `GET /` answers with its
//! id, so you can see which instance a key was sent to.
//!
//! ```text
//! registry-example-service --id web-1 --group web --addr 127.0.0.1:8081 --registries 127.0.0.1:7370
//! curl 127.0.0.1:8081/      # {"id":"web-1","group":"web","addr":"127.0.0.1:8081"}
//! ```
//! SIGINT/SIGTERM leave the cluster gracefully (registries drop the
//! instance at once). A bad flag or metadata (an empty group…) or an
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
    /// Log format (to standard error).
    #[arg(long = "log-format", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
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
    if let Err(e) = registration.stop().await {
        tracing::warn!(error = %e, "leave failed");
    }
    stop.trigger();
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    tracing::info!("stopped");
    Ok(())
}
