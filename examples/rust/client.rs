//! A client that assigns 1,000 user ids to the instances of a group and
//! prints the members. Mirrors werbenhu/registry's client example, but
//! answers every match locally from a followed copy of the group's ring.
//!
//! ```sh
//! cargo run -p registry-core --example client -- --registry 127.0.0.1:9800 --group web
//! ```

use registry_core::Client;
use std::collections::BTreeMap;
use std::error::Error;

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
    let registries = arg("--registry", "127.0.0.1:9800");
    let group = arg("--group", "web");
    let client = Client::connect(registries.split(',')).await?;

    // Follow the group locally: no round trip per key.
    let view = client.group(&group).await?;
    let members = client.members(&group).await?;
    println!("group {group:?}, version {}:", members.version);
    for s in &members.services {
        println!("  {:<16} {:<22} weight {}", s.id, s.addr, s.weight);
    }

    let mut per_member: BTreeMap<String, usize> = BTreeMap::new();
    for user in 0..1000 {
        let owner = view.match_key(&format!("user-{user}"))?;
        *per_member.entry(owner.id.clone()).or_default() += 1;
    }
    // One key asked of the registry too: the answers are the same.
    let remote = client.match_key(&group, "user-42").await?;
    let local = view.match_key("user-42")?;
    println!("user-42 -> {} (registry) / {} (local)", remote.id, local.id);
    println!("1000 users assigned:");
    for (id, n) in &per_member {
        println!("  {id:<16} {n}");
    }
    if remote.id != local.id {
        return Err("local and registry answers differ".into());
    }
    Ok(())
}
