//! `registry`: command-line client of a registry server.
//!
//! ```text
//! registry members GROUP
//! registry match GROUP KEY [-n N]
//! registry groups
//! registry watch GROUP
//! registry agree [GROUP...]
//! ```
//! `--registry ADDR[,ADDR]` (env `REGISTRY`, default 127.0.0.1:9800),
//! `--json` for JSON output. Exit code 0 on success, 1 on an error from the
//! registry or when none answers (agree: when one does not), 2 on a usage
//! error, 3 when `agree` finds registries that disagree.

use clap::Parser;
use registry_server::cli::{run, Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("registry: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("registry: {e}");
            ExitCode::from(e.exit)
        }
    }
}
