//! One id, one live holder through the C ABI: a second registration of a
//! live id fails with `REGISTRY_ALREADY_EXISTS` and a message naming the
//! holder; the holder keeps its place at the registry.

use registry::{
    registry_last_error_message, registry_registration, registry_registration_config,
    registry_registration_free, registry_registration_start, registry_status,
};
use registry_core::gossip::{GossipConfig, GossipNode};
use registry_core::{Service, REGISTRY_GROUP};
use std::ffi::{CStr, CString};
use std::ptr;
use std::time::{Duration, Instant};

/// Starts a registration of `id` in `group` at `addr` joining `registry`.
fn start(
    id: &str,
    group: &str,
    addr: &str,
    registry: &str,
) -> (registry_status, *mut registry_registration, String) {
    let (id, group, addr) = (
        CString::new(id).unwrap(),
        CString::new(group).unwrap(),
        CString::new(addr).unwrap(),
    );
    let registry = CString::new(registry).unwrap();
    let registries = [registry.as_ptr()];
    let config = registry_registration_config {
        id: id.as_ptr(),
        group: group.as_ptr(),
        addr: addr.as_ptr(),
        registries: registries.as_ptr(),
        registry_count: 1,
        weight: 1,
        tag_keys: ptr::null(),
        tag_values: ptr::null(),
        tag_count: 0,
        bind: ptr::null(),
        advertise: ptr::null(),
        encrypt_key: ptr::null(),
    };
    let mut out = ptr::null_mut();
    // SAFETY: every pointer is valid for the call; `out` is ours.
    let status = unsafe { registry_registration_start(&config, &mut out, std::ptr::null()) };
    // SAFETY: the library's static or thread-local string.
    let message = unsafe { CStr::from_ptr(registry_last_error_message()) }
        .to_string_lossy()
        .to_string();
    (status, out, message)
}

#[test]
fn a_second_registration_of_a_live_id_is_refused_with_already_exists() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let registry = rt
        .block_on(GossipNode::start(
            GossipConfig::local(),
            Service::new("reg", REGISTRY_GROUP, "127.0.0.1:50051"),
        ))
        .unwrap();
    let seed = registry.local_addr().to_string();

    let (status, holder, _) = start("dup", "web", "127.0.0.1:8181", &seed);
    assert_eq!(status, registry_status::REGISTRY_OK);
    let listed = Service::new("dup", "web", "127.0.0.1:8181");
    let end = Instant::now() + Duration::from_secs(10);
    while !registry.members().contains(&listed) {
        assert!(Instant::now() < end, "the holder is never listed");
        std::thread::sleep(Duration::from_millis(20));
    }

    for group in ["api", "web"] {
        let (status, out, message) = start("dup", group, "127.0.0.1:8282", &seed);
        assert_eq!(status, registry_status::REGISTRY_ALREADY_EXISTS, "{message}");
        assert!(out.is_null());
        assert!(
            message.contains("already registered by a live member at 127.0.0.1:8181"),
            "{message}"
        );
        assert!(registry.members().contains(&listed), "the holder lost its place");
    }
    // SAFETY: from registry_registration_start, released once.
    unsafe { registry_registration_free(holder) };
    drop(registry);
}
