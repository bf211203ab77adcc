//! The crate error: a kind that says what went wrong for the client, plus a message with the
//! context needed to find the bad input. `api::error` maps kinds to HTTP statuses in one place.

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
    /// The method is not supported on this resource (405).
    MethodNotAllowed,
    /// The request or one of its parts is larger than allowed (413).
    TooLarge,
    /// The body is not of a media type this resource takes (415).
    UnsupportedMediaType,
    /// The requested range is not satisfiable (416).
    RangeNotSatisfiable,
    /// The server cannot take this now (shutting down, disk full) (503).
    Unavailable,
    /// A fault in the server or its storage (500).
    Internal,
}

#[derive(Debug)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
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

impl std::error::Error for Error {}

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
        Error::new(kind, format!("storage: {e}"))
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::internal(format!("catalog: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        if e.raw_os_error() == Some(28) {
            return Error::unavailable(format!("disk full: {e}"));
        }
        Error::internal(format!("i/o: {e}"))
    }
}
