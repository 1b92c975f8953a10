//! Extractors that turn every malformed request into the crate's JSON error envelope.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::edge::BodyTimeout;
use crate::error::Error;

const SERDE_PREFIXES: [&str; 3] = [
    "Failed to deserialize the JSON body into the target type: ",
    "Failed to parse the request body as JSON: ",
    "Failed to deserialize query string: ",
];

fn tidy(text: String) -> String {
    for p in SERDE_PREFIXES {
        if let Some(rest) = text.strip_prefix(p) {
            return rest.to_string();
        }
    }
    text
}

/// A JSON body; rejections become 400/413/415/422 in the envelope.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(r) => Err(json_rejection(r)),
        }
    }
}

/// A request body that stopped arriving in time (the edge's [`BodyTimeout`] somewhere in the
/// rejection's chain of causes) becomes 408 `request_timeout`.
fn timed_out(e: &(dyn std::error::Error + 'static)) -> Option<Error> {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<BodyTimeout>() {
            return Some(Error::RequestTimeout(t.to_string()));
        }
        cur = e.source();
    }
    None
}

fn json_rejection(r: JsonRejection) -> Error {
    if let Some(e) = timed_out(&r) {
        return e;
    }
    match r {
        JsonRejection::JsonDataError(e) => Error::Validation {
            code: "invalid_body",
            message: tidy(e.body_text()),
        },
        JsonRejection::JsonSyntaxError(e) => Error::bad_request("bad_json", tidy(e.body_text())),
        JsonRejection::MissingJsonContentType(_) => {
            Error::UnsupportedMediaType("expected Content-Type: application/json".into())
        }
        JsonRejection::BytesRejection(e) if e.status() == 413 => {
            Error::TooLarge("request body is larger than this endpoint accepts".into())
        }
        other => Error::bad_request("bad_body", other.body_text()),
    }
}

/// A JSON body that may be absent (empty body = `None`).
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if let Some(t) = timed_out(&e) {
                    t
                } else if e.status() == 413 {
                    Error::TooLarge("request body is larger than this endpoint accepts".into())
                } else {
                    Error::bad_request("bad_body", e.body_text())
                }
            })?;
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(OptionalJson(None));
        }
        serde_json::from_slice::<T>(&bytes)
            .map(|v| OptionalJson(Some(v)))
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => Error::Validation {
                    code: "invalid_body",
                    message: e.to_string(),
                },
                _ => Error::bad_request("bad_json", e.to_string()),
            })
    }
}

/// A query string; rejections become 400 `invalid_query`.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|r: QueryRejection| Error::bad_request("invalid_query", tidy(r.body_text())))
    }
}

/// Path parameters; rejections become 400 `invalid_path`.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|r: PathRejection| Error::bad_request("invalid_path", r.body_text()))
    }
}
