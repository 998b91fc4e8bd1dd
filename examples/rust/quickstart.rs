//! Register an instance, follow its group, match a key, leave. Talks to a
//! registry started with defaults (`cargo run -p registry-server`); for
//! another, pass its gossip and gRPC addresses after `--`:
//! `cargo run -p registry-core --example quickstart -- 127.0.0.1:7370 127.0.0.1:9800`
use registry_core::registration::{Registration, RegistrationConfig};
use registry_core::Client;
use std::{error::Error, time::Duration};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let gossip = args.next().unwrap_or("127.0.0.1:7370".into());
    let grpc = args.next().unwrap_or("127.0.0.1:9800".into());

    // An id has one holder cluster-wide: a group of its own and the pid keep
    // this demo from replacing a real instance (it serves nothing at :8080).
    let id = format!("readme-example-{}", std::process::id());
    let config = RegistrationConfig::new(&id, "readme-demo", "127.0.0.1:8080").registry(gossip);
    let me = Registration::start(config).await?;

    // A client follows the group and answers locally, with no round trip.
    let client = Client::connect([grpc]).await?;
    let group = client.group("readme-demo").await?;
    let mut changes = group.subscribe();
    let visible = changes.wait_for(|_| group.members().iter().any(|s| s.id == id));
    tokio::time::timeout(Duration::from_secs(10), visible).await??;
    let owner = group.match_key("user-42")?;
    println!("user-42 -> {} at {}", owner.id, owner.addr);

    me.stop().await?; // a graceful leave: registries drop it at once
    Ok(())
}
