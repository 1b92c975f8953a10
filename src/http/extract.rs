//! Extractors that turn every malformed request into the crate's JSON error envelope.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::edge::BodyTimeout;
use super::guard::is_json_content_type;
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
///
/// One rule for every JSON endpoint: a browser (a request with `Origin`) must say
/// `Content-Type: application/json`; other callers (curl, agents) may send JSON under any
/// content type, as the seeds' `curl -d '{…}'` examples do. A key given twice in one object,
/// at any depth, is refused.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let bytes = json_bytes(req, state).await?;
        parse_json(&bytes).map(ApiJson)
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

/// A JSON body that may be absent (empty body = `None`); otherwise as [`ApiJson`].
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let browser = req.headers().contains_key(header::ORIGIN);
        let json_type = is_json_content_type(req.headers());
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(OptionalJson(None));
        }
        if browser && !json_type {
            return Err(wrong_type());
        }
        parse_json(&bytes).map(|v| OptionalJson(Some(v)))
    }
}

/// The body of a JSON request, after the content-type rule of [`ApiJson`].
async fn json_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, Error> {
    if req.headers().contains_key(header::ORIGIN) && !is_json_content_type(req.headers()) {
        return Err(wrong_type());
    }
    read_body(req, state).await
}

fn wrong_type() -> Error {
    Error::UnsupportedMediaType("expected Content-Type: application/json".into())
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, Error> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if let Some(t) = timed_out(&e) {
            t
        } else if e.status() == 413 {
            Error::TooLarge("request body is larger than this endpoint accepts".into())
        } else {
            Error::bad_request("bad_body", e.body_text())
        }
    })
}

/// Parse a JSON body: 400 `bad_json` for text that is not JSON (or has a duplicate key),
/// 422 `invalid_body` for JSON of the wrong shape (the message names the field).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    unique_keys(bytes)?;
    match axum::Json::<T>::from_bytes(bytes) {
        Ok(axum::Json(v)) => Ok(v),
        Err(JsonRejection::JsonDataError(e)) => Err(Error::Validation {
            code: "invalid_body",
            message: tidy(e.body_text()),
        }),
        Err(JsonRejection::JsonSyntaxError(e)) => {
            Err(Error::bad_request("bad_json", tidy(e.body_text())))
        }
        Err(other) => Err(Error::bad_request("bad_body", other.body_text())),
    }
}

/// Refuse JSON with a key twice in one object: parsers disagree on which one wins, so a
/// check and the handler could read different values.
fn unique_keys(bytes: &[u8]) -> Result<(), Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match Unique.deserialize(&mut de) {
        Ok(()) => Ok(()),
        // Syntax errors are reported by the real parse, with its wording.
        Err(e) if e.is_data() => Err(Error::bad_request("bad_json", e.to_string())),
        Err(_) => Ok(()),
    }
}

/// Walks a JSON value, failing on a repeated key.
struct Unique;

impl<'de> DeserializeSeed<'de> for Unique {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Unique)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate key '{}' in one object",
                    crate::kernel::text::clip(&key, 40)
                )));
            }
            map.next_value_seed(Unique)?;
            seen.insert(key);
        }
        Ok(())
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
