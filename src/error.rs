//! The crate's error type and its mapping to an HTTP status and the JSON envelope
//! `{"error":{"code":"…","message":"…"}}` that every endpoint returns on failure.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

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
    /// Not ready yet (e.g. an index still being built); retry shortly.
    #[error("{message}")]
    Unavailable { message: String, retry_after_s: u64 },
    /// The service is shutting down and no longer accepts writes.
    #[error("sofiia is shutting down")]
    ShuttingDown,
    /// A bug: something that should not happen did.
    #[error("internal error: {0}")]
    Internal(String),
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

    /// HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Error::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden { .. } => StatusCode::FORBIDDEN,
            Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::Storage(_) | Error::Io(_) | Error::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
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
            Error::Unavailable { .. } => "unavailable",
            Error::Timeout(_) => "timeout",
            Error::Storage(_) => "storage_error",
            Error::Io(_) => "io_error",
            Error::Internal(_) => "internal_error",
        }
    }

    /// Whether this error means the store itself failed (poisons a group commit).
    pub fn is_storage(&self) -> bool {
        matches!(self, Error::Storage(_))
    }
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Storage(e.to_string())
            }
        }
    )*};
}
storage_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(code = self.code(), error = %self, "request_failed");
        }
        let message = self.to_string();
        let mut body = json!({"error": {"code": self.code(), "message": message}});
        // A field error names its field on its own too, so a form can mark the input.
        if self.code() == "invalid_field" {
            if let Some((field, _)) = message.split_once(": ") {
                if !field.is_empty() && field.len() <= 64 && !field.contains(' ') {
                    body["error"]["field"] = json!(field);
                }
            }
        }
        let mut res = (status, axum::Json(body)).into_response();
        if let Error::TooManyRequests { retry_after_s, .. }
        | Error::Unavailable { retry_after_s, .. } = &self
        {
            if let Ok(v) = axum::http::HeaderValue::from_str(&retry_after_s.to_string()) {
                res.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        res
    }
}
