//! Encrypted gossip datagrams. Each packet frame's flags bits 2-3 choose:
//! 0 or 1: seal the bytes as a body with the machine's primary or accepted
//! key (so the decoders behind decryption see fuzzed bodies); 2: seal with
//! a key the machine does not know (must be dropped as undecryptable);
//! 3: feed the bytes raw (garbage at the decryption layer). The keyring
//! itself must open what it sealed and refuse any tampered byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use registry_core::gossip::packet::WIRE_PLAIN;
use registry_core::gossip::Keyring;
use registry_fuzz::{
    capture_exchange, capture_to_input, dump_seeds_if_asked, target_keyring, Session, FRAME_TIMER,
    KEY_ACCEPTED, KEY_PRIMARY, KEY_UNKNOWN,
};
use std::time::Duration;

fuzz_target!(
    init: {
        dump_seeds_if_asked(|| {
            // Plain capture, its datagrams turned into bodies to seal (mode 0).
            let plain = capture_exchange(None, Duration::from_secs(3));
            let bodies: Vec<(u8, Vec<u8>)> = plain
                .iter()
                .map(|(f, d)| match d.split_first() {
                    Some((&WIRE_PLAIN, body)) if *f & FRAME_TIMER == 0 => (*f, body.to_vec()),
                    _ => (*f, d.clone()),
                })
                .collect();
            // A sealed capture fed raw (mode 3).
            let sealed: Vec<(u8, Vec<u8>)> = capture_exchange(Some(target_keyring()), Duration::from_secs(2))
                .into_iter()
                .map(|(f, d)| if f & FRAME_TIMER == 0 { (f | 0x0c, d) } else { (f, d) })
                .collect();
            let wrong_key: Vec<(u8, Vec<u8>)> = bodies.iter().take(4).map(|(f, d)| (f | 0x08, d.clone())).collect();
            vec![capture_to_input(&bodies), capture_to_input(&sealed), capture_to_input(&wrong_key)]
        });
    },
    |data: &[u8]| {
        let primary = Keyring::new(KEY_PRIMARY);
        let accepted = Keyring::new(KEY_ACCEPTED);
        let unknown = Keyring::new(KEY_UNKNOWN);
        let mut session = Session::new(Some(target_keyring()));
        session.run(data, |s, flags, bytes| {
            let ring = target_keyring();
            let mode = (flags >> 2) & 3;
            if mode == 3 {
                // Raw: the keyring alone, then the machine.
                if let Some(body) = ring.open(bytes) {
                    // Only a sealed datagram of at least the overhead opens.
                    assert!(bytes.len() >= 41, "opened a {}-byte datagram", bytes.len());
                    assert!(body.len() == bytes.len() - 41);
                }
                return Some(bytes.to_vec());
            }
            let sealer = [&primary, &accepted, &unknown][usize::from(mode)];
            let sealed = sealer.seal(bytes).expect("sealing never fails");
            assert_eq!(sealed.len(), bytes.len() + 41);
            let opened = ring.open(&sealed);
            if mode == 2 {
                assert_eq!(opened, None, "opened a datagram sealed with an unknown key");
                if sealed.len() > s.max_packet() {
                    return Some(sealed); // dropped as too large first
                }
                let before = s.machine.stats().dropped_decrypt_failed;
                s.packet("127.0.0.1:7002".parse().expect("address"), &sealed);
                assert_eq!(s.machine.stats().dropped_decrypt_failed, before + 1);
                return None;
            }
            assert_eq!(opened.as_deref(), Some(bytes), "keyring round trip");
            if !bytes.is_empty() {
                // Flip one bit chosen by the data: the AEAD must refuse it.
                let mut bad = sealed.clone();
                let i = usize::from(bytes[0]) % bad.len();
                bad[i] ^= 1 << (bytes[bytes.len() - 1] % 8);
                assert_eq!(ring.open(&bad), None, "opened a tampered datagram (byte {i})");
            }
            Some(sealed)
        });
    }
);
