//! Return codes, the one mapping from core errors to them, the thread-local
//! last-error message, and the panic boundary every exported function runs in.

use registry_core::Error;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Result code of every fallible `registry_*` function. `REGISTRY_OK` (0)
/// means success; on any other code the out-parameters are left NULL/unset
/// and `registry_last_error_message()` says what went wrong.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum registry_status {
    /// Success.
    REGISTRY_OK = 0,
    /// A NULL pointer, invalid UTF-8, an empty or too long name, n = 0,
    /// a weight out of range, a malformed address…
    REGISTRY_INVALID_ARGUMENT = 1,
    /// The group has no members, or the group, member or index does not exist.
    REGISTRY_NOT_FOUND = 2,
    /// The id or resource is already taken.
    REGISTRY_ALREADY_EXISTS = 3,
    /// No registry could be reached, or the handle was stopped.
    REGISTRY_UNAVAILABLE = 4,
    /// The operation did not finish within its deadline.
    REGISTRY_TIMEOUT = 5,
    /// A size, count or rate limit was exceeded.
    REGISTRY_LIMIT_EXCEEDED = 6,
    /// A bug or an unexpected state inside the library.
    REGISTRY_INTERNAL = 7,
    /// The library panicked; the call was abandoned and the process lives.
    REGISTRY_PANIC = 8,
    /// The caller fired the call's `registry_cancel` token.
    REGISTRY_CANCELLED = 9,
}

use registry_status::*;

/// Every status with its name, in code order (for `registry_status_name`).
const NAMES: [(registry_status, &str); 10] = [
    (REGISTRY_OK, "REGISTRY_OK\0"),
    (REGISTRY_INVALID_ARGUMENT, "REGISTRY_INVALID_ARGUMENT\0"),
    (REGISTRY_NOT_FOUND, "REGISTRY_NOT_FOUND\0"),
    (REGISTRY_ALREADY_EXISTS, "REGISTRY_ALREADY_EXISTS\0"),
    (REGISTRY_UNAVAILABLE, "REGISTRY_UNAVAILABLE\0"),
    (REGISTRY_TIMEOUT, "REGISTRY_TIMEOUT\0"),
    (REGISTRY_LIMIT_EXCEEDED, "REGISTRY_LIMIT_EXCEEDED\0"),
    (REGISTRY_INTERNAL, "REGISTRY_INTERNAL\0"),
    (REGISTRY_PANIC, "REGISTRY_PANIC\0"),
    (REGISTRY_CANCELLED, "REGISTRY_CANCELLED\0"),
];

/// An error on its way to the C caller: a code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FfiError {
    /// The code returned to the caller.
    pub status: registry_status,
    /// The message `registry_last_error_message()` returns.
    pub message: String,
}

impl FfiError {
    /// A `REGISTRY_INVALID_ARGUMENT` error.
    pub fn invalid(message: impl Into<String>) -> Self {
        FfiError {
            status: REGISTRY_INVALID_ARGUMENT,
            message: message.into(),
        }
    }
}

/// The one place where core error kinds become C return codes.
impl From<Error> for FfiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::InvalidArgument(_) => REGISTRY_INVALID_ARGUMENT,
            Error::NotFound(_) => REGISTRY_NOT_FOUND,
            Error::AlreadyExists(_) => REGISTRY_ALREADY_EXISTS,
            Error::Unavailable(_) => REGISTRY_UNAVAILABLE,
            Error::Timeout(_) => REGISTRY_TIMEOUT,
            Error::LimitExceeded(_) => REGISTRY_LIMIT_EXCEEDED,
            Error::Internal(_) => REGISTRY_INTERNAL,
        };
        FfiError {
            status,
            message: e.to_string(),
        }
    }
}

/// Result of the body of an exported function.
pub(crate) type FfiResult<T = ()> = Result<T, FfiError>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Stores `"<func>: <message>"` as this thread's last error.
fn set_last_error(func: &str, message: &str) {
    let text = format!("{func}: {message}").replace('\0', "\\0");
    let text = CString::new(text).unwrap_or_default();
    // `try_with` fails only while the thread is being torn down.
    let _ = LAST_ERROR.try_with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            *slot = text;
        }
    });
}

/// Runs the body of exported function `func` inside the panic boundary:
/// errors become a code plus the thread's last-error message, and a panic
/// becomes `REGISTRY_PANIC` instead of unwinding into C.
pub(crate) fn guard(func: &'static str, body: impl FnOnce() -> FfiResult) -> registry_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => REGISTRY_OK,
        Ok(Err(e)) => {
            set_last_error(func, &e.message);
            e.status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            // Dropping the payload could itself panic; leak it instead.
            std::mem::forget(payload);
            set_last_error(func, &format!("panic: {what}"));
            REGISTRY_PANIC
        }
    }
}

/// Runs a non-failing accessor inside the panic boundary, returning
/// `fallback` if it panics.
pub(crate) fn guard_value<T>(func: &'static str, fallback: T, body: impl FnOnce() -> T) -> T {
    let mut value = None;
    guard(func, || {
        value = Some(body());
        Ok(())
    });
    value.unwrap_or(fallback)
}

/// The message of the last failed `registry_*` call on the calling thread,
/// prefixed with the name of the function that failed (e.g.
/// `"registry_view_match: key is NULL"`); `""` if no call has failed yet on
/// this thread. Only meaningful right after a call returned a code other
/// than `REGISTRY_OK`: successful calls do not clear it.
///
/// # Safety
/// Always safe to call. Ownership: the library owns the string; never free
/// it. It stays valid until the next failing `registry_*` call on the same
/// thread; copy it to keep it longer.
#[no_mangle]
pub extern "C" fn registry_last_error_message() -> *const c_char {
    LAST_ERROR
        .try_with(|cell| match cell.try_borrow() {
            Ok(s) => s.as_ptr(),
            Err(_) => c"".as_ptr(),
        })
        .unwrap_or(c"".as_ptr())
}

/// The name of a status code as a static string (`"REGISTRY_NOT_FOUND"`),
/// or `"REGISTRY_UNKNOWN_STATUS"` for a value that is not a status.
///
/// # Safety
/// Always safe to call. Ownership: static string; never free it.
#[no_mangle]
pub extern "C" fn registry_status_name(status: c_int) -> *const c_char {
    NAMES
        .iter()
        .find(|(s, _)| *s as c_int == status)
        .map(|(_, name)| name.as_ptr().cast())
        .unwrap_or(c"REGISTRY_UNKNOWN_STATUS".as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last() -> String {
        unsafe { CStr::from_ptr(registry_last_error_message()) }
            .to_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn every_core_error_has_its_code() {
        let cases = [
            (Error::invalid("x"), REGISTRY_INVALID_ARGUMENT),
            (Error::not_found("x"), REGISTRY_NOT_FOUND),
            (Error::AlreadyExists("x".into()), REGISTRY_ALREADY_EXISTS),
            (Error::Unavailable("x".into()), REGISTRY_UNAVAILABLE),
            (Error::Timeout("x".into()), REGISTRY_TIMEOUT),
            (Error::LimitExceeded("x".into()), REGISTRY_LIMIT_EXCEEDED),
            (Error::Internal("x".into()), REGISTRY_INTERNAL),
        ];
        for (e, code) in cases {
            let msg = e.to_string();
            assert_eq!(
                FfiError::from(e),
                FfiError {
                    status: code,
                    message: msg
                }
            );
        }
    }

    #[test]
    fn guard_reports_errors_and_catches_panics() {
        assert_eq!(guard("f", || Ok(())), REGISTRY_OK);
        assert_eq!(
            guard("f", || Err(Error::not_found("nope").into())),
            REGISTRY_NOT_FOUND
        );
        assert_eq!(last(), "f: not found: nope");
        assert_eq!(guard("g", || panic!("boom {}", 1)), REGISTRY_PANIC);
        assert_eq!(last(), "g: panic: boom 1");
        assert_eq!(guard_value("h", 7, || -> i32 { panic!("x") }), 7);
        assert_eq!(
            guard("f", || Err(FfiError::invalid("a\0b"))),
            REGISTRY_INVALID_ARGUMENT
        );
        assert_eq!(last(), "f: a\\0b");
    }

    #[test]
    fn status_names() {
        for (i, (s, name)) in NAMES.iter().enumerate() {
            assert_eq!(*s as usize, i);
            let got = unsafe { CStr::from_ptr(registry_status_name(i as c_int)) };
            assert_eq!(got.to_bytes_with_nul(), name.as_bytes());
        }
        let unknown = unsafe { CStr::from_ptr(registry_status_name(99)) };
        assert_eq!(unknown.to_str().unwrap(), "REGISTRY_UNKNOWN_STATUS");
    }
}
