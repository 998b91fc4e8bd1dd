//! The one error type of `registry-core`; every front door maps from it.

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, by kind. Each front door maps these kinds in one place:
/// gRPC status codes (`wire`), C return codes (`ffi`), Python exceptions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The caller passed something unusable (empty key, n = 0, bad weight…).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The group, member or key owner does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The id or resource is already taken.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// No registry or peer could be reached, or the handle is stopped.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The operation did not finish within its deadline.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A limit (size, count, rate) was exceeded.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// A bug or an unexpected state; never caused by bad input alone.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(msg: impl Into<String>) -> Self {
        Error::NotFound(msg.into())
    }

    /// The message without the kind prefix (for a front door whose error
    /// class or code already says the kind).
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidArgument(m)
            | Error::NotFound(m)
            | Error::AlreadyExists(m)
            | Error::Unavailable(m)
            | Error::Timeout(m)
            | Error::LimitExceeded(m)
            | Error::Internal(m) => m,
        }
    }
}
