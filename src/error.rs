//! The crate's error type: what every room reports, with a stable machine-readable
//! [`Error::code`]. It knows nothing of HTTP: `http::error` maps it to a status and the JSON
//! envelope `{"error":{"code":"…","message":"…"}}`, and hides the text of internal failures.
//! Failures of redb and of the file system keep their cause as the error's `source`.

/// Result alias used by every room.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure a room can report. Each variant maps to exactly one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is syntactically wrong (bad JSON, bad cursor, bad query string).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// The request is well formed but a value is not acceptable.
    #[error("{message}")]
    Validation { code: &'static str, message: String },
    /// No such record.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The body or an uploaded file is larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// The content type is not one we accept.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The redb store failed; the write (if any) was not committed.
    #[error("storage error: {0}")]
    Storage(String),
    /// File system failure outside the store (artifacts, exports, backups).
    #[error("i/o error: {0}")]
    Io(String),
    /// No valid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but not allowed.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// Rate limit hit; retry after this many seconds.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_s: u64 },
    /// A tool call ran longer than its limit.
    #[error("{0}")]
    Timeout(String),
    /// The client sent its request too slowly (a body that paused or dragged on too long).
    #[error("{0}")]
    RequestTimeout(String),
    /// Not ready yet (e.g. an index still being built); retry shortly.
    #[error("{message}")]
    Unavailable { message: String, retry_after_s: u64 },
    /// A dependency outside sofiia (Prometheus, Loki, a tracing API) failed or is refused by
    /// the circuit breaker, after the outbound client's own retries. Answered like
    /// [`Error::Unavailable`]; callers above must not retry it again (see
    /// [`Error::retried_below`]).
    #[error("{message}")]
    Upstream { message: String, retry_after_s: u64 },
    /// The service is shutting down and no longer accepts writes.
    #[error("sofiia is shutting down")]
    ShuttingDown,
    /// A bug: something that should not happen did.
    #[error("internal error: {0}")]
    Internal(String),
    /// redb failed; the write (if any) was not committed. Keeps redb's error as the source.
    #[error("storage error: {0}")]
    Db(#[from] redb::Error),
    /// The file system failed. Keeps the OS error as the source.
    #[error("i/o error: {0}")]
    File(#[from] std::io::Error),
}

impl Error {
    /// A 422 with the `invalid_field` code, naming the field.
    pub fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        Error::Validation {
            code: "invalid_field",
            message: format!("{field}: {message}"),
        }
    }

    /// A 400 with the given code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Error::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// Stable machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest { code, .. } | Error::Validation { code, .. } => code,
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::TooLarge(_) => "payload_too_large",
            Error::UnsupportedMediaType(_) => "unsupported_media_type",
            Error::ShuttingDown => "shutting_down",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden { code, .. } => code,
            Error::TooManyRequests { .. } => "rate_limited",
            Error::Unavailable { .. } | Error::Upstream { .. } => "unavailable",
            Error::Timeout(_) => "timeout",
            Error::RequestTimeout(_) => "request_timeout",
            Error::Storage(_) | Error::Db(_) => "storage_error",
            Error::Io(_) | Error::File(_) => "io_error",
            Error::Internal(_) => "internal_error",
        }
    }

    /// Whether this error means the store itself failed (poisons a group commit).
    pub fn is_storage(&self) -> bool {
        matches!(self, Error::Storage(_) | Error::Db(_))
    }

    /// Whether this is a failure of sofiia itself (store, files, a bug), whose text is for
    /// the log and never for a client.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Error::Storage(_) | Error::Db(_) | Error::Io(_) | Error::File(_) | Error::Internal(_)
        )
    }

    /// Whether trying again later may succeed (a slow or busy dependency, a store hiccup).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Timeout(_)
                | Error::TooManyRequests { .. }
                | Error::Unavailable { .. }
                | Error::Upstream { .. }
                | Error::Storage(_)
                | Error::Db(_)
                | Error::Io(_)
                | Error::File(_)
        )
    }

    /// Whether a lower layer already spent the retries this failure deserves (the outbound
    /// client retries idempotent calls with backoff and keeps the breaker): retrying it again
    /// above would multiply the calls to a failing host. Transient, but not to be retried.
    pub fn retried_below(&self) -> bool {
        matches!(self, Error::Upstream { .. })
    }

    /// The error and its chain of causes, for log lines.
    pub fn chain(&self) -> String {
        let mut s = self.to_string();
        let mut cur = std::error::Error::source(self);
        while let Some(e) = cur {
            let t = e.to_string();
            if !s.contains(&t) {
                s.push_str(": ");
                s.push_str(&t);
            }
            cur = e.source();
        }
        s
    }
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Db(redb::Error::from(e))
            }
        }
    )*};
}
storage_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_and_file_failures_keep_their_cause() {
        let e = Error::from(std::io::Error::other("disk on fire"));
        assert_eq!(e.code(), "io_error");
        assert!(e.is_internal() && e.is_transient());
        assert!(std::error::Error::source(&e).is_some());
        assert!(e.chain().contains("disk on fire"));
        let e = Error::from(redb::StorageError::Corrupted("page 7".into()));
        assert!(
            e.is_storage() && e.chain().contains("page 7"),
            "{}",
            e.chain()
        );
        assert!(!Error::NotFound("x".into()).is_internal());
    }

    #[test]
    fn only_upstream_failures_count_as_retried_below() {
        let up = Error::Upstream {
            message: "prometheus (prod): HTTP 503".into(),
            retry_after_s: 5,
        };
        assert!(up.is_transient() && up.retried_below());
        assert_eq!(up.code(), "unavailable");
        let idx = Error::Unavailable {
            message: "index".into(),
            retry_after_s: 1,
        };
        assert!(idx.is_transient() && !idx.retried_below());
        assert!(!Error::Timeout("t".into()).retried_below());
    }
}
