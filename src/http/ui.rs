//! The console's static files, compiled into the binary with rust-embed (debug builds read
//! `ui/` from disk, so edits show on reload).
//!
//! - `/` serves `index.html` with `__ASSETS__` replaced by `/assets/<version>`, where the
//!   version is a hash over every embedded file. Module imports inside the assets are relative,
//!   so the whole tree of one build shares one versioned prefix and can be cached for a year;
//!   `index.html` itself is `no-cache`.
//! - `/assets/<other version>/…` (a page loaded before an upgrade) still gets today's file,
//!   uncached.
//! - Text files are sent brotli- or gzip-compressed when the client accepts it; each
//!   compressed form is made once per file content and kept in memory.
//! - `ETag` on everything; `If-None-Match` gets a 304.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::extract::ApiPath;
use crate::error::Error;

#[derive(rust_embed::Embed)]
#[folder = "ui/"]
struct Ui;

/// Placeholder in `index.html` for the versioned asset prefix.
const ASSET_PLACEHOLDER: &str = "__ASSETS__";

/// Smallest body worth compressing.
const MIN_COMPRESS: usize = 512;

/// A hash over every embedded file (path and content): changes whenever any asset does.
pub fn assets_version() -> String {
    fn compute() -> String {
        use sha2::{Digest, Sha256};
        let mut paths: Vec<_> = Ui::iter().collect();
        paths.sort();
        let mut h = Sha256::new();
        for p in paths {
            if let Some(f) = Ui::get(&p) {
                h.update(p.as_bytes());
                h.update(f.metadata.sha256_hash());
            }
        }
        crate::kernel::clock::hex(&h.finalize()[..6])
    }
    if cfg!(debug_assertions) {
        // Files come from disk in debug builds and may change under a running server.
        return compute();
    }
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(compute).clone()
}

/// `GET /`: the shell page, pointing at this build's assets.
pub async fn index(headers: HeaderMap) -> Response {
    index_page(&headers)
}

fn index_page(headers: &HeaderMap) -> Response {
    let Some(f) = Ui::get("index.html") else {
        return Error::NotFound("the console is not built into this binary".into()).into_response();
    };
    let version = assets_version();
    let html =
        String::from_utf8_lossy(&f.data).replace(ASSET_PLACEHOLDER, &format!("/assets/{version}"));
    let etag = format!("\"{version}-{}\"", short_hash(&f.metadata.sha256_hash()));
    let mut res = respond(
        headers,
        html.into_bytes().into(),
        "text/html; charset=utf-8",
        &etag,
        "no-cache",
    );
    // Scripts and styles only from this server; API calls may go to the configured backend.
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self' http: https: ws: wss:; object-src 'none'; base-uri 'none'; \
             frame-ancestors 'none'; form-action 'none'",
        ),
    );
    res.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// `GET /assets/{version}/{*path}`.
pub async fn asset(
    headers: HeaderMap,
    ApiPath((version, path)): ApiPath<(String, String)>,
) -> Response {
    let cache = if version == assets_version() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    serve(&headers, &format!("assets/{path}"), cache)
}

/// Any other file under `ui/` (favicon and the like), uncached.
pub fn other(headers: &HeaderMap, path: &str) -> Response {
    if path.is_empty() || path == "index.html" {
        return index_page(headers);
    }
    serve(headers, path, "no-cache")
}

fn serve(headers: &HeaderMap, path: &str, cache: &'static str) -> Response {
    if path
        .split('/')
        .any(|seg| seg == ".." || seg.starts_with('.'))
    {
        return Error::NotFound(format!("no such page: /{path}")).into_response();
    }
    match Ui::get(path) {
        Some(f) => {
            let etag = format!("\"{}\"", short_hash(&f.metadata.sha256_hash()));
            let mime = f.metadata.mimetype().to_string();
            respond(headers, f.data, &mime, &etag, cache)
        }
        None => Error::NotFound(format!("no such page: /{path}")).into_response(),
    }
}

fn short_hash(h: &[u8; 32]) -> String {
    crate::kernel::clock::hex(&h[..8])
}

/// Which compression the client takes, best first.
fn accepted(headers: &HeaderMap) -> Option<Encoding> {
    let v = headers.get(header::ACCEPT_ENCODING)?.to_str().ok()?;
    let takes = |name: &str| {
        v.split(',').any(|part| {
            let mut it = part.split(';');
            let n = it.next().unwrap_or("").trim();
            let q_zero = it.any(|p| {
                p.trim()
                    .to_ascii_lowercase()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (n.eq_ignore_ascii_case(name) || n == "*") && !q_zero
        })
    };
    if takes("br") {
        Some(Encoding::Brotli)
    } else if takes("gzip") {
        Some(Encoding::Gzip)
    } else {
        None
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Encoding {
    Brotli,
    Gzip,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }
}

fn compressible(mime: &str) -> bool {
    mime.starts_with("text/")
        || mime.contains("javascript")
        || mime.contains("json")
        || mime.contains("svg")
}

type Cache = Mutex<HashMap<(String, Encoding), Bytes>>;

/// The compressed body for `etag` (a content hash), made once.
fn compressed(etag: &str, body: &[u8], enc: Encoding) -> Option<Bytes> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (etag.to_string(), enc);
    if let Some(hit) = cache.lock().ok()?.get(&key) {
        return Some(hit.clone());
    }
    let out = match enc {
        Encoding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(body).ok()?;
            e.finish().ok()?
        }
        Encoding::Brotli => {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, 9, 22);
                w.write_all(body).ok()?;
                w.flush().ok()?;
            }
            out
        }
    };
    let out = Bytes::from(out);
    if let Ok(mut c) = cache.lock() {
        c.insert(key, out.clone());
    }
    Some(out)
}

fn respond(
    headers: &HeaderMap,
    body: std::borrow::Cow<'static, [u8]>,
    mime: &str,
    etag: &str,
    cache: &'static str,
) -> Response {
    let enc = accepted(headers).filter(|_| compressible(mime) && body.len() >= MIN_COMPRESS);
    // Each encoding is its own representation, so it gets its own tag.
    let etag = match enc {
        Some(e) => format!("{}-{}\"", etag.trim_end_matches('"'), e.name()),
        None => etag.to_string(),
    };
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|t| {
                // A weak comparison, as If-None-Match asks for (proxies may weaken tags).
                let t = t.trim();
                t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag
            })
        });
    let mut res = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match enc.and_then(|e| compressed(&etag, &body, e).map(|b| (e, b))) {
            Some((e, bytes)) => {
                let mut r = (StatusCode::OK, bytes).into_response();
                r.headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static(e.name()));
                r
            }
            None => (StatusCode::OK, body.into_owned()).into_response(),
        }
    };
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}
