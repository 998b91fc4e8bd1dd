//! The service side: register a service instance so registries see it,
//! change its metadata at runtime, and leave gracefully.

use crate::args::{arg_out, arg_ref, arg_str, as_str, optional};
use crate::cancel::{block_on, registry_cancel, token};
use crate::error::{guard, registry_status, FfiError, FfiResult};
use crate::handle::{free_box_with, to_box};
use crate::service::registry_service;
use registry_core::gossip::Keyring;
use registry_core::registration::{Registration, RegistrationConfig, ServiceUpdate};
use registry_core::{runtime, validate, Error};
use std::collections::BTreeMap;
use std::ffi::c_char;
use std::sync::{Mutex, MutexGuard};

/// What `registry_registration_start` registers. Zero-initialise it
/// (`= {0}`) and set at least `id`, `group` and `addr`; every other field
/// has a default when zero/NULL. The library copies what it needs during
/// the call and keeps no pointer into this struct.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct registry_registration_config {
    /// Unique id of this instance (required).
    pub id: *const c_char,
    /// Service group it belongs to (required).
    pub group: *const c_char,
    /// Address clients use to reach it, e.g. `"10.0.0.5:8080"` (required).
    pub addr: *const c_char,
    /// Gossip `host:port` addresses of the registries to join through
    /// (`registry_count` of them). It keeps retrying while none answers.
    pub registries: *const *const c_char,
    /// Number of entries in `registries`.
    pub registry_count: usize,
    /// Share of keys, 1..=1000; 0 means 1.
    pub weight: u32,
    /// Tag keys (`tag_count` of them); NULL when `tag_count` is 0.
    pub tag_keys: *const *const c_char,
    /// Tag values, parallel to `tag_keys`.
    pub tag_values: *const *const c_char,
    /// Number of tags.
    pub tag_count: usize,
    /// Local UDP address for gossip; NULL means `"127.0.0.1:0"` (a free
    /// loopback port). Use `"0.0.0.0:PORT"` across hosts.
    pub bind: *const c_char,
    /// Gossip address others reach this instance at, if not `bind` (NAT);
    /// NULL for none.
    pub advertise: *const c_char,
    /// Gossip encryption keys as 64 hex digits each, comma-separated (the
    /// first encrypts, all are accepted); must match the registries'. NULL
    /// for no encryption.
    pub encrypt_key: *const c_char,
}

/// A registered service instance. Opaque; created with
/// `registry_registration_start`, released with
/// `registry_registration_free`. Thread-safe: updates from several threads
/// are applied one at a time.
pub struct registry_registration {
    /// `None` once stopped.
    inner: Mutex<Option<Registration>>,
}

impl registry_registration {
    fn lock(&self) -> MutexGuard<'_, Option<Registration>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the live registration; `REGISTRY_UNAVAILABLE` once stopped.
    fn with<T>(&self, f: impl FnOnce(&Registration) -> FfiResult<T>) -> FfiResult<T> {
        match self.lock().as_ref() {
            Some(reg) => f(reg),
            None => Err(Error::Unavailable("the registration is stopped".into()).into()),
        }
    }

    fn update(&self, change: ServiceUpdate) -> FfiResult {
        self.with(|reg| Ok(runtime::block_on(reg.update(change))??))
    }
}

/// `count` strings from a C array, each named `<name>[i]` in errors.
///
/// # Safety
/// `p` is NULL (only with `count` 0) or points to `count` NUL-terminated
/// strings.
unsafe fn strings(p: *const *const c_char, count: usize, name: &str) -> FfiResult<Vec<String>> {
    // SAFETY: contract above.
    let ptrs = unsafe { crate::args::as_slice(p, count, name) }?;
    ptrs.iter()
        .enumerate()
        // SAFETY: each entry is NULL or NUL-terminated (contract above).
        .map(|(i, &s)| unsafe { as_str(s, &format!("{name}[{i}]")) }.map(str::to_string))
        .collect()
}

/// Tags from parallel key and value arrays.
///
/// # Safety
/// As [`strings`], for both arrays.
unsafe fn tags(
    keys: *const *const c_char,
    values: *const *const c_char,
    count: usize,
    names: (&str, &str),
) -> FfiResult<BTreeMap<String, String>> {
    // SAFETY: contract above.
    let keys = unsafe { strings(keys, count, names.0) }?;
    // SAFETY: contract above.
    let values = unsafe { strings(values, count, names.1) }?;
    let map: BTreeMap<String, String> = keys.into_iter().zip(values).collect();
    if map.len() != count {
        return Err(FfiError::invalid(format!("{} has a duplicate key", names.0)));
    }
    Ok(map)
}

fn keyring(keys: &str) -> FfiResult<Keyring> {
    Keyring::parse_list(keys).map_err(|e| FfiError::invalid(format!("config.encrypt_key: {e}")))
}

/// The core configuration from the C struct.
///
/// # Safety
/// Every pointer in `c` follows the struct's documentation.
unsafe fn config(c: &registry_registration_config) -> FfiResult<RegistrationConfig> {
    // SAFETY (all blocks below): the struct's pointer fields are NULL or
    // valid as documented.
    let id = unsafe { as_str(c.id, "config.id") }?;
    let group = unsafe { as_str(c.group, "config.group") }?;
    let addr = unsafe { as_str(c.addr, "config.addr") }?;
    let mut cfg = RegistrationConfig::new(id, group, addr);
    cfg.registries = unsafe { strings(c.registries, c.registry_count, "config.registries") }?;
    cfg.weight = if c.weight == 0 { 1 } else { c.weight };
    cfg.tags = unsafe {
        tags(
            c.tag_keys,
            c.tag_values,
            c.tag_count,
            ("config.tag_keys", "config.tag_values"),
        )
    }?;
    if let Some(bind) = unsafe { optional(c.bind, "config.bind") }? {
        cfg.bind = validate::socket_addr("config.bind", &bind)?;
    }
    if let Some(adv) = unsafe { optional(c.advertise, "config.advertise") }? {
        cfg.advertise = Some(validate::socket_addr("config.advertise", &adv)?);
    }
    if let Some(keys) = unsafe { optional(c.encrypt_key, "config.encrypt_key") }? {
        cfg.keyring = Some(keyring(&keys)?);
    }
    Ok(cfg)
}

/// Registers a service instance: validates the metadata
/// (`REGISTRY_INVALID_ARGUMENT` or `REGISTRY_LIMIT_EXCEEDED` naming the
/// field), binds the gossip socket, joins through the registries and
/// waits (at most 2 s) to learn whether the id is free:
/// `REGISTRY_ALREADY_EXISTS`, naming the holder's address, when a live
/// member holds it. When no registry answers in that time it returns
/// `REGISTRY_OK` and joining goes on in the background (and keeps
/// retrying) until a registry answers.
///
/// # Safety
/// `config` points to a valid struct whose pointers follow its field
/// documentation; `out` points to a writable pointer. `cancel` as in
/// `registry_client_match`; a start it stops leaves no socket or task
/// behind, though registries that heard the instance drop it as they drop a
/// crashed one. Ownership: the
/// library keeps no pointer into `config`; on `REGISTRY_OK` the caller owns
/// `*out` and releases it with `registry_registration_free`.
#[no_mangle]
pub unsafe extern "C" fn registry_registration_start(
    config: *const registry_registration_config,
    out: *mut *mut registry_registration,
    cancel: *const registry_cancel,
) -> registry_status {
    guard("registry_registration_start", || {
        let out = arg_out!(mut_ptr out);
        let c = arg_ref!(config);
        // SAFETY: the struct's pointers follow its documentation (contract).
        let cfg = unsafe { self::config(c) }?;
        // SAFETY: NULL or live (contract above).
        let reg = block_on(unsafe { token(cancel) }, Registration::start(cfg))?;
        *out = to_box(registry_registration {
            inner: Mutex::new(Some(reg)),
        });
        Ok(())
    })
}

/// Changes the weight (1..=1000); registries see an update, never a
/// failure. `REGISTRY_UNAVAILABLE` once stopped.
///
/// # Safety
/// `registration` is a live registration.
#[no_mangle]
pub unsafe extern "C" fn registry_registration_set_weight(
    registration: *const registry_registration,
    weight: u32,
) -> registry_status {
    guard("registry_registration_set_weight", || {
        arg_ref!(registration).update(ServiceUpdate {
            weight: Some(weight),
            ..Default::default()
        })
    })
}

/// Starts (`draining` true) or stops draining: while draining the service
/// stays listed but owns no keys, so its keys go to the members that will
/// own them once it leaves; it hands their state over, then
/// `registry_registration_stop` moves no key. Stopping draining gives back
/// exactly the keys it had. `REGISTRY_UNAVAILABLE` once stopped.
///
/// # Safety
/// `registration` is a live registration.
#[no_mangle]
pub unsafe extern "C" fn registry_registration_set_draining(
    registration: *const registry_registration,
    draining: bool,
) -> registry_status {
    guard("registry_registration_set_draining", || {
        arg_ref!(registration).update(ServiceUpdate {
            draining: Some(draining),
            ..Default::default()
        })
    })
}

/// Changes the address clients use to reach the service.
/// `REGISTRY_UNAVAILABLE` once stopped.
///
/// # Safety
/// `registration` is a live registration; `addr` is NUL-terminated. The
/// library copies `addr`.
#[no_mangle]
pub unsafe extern "C" fn registry_registration_set_addr(
    registration: *const registry_registration,
    addr: *const c_char,
) -> registry_status {
    guard("registry_registration_set_addr", || {
        let registration = arg_ref!(registration);
        let addr = arg_str!(addr);
        registration.update(ServiceUpdate {
            addr: Some(addr.to_string()),
            ..Default::default()
        })
    })
}

/// Replaces all tags with `count` pairs `keys[i]` = `values[i]` (count 0
/// removes every tag). `REGISTRY_UNAVAILABLE` once stopped.
///
/// # Safety
/// `registration` is a live registration; `keys` and `values` point to
/// `count` NUL-terminated strings each (may be NULL when `count` is 0).
/// The library copies them.
#[no_mangle]
pub unsafe extern "C" fn registry_registration_set_tags(
    registration: *const registry_registration,
    keys: *const *const c_char,
    values: *const *const c_char,
    count: usize,
) -> registry_status {
    guard("registry_registration_set_tags", || {
        let registration = arg_ref!(registration);
        // SAFETY: contract above.
        let tags = unsafe { tags(keys, values, count, ("keys", "values")) }?;
        registration.update(ServiceUpdate {
            tags: Some(tags),
            ..Default::default()
        })
    })
}

/// The metadata currently registered. `REGISTRY_UNAVAILABLE` once stopped.
///
/// # Safety
/// `registration` is a live registration; `out` points to a writable
/// pointer. Ownership: on `REGISTRY_OK` the caller owns `*out` and releases
/// it with `registry_service_free`.
#[no_mangle]
pub unsafe extern "C" fn registry_registration_service(
    registration: *const registry_registration,
    out: *mut *const registry_service,
) -> registry_status {
    guard("registry_registration_service", || {
        let out = arg_out!(ptr out);
        let svc = arg_ref!(registration).with(|r| Ok(r.service()))?;
        *out = registry_service::into_raw(registry_service::new(&svc));
        Ok(())
    })
}

/// Whether a registry (or any other member) knows this instance yet.
/// `REGISTRY_UNAVAILABLE` once stopped.
///
/// # Safety
/// `registration` is a live registration; `out` points to a writable `bool`.
#[no_mangle]
pub unsafe extern "C" fn registry_registration_is_joined(
    registration: *const registry_registration,
    out: *mut bool,
) -> registry_status {
    guard("registry_registration_is_joined", || {
        let out = arg_out!(out);
        *out = arg_ref!(registration).with(|r| Ok(r.is_joined()))?;
        Ok(())
    })
}

/// Leaves the cluster gracefully: registries drop the service at once.
/// Every later call on the registration, including a second stop, returns
/// `REGISTRY_UNAVAILABLE` ("the registration is stopped"). The handle must
/// still be freed.
///
/// # Safety
/// `registration` is a live registration.
#[no_mangle]
pub unsafe extern "C" fn registry_registration_stop(
    registration: *const registry_registration,
) -> registry_status {
    guard("registry_registration_stop", || {
        let registration = arg_ref!(registration);
        let reg = registration
            .lock()
            .take()
            .ok_or_else(|| Error::Unavailable("the registration is stopped".into()))?;
        Ok(runtime::block_on(reg.stop())??)
    })
}

/// Releases a registration, leaving the cluster gracefully first if it was
/// not stopped. NULL is a no-op.
///
/// # Safety
/// `registration` is NULL or a registration from
/// `registry_registration_start`, released only once, and not in use by
/// another thread.
#[no_mangle]
pub unsafe extern "C" fn registry_registration_free(registration: *mut registry_registration) {
    // SAFETY: NULL or from `to_box`, released once (contract above).
    unsafe {
        free_box_with("registry_registration_free", registration, |registration| {
            if let Some(reg) = registration.lock().take() {
                // No caller to report a failed leave to: registries then see
                // the instance fail instead of leave.
                let _ = runtime::block_on(reg.stop());
            }
            let _rt = runtime::shared().map(|rt| rt.enter());
            drop(registration);
        })
    }
}
