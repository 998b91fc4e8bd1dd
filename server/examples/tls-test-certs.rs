//! Writes throw-away test certificates (a CA, a server certificate for
//! 127.0.0.1/localhost, client certificates from that CA and from an
//! unrelated one) into the directory given as the only argument. Used by
//! the C, Go and Python TLS tests, which have no certificate tool of their
//! own they can count on: `cargo run -p registry-server --example
//! tls-test-certs -- DIR`.

#[path = "../tests/common/certs.rs"]
mod certs;

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: tls-test-certs DIR");
        return ExitCode::from(2);
    };
    match certs::TestPki::generate().write_to(std::path::Path::new(&dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tls-test-certs: cannot write into {}: {e}", dir.to_string_lossy());
            ExitCode::FAILURE
        }
    }
}
