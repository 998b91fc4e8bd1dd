//! Generated gRPC types for `proto/` and their conversions to core types.

/// `registry.v1`: the registry's own service and messages.
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    tonic::include_proto!("registry.v1");
}

/// The package-less compatibility service `R` of werbenhu/registry.
#[allow(missing_docs, clippy::all)]
pub mod compat {
    include!(concat!(env!("OUT_DIR"), "/_.rs"));
}

/// Encoded `FileDescriptorSet` of every proto file, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/registry_descriptor.bin"));

use crate::error::Error;
use crate::service::Service;
use tonic::{Code, Status};

/// The gRPC codec of every generated service and client (`build.rs`):
/// prost's, except that a string field whose bytes are not UTF-8 is
/// refused as INVALID_ARGUMENT naming the field (`key is not valid
/// UTF-8`, the words of the HTTP front door), where prost's codec says
/// INTERNAL. The check is prost's own, done while decoding, before any
/// handler runs: this is the one place it is turned into a status.
#[derive(Debug, Clone)]
pub struct Codec<T, U>(tonic_prost::ProstCodec<T, U>);

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Codec(tonic_prost::ProstCodec::default())
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = tonic_prost::ProstEncoder<T>;
    type Decoder = Decoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        Decoder(self.0.decoder())
    }
}

/// The decoder of [`Codec`].
#[derive(Debug)]
pub struct Decoder<U>(tonic_prost::ProstDecoder<U>);

impl<U: prost::Message + Default> tonic::codec::Decoder for Decoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(not_utf8)
    }

    fn buffer_settings(&self) -> tonic::codec::BufferSettings {
        self.0.buffer_settings()
    }
}

/// prost's error for a string that is not UTF-8 (`failed to decode
/// Protobuf message: MatchRequest.key: invalid string value: data is not
/// UTF-8 encoded`) as INVALID_ARGUMENT `key is not valid UTF-8`; any
/// other status unchanged.
fn not_utf8(status: Status) -> Status {
    if status.code() != Code::Internal || !status.message().contains("not UTF-8") {
        return status;
    }
    let field = status
        .message()
        .split(": ")
        .find_map(|part| {
            part.split_once('.')
                .filter(|(m, f)| !m.contains(' ') && !f.contains(' '))
        })
        .map_or("a string field", |(_, field)| field);
    Status::invalid_argument(format!("{field} is not valid UTF-8"))
}

impl From<&Service> for v1::Service {
    fn from(s: &Service) -> Self {
        v1::Service {
            id: s.id.clone(),
            group: s.group.clone(),
            addr: s.addr.clone(),
            weight: s.weight,
            tags: s.tags.clone(),
            draining: s.draining,
        }
    }
}

impl From<v1::Service> for Service {
    fn from(s: v1::Service) -> Self {
        Service {
            id: s.id,
            group: s.group,
            addr: s.addr,
            weight: s.weight,
            tags: s.tags,
            draining: s.draining,
        }
    }
}

impl From<&Service> for compat::MatchResponse {
    fn from(s: &Service) -> Self {
        compat::MatchResponse {
            id: s.id.clone(),
            group: s.group.clone(),
            addr: s.addr.clone(),
        }
    }
}

/// The one mapping from core errors to gRPC status codes.
impl From<Error> for Status {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::NotFound(_) => Code::NotFound,
            Error::AlreadyExists(_) => Code::AlreadyExists,
            Error::Unavailable(_) => Code::Unavailable,
            Error::Timeout(_) => Code::DeadlineExceeded,
            Error::LimitExceeded(_) => Code::ResourceExhausted,
            Error::Internal(_) => Code::Internal,
        };
        // The message is the error's own text without the kind prefix, which
        // the status code already carries.
        Status::new(code, e.message())
    }
}

/// The one mapping from gRPC status codes back to core errors (clients).
///
/// A status the client's transport made up from a local error (no
/// connection, or it broke mid-call: the registry was killed or
/// restarted) is `Unavailable` whatever code tonic chose (`Unknown`,
/// `Internal` for h2 errors, ...), or `Timeout` for a deadline, so that
/// the client retries on another registry; its message spells out the
/// causes (tonic's own is only "transport error"). A status the server
/// sent has no source and keeps its code.
impl From<Status> for Error {
    fn from(s: Status) -> Self {
        let source = std::error::Error::source(&s);
        let msg = with_causes(s.message(), source);
        match s.code() {
            Code::DeadlineExceeded => Error::Timeout(msg),
            _ if source.is_some() => Error::Unavailable(msg),
            Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
                Error::InvalidArgument(msg)
            }
            Code::NotFound => Error::NotFound(msg),
            Code::AlreadyExists => Error::AlreadyExists(msg),
            Code::Unavailable | Code::Aborted | Code::Cancelled => Error::Unavailable(msg),
            Code::ResourceExhausted => Error::LimitExceeded(msg),
            _ => Error::Internal(format!("{:?}: {msg}", s.code())),
        }
    }
}

/// `message` followed by each cause in the chain that it does not already
/// contain; tonic's own wrapper, which says only "transport error", is left
/// out.
pub(crate) fn with_causes(message: &str, mut source: Option<&(dyn std::error::Error + 'static)>) -> String {
    let mut message = message.to_string();
    while let Some(e) = source {
        let cause = e.to_string();
        if cause != "transport error" && !message.contains(&cause) {
            message.push_str(": ");
            message.push_str(&cause);
        }
        source = e.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_round_trip_through_status_codes() {
        let all = [
            Error::invalid("a"),
            Error::not_found("b"),
            Error::AlreadyExists("c".into()),
            Error::Unavailable("d".into()),
            Error::Timeout("e".into()),
            Error::LimitExceeded("f".into()),
        ];
        for e in all {
            let status = Status::from(e.clone());
            assert_eq!(Error::from(status), e);
        }
        assert_eq!(
            Status::from(Error::not_found("group \"g\"")).code(),
            Code::NotFound
        );
        assert!(matches!(Error::from(Status::unknown("x")), Error::Internal(m) if m.contains("Unknown")));
        // Made by the client's transport from a broken connection: retryable.
        let broken = Status::from_error(Box::new(std::io::Error::other("connection reset")));
        assert_eq!(broken.code(), Code::Unknown);
        assert!(matches!(Error::from(broken), Error::Unavailable(m) if m.contains("connection reset")));
        // Whatever code the transport chose; a local deadline stays a timeout.
        let mut local = Status::internal("h2 protocol error");
        local.set_source(std::sync::Arc::new(std::io::Error::other("frame too big")));
        assert!(matches!(Error::from(local), Error::Unavailable(m) if m.contains("frame too big")));
        let mut late = Status::deadline_exceeded("deadline");
        late.set_source(std::sync::Arc::new(std::io::Error::other("elapsed")));
        assert!(matches!(Error::from(late), Error::Timeout(_)));
        // The same code sent by a server is a server error.
        assert!(matches!(Error::from(Status::internal("bug")), Error::Internal(_)));
    }

    #[test]
    fn services_convert_both_ways() {
        let mut s = Service::new("a", "g", "127.0.0.1:1");
        s.weight = 2;
        s.tags.insert("zone".into(), "eu".into());
        let w = v1::Service::from(&s);
        assert_eq!(Service::from(w), s);
        let old = compat::MatchResponse::from(&s);
        assert_eq!(
            (old.id.as_str(), old.group.as_str(), old.addr.as_str()),
            ("a", "g", "127.0.0.1:1")
        );
    }
}
