//! `registry-server`: the registry daemon (built in the server issue).

fn main() {
    eprintln!(
        "registry-server {}: the daemon is not built yet",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
