//! Unencrypted gossip datagrams: the decoders on their own (round trips),
//! then a whole machine fed a sequence of datagrams and timer firings
//! (see `registry_fuzz::Session` for the invariants checked).
#![no_main]

use libfuzzer_sys::fuzz_target;
use registry_fuzz::{capture_exchange, capture_to_input, check_decoders, dump_seeds_if_asked, Session};
use std::time::Duration;

fuzz_target!(
    init: {
        dump_seeds_if_asked(|| {
            let capture = capture_exchange(None, Duration::from_secs(3));
            // The whole exchange, its first steps, and single datagrams of
            // each kind seen.
            let mut seeds = vec![capture_to_input(&capture), capture_to_input(&capture[..capture.len().min(6)])];
            let mut kinds = std::collections::BTreeSet::new();
            for item in &capture {
                if item.1.len() > 1 && kinds.insert(item.1[1]) {
                    seeds.push(capture_to_input(std::slice::from_ref(item)));
                }
            }
            seeds
        });
    },
    |data: &[u8]| {
        let mut session = Session::new(None);
        session.run(data, |_, _, packet| {
            check_decoders(packet);
            if let Some(body) = packet.get(1..) {
                check_decoders(body);
                check_decoders(body.get(1..).unwrap_or(&[]));
            }
            Some(packet.to_vec())
        });
    }
);
