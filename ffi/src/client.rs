//! The discovery client: RPC calls to the registries, with failover.

use crate::args::{arg_out, arg_ref, arg_slice, arg_str, optional, put_opt};
use crate::cancel::{block_on, registry_cancel, token};
use crate::error::{guard, registry_status, FfiError, FfiResult};
use crate::handle::{free_box_with, to_box};
use crate::service::{registry_group_list, registry_service, registry_service_list};
use registry_core::{runtime, Client, ClientConfig, Pem, TlsConfig};
use std::ffi::c_char;
use std::path::Path;
use std::time::Duration;

/// Settings of a client. A zeroed struct (`= {0}`) means every default.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct registry_client_options {
    /// Time allowed to open a connection to one registry, in ms; 0 = 1000.
    pub connect_timeout_ms: u32,
    /// Time allowed for one call to one registry, in ms; 0 = 2000.
    pub request_timeout_ms: u32,
    /// Tries per call across registries; 0 = two passes over the list
    /// (at least 3).
    pub attempts: u32,
    /// Longest pause between passes over the registry list, in ms; 0 = 1000.
    pub max_backoff_ms: u32,
    /// true: use only the given registries; false (default): also use the
    /// registries listed in the reserved registry group.
    pub no_registry_discovery: bool,
    /// Path of a PEM file with the CA certificates that registry
    /// certificates must chain to; set, the client speaks TLS (the
    /// registries run with `--tls-cert`). NULL (default): plain text.
    pub tls_ca_file: *const c_char,
    /// Path of the PEM client certificate, for registries that require
    /// one (`--tls-client-ca`); needs `tls_key_file`. NULL: none.
    pub tls_cert_file: *const c_char,
    /// Path of the PEM private key of `tls_cert_file`. NULL: none.
    pub tls_key_file: *const c_char,
    /// Name the registry certificates must carry. NULL: the host of each
    /// registry address.
    pub tls_domain: *const c_char,
    /// The CA certificates as PEM text (NUL-terminated), instead of
    /// `tls_ca_file` (give one or the other). NULL: none.
    pub tls_ca_pem: *const c_char,
    /// The client certificate as PEM text, instead of `tls_cert_file`.
    /// NULL: none.
    pub tls_cert_pem: *const c_char,
    /// The client private key as PEM text, instead of `tls_key_file`.
    /// NULL: none.
    pub tls_key_pem: *const c_char,
    /// The match calls of a view fail with `REGISTRY_UNAVAILABLE` once its
    /// snapshot has gone unconfirmed (no Watch stream open) for longer
    /// than this, in ms (`registry_view_staleness_ms`); 0 = never (views
    /// answer from their last snapshot however old).
    pub max_staleness_ms: u32,
}

impl Default for registry_client_options {
    fn default() -> Self {
        registry_client_options {
            connect_timeout_ms: 0,
            request_timeout_ms: 0,
            attempts: 0,
            max_backoff_ms: 0,
            no_registry_discovery: false,
            tls_ca_file: std::ptr::null(),
            tls_cert_file: std::ptr::null(),
            tls_key_file: std::ptr::null(),
            tls_domain: std::ptr::null(),
            tls_ca_pem: std::ptr::null(),
            tls_cert_pem: std::ptr::null(),
            tls_key_pem: std::ptr::null(),
            max_staleness_ms: 0,
        }
    }
}

impl registry_client_options {
    /// The core configuration for `registries`; reads the TLS files.
    ///
    /// # Safety
    /// The `tls_*` fields are NULL or NUL-terminated.
    unsafe fn config(&self, registries: Vec<String>) -> FfiResult<ClientConfig> {
        let mut c = ClientConfig::new(registries);
        let ms = |v: u32, default: Duration| {
            if v == 0 {
                default
            } else {
                Duration::from_millis(v.into())
            }
        };
        c.connect_timeout = ms(self.connect_timeout_ms, c.connect_timeout);
        c.request_timeout = ms(self.request_timeout_ms, c.request_timeout);
        c.max_backoff = ms(self.max_backoff_ms, c.max_backoff);
        if self.attempts > 0 {
            c.attempts = Some(self.attempts as usize);
        }
        c.discover_registries = !self.no_registry_discovery;
        if self.max_staleness_ms > 0 {
            c.max_staleness = Some(Duration::from_millis(self.max_staleness_ms.into()));
        }
        // SAFETY: NULL or NUL-terminated (contract above).
        let (ca, cert, key, domain) = unsafe {
            (
                pem_option(self.tls_ca_file, self.tls_ca_pem, "tls_ca")?,
                pem_option(self.tls_cert_file, self.tls_cert_pem, "tls_cert")?,
                pem_option(self.tls_key_file, self.tls_key_pem, "tls_key")?,
                optional(self.tls_domain, "options.tls_domain")?,
            )
        };
        c.tls = TlsConfig::from_sources(
            ca.as_ref().map(PemOption::pem),
            cert.as_ref().map(PemOption::pem),
            key.as_ref().map(PemOption::pem),
            domain.as_deref(),
            [
                "options.tls_ca_file (or _pem)",
                "options.tls_cert_file (or _pem)",
                "options.tls_key_file (or _pem)",
                "options.tls_domain",
            ],
        )?;
        Ok(c)
    }
}

/// One PEM option of `registry_client_options`: a file or the text.
enum PemOption {
    File(String),
    Text(String),
}

impl PemOption {
    fn pem(&self) -> Pem<'_> {
        match self {
            PemOption::File(path) => Pem::File(Path::new(path)),
            PemOption::Text(text) => Pem::Contents(text.as_bytes()),
        }
    }
}

/// The `options.<name>_file` / `options.<name>_pem` pair: at most one set.
///
/// # Safety
/// Both are NULL or NUL-terminated.
unsafe fn pem_option(file: *const c_char, pem: *const c_char, name: &str) -> FfiResult<Option<PemOption>> {
    let file_name = format!("options.{name}_file");
    let pem_name = format!("options.{name}_pem");
    // SAFETY: contract above.
    let (file, pem) = unsafe { (optional(file, &file_name)?, optional(pem, &pem_name)?) };
    match (file, pem) {
        (Some(_), Some(_)) => Err(FfiError::invalid(format!(
            "{file_name} and {pem_name} are both set; give one"
        ))),
        (Some(f), None) => Ok(Some(PemOption::File(f))),
        (None, Some(p)) => Ok(Some(PemOption::Text(p))),
        (None, None) => Ok(None),
    }
}

/// A discovery client over one or more registries. Opaque; created with
/// `registry_client_new`, released with `registry_client_free`. Thread-safe:
/// one client may be used from several threads at once.
pub struct registry_client {
    pub(crate) inner: Client,
}

/// Creates a client for `count` registry addresses (`"host:port"`).
/// Connections open lazily: this fails only on an empty list, a
/// malformed address, or unreadable or invalid TLS files
/// (`REGISTRY_INVALID_ARGUMENT`, naming the file). `options` may be NULL
/// for every default. Blocks while asking a registry for the others when
/// discovery is on (at most a few seconds when none answers).
///
/// # Safety
/// `registries` points to `count` NUL-terminated strings; `options` is NULL
/// or a valid struct whose `tls_*` strings are NULL or NUL-terminated;
/// `out` points to a writable pointer. `cancel` is NULL or a live token
/// (`registry_cancel_new`) that stops the call when fired or past its
/// deadline (`REGISTRY_CANCELLED`, `REGISTRY_TIMEOUT`). Ownership: the
/// library copies what it needs and keeps no pointer to the arguments; on
/// `REGISTRY_OK` the caller owns `*out` and releases it with
/// `registry_client_free`.
#[no_mangle]
pub unsafe extern "C" fn registry_client_new(
    registries: *const *const c_char,
    count: usize,
    options: *const registry_client_options,
    out: *mut *mut registry_client,
    cancel: *const registry_cancel,
) -> registry_status {
    guard("registry_client_new", || {
        let out = arg_out!(mut_ptr out);
        let list = arg_slice!(registries, count);
        let mut addrs = Vec::with_capacity(list.len());
        for (i, &p) in list.iter().enumerate() {
            // SAFETY: NULL or NUL-terminated (contract above).
            let addr = unsafe { crate::args::as_str(p, &format!("registries[{i}]")) }?;
            addrs.push(addr.to_string());
        }
        // SAFETY: NULL or valid (contract above).
        let options = unsafe { options.as_ref() }.copied().unwrap_or_default();
        // SAFETY: the strings in `options` are NULL or NUL-terminated
        // (contract above).
        let config = unsafe { options.config(addrs) }?;
        // SAFETY: NULL or live (contract above).
        let client = block_on(unsafe { token(cancel) }, Client::with_config(config))?;
        *out = to_box(registry_client { inner: client });
        Ok(())
    })
}

/// Releases a client. Local views created from it keep working. NULL is a
/// no-op.
///
/// # Safety
/// `client` is NULL or a client from `registry_client_new`, released only
/// once, and not in use by another thread.
#[no_mangle]
pub unsafe extern "C" fn registry_client_free(client: *mut registry_client) {
    // SAFETY: NULL or from `to_box`, released once (contract above).
    unsafe {
        free_box_with("registry_client_free", client, |client| {
            // Drop inside the runtime: the channels' tasks live there.
            let _rt = runtime::shared().map(|rt| rt.enter());
            drop(client);
        })
    }
}

/// Runs `f` with the client on the shared runtime until it ends or
/// `cancel` (NULL or a live token) fires.
fn call<T>(
    client: &registry_client,
    cancel: *const registry_cancel,
    f: impl AsyncFnOnce(&Client) -> registry_core::Result<T>,
) -> FfiResult<T> {
    // SAFETY: every caller's contract makes `cancel` NULL or live.
    block_on(unsafe { token(cancel) }, f(&client.inner))
}

/// Asks a registry which member of `group` owns `key`. Errors:
/// `REGISTRY_NOT_FOUND` when the group has no members,
/// `REGISTRY_INVALID_ARGUMENT` for an empty group or key,
/// `REGISTRY_UNAVAILABLE`/`REGISTRY_TIMEOUT` when no registry answers.
///
/// # Safety
/// `client` is a live client; `group` and `key` are NUL-terminated; `out`
/// points to a writable pointer. `cancel` is NULL or a live token
/// (`registry_cancel_new`) that stops the call when fired or past its
/// deadline (`REGISTRY_CANCELLED`, `REGISTRY_TIMEOUT`). Ownership: on `REGISTRY_OK` the caller
/// owns `*out` and releases it with `registry_service_free`.
#[no_mangle]
pub unsafe extern "C" fn registry_client_match(
    client: *const registry_client,
    group: *const c_char,
    key: *const c_char,
    out: *mut *const registry_service,
    cancel: *const registry_cancel,
) -> registry_status {
    guard("registry_client_match", || {
        let out = arg_out!(ptr out);
        let client = arg_ref!(client);
        let group = arg_str!(group);
        let key = arg_str!(key);
        let svc = call(client, cancel, async |c| c.match_key(group, key).await)?;
        *out = registry_service::into_raw(registry_service::new(&svc));
        Ok(())
    })
}

/// Asks a registry for up to `n` distinct members of `group` for `key`, in
/// preference order (the first is `registry_client_match`'s answer).
/// `REGISTRY_INVALID_ARGUMENT` when `n` is 0.
///
/// # Safety
/// As `registry_client_match`. Ownership: on `REGISTRY_OK` the caller owns
/// `*out` and releases it with `registry_service_list_free`.
#[no_mangle]
pub unsafe extern "C" fn registry_client_match_n(
    client: *const registry_client,
    group: *const c_char,
    key: *const c_char,
    n: usize,
    out: *mut *mut registry_service_list,
    cancel: *const registry_cancel,
) -> registry_status {
    guard("registry_client_match_n", || {
        let out = arg_out!(mut_ptr out);
        let client = arg_ref!(client);
        let group = arg_str!(group);
        let key = arg_str!(key);
        let svcs = call(client, cancel, async |c| c.match_n(group, key, n).await)?;
        *out = registry_service_list::into_raw(svcs.iter().map(registry_service::new).collect());
        Ok(())
    })
}

/// Asks a registry for every member of `group` (sorted by id; an empty list
/// when the group has none), the group's ring version and the ring's
/// checksum (`registry_ring_checksum` of those members: equal on two
/// registries means equal answers).
///
/// # Safety
/// `client` is a live client; `group` is NUL-terminated; `out` points to a
/// writable pointer; `version_out` and `checksum_out` are each NULL (not
/// wanted) or writable. `cancel` as in `registry_client_match`.
/// Ownership: on `REGISTRY_OK` the caller owns `*out` and releases it with
/// `registry_service_list_free`.
#[no_mangle]
pub unsafe extern "C" fn registry_client_members(
    client: *const registry_client,
    group: *const c_char,
    out: *mut *mut registry_service_list,
    version_out: *mut u64,
    checksum_out: *mut u64,
    cancel: *const registry_cancel,
) -> registry_status {
    guard("registry_client_members", || {
        let out = arg_out!(mut_ptr out);
        let client = arg_ref!(client);
        let group = arg_str!(group);
        let members = call(client, cancel, async |c| c.members(group).await)?;
        // SAFETY: each NULL or writable (contract above).
        unsafe {
            put_opt(version_out, members.version);
            put_opt(checksum_out, members.checksum);
        }
        *out = registry_service_list::into_raw(members.services.iter().map(registry_service::new).collect());
        Ok(())
    })
}

/// Asks a registry for every group that has members.
///
/// # Safety
/// `client` is a live client; `out` points to a writable pointer; `cancel`
/// as in `registry_client_match`.
/// Ownership: on `REGISTRY_OK` the caller owns `*out` and releases it with
/// `registry_group_list_free`.
#[no_mangle]
pub unsafe extern "C" fn registry_client_groups(
    client: *const registry_client,
    out: *mut *mut registry_group_list,
    cancel: *const registry_cancel,
) -> registry_status {
    guard("registry_client_groups", || {
        let out = arg_out!(mut_ptr out);
        let client = arg_ref!(client);
        let groups = call(client, cancel, async |c| c.groups().await)?;
        *out = registry_group_list::into_raw(groups);
        Ok(())
    })
}
