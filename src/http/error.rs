//! The error edge: [`Error`] → HTTP status and the JSON envelope
//! `{"error":{"code":"…","message":"…"}}`. Every request carries an id (the `x-request-id`
//! response header and the `http` log line); a failure of sofiia itself answers only
//! "internal error" and that id, while the log line with the same id carries the cause.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::Error;

tokio::task_local! {
    /// The id of the request being handled (set by the request-logging middleware).
    pub static REQUEST_ID: String;
}

/// A fresh request id.
pub fn new_request_id() -> String {
    format!("req_{}", crate::kernel::clock::random_hex(8))
}

/// The current request's id (a fresh one outside a request).
pub fn request_id() -> String {
    REQUEST_ID
        .try_with(|id| id.clone())
        .unwrap_or_else(|_| new_request_id())
}

/// HTTP status for an error.
pub fn status_of(e: &Error) -> StatusCode {
    match e {
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
        Error::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
        Error::Unavailable { .. } | Error::Upstream { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::Storage(_) | Error::Io(_) | Error::Internal(_) | Error::Db(_) | Error::File(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// The JSON body for an error, and the message a client may see.
pub fn body_of(e: &Error, request_id: &str) -> serde_json::Value {
    if e.is_internal() {
        return json!({"error": {"code": e.code(), "message": "internal error", "request_id": request_id}});
    }
    let message = e.to_string();
    let mut body = json!({"error": {"code": e.code(), "message": message}});
    // A field error names its field on its own too, so a form can mark the input.
    if e.code() == "invalid_field" {
        if let Some((field, _)) = message.split_once(": ") {
            if !field.is_empty() && field.len() <= 64 && !field.contains(' ') {
                body["error"]["field"] = json!(field);
            }
        }
    }
    body
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = status_of(&self);
        let id = request_id();
        if self.is_internal() {
            tracing::error!(code = self.code(), request_id = %id, error = %self.chain(), "request_failed");
        }
        let mut res = (status, axum::Json(body_of(&self, &id))).into_response();
        if let Error::TooManyRequests { retry_after_s, .. }
        | Error::Unavailable { retry_after_s, .. }
        | Error::Upstream { retry_after_s, .. } = &self
        {
            if let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string()) {
                res.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_failures_say_internal_error_and_the_request_id_only() {
        let e = Error::Storage("table incidents: page 7 checksum mismatch at /data/x".into());
        assert_eq!(status_of(&e), StatusCode::INTERNAL_SERVER_ERROR);
        let b = body_of(&e, "req_1");
        assert_eq!(
            b,
            json!({"error": {"code": "storage_error", "message": "internal error", "request_id": "req_1"}})
        );
        let f = body_of(&Error::invalid("title", "must not be empty"), "req_2");
        assert_eq!(f["error"]["field"], "title");
        assert_eq!(f["error"]["message"], "title: must not be empty");
        // operational 5xx answers keep their (safe, useful) text
        let t = body_of(
            &Error::Timeout("oncall_tool.incident_get took longer than 5 ms".into()),
            "r",
        );
        assert!(t["error"]["message"]
            .as_str()
            .unwrap()
            .contains("took longer"));
    }
}
