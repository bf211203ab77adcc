//! The crate error: a kind that says what went wrong for the client, a message with the context
//! needed to find the bad input, and the error that caused it (kept as a source chain, for logs).
//! `api::error` maps it to HTTP in one place (the Kinesis wire protocol has its own, `DsError`).

use std::fmt;

use crate::clock::TimestampParseError;
use crate::log::LogError;
use crate::name::InvalidName;

/// What kind of failure this is, from the client's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or a parameter is out of range (400).
    InvalidArgument,
    /// The named resource does not exist (404).
    NotFound,
    /// The resource exists already, or is busy (a second producer) (409).
    Conflict,
    /// Valid credentials without the grant this needs (403).
    Forbidden,
    /// The method is not supported on this resource (405).
    MethodNotAllowed,
    /// The request or one of its parts is larger than allowed (413).
    TooLarge,
    /// The body is not of a media type this resource takes (415).
    UnsupportedMediaType,
    /// The requested range is not satisfiable (416).
    RangeNotSatisfiable,
    /// Well-formed, but the stored media cannot be processed (a frame that does not decode) (422).
    Unprocessable,
    /// The server cannot take this now (shutting down, disk full) (503).
    Unavailable,
    /// A fault in the server or its storage (500).
    Internal,
}

#[derive(Debug)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// A more precise code than the kind's, for clients that branch on it (`NoMedia`).
    pub code: Option<&'static str>,
    /// When a refused request may be retried (503s); one second if unset.
    pub retry_after: Option<std::time::Duration>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), code: None, retry_after: None, source: None }
    }

    /// Keeps `source` as the cause (shown in logs by [`error_chain`]).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Gives the error a code more precise than its kind's.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// Tells a refused client when to come back.
    pub fn with_retry_after(mut self, after: std::time::Duration) -> Self {
        self.retry_after = Some(after);
        self
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Forbidden, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// An error and its causes on one line, `outer: cause: root` (some errors' Display, reqwest's
/// among them, omits the cause).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

impl From<InvalidName> for Error {
    fn from(e: InvalidName) -> Self {
        Error::invalid(e.to_string())
    }
}

impl From<TimestampParseError> for Error {
    fn from(e: TimestampParseError) -> Self {
        Error::invalid(e.to_string())
    }
}

impl From<LogError> for Error {
    fn from(e: LogError) -> Self {
        let kind = if e.is_disk_full() { ErrorKind::Unavailable } else { ErrorKind::Internal };
        Error::new(kind, format!("storage: {e}")).with_source(e)
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            return Error::unavailable(format!("the disk is full (catalog: {e})")).with_source(e);
        }
        Error::internal(format!("catalog: {e}")).with_source(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        if e.raw_os_error() == Some(28) {
            return Error::unavailable(format!("disk full: {e}")).with_source(e);
        }
        Error::internal(format!("i/o: {e}")).with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_unavailable_not_a_fault() {
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            Some("database or disk is full".into()),
        );
        let e = Error::from(full);
        assert_eq!(e.kind, ErrorKind::Unavailable, "{e}");
        assert!(std::error::Error::source(&e).is_some(), "the cause is kept");
        let enospc = Error::from(std::io::Error::from_raw_os_error(28));
        assert_eq!(enospc.kind, ErrorKind::Unavailable);
        let other = Error::from(std::io::Error::from_raw_os_error(5));
        assert_eq!(other.kind, ErrorKind::Internal);
        assert!(error_chain(&other).starts_with("i/o: "), "{}", error_chain(&other));
    }
}
