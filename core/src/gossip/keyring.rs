//! Packet encryption: XChaCha20-Poly1305 with a keyring.
//!
//! Every datagram is sealed with the primary key under a fresh random
//! 24-byte nonce (random nonces are safe at this size). A receiver tries the
//! primary key, then every accepted key, so keys rotate with no downtime:
//! first install the new key as accepted everywhere, then make it primary
//! everywhere, then drop the old one. The wire tag byte is authenticated too.

use super::packet::WIRE_SEALED;
use crate::error::{Error, Result};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use std::fmt;

/// Length of a key in bytes.
pub const KEY_LEN: usize = 32;
/// Bytes sealing adds: wire tag, nonce and AEAD tag.
pub const SEAL_OVERHEAD: usize = 1 + 24 + 16;

/// The keys a node encrypts with (primary) and accepts (primary + others).
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<[u8; KEY_LEN]>,
    ciphers: Vec<XChaCha20Poly1305>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        write!(f, "Keyring({} keys)", self.keys.len())
    }
}

impl PartialEq for Keyring {
    fn eq(&self, other: &Self) -> bool {
        self.keys == other.keys
    }
}

impl Keyring {
    /// A keyring that encrypts and decrypts with `primary` only.
    pub fn new(primary: [u8; KEY_LEN]) -> Self {
        Keyring {
            keys: vec![primary],
            ciphers: vec![XChaCha20Poly1305::new(&primary.into())],
        }
    }

    /// Adds a key accepted for decryption (not used to encrypt).
    pub fn with_accepted(mut self, key: [u8; KEY_LEN]) -> Self {
        if !self.keys.contains(&key) {
            self.keys.push(key);
            self.ciphers.push(XChaCha20Poly1305::new(&key.into()));
        }
        self
    }

    /// A keyring from keys in order: the first encrypts, every one is
    /// accepted (for key rotation); `None` when there is no key.
    pub fn from_keys(keys: impl IntoIterator<Item = [u8; KEY_LEN]>) -> Option<Self> {
        let mut keys = keys.into_iter();
        let first = keys.next()?;
        Some(keys.fold(Keyring::new(first), Keyring::with_accepted))
    }

    /// Parses a comma-separated list of 64-hex-digit keys, the form every
    /// front door takes (`--encrypt-key`, `REGISTRY_ENCRYPT_KEY`, the C
    /// and Go config): the first encrypts, every one is accepted.
    pub fn parse_list(list: &str) -> Result<Self> {
        let keys = list
            .split(',')
            .map(Keyring::parse_hex_key)
            .collect::<Result<Vec<_>>>()?;
        // `split` yields at least one item, so there is a first key.
        Keyring::from_keys(keys).ok_or_else(|| Error::invalid("no encryption key given"))
    }

    /// Parses a 32-byte key written as 64 hex digits.
    pub fn parse_hex_key(hex: &str) -> Result<[u8; KEY_LEN]> {
        let hex = hex.trim();
        if hex.len() != KEY_LEN * 2 || !hex.is_ascii() {
            return Err(Error::invalid(format!(
                "an encryption key is {} hex digits, got {} characters",
                KEY_LEN * 2,
                hex.len()
            )));
        }
        let mut key = [0u8; KEY_LEN];
        for (i, k) in key.iter_mut().enumerate() {
            *k = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map_err(|_| Error::invalid("an encryption key contains a non-hex digit"))?;
        }
        Ok(key)
    }

    /// The primary key (used to encrypt).
    pub fn primary(&self) -> &[u8; KEY_LEN] {
        &self.keys[0]
    }

    /// Seals `body` into a complete datagram: tag, nonce, ciphertext.
    pub fn seal(&self, body: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let aad = [WIRE_SEALED];
        let ct = self.ciphers[0]
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: body, aad: &aad })
            .map_err(|_| Error::Internal("packet encryption failed".into()))?;
        let mut out = Vec::with_capacity(1 + 24 + ct.len());
        out.push(WIRE_SEALED);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens a sealed datagram (starting with the tag byte) with any key.
    pub fn open(&self, datagram: &[u8]) -> Option<Vec<u8>> {
        if datagram.len() < SEAL_OVERHEAD || datagram[0] != WIRE_SEALED {
            return None;
        }
        let nonce = XNonce::from_slice(&datagram[1..25]);
        let aad = [WIRE_SEALED];
        self.ciphers.iter().find_map(|c| {
            c.decrypt(
                nonce,
                Payload {
                    msg: &datagram[25..],
                    aad: &aad,
                },
            )
            .ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_rotation() {
        let old = Keyring::new([1; 32]);
        let both = Keyring::new([2; 32]).with_accepted([1; 32]);
        let other = Keyring::new([3; 32]);
        let d = old.seal(b"hello").unwrap();
        assert_eq!(both.open(&d).unwrap(), b"hello");
        assert!(other.open(&d).is_none());
        let d2 = both.seal(b"x").unwrap();
        assert!(old.open(&d2).is_none());
        let mut bad = d.clone();
        bad[30] ^= 1;
        assert!(both.open(&bad).is_none());
        assert!(both.open(&d[..10]).is_none());
        assert_eq!(Keyring::parse_hex_key(&"0a".repeat(32)).unwrap(), [10; 32]);
        let list = format!("{}, {}", "0a".repeat(32), "0b".repeat(32));
        assert_eq!(
            Keyring::parse_list(&list).unwrap(),
            Keyring::new([10; 32]).with_accepted([11; 32])
        );
        let bad = Keyring::parse_list(&format!("{},zz", "0a".repeat(32))).unwrap_err();
        assert!(bad.to_string().contains("64 hex digits, got 2"), "{bad}");
        assert!(Keyring::parse_list("").is_err());
        assert_eq!(Keyring::from_keys([]), None);
        assert!(Keyring::parse_hex_key("zz").is_err());
    }
}
