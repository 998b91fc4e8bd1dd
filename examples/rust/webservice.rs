//! A web service that registers itself with the registry and answers every
//! HTTP request with its id. Mirrors werbenhu/registry's webservice example.
//!
//! ```sh
//! cargo run -p registry-core --example webservice -- \
//!     --id web-1 --group web --addr 127.0.0.1:8081 --registry 127.0.0.1:7370
//! ```
//! Stops on Ctrl-C or SIGTERM, leaving the cluster gracefully.

use registry_core::registration::{Registration, RegistrationConfig};
use std::error::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Returns the value following `--name` on the command line, or `default`.
fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let id = arg("--id", "web-1");
    let group = arg("--group", "web");
    let addr = arg("--addr", "127.0.0.1:8081");
    let registries = arg("--registry", "127.0.0.1:7370");

    // Serve first, so the address is live before anyone can be sent to it.
    let listener = TcpListener::bind(&addr).await?;
    let mut config = RegistrationConfig::new(&id, &group, &addr);
    for r in registries.split(',').filter(|r| !r.is_empty()) {
        config = config.registry(r);
    }
    let registration = Registration::start(config).await?;
    println!("{id}: serving http://{addr}/ in group {group:?}");

    let answer = format!("hello from {id}\n");
    let serve = async {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                continue;
            };
            let body = answer.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    };
    tokio::select! {
        _ = serve => {}
        _ = shutdown_signal() => {}
    }
    registration.stop().await?;
    println!("{id}: left the cluster");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
