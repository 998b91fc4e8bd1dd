//! Checks on what a C caller passes in: NULL pointers, invalid UTF-8,
//! slices. Exported functions use the `arg_*!` macros, which name the
//! parameter in the error message (`"key is NULL"`) and return early with
//! `REGISTRY_INVALID_ARGUMENT`.

use crate::error::{FfiError, FfiResult};
use std::ffi::{c_char, CStr};

/// `&T` from a handle pointer; fails on NULL.
///
/// # Safety
/// `p` is NULL or points to a live `T` for `'a`.
pub(crate) unsafe fn as_ref<'a, T>(p: *const T, name: &str) -> FfiResult<&'a T> {
    // SAFETY: checked for NULL; liveness is the caller's contract.
    unsafe { p.as_ref() }.ok_or_else(|| FfiError::invalid(format!("{name} is NULL")))
}

/// `&mut T` for an out-parameter; fails on NULL.
///
/// # Safety
/// `p` is NULL or points to writable memory for a `T`.
pub(crate) unsafe fn as_out<'a, T>(p: *mut T, name: &str) -> FfiResult<&'a mut T> {
    // SAFETY: checked for NULL; validity is the caller's contract.
    unsafe { p.as_mut() }.ok_or_else(|| FfiError::invalid(format!("{name} is NULL")))
}

/// Writes `value` to an optional out-parameter: nothing when `p` is NULL
/// (not wanted).
///
/// # Safety
/// `p` is NULL or points to writable memory for a `T`.
pub(crate) unsafe fn put_opt<T>(p: *mut T, value: T) {
    // SAFETY: checked for NULL; validity is the caller's contract.
    if let Some(out) = unsafe { p.as_mut() } {
        *out = value;
    }
}

/// A pointer out-parameter, set to NULL at once so that it is NULL on
/// every failure; fails on NULL.
///
/// # Safety
/// `p` is NULL or points to a writable pointer.
pub(crate) unsafe fn as_out_ptr<'a, T>(p: *mut *const T, name: &str) -> FfiResult<&'a mut *const T> {
    // SAFETY: as for `as_out`.
    let out = unsafe { as_out(p, name) }?;
    *out = std::ptr::null();
    Ok(out)
}

/// Mutable variant of [`as_out_ptr`].
///
/// # Safety
/// `p` is NULL or points to a writable pointer.
pub(crate) unsafe fn as_out_mut_ptr<'a, T>(p: *mut *mut T, name: &str) -> FfiResult<&'a mut *mut T> {
    // SAFETY: as for `as_out`.
    let out = unsafe { as_out(p, name) }?;
    *out = std::ptr::null_mut();
    Ok(out)
}

fn utf8<'a>(bytes: &'a [u8], name: &str) -> FfiResult<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        FfiError::invalid(format!(
            "{name} is not valid UTF-8 (bad byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// `&str` from a NUL-terminated string; fails on NULL and invalid UTF-8.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string live for `'a`.
pub(crate) unsafe fn as_str<'a>(p: *const c_char, name: &str) -> FfiResult<&'a str> {
    if p.is_null() {
        return Err(FfiError::invalid(format!("{name} is NULL")));
    }
    // SAFETY: not NULL; NUL termination is the caller's contract.
    utf8(unsafe { CStr::from_ptr(p) }.to_bytes(), name)
}

/// An optional string field: NULL is `None`.
///
/// # Safety
/// `p` is NULL or NUL-terminated.
pub(crate) unsafe fn optional(p: *const c_char, name: &str) -> FfiResult<Option<String>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: contract above.
    Ok(Some(unsafe { as_str(p, name) }?.to_string()))
}

/// `&str` from a pointer and a length (no NUL needed); NULL is accepted
/// only with length 0. Fails on invalid UTF-8.
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes live for `'a`.
pub(crate) unsafe fn as_str_len<'a>(p: *const c_char, len: usize, name: &str) -> FfiResult<&'a str> {
    // SAFETY: as for `as_slice`.
    utf8(unsafe { as_slice(p.cast::<u8>(), len, name) }?, name)
}

/// `&[T]` from a pointer and a count; NULL is accepted only with count 0.
///
/// # Safety
/// `p` is NULL or points to `len` initialised `T`s live for `'a`.
pub(crate) unsafe fn as_slice<'a, T>(p: *const T, len: usize, name: &str) -> FfiResult<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(FfiError::invalid(format!(
            "{name} is NULL but its length is {len}"
        )));
    }
    if len > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(FfiError::invalid(format!(
            "{name} has an impossible length {len}"
        )));
    }
    // SAFETY: not NULL, length bounded; validity is the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// `&T` from a handle parameter, or return `REGISTRY_INVALID_ARGUMENT`
/// ("<param> is NULL"). Use inside `guard`.
macro_rules! arg_ref {
    ($p:ident) => {
        unsafe { $crate::args::as_ref($p, stringify!($p)) }?
    };
}

/// `&mut T` from an out-parameter (pointer outs are reset to NULL first).
macro_rules! arg_out {
    ($p:ident) => {
        unsafe { $crate::args::as_out($p, stringify!($p)) }?
    };
    (ptr $p:ident) => {
        unsafe { $crate::args::as_out_ptr($p, stringify!($p)) }?
    };
    (mut_ptr $p:ident) => {
        unsafe { $crate::args::as_out_mut_ptr($p, stringify!($p)) }?
    };
}

/// `&str` from a NUL-terminated string parameter, or from a pointer and a
/// length (`arg_str!(key, key_len)`).
macro_rules! arg_str {
    ($p:ident) => {
        unsafe { $crate::args::as_str($p, stringify!($p)) }?
    };
    ($p:ident, $len:ident) => {
        unsafe { $crate::args::as_str_len($p, $len, stringify!($p)) }?
    };
}

/// `&[T]` from a pointer and a count.
macro_rules! arg_slice {
    ($p:ident, $len:ident) => {
        unsafe { $crate::args::as_slice($p, $len, stringify!($p)) }?
    };
}

pub(crate) use {arg_out, arg_ref, arg_slice, arg_str};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_and_bad_utf8_are_named() {
        let e = unsafe { as_str(std::ptr::null(), "group") }.unwrap_err();
        assert_eq!(e.message, "group is NULL");
        let bad = c"ab\xffc";
        let e = unsafe { as_str(bad.as_ptr(), "key") }.unwrap_err();
        assert_eq!(e.message, "key is not valid UTF-8 (bad byte at offset 2)");
        assert_eq!(unsafe { as_str_len(std::ptr::null(), 0, "key") }, Ok(""));
        let e = unsafe { as_str_len(std::ptr::null(), 3, "key") }.unwrap_err();
        assert_eq!(e.message, "key is NULL but its length is 3");
        assert_eq!(unsafe { as_str_len(c"hello".as_ptr(), 4, "key") }, Ok("hell"));
    }
}
