//! `DsError`: the data-stream core's errors, one variant per Kinesis exception. The wire layer
//! (`crate::api::kinesis`) writes [`DsError::type_name`] as the response's `__type`; the native
//! API maps them to the crate [`Error`] kinds through `From`.

use crate::error::{Error, ErrorKind};
use crate::log::LogError;

/// An error of the data-stream core, named as Kinesis names it on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsError {
    /// The stream, shard or consumer does not exist (or no longer does).
    #[error("{0}")]
    ResourceNotFound(String),
    /// The resource exists already or is in a state that forbids the operation.
    #[error("{0}")]
    ResourceInUse(String),
    /// A parameter is outside what the operation accepts (beyond the schema's constraints).
    #[error("{0}")]
    InvalidArgument(String),
    /// An account or stream limit (shards, on-demand streams, consumers, scaling bounds).
    #[error("{0}")]
    LimitExceeded(String),
    /// The shard iterator is older than five minutes.
    #[error("{0}")]
    ExpiredIterator(String),
    /// The pagination token is older than five minutes.
    #[error("{0}")]
    ExpiredNextToken(String),
    /// A per-shard throughput limit was hit; clients retry with back-off.
    #[error("{0}")]
    ProvisionedThroughputExceeded(String),
    /// A schema constraint failed: a missing required member, a length, a pattern, a range.
    #[error("{0}")]
    Validation(String),
    /// The request body is not the JSON the operation expects (wrong type, bad base64).
    #[error("{0}")]
    Serialization(String),
    /// A fault in the server or its storage (HTTP 500).
    #[error("{0}")]
    Internal(String),
    /// The caller's access key lacks the grant for this operation on this stream.
    #[error("{0}")]
    AccessDenied(String),
    /// A change named a version that is no longer current (Firehose's UpdateDestination).
    #[error("{0}")]
    ConcurrentModification(String),
    /// The server cannot take this now: its storage is full, or it is shutting down (HTTP 503,
    /// `ServiceUnavailable`, which the AWS SDKs retry with back-off).
    #[error("{0}")]
    Unavailable(String),
}

impl DsError {
    /// The Kinesis exception name, as written in `__type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            DsError::ResourceNotFound(_) => "ResourceNotFoundException",
            DsError::ResourceInUse(_) => "ResourceInUseException",
            DsError::InvalidArgument(_) => "InvalidArgumentException",
            DsError::LimitExceeded(_) => "LimitExceededException",
            DsError::ExpiredIterator(_) => "ExpiredIteratorException",
            DsError::ExpiredNextToken(_) => "ExpiredNextTokenException",
            DsError::ProvisionedThroughputExceeded(_) => "ProvisionedThroughputExceededException",
            DsError::Validation(_) => "ValidationException",
            DsError::Serialization(_) => "SerializationException",
            DsError::Internal(_) => "InternalFailure",
            DsError::Unavailable(_) => "ServiceUnavailable",
            DsError::AccessDenied(_) => "AccessDeniedException",
            DsError::ConcurrentModification(_) => "ConcurrentModificationException",
        }
    }

    /// True for server faults (HTTP 500); everything else is the client's (HTTP 400) or a
    /// refusal to retry later (HTTP 503, [`DsError::Unavailable`]).
    pub fn is_server_fault(&self) -> bool {
        matches!(self, DsError::Internal(_))
    }

    pub fn message(&self) -> &str {
        match self {
            DsError::ResourceNotFound(m)
            | DsError::ResourceInUse(m)
            | DsError::InvalidArgument(m)
            | DsError::LimitExceeded(m)
            | DsError::ExpiredIterator(m)
            | DsError::ExpiredNextToken(m)
            | DsError::ProvisionedThroughputExceeded(m)
            | DsError::Validation(m)
            | DsError::Serialization(m)
            | DsError::Internal(m)
            | DsError::Unavailable(m)
            | DsError::AccessDenied(m)
            | DsError::ConcurrentModification(m) => m,
        }
    }
}

impl From<LogError> for DsError {
    fn from(e: LogError) -> Self {
        if e.is_disk_full() {
            DsError::Unavailable(format!("the storage is full; retry later: {e}"))
        } else {
            DsError::Internal(format!("storage: {e}"))
        }
    }
}

impl From<Error> for DsError {
    fn from(e: Error) -> Self {
        match e.kind {
            ErrorKind::InvalidArgument => DsError::InvalidArgument(e.message),
            ErrorKind::NotFound => DsError::ResourceNotFound(e.message),
            ErrorKind::Conflict => DsError::ResourceInUse(e.message),
            ErrorKind::Unavailable => DsError::Unavailable(e.message),
            ErrorKind::Forbidden => DsError::AccessDenied(e.message),
            _ => DsError::Internal(e.message),
        }
    }
}

impl From<rusqlite::Error> for DsError {
    fn from(e: rusqlite::Error) -> Self {
        Error::from(e).into()
    }
}

impl From<std::io::Error> for DsError {
    fn from(e: std::io::Error) -> Self {
        Error::from(e).into()
    }
}

impl From<DsError> for Error {
    fn from(e: DsError) -> Self {
        let kind = match &e {
            DsError::ResourceNotFound(_) => ErrorKind::NotFound,
            DsError::ResourceInUse(_) | DsError::ConcurrentModification(_) => ErrorKind::Conflict,
            DsError::InvalidArgument(_)
            | DsError::Validation(_)
            | DsError::Serialization(_)
            | DsError::ExpiredIterator(_)
            | DsError::ExpiredNextToken(_) => ErrorKind::InvalidArgument,
            DsError::LimitExceeded(_)
            | DsError::ProvisionedThroughputExceeded(_)
            | DsError::Unavailable(_) => ErrorKind::Unavailable,
            DsError::Internal(_) => ErrorKind::Internal,
            DsError::AccessDenied(_) => ErrorKind::Forbidden,
        };
        Error::new(kind, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_service_unavailable() {
        let full = LogError::Io {
            op: "write",
            path: "/x".into(),
            source: std::io::Error::from(std::io::ErrorKind::StorageFull),
        };
        let e = DsError::from(full);
        assert_eq!(e.type_name(), "ServiceUnavailable");
        assert!(!e.is_server_fault());
        assert_eq!(Error::from(e).kind, ErrorKind::Unavailable);
        let catalog = DsError::from(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        ));
        assert_eq!(catalog.type_name(), "ServiceUnavailable");
    }
}
