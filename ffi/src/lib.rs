//! C ABI of the registry: `libregistry.so` (and `libregistry.a`), described
//! by `include/registry.h`, which cbindgen generates from this crate.
//!
//! Every exported function runs inside a panic boundary, checks every
//! pointer it is given, rejects invalid UTF-8, and reports failure as a
//! [`registry_status`] code plus a thread-local message
//! ([`registry_last_error_message`]); it never aborts the host. Blocking
//! calls run on the one shared tokio runtime of `registry_core::runtime`.
//! The crate translates; it decides nothing the core does not.
//! Which handle is a `Box` and which an `Arc` is decided once, in `handle`
//! (creation and release go through it, so a mix-up does not compile).
#![allow(non_camel_case_types)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod args;
pub mod cancel;
pub mod changes;
pub mod client;
pub mod error;
mod handle;
pub mod moves;
pub mod registration;
pub mod ring;
pub mod service;
pub mod view;

pub use cancel::*;
pub use changes::*;
pub use client::*;
pub use error::*;
pub use moves::*;
pub use registration::*;
pub use ring::*;
pub use service::*;
pub use view::*;

use std::ffi::c_char;

/// The library version (e.g. `"0.1.0"`).
///
/// # Safety
/// Always safe to call. Ownership: static string; never free it.
#[no_mangle]
pub extern "C" fn registry_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
