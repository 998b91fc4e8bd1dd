//! Result objects: a service, a list of services, a list of groups. Each is
//! immutable once returned, may be read from several threads at once, and
//! is released with its own `*_free` function.

use crate::args::{arg_out, arg_ref};
use crate::error::{guard, guard_value, registry_status, FfiError};
use crate::handle::{free_arc, free_box, to_arc, to_box};
use registry_core::{GroupInfo, Service};
use std::ffi::{c_char, CString};
use std::sync::Arc;

/// A C string from a Rust one; a string that contains NUL is cut at it
/// (names cannot contain control characters; an addr or a tag could).
pub(crate) fn c_string(s: &str) -> CString {
    let end = s.find('\0').unwrap_or(s.len());
    CString::new(&s[..end]).unwrap_or_default()
}

/// One service instance (id, group, addr, weight, tags, draining), as matched or
/// listed. Opaque; read it with the `registry_service_*` accessors.
/// Reference-counted: every `registry_service *` the library hands out
/// must be released once with `registry_service_free`, except those
/// borrowed from a list with `registry_service_list_get`.
pub struct registry_service {
    id: CString,
    group: CString,
    addr: CString,
    weight: u32,
    tags: Vec<(CString, CString)>,
    draining: bool,
}

impl registry_service {
    /// The C form of a core service.
    pub(crate) fn new(s: &Service) -> Arc<Self> {
        Arc::new(registry_service {
            id: c_string(&s.id),
            group: c_string(&s.group),
            addr: c_string(&s.addr),
            weight: s.weight,
            tags: s.tags.iter().map(|(k, v)| (c_string(k), c_string(v))).collect(),
            draining: s.draining,
        })
    }

    /// Hands one reference to the caller.
    pub(crate) fn into_raw(this: Arc<Self>) -> *const registry_service {
        to_arc(this)
    }
}

/// Releases a service returned by the library. NULL is a no-op.
///
/// # Safety
/// `service` is NULL or a pointer returned as owned by a `registry_*`
/// function (not one borrowed from a list), released only once; do not use
/// it afterwards. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn registry_service_free(service: *const registry_service) {
    // SAFETY: NULL or from `to_arc`, released once (contract above).
    unsafe { free_arc("registry_service_free", service) }
}

/// The service's unique id (NUL-terminated UTF-8).
///
/// # Safety
/// `service` is NULL or a live service. Ownership: the string belongs to
/// `service` and lives as long as it; never free it. NULL if `service` is
/// NULL.
#[no_mangle]
pub unsafe extern "C" fn registry_service_id(service: *const registry_service) -> *const c_char {
    // SAFETY: NULL or live (contract above).
    unsafe { service.as_ref() }.map_or(std::ptr::null(), |s| s.id.as_ptr())
}

/// The group the service belongs to.
///
/// # Safety
/// `service` is NULL or a live service. Ownership: the string belongs to
/// `service` and lives as long as it; never free it. NULL if `service` is
/// NULL.
#[no_mangle]
pub unsafe extern "C" fn registry_service_group(service: *const registry_service) -> *const c_char {
    // SAFETY: NULL or live (contract above).
    unsafe { service.as_ref() }.map_or(std::ptr::null(), |s| s.group.as_ptr())
}

/// The address clients use to reach the service (e.g. `"10.0.0.5:8080"`).
///
/// # Safety
/// `service` is NULL or a live service. Ownership: the string belongs to
/// `service` and lives as long as it; never free it. NULL if `service` is
/// NULL.
#[no_mangle]
pub unsafe extern "C" fn registry_service_addr(service: *const registry_service) -> *const c_char {
    // SAFETY: NULL or live (contract above).
    unsafe { service.as_ref() }.map_or(std::ptr::null(), |s| s.addr.as_ptr())
}

/// The service's weight (its relative share of keys, 1..=1000); 0 if
/// `service` is NULL.
///
/// # Safety
/// `service` is NULL or a live service.
#[no_mangle]
pub unsafe extern "C" fn registry_service_weight(service: *const registry_service) -> u32 {
    // SAFETY: NULL or live (contract above).
    unsafe { service.as_ref() }.map_or(0, |s| s.weight)
}

/// Whether the service is draining: listed, but owning no keys (no Match
/// answers it); false if `service` is NULL.
///
/// # Safety
/// `service` is NULL or a live service.
#[no_mangle]
pub unsafe extern "C" fn registry_service_draining(service: *const registry_service) -> bool {
    // SAFETY: NULL or live (contract above).
    unsafe { service.as_ref() }.is_some_and(|s| s.draining)
}

/// Number of tags of the service; 0 if `service` is NULL.
///
/// # Safety
/// `service` is NULL or a live service.
#[no_mangle]
pub unsafe extern "C" fn registry_service_tag_count(service: *const registry_service) -> usize {
    // SAFETY: NULL or live (contract above).
    unsafe { service.as_ref() }.map_or(0, |s| s.tags.len())
}

/// Tag number `index` (tags are sorted by key): writes its key and value.
/// `REGISTRY_NOT_FOUND` when `index >= registry_service_tag_count()`.
///
/// # Safety
/// `service` is a live service; `key_out` and `value_out` point to writable
/// `const char *`. Ownership: the strings belong to `service`; never free
/// them.
#[no_mangle]
pub unsafe extern "C" fn registry_service_tag(
    service: *const registry_service,
    index: usize,
    key_out: *mut *const c_char,
    value_out: *mut *const c_char,
) -> registry_status {
    guard("registry_service_tag", || {
        let service = arg_ref!(service);
        let key_out = arg_out!(ptr key_out);
        let value_out = arg_out!(ptr value_out);
        let (k, v) = service.tags.get(index).ok_or_else(|| FfiError {
            status: registry_status::REGISTRY_NOT_FOUND,
            message: format!(
                "tag index {index} is out of range (the service has {})",
                service.tags.len()
            ),
        })?;
        *key_out = k.as_ptr();
        *value_out = v.as_ptr();
        Ok(())
    })
}

/// The value of tag `key`, or NULL when the service has no such tag (or an
/// argument is NULL).
///
/// # Safety
/// `service` is NULL or a live service; `key` is NULL or NUL-terminated.
/// Ownership: the string belongs to `service`; never free it.
#[no_mangle]
pub unsafe extern "C" fn registry_service_tag_value(
    service: *const registry_service,
    key: *const c_char,
) -> *const c_char {
    guard_value("registry_service_tag_value", std::ptr::null(), || {
        // SAFETY: NULL or live / NUL-terminated (contract above).
        let (Some(s), false) = (unsafe { service.as_ref() }, key.is_null()) else {
            return std::ptr::null();
        };
        // SAFETY: not NULL, NUL-terminated (contract above).
        let key = unsafe { std::ffi::CStr::from_ptr(key) };
        s.tags
            .iter()
            .find(|(k, _)| k.as_c_str() == key)
            .map_or(std::ptr::null(), |(_, v)| v.as_ptr())
    })
}

/// An ordered list of services (from `match_n` or `members`). Opaque;
/// released with `registry_service_list_free`.
pub struct registry_service_list {
    pub(crate) items: Vec<Arc<registry_service>>,
}

impl registry_service_list {
    /// Hands the list to the caller.
    pub(crate) fn into_raw(items: Vec<Arc<registry_service>>) -> *mut registry_service_list {
        to_box(registry_service_list { items })
    }
}

/// Number of services in the list; 0 if `list` is NULL.
///
/// # Safety
/// `list` is NULL or a live list.
#[no_mangle]
pub unsafe extern "C" fn registry_service_list_len(list: *const registry_service_list) -> usize {
    // SAFETY: NULL or live (contract above).
    unsafe { list.as_ref() }.map_or(0, |l| l.items.len())
}

/// Service number `index` of the list, or NULL when `index` is out of range
/// or `list` is NULL.
///
/// # Safety
/// `list` is NULL or a live list. Ownership: borrowed; the service belongs
/// to `list`, lives as long as it, and must not be freed.
#[no_mangle]
pub unsafe extern "C" fn registry_service_list_get(
    list: *const registry_service_list,
    index: usize,
) -> *const registry_service {
    // SAFETY: NULL or live (contract above).
    unsafe { list.as_ref() }
        .and_then(|l| l.items.get(index))
        .map_or(std::ptr::null(), Arc::as_ptr)
}

/// Releases a list and the services it holds. NULL is a no-op.
///
/// # Safety
/// `list` is NULL or a list returned by the library, released only once.
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn registry_service_list_free(list: *mut registry_service_list) {
    // SAFETY: NULL or from `to_box`, released once (contract above).
    unsafe { free_box("registry_service_list_free", list) }
}

/// One entry of a group list.
struct GroupEntry {
    name: CString,
    members: u32,
    version: u64,
    checksum: u64,
}

/// The groups known to a registry (from `registry_client_groups`). Opaque;
/// released with `registry_group_list_free`.
pub struct registry_group_list {
    items: Vec<GroupEntry>,
}

impl registry_group_list {
    /// Hands the list to the caller.
    pub(crate) fn into_raw(groups: Vec<GroupInfo>) -> *mut registry_group_list {
        let items = groups
            .into_iter()
            .map(|g| GroupEntry {
                name: c_string(&g.name),
                members: g.members,
                version: g.version,
                checksum: g.checksum,
            })
            .collect();
        to_box(registry_group_list { items })
    }

    /// Group number `index`; `REGISTRY_NOT_FOUND` when out of range.
    fn at(&self, index: usize) -> Result<&GroupEntry, FfiError> {
        self.items.get(index).ok_or_else(|| FfiError {
            status: registry_status::REGISTRY_NOT_FOUND,
            message: format!(
                "group index {index} is out of range (the list has {})",
                self.items.len()
            ),
        })
    }
}

/// Number of groups in the list; 0 if `list` is NULL.
///
/// # Safety
/// `list` is NULL or a live list.
#[no_mangle]
pub unsafe extern "C" fn registry_group_list_len(list: *const registry_group_list) -> usize {
    // SAFETY: NULL or live (contract above).
    unsafe { list.as_ref() }.map_or(0, |l| l.items.len())
}

/// Reads group number `index`: its name, member count and ring version.
/// `REGISTRY_NOT_FOUND` when `index` is out of range.
///
/// # Safety
/// `list` is a live list; `name_out`, `members_out` and `version_out`
/// point to writable memory. Ownership: the name belongs to `list`; never
/// free it.
#[no_mangle]
pub unsafe extern "C" fn registry_group_list_get(
    list: *const registry_group_list,
    index: usize,
    name_out: *mut *const c_char,
    members_out: *mut u32,
    version_out: *mut u64,
) -> registry_status {
    guard("registry_group_list_get", || {
        let list = arg_ref!(list);
        let name_out = arg_out!(ptr name_out);
        let members_out = arg_out!(members_out);
        let version_out = arg_out!(version_out);
        let g = list.at(index)?;
        *name_out = g.name.as_ptr();
        *members_out = g.members;
        *version_out = g.version;
        Ok(())
    })
}

/// The ring checksum of group number `index` on the registry that answered
/// (equal on registries that hold the same members and weights).
/// `REGISTRY_NOT_FOUND` when `index` is out of range.
///
/// # Safety
/// `list` is a live list; `out` points to a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn registry_group_list_checksum(
    list: *const registry_group_list,
    index: usize,
    out: *mut u64,
) -> registry_status {
    guard("registry_group_list_checksum", || {
        let list = arg_ref!(list);
        let out = arg_out!(out);
        let g = list.at(index)?;
        *out = g.checksum;
        Ok(())
    })
}

/// Releases a group list. NULL is a no-op.
///
/// # Safety
/// `list` is NULL or a list returned by the library, released only once.
#[no_mangle]
pub unsafe extern "C" fn registry_group_list_free(list: *mut registry_group_list) {
    // SAFETY: NULL or from `to_box`, released once (contract above).
    unsafe { free_box("registry_group_list_free", list) }
}
