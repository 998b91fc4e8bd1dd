//! `registry`: command-line client of a registry server (built in the server issue).

fn main() {
    eprintln!(
        "registry {}: the command-line client is not built yet",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
