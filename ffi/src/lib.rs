//! C ABI of the registry (`libregistry.so`, header `include/registry.h`).
//! The full API lands with the C ABI issue.

use std::ffi::c_char;

/// The library version as a static NUL-terminated string. Never free it.
#[no_mangle]
pub extern "C" fn registry_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
