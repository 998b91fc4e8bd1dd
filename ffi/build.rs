//! Gives `libregistry.so` a versioned SONAME, so programs linked against
//! one ABI load that ABI, and installed libraries of several versions can
//! live side by side (`scripts/install` lays out the links).
//!
//! The ABI follows the crate's semver: below 1.0 a minor release may break
//! it, so the SONAME is `libregistry.so.0.MINOR`; from 1.0 on it is
//! `libregistry.so.MAJOR`.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os != "linux" {
        return;
    }
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default();
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default();
    let abi = if major == "0" { format!("0.{minor}") } else { major };
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libregistry.so.{abi}");
}
