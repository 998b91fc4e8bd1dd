//! `registry-server`: the registry daemon. With no flags it starts a
//! working single-node registry (gRPC on 0.0.0.0:9800, HTTP on
//! 0.0.0.0:9801, gossip on 0.0.0.0:7370). See server/README.md.

use clap::error::ErrorKind;
use clap::Parser;
use registry_server::config::Flags;
use registry_server::{daemon, logging, shutdown};
use std::process::ExitCode;

/// Exit code of a bad flag or value.
const EXIT_USAGE: u8 = 2;
/// Exit code of a failure to start (address in use…) or a server error.
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    let flags = match Flags::try_parse() {
        Ok(f) => f,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => e.exit(),
        Err(e) => {
            eprintln!("registry-server: {} (see --help)", first_line(&e.to_string()));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let settings = match flags.into_settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("registry-server: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    logging::init(settings.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("registry-server: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    runtime.block_on(async move {
        let bound = match daemon::bind(settings).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("registry-server: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        };
        let mut running = match bound.start().await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("registry-server: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        };
        tokio::select! {
            sig = shutdown::os_signal() => {
                tracing::info!(signal = sig, "shutting down");
                // A second signal stops at once.
                tokio::spawn(async {
                    let sig = shutdown::os_signal().await;
                    eprintln!("registry-server: {sig} again, exiting now");
                    std::process::exit(130);
                });
                running.shutdown().await;
                ExitCode::SUCCESS
            }
            err = running.failed() => {
                eprintln!("registry-server: {err}");
                ExitCode::from(EXIT_FAILURE)
            }
        }
    })
}

/// The first line of clap's message, without its `error: ` prefix.
fn first_line(msg: &str) -> &str {
    let line = msg.lines().next().unwrap_or(msg);
    line.strip_prefix("error: ").unwrap_or(line)
}
