//! The envelope of every datagram: a wire tag, then the body plain or
//! sealed with the keyring.

use super::Machine;
use crate::gossip::packet::{WIRE_PLAIN, WIRE_SEALED};
use std::borrow::Cow;
use std::net::SocketAddr;

impl Machine {
    /// The body of a datagram, or `None` (counted) when its envelope does
    /// not match this node's keyring or does not open.
    pub(super) fn open<'a>(&mut self, data: &'a [u8]) -> Option<Cow<'a, [u8]>> {
        match (data.first(), &self.keyring) {
            (Some(&WIRE_PLAIN), None) => return Some(Cow::Borrowed(&data[1..])),
            (Some(&WIRE_PLAIN), Some(_)) => self.stats.dropped_unencrypted += 1,
            (Some(&WIRE_SEALED), None) => self.stats.dropped_unexpected_encrypted += 1,
            (Some(&WIRE_SEALED), Some(k)) => match k.open(data) {
                Some(b) => return Some(Cow::Owned(b)),
                None => self.stats.dropped_decrypt_failed += 1,
            },
            _ => self.stats.dropped_bad_envelope += 1,
        }
        None
    }

    /// Wraps a body into a datagram (sealed if a keyring is set) and queues it.
    pub(super) fn send(&mut self, to: SocketAddr, body: &[u8]) {
        let dgram = match &self.keyring {
            Some(k) => match k.seal(body) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "gossip: seal failed");
                    self.stats.send_errors += 1;
                    return;
                }
            },
            None => {
                let mut d = Vec::with_capacity(body.len() + 1);
                d.push(WIRE_PLAIN);
                d.extend_from_slice(body);
                d
            }
        };
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += dgram.len() as u64;
        self.out.packets.push((to, dgram));
    }
}
