//! The C ABI (`libregistry.so`'s `extern "C"` functions) called with
//! arbitrary bytes as C strings (cut at the first NUL, often not UTF-8),
//! NULL pointers, arbitrary counts and indexes. Every call must return the
//! documented status (never panic: a panic aborts under libFuzzer even
//! though the library would catch it), leave out-pointers NULL on failure,
//! name the failing function in the last-error message, and, for the ring,
//! answer exactly what the core ring answers for the same members.
//!
//! Calls that would reach the network are made only in forms that must fail
//! first: registrations bind an address this host does not have
//! (192.0.2.1, TEST-NET-1), clients skip registry discovery (connections
//! are lazy), and client and view calls get NULL handles.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use registry::registry_status::{self, *};
use registry::*;
use registry_core::Ring;
use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr::{null, null_mut};

fuzz_target!(
    init: {
        registry_fuzz::dump_seeds_if_asked(|| {
            // One seed per operation (the first byte picks it), then bytes
            // that become ids, keys and config strings.
            (0u8..12)
                .map(|op| {
                    let mut s = vec![op, 3, 0, 2];
                    s.extend_from_slice(b"svc-a\x00svc-b\x00svc-c\x00user:42\x00127.0.0.1:9800\x00");
                    s
                })
                .collect()
        });
    },
    |data: &[u8]| {
        let mut h = Harness::default();
        let mut u = Unstructured::new(data);
        for _ in 0..24 {
            if u.is_empty() || h.step(&mut u).is_err() {
                break;
            }
        }
        h.clear();
    }
);

/// A C string from fuzz bytes: everything before the first NUL.
fn c_bytes(u: &mut Unstructured<'_>) -> Result<CString> {
    let len = u.int_in_range(0..=40usize)?;
    let bytes = u.bytes(len.min(u.len()))?;
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Ok(CString::new(&bytes[..end]).expect("no NUL before end"))
}

/// `count` C strings from fuzz bytes, one in `null_one_in` replaced by
/// NULL: the owned strings (keep them alive) and the pointer array.
fn c_array(
    u: &mut Unstructured<'_>,
    count: usize,
    null_one_in: u8,
) -> Result<(Vec<CString>, Vec<*const c_char>)> {
    let mut owned = Vec::new();
    let mut ptrs = Vec::new();
    for _ in 0..count {
        if u.ratio(1, null_one_in)? {
            ptrs.push(null());
        } else {
            let s = c_bytes(u)?;
            ptrs.push(s.as_ptr());
            owned.push(s);
        }
    }
    Ok((owned, ptrs))
}

/// The last-error message, checked to name `func`.
fn last_error_names(func: &str) {
    let p = registry_last_error_message();
    assert!(!p.is_null());
    let msg = unsafe { CStr::from_ptr(p) }.to_string_lossy();
    assert!(
        msg.starts_with(&format!("{func}: ")),
        "last error {msg:?} does not name {func}"
    );
}

/// Asserts a failure with one of `allowed` and a message naming `func`.
fn failed(status: registry_status, allowed: &[registry_status], func: &str) {
    assert!(
        allowed.contains(&status),
        "{func} returned {status:?}, expected one of {allowed:?}"
    );
    last_error_names(func);
}

/// Is `id` acceptable as a ring member id (the core's name rules)?
fn valid_name(s: &str) -> bool {
    registry_core::service::check_name("id", s).is_ok()
}

/// The ring under test and the core ring built from the same members.
#[derive(Default)]
struct Harness {
    ring: Option<(*mut registry_ring, Ring)>,
}

impl Harness {
    fn clear(&mut self) {
        if let Some((r, _)) = self.ring.take() {
            unsafe { registry_ring_free(r) };
        }
    }

    /// A ring pointer to call with: the live ring, or NULL.
    fn ring_arg(&self, u: &mut Unstructured<'_>) -> Result<(*const registry_ring, Option<&Ring>)> {
        Ok(match (&self.ring, u.ratio(1, 8)?) {
            (Some((p, r)), false) => (p.cast_const(), Some(r)),
            _ => (null(), None),
        })
    }

    fn step(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        match u.int_in_range(0..=11u8)? {
            0 => self.ring_new(u),
            1 | 2 => self.locate(u),
            3 | 4 => self.locate_n(u),
            5 => self.member(u),
            6 => {
                let code: c_int = u.arbitrary()?;
                let name = unsafe { CStr::from_ptr(registry_status_name(code)) }
                    .to_str()
                    .expect("ASCII name");
                // Codes run from REGISTRY_OK to the last status, REGISTRY_CANCELLED.
                let last = REGISTRY_CANCELLED as c_int;
                assert_eq!(
                    (0..=last).contains(&code),
                    name != "REGISTRY_UNKNOWN_STATUS",
                    "{code} -> {name}"
                );
                let (ring, core) = self.ring_arg(u)?;
                assert_eq!(unsafe { registry_ring_len(ring) }, core.map_or(0, Ring::len));
                Ok(())
            }
            7 => self.registration(u),
            8 => self.client(u),
            9 => null_handles(u),
            10 => self.tags(u),
            _ => {
                let v = unsafe { CStr::from_ptr(registry_version()) };
                assert!(!v.to_bytes().is_empty());
                let a = unsafe { CStr::from_ptr(registry_ring_algorithm()) };
                assert_eq!(a.to_str(), Ok(registry_core::ring::RING_ALGORITHM));
                Ok(())
            }
        }
    }

    fn ring_new(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        let count = u.int_in_range(0..=8usize)?;
        let (owned, ptrs) = c_array(u, count, 16)?;
        let with_weights = u.arbitrary::<bool>()?;
        let mut weights = Vec::new();
        for _ in 0..count {
            weights.push(match u.arbitrary::<u8>()? {
                0 => 0,
                1 => 1001,
                2 => u32::MAX,
                w => 1 + u32::from(w) % 4,
            });
        }
        let null_ids = count > 0 && u.ratio(1, 16)?;
        let null_out = u.ratio(1, 16)?;
        let ids_arg = if null_ids || (count == 0 && u.arbitrary::<bool>()?) {
            null()
        } else {
            ptrs.as_ptr()
        };
        let weights_arg = if with_weights { weights.as_ptr() } else { null() };
        let mut out: *mut registry_ring = std::ptr::dangling_mut::<registry_ring>(); // must be reset to NULL
        let out_arg: *mut *mut registry_ring = if null_out { null_mut() } else { &mut out };
        let status = unsafe { registry_ring_new(ids_arg, weights_arg, count, out_arg) };

        // What the core sees: UTF-8 ids that follow the name rules, unique.
        let mut members: Vec<(&str, u32)> = Vec::new();
        let mut valid = !null_out && !null_ids;
        for (i, &p) in ptrs.iter().enumerate() {
            let w = if with_weights { weights[i] } else { 1 };
            let id = if p.is_null() {
                None
            } else {
                unsafe { CStr::from_ptr(p) }.to_str().ok()
            };
            match id {
                Some(id) if valid_name(id) && (1..=1000).contains(&w) => members.push((id, w)),
                _ => valid = false,
            }
        }
        let mut sorted: Vec<&str> = members.iter().map(|m| m.0).collect();
        sorted.sort_unstable();
        valid &= sorted.windows(2).all(|w| w[0] != w[1]);
        if !valid {
            failed(status, &[REGISTRY_INVALID_ARGUMENT], "registry_ring_new");
            if !null_out {
                assert!(out.is_null(), "out not reset to NULL on failure");
            }
            return Ok(());
        }
        assert_eq!(
            status, REGISTRY_OK,
            "registry_ring_new refused valid members {members:?}"
        );
        assert!(!out.is_null());
        let core = Ring::new(members.iter().copied()).expect("the core accepts what the C ABI accepts");
        assert_eq!(unsafe { registry_ring_len(out) }, core.len());
        self.clear();
        self.ring = Some((out, core));
        // The ring copied the ids: the caller's strings may go now.
        drop(owned);
        Ok(())
    }

    /// A key argument: NUL-terminated, or pointer + length (maybe NULL).
    fn key(u: &mut Unstructured<'_>) -> Result<(Vec<u8>, bool, bool)> {
        let by_len = u.arbitrary::<bool>()?;
        let null_key = u.ratio(1, 16)?;
        let bytes = if by_len {
            let len = u.int_in_range(0..=24usize)?;
            u.bytes(len.min(u.len()))?.to_vec()
        } else {
            c_bytes(u)?.into_bytes()
        };
        Ok((bytes, by_len, null_key))
    }

    fn locate(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        let (ring, core) = self.ring_arg(u)?;
        let (key, by_len, null_key) = Self::key(u)?;
        let null_out = u.ratio(1, 16)?;
        let c_key = CString::new(key.clone()).ok();
        let mut id: *const c_char = std::ptr::dangling::<c_char>();
        let id_out: *mut *const c_char = if null_out { null_mut() } else { &mut id };
        let (status, func) = if by_len {
            let p = if null_key { null() } else { key.as_ptr().cast() };
            (
                unsafe { registry_ring_locate_len(ring, p, key.len(), id_out) },
                "registry_ring_locate_len",
            )
        } else {
            let p = if null_key {
                null()
            } else {
                c_key.as_ref().expect("no NUL").as_ptr()
            };
            (
                unsafe { registry_ring_locate(ring, p, id_out) },
                "registry_ring_locate",
            )
        };
        let key_str = std::str::from_utf8(&key).ok();
        let null_with_len = null_key && (!by_len || !key.is_empty());
        match (core, key_str) {
            (Some(core), Some(k)) if !null_out && !null_with_len && !k.is_empty() && !core.is_empty() => {
                assert_eq!(status, REGISTRY_OK, "{func}({k:?})");
                let want = &core.members()[core.locate(k).expect("valid")].id;
                assert_eq!(
                    unsafe { CStr::from_ptr(id) }.to_str(),
                    Ok(&**want),
                    "{func}({k:?})"
                );
            }
            (Some(core), Some(k)) if !null_out && !null_with_len && !k.is_empty() && core.is_empty() => {
                failed(status, &[REGISTRY_NOT_FOUND], func);
            }
            _ => {
                failed(status, &[REGISTRY_INVALID_ARGUMENT], func);
                if !null_out {
                    assert!(id.is_null(), "id_out not reset on failure");
                }
            }
        }
        Ok(())
    }

    fn locate_n(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        let (ring, core) = self.ring_arg(u)?;
        let (key, by_len, null_key) = Self::key(u)?;
        let n = u.int_in_range(0..=12usize)?;
        let null_ids = u.ratio(1, 16)?;
        let null_count = u.ratio(1, 16)?;
        let c_key = CString::new(key.clone()).ok();
        let mut ids: Vec<*const c_char> = vec![null(); n];
        let ids_out = if null_ids { null_mut() } else { ids.as_mut_ptr() };
        let mut count = usize::MAX;
        let count_out: *mut usize = if null_count { null_mut() } else { &mut count };
        let (status, func) = if by_len {
            let p = if null_key { null() } else { key.as_ptr().cast() };
            (
                unsafe { registry_ring_locate_n_len(ring, p, key.len(), n, ids_out, count_out) },
                "registry_ring_locate_n_len",
            )
        } else {
            let p = if null_key {
                null()
            } else {
                c_key.as_ref().expect("no NUL").as_ptr()
            };
            (
                unsafe { registry_ring_locate_n(ring, p, n, ids_out, count_out) },
                "registry_ring_locate_n",
            )
        };
        let key_str = std::str::from_utf8(&key).ok().filter(|k| !k.is_empty());
        let null_with_len = null_key && (!by_len || !key.is_empty());
        let args_ok = !null_count && !null_with_len && key_str.is_some();
        match (core, key_str) {
            (Some(core), Some(k)) if args_ok && n > 0 && !null_ids && !core.is_empty() => {
                assert_eq!(status, REGISTRY_OK, "{func}({k:?}, {n})");
                let want: Vec<&str> = core
                    .locate_n(k, n)
                    .expect("valid")
                    .iter()
                    .map(|&i| &*core.members()[i].id)
                    .collect();
                assert_eq!(count, want.len());
                let got: Vec<&str> = ids[..count]
                    .iter()
                    .map(|&p| unsafe { CStr::from_ptr(p) }.to_str().expect("UTF-8 id"))
                    .collect();
                assert_eq!(got, want, "{func}({k:?}, {n})");
            }
            (Some(core), Some(_)) if args_ok && n > 0 && !null_ids && core.is_empty() => {
                // With valid arguments (checked first: ids_out, n, key), an
                // empty ring answers NOT_FOUND.
                failed(status, &[REGISTRY_NOT_FOUND], func);
            }
            _ => {
                failed(status, &[REGISTRY_INVALID_ARGUMENT], func);
                if !null_count {
                    assert_eq!(count, 0, "count_out not reset on failure");
                }
            }
        }
        Ok(())
    }

    fn member(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        let (ring, core) = self.ring_arg(u)?;
        let index = if u.arbitrary::<bool>()? {
            u.arbitrary::<usize>()?
        } else {
            u.int_in_range(0..=9usize)?
        };
        let mut id: *const c_char = std::ptr::dangling::<c_char>();
        let mut weight = 0u32;
        let null_id = u.ratio(1, 16)?;
        let id_out: *mut *const c_char = if null_id { null_mut() } else { &mut id };
        let status = unsafe { registry_ring_member(ring, index, id_out, &mut weight) };
        match core {
            Some(core) if !null_id => match core.members().get(index) {
                Some(m) => {
                    assert_eq!(status, REGISTRY_OK);
                    assert_eq!(unsafe { CStr::from_ptr(id) }.to_str(), Ok(&*m.id));
                    assert_eq!(weight, m.weight);
                }
                None => {
                    failed(status, &[REGISTRY_NOT_FOUND], "registry_ring_member");
                    assert!(id.is_null());
                }
            },
            _ => failed(status, &[REGISTRY_INVALID_ARGUMENT], "registry_ring_member"),
        }
        Ok(())
    }

    /// `registry_registration_start` with fuzzed fields; binding an address
    /// this host does not have, so it can never start a node.
    fn registration(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        let mut strings = Vec::new();
        let mut field = |u: &mut Unstructured<'_>, nullable: bool| -> Result<*const c_char> {
            if nullable && u.ratio(1, 3)? {
                return Ok(null());
            }
            let s = c_bytes(u)?;
            let p = s.as_ptr();
            strings.push(s);
            Ok(p)
        };
        let id = field(u, true)?;
        let group = field(u, true)?;
        let addr = field(u, true)?;
        let registry_count = u.int_in_range(0..=3usize)?;
        let mut registries = Vec::new();
        for _ in 0..registry_count {
            registries.push(field(u, true)?);
        }
        let tag_count = u.int_in_range(0..=4usize)?;
        let (mut keys, mut values) = (Vec::new(), Vec::new());
        for _ in 0..tag_count {
            keys.push(field(u, true)?);
            values.push(field(u, true)?);
        }
        let advertise = field(u, true)?;
        let encrypt_key = if u.arbitrary::<bool>()? {
            let hex = CString::new(format!("{:064x}", u.arbitrary::<u128>()?)).expect("hex");
            let p = hex.as_ptr();
            strings.push(hex);
            p
        } else {
            field(u, true)?
        };
        let bind = c"192.0.2.1:1";
        let config = registry_registration_config {
            id,
            group,
            addr,
            registries: if registry_count == 0 && u.arbitrary::<bool>()? {
                null()
            } else {
                registries.as_ptr()
            },
            registry_count,
            weight: u.arbitrary()?,
            tag_keys: if u.ratio(1, 16)? { null() } else { keys.as_ptr() },
            tag_values: values.as_ptr(),
            tag_count,
            bind: bind.as_ptr(),
            advertise,
            encrypt_key,
        };
        let mut out: *mut registry_registration = std::ptr::dangling_mut::<registry_registration>();
        let status = unsafe { registry_registration_start(&config, &mut out, null()) };
        if status == REGISTRY_OK {
            // Only if this host owns 192.0.2.1: not a library bug, just undo it.
            unsafe {
                registry_registration_stop(out);
                registry_registration_free(out);
            }
            return Ok(());
        }
        failed(
            status,
            &[
                REGISTRY_INVALID_ARGUMENT,
                REGISTRY_LIMIT_EXCEEDED,
                REGISTRY_UNAVAILABLE,
            ],
            "registry_registration_start",
        );
        assert!(out.is_null());
        drop(strings);
        Ok(())
    }

    /// `registry_client_new` with fuzzed addresses and no discovery (lazy
    /// connections: nothing is dialled).
    fn client(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        let count = u.int_in_range(0..=3usize)?;
        let (_strings, ptrs) = c_array(u, count, 8)?; // alive until the call returns
        let options = registry_client_options {
            connect_timeout_ms: u.arbitrary()?,
            request_timeout_ms: u.arbitrary()?,
            attempts: u.arbitrary()?,
            max_backoff_ms: u.arbitrary()?,
            no_registry_discovery: true,
            // Plain text (every TLS field NULL): a TLS file would be read
            // from disk, not fuzzed.
            ..registry_client_options::default()
        };
        // No token, a live one, or one fired before the call.
        let mut token: *mut registry_cancel = null_mut();
        let fired = match u.int_in_range(0..=2u8)? {
            0 => false,
            t => {
                assert_eq!(unsafe { registry_cancel_new(0, &mut token) }, REGISTRY_OK);
                if t == 2 {
                    unsafe { registry_cancel_fire(token) };
                }
                t == 2
            }
        };
        let mut out: *mut registry_client = std::ptr::dangling_mut::<registry_client>();
        let status = unsafe { registry_client_new(ptrs.as_ptr(), count, &options, &mut out, token) };
        unsafe { registry_cancel_free(token) };
        let all_utf8 = ptrs
            .iter()
            .all(|&p| !p.is_null() && unsafe { CStr::from_ptr(p) }.to_str().is_ok());
        if status == REGISTRY_OK {
            assert!(
                count > 0 && all_utf8 && !fired,
                "registry_client_new accepted {ptrs:?}"
            );
            assert!(!out.is_null());
            unsafe { registry_client_free(out) };
        } else {
            // Arguments are checked first; a fired token then stops the rest.
            let allowed: &[registry_status] = if fired {
                &[REGISTRY_INVALID_ARGUMENT, REGISTRY_CANCELLED]
            } else {
                &[REGISTRY_INVALID_ARGUMENT]
            };
            failed(status, allowed, "registry_client_new");
            assert!(out.is_null());
        }
        Ok(())
    }

    /// Tag accessors of a NULL service.
    fn tags(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        let key = c_bytes(u)?;
        let index: usize = u.arbitrary()?;
        unsafe {
            assert!(registry_service_tag_value(null(), key.as_ptr()).is_null());
            assert!(registry_service_id(null()).is_null());
            assert!(registry_service_group(null()).is_null());
            assert!(registry_service_addr(null()).is_null());
            assert_eq!(registry_service_weight(null()), 0);
            assert_eq!(registry_service_tag_count(null()), 0);
            assert_eq!(registry_service_list_len(null()), 0);
            assert!(registry_service_list_get(null(), index).is_null());
            assert_eq!(registry_group_list_len(null()), 0);
            let (mut k, mut v) = (null(), null());
            failed(
                registry_service_tag(null(), index, &mut k, &mut v),
                &[REGISTRY_INVALID_ARGUMENT],
                "registry_service_tag",
            );
            let (mut name, mut members, mut version) = (null(), 0u32, 0u64);
            failed(
                registry_group_list_get(null(), index, &mut name, &mut members, &mut version),
                &[REGISTRY_INVALID_ARGUMENT],
                "registry_group_list_get",
            );
        }
        Ok(())
    }
}

/// Client and view calls with NULL handles and fuzzed strings: always
/// `REGISTRY_INVALID_ARGUMENT`, before any network access.
fn null_handles(u: &mut Unstructured<'_>) -> Result<()> {
    let group = c_bytes(u)?;
    let key = c_bytes(u)?;
    let n = u.arbitrary::<usize>()?;
    let mut svc: *const registry_service = null();
    let mut list: *mut registry_service_list = null_mut();
    let mut version = 0u64;
    let inv = &[REGISTRY_INVALID_ARGUMENT];
    unsafe {
        let c: *const registry_client = null();
        failed(
            registry_client_match(c, group.as_ptr(), key.as_ptr(), &mut svc, null()),
            inv,
            "registry_client_match",
        );
        failed(
            registry_client_match_n(c, group.as_ptr(), key.as_ptr(), n, &mut list, null()),
            inv,
            "registry_client_match_n",
        );
        failed(
            registry_client_members(
                c,
                group.as_ptr(),
                &mut list,
                &mut version,
                null_mut(),
                std::ptr::null(),
            ),
            inv,
            "registry_client_members",
        );
        let mut view: *mut registry_view = null_mut();
        failed(
            registry_view_new(c, group.as_ptr(), &mut view, null()),
            inv,
            "registry_view_new",
        );
        assert!(view.is_null());
        let v: *const registry_view = null();
        failed(
            registry_view_match(v, key.as_ptr(), &mut svc),
            inv,
            "registry_view_match",
        );
        failed(
            registry_view_match_len(v, key.as_ptr(), key.as_bytes().len(), &mut svc),
            inv,
            "registry_view_match_len",
        );
        failed(
            registry_view_match_n(v, key.as_ptr(), n, &mut list),
            inv,
            "registry_view_match_n",
        );
        failed(
            registry_view_version(v, &mut version),
            inv,
            "registry_view_version",
        );
        failed(
            registry_view_staleness_ms(v, &mut version),
            inv,
            "registry_view_staleness_ms",
        );
        registry_view_free(null_mut());
        registry_client_free(null_mut());
        registry_service_free(null());
        registry_service_list_free(null_mut());
        registry_ring_free(null_mut());
    }
    assert!(svc.is_null() && list.is_null());
    Ok(())
}
