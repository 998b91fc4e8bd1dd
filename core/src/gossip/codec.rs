//! Compact binary encoding of foca's messages for [`NodeId`] identities.
//!
//! Every read checks the remaining length first: decoding arbitrary bytes
//! returns [`CodecError`], never panics. Encoding writes into a scratch
//! buffer first so a message that does not fit leaves foca's buffer as it
//! was (foca's `Codec` contract).

use super::identity::NodeId;
use bytes::{Buf, BufMut};
use foca::{Header, Member, Message, State};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Why bytes could not be decoded (or a value could not be encoded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input ended in the middle of a value.
    #[error("truncated input")]
    Truncated,
    /// A tag byte has no meaning.
    #[error("unknown {0} tag {1}")]
    BadTag(&'static str, u8),
    /// A length or number is out of range.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// The output buffer has no room for the value.
    #[error("no room in the output buffer")]
    NoRoom,
}

/// Reads one byte.
pub(crate) fn get_u8(buf: &mut impl Buf) -> Result<u8, CodecError> {
    if buf.remaining() < 1 {
        return Err(CodecError::Truncated);
    }
    Ok(buf.get_u8())
}

/// Reads a big-endian u16.
pub(crate) fn get_u16(buf: &mut impl Buf) -> Result<u16, CodecError> {
    if buf.remaining() < 2 {
        return Err(CodecError::Truncated);
    }
    Ok(buf.get_u16())
}

/// Writes an unsigned LEB128 varint.
pub(crate) fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Reads an unsigned LEB128 varint (at most 10 bytes).
pub(crate) fn get_varint(buf: &mut impl Buf) -> Result<u64, CodecError> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let b = get_u8(buf)?;
        let part = u64::from(b & 0x7f);
        if i == 9 && b > 1 {
            return Err(CodecError::Invalid("varint"));
        }
        v |= part << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(CodecError::Invalid("varint"))
}

/// Writes a length-prefixed UTF-8 string.
pub(crate) fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_varint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// Reads a length-prefixed UTF-8 string of at most `max` bytes.
pub(crate) fn get_str(buf: &mut impl Buf, max: usize) -> Result<String, CodecError> {
    let len = get_varint(buf)?;
    if len > max as u64 {
        return Err(CodecError::Invalid("string length"));
    }
    let len = len as usize;
    if buf.remaining() < len {
        return Err(CodecError::Truncated);
    }
    let mut bytes = vec![0u8; len];
    buf.copy_to_slice(&mut bytes);
    String::from_utf8(bytes).map_err(|_| CodecError::Invalid("utf-8"))
}

/// Writes a socket address: tag 4 or 6, the IP, the port.
pub(crate) fn put_addr(buf: &mut Vec<u8>, addr: &SocketAddr) {
    match addr {
        SocketAddr::V4(a) => {
            buf.push(4);
            buf.extend_from_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            buf.push(6);
            buf.extend_from_slice(&a.ip().octets());
        }
    }
    buf.extend_from_slice(&addr.port().to_be_bytes());
}

/// Reads a socket address written by [`put_addr`].
pub(crate) fn get_addr(buf: &mut impl Buf) -> Result<SocketAddr, CodecError> {
    match get_u8(buf)? {
        4 => {
            if buf.remaining() < 6 {
                return Err(CodecError::Truncated);
            }
            let mut ip = [0u8; 4];
            buf.copy_to_slice(&mut ip);
            let port = buf.get_u16();
            Ok(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
        }
        6 => {
            if buf.remaining() < 18 {
                return Err(CodecError::Truncated);
            }
            let mut ip = [0u8; 16];
            buf.copy_to_slice(&mut ip);
            let port = buf.get_u16();
            Ok(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0)))
        }
        t => Err(CodecError::BadTag("address", t)),
    }
}

/// Writes a [`NodeId`]: address then generation.
pub(crate) fn put_id(buf: &mut Vec<u8>, id: &NodeId) {
    put_addr(buf, &id.addr);
    put_varint(buf, id.gen);
}

/// Reads a [`NodeId`].
pub(crate) fn get_id(buf: &mut impl Buf) -> Result<NodeId, CodecError> {
    let addr = get_addr(buf)?;
    let gen = get_varint(buf)?;
    Ok(NodeId { addr, gen })
}

/// foca's codec for [`NodeId`] clusters.
#[derive(Debug, Default, Clone, Copy)]
pub struct NodeCodec;

fn put_message(buf: &mut Vec<u8>, msg: &Message<NodeId>) {
    match msg {
        Message::Ping(n) => buf.extend_from_slice(&[1, *n]),
        Message::Ack(n) => buf.extend_from_slice(&[2, *n]),
        Message::PingReq { target, probe_number } => {
            buf.extend_from_slice(&[3, *probe_number]);
            put_id(buf, target);
        }
        Message::IndirectPing { origin, probe_number } => {
            buf.extend_from_slice(&[4, *probe_number]);
            put_id(buf, origin);
        }
        Message::IndirectAck { target, probe_number } => {
            buf.extend_from_slice(&[5, *probe_number]);
            put_id(buf, target);
        }
        Message::ForwardedAck { origin, probe_number } => {
            buf.extend_from_slice(&[6, *probe_number]);
            put_id(buf, origin);
        }
        Message::Announce => buf.push(7),
        Message::Feed => buf.push(8),
        Message::Gossip => buf.push(9),
        Message::Broadcast => buf.push(10),
        Message::TurnUndead => buf.push(11),
    }
}

fn get_message(buf: &mut impl Buf) -> Result<Message<NodeId>, CodecError> {
    let tag = get_u8(buf)?;
    Ok(match tag {
        1 => Message::Ping(get_u8(buf)?),
        2 => Message::Ack(get_u8(buf)?),
        3..=6 => {
            let probe_number = get_u8(buf)?;
            let id = get_id(buf)?;
            match tag {
                3 => Message::PingReq {
                    target: id,
                    probe_number,
                },
                4 => Message::IndirectPing {
                    origin: id,
                    probe_number,
                },
                5 => Message::IndirectAck {
                    target: id,
                    probe_number,
                },
                _ => Message::ForwardedAck {
                    origin: id,
                    probe_number,
                },
            }
        }
        7 => Message::Announce,
        8 => Message::Feed,
        9 => Message::Gossip,
        10 => Message::Broadcast,
        11 => Message::TurnUndead,
        t => return Err(CodecError::BadTag("message", t)),
    })
}

fn commit(scratch: &[u8], mut buf: impl BufMut) -> Result<(), CodecError> {
    if buf.remaining_mut() < scratch.len() {
        return Err(CodecError::NoRoom);
    }
    buf.put_slice(scratch);
    Ok(())
}

impl foca::Codec<NodeId> for NodeCodec {
    type Error = CodecError;

    fn encode_header(&mut self, header: &Header<NodeId>, buf: impl BufMut) -> Result<(), CodecError> {
        let mut s = Vec::with_capacity(64);
        put_id(&mut s, &header.src);
        s.extend_from_slice(&header.src_incarnation.to_be_bytes());
        put_id(&mut s, &header.dst);
        put_message(&mut s, &header.message);
        commit(&s, buf)
    }

    fn decode_header(&mut self, mut buf: impl Buf) -> Result<Header<NodeId>, CodecError> {
        let src = get_id(&mut buf)?;
        let src_incarnation = get_u16(&mut buf)?;
        let dst = get_id(&mut buf)?;
        let message = get_message(&mut buf)?;
        Ok(Header {
            src,
            src_incarnation,
            dst,
            message,
        })
    }

    fn encode_member(&mut self, member: &Member<NodeId>, buf: impl BufMut) -> Result<(), CodecError> {
        let mut s = Vec::with_capacity(32);
        put_id(&mut s, member.id());
        s.extend_from_slice(&member.incarnation().to_be_bytes());
        s.push(match member.state() {
            State::Alive => 0,
            State::Suspect => 1,
            State::Down => 2,
        });
        commit(&s, buf)
    }

    fn decode_member(&mut self, mut buf: impl Buf) -> Result<Member<NodeId>, CodecError> {
        let id = get_id(&mut buf)?;
        let incarnation = get_u16(&mut buf)?;
        let state = match get_u8(&mut buf)? {
            0 => State::Alive,
            1 => State::Suspect,
            2 => State::Down,
            t => return Err(CodecError::BadTag("state", t)),
        };
        Ok(Member::new(id, incarnation, state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::Codec;

    #[test]
    fn header_round_trips_and_truncation_errors() {
        let a = NodeId::with_gen("10.0.0.1:7370".parse().unwrap(), 1_700_000_000_000);
        let b = NodeId::with_gen("[::1]:9".parse().unwrap(), 3);
        let h = Header {
            src: a,
            src_incarnation: 7,
            dst: b,
            message: Message::PingReq {
                target: a,
                probe_number: 9,
            },
        };
        let mut out = Vec::new();
        NodeCodec.encode_header(&h, &mut out).unwrap();
        assert_eq!(NodeCodec.decode_header(&out[..]).unwrap(), h);
        for cut in 0..out.len() {
            assert!(NodeCodec.decode_header(&out[..cut]).is_err());
        }
        let m = Member::new(b, 2, State::Suspect);
        let mut out = Vec::new();
        NodeCodec.encode_member(&m, &mut out).unwrap();
        assert_eq!(NodeCodec.decode_member(&out[..]).unwrap(), m);
    }

    #[test]
    fn varint_rejects_overlong() {
        assert!(get_varint(&mut &[0xffu8; 11][..]).is_err());
        let mut v = Vec::new();
        put_varint(&mut v, u64::MAX);
        assert_eq!(get_varint(&mut &v[..]).unwrap(), u64::MAX);
    }
}
