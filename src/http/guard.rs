//! Who may talk to sofiia from a browser: the `Host` and `Origin` checks that keep a web page
//! the operator happens to visit (or a DNS-rebound name) from driving the console's API.
//!
//! - `Host` must be a loopback name (`localhost`, `*.localhost`, `127.0.0.0/8`, `::1`), the
//!   address sofiia is bound to (any IP literal when bound to `0.0.0.0`/`::`, since a rebound
//!   name is never an IP literal), or a name in `ALLOWED_HOSTS` (`.example.com` allows its
//!   subdomains, `*` allows any). A request without `Host` (HTTP/1.0 tools) passes.
//! - `Origin`, when a browser sends it (every method, and the WebSocket upgrade), must be the
//!   console's own origin (same host and port as `Host`), a loopback origin, or one listed in
//!   `CORS_ORIGINS` (`*` allows any). `Origin: null` (sandboxed frames, `file:` pages) is refused.
//! - A request without `Origin` is not from a web page's script: curl and agents. Such a
//!   request that says `Sec-Fetch-Site: cross-site` on a method that changes state is a
//!   browser's form post and is refused too.
//!
//! Refusals are 403 with the JSON envelope and never reach a handler.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::Settings;
use crate::error::Error;
use crate::kernel::text::clip;

/// The compiled rules.
#[derive(Debug, Clone)]
pub struct Guard {
    /// `HOST` as configured, lowercased.
    bound: String,
    /// Bound to every interface.
    bound_any: bool,
    /// `ALLOWED_HOSTS`, lowercased.
    hosts: Vec<String>,
    /// `CORS_ORIGINS`, lowercased, without a trailing slash.
    origins: Vec<String>,
}

impl Guard {
    pub fn new(settings: &Settings) -> Guard {
        let bound = settings.host.to_ascii_lowercase();
        let bound_any = bound
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
        Guard {
            bound,
            bound_any,
            hosts: settings.allowed_hosts.clone(),
            origins: settings
                .cors_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether a `Host` header value (with or without port) names this server.
    pub fn host_allowed(&self, host_header: &str) -> bool {
        let host = host_name(host_header);
        if host.is_empty() {
            return false;
        }
        if is_loopback_name(&host) || host == self.bound {
            return true;
        }
        if self.bound_any
            && host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok()
        {
            return true;
        }
        self.hosts
            .iter()
            .any(|h| h == "*" || *h == host || (h.starts_with('.') && host.ends_with(h.as_str())))
    }

    /// Whether a browser page at `origin` may call, for a request whose `Host` is `host`.
    pub fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if self.origins.iter().any(|o| o == "*" || *o == origin) {
            return true;
        }
        let Some(authority) = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
        else {
            return false;
        };
        if authority.is_empty() || authority.contains(['/', '@', '?', '#']) {
            return false;
        }
        // The console's own page.
        if host.is_some_and(|h| h.trim().eq_ignore_ascii_case(authority)) {
            return true;
        }
        is_loopback_name(&host_name(authority))
    }

    /// Whether `origin` may read answers cross-origin (the CORS layer's rule: same-origin
    /// requests need no CORS headers).
    pub fn cors_allowed(&self, origin: &str) -> bool {
        self.origin_allowed(origin, None)
    }

    /// Check one request; `Err` is the refusal.
    pub fn check(
        &self,
        method: &Method,
        uri: &axum::http::Uri,
        version: axum::http::Version,
        headers: &HeaderMap,
    ) -> Result<(), Error> {
        let mut hosts = headers.get_all(header::HOST).iter();
        let first = hosts.next();
        if hosts.next().is_some() {
            return Err(Error::bad_request(
                "bad_host",
                "a request must carry one Host header",
            ));
        }
        if first.is_none() && uri.authority().is_none() && version >= axum::http::Version::HTTP_11 {
            return Err(Error::bad_request(
                "bad_host",
                "an HTTP/1.1 request must carry a Host header",
            ));
        }
        // A request target in absolute form names the host itself, and it wins (RFC 9112 §3.2.2).
        let target = uri.authority().map(|a| a.as_str());
        let host_value = match (target, first) {
            (Some(t), _) => Some(Ok(t)),
            (None, Some(v)) => Some(v.to_str().map_err(|_| ())),
            (None, None) => None,
        };
        let host = match host_value {
            None => None,
            Some(v) => match v {
                Ok(h) if self.host_allowed(h) => Some(h),
                other => {
                    let shown = other.map(|h| clip(h, 80)).unwrap_or_default();
                    return Err(Error::Forbidden {
                        code: "host_not_allowed",
                        message: format!(
                            "Host '{shown}' is not a name of this server: sofiia answers to loopback names, its bound address and the names in ALLOWED_HOSTS"
                        ),
                    });
                }
            },
        };
        match headers.get(header::ORIGIN) {
            Some(v) => {
                let origin = v.to_str().unwrap_or("");
                if !self.origin_allowed(origin, host) {
                    return Err(Error::Forbidden {
                        code: "origin_not_allowed",
                        message: format!(
                            "requests from the web page at '{}' are not allowed: only the console's own origin, loopback origins and CORS_ORIGINS may call",
                            clip(origin, 80)
                        ),
                    });
                }
            }
            None => {
                // No Origin but a browser's fetch metadata: a cross-site request that is not
                // the person following a link (an `<img>`, a form post, a `no-cors` fetch).
                let changes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
                let cross_site = headers
                    .get("sec-fetch-site")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
                let navigation = headers
                    .get("sec-fetch-mode")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"navigate"));
                if cross_site && (changes || !navigation) {
                    return Err(Error::Forbidden {
                        code: "origin_not_allowed",
                        message: "a cross-site request from a web page is not allowed".into(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The middleware: refuse what [`Guard::check`] refuses.
pub async fn guard(State(g): State<std::sync::Arc<Guard>>, req: Request, next: Next) -> Response {
    match g.check(req.method(), req.uri(), req.version(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => {
            tracing::warn!(code = e.code(), "request_refused");
            e.into_response()
        }
    }
}

/// The host part of `host[:port]` / `[v6]:port`, lowercased, without a trailing dot; empty
/// when it is not one (`[::1]junk`, an unclosed `[`).
fn host_name(authority: &str) -> String {
    let a = authority.trim();
    let host = if let Some(rest) = a.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return String::new();
        };
        let after = &rest[end + 1..];
        let port_ok = after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
        if !port_ok {
            return String::new();
        }
        &a[..end + 2]
    } else {
        match a.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => a,
        }
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn is_loopback_name(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    host.trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Whether a `Content-Type` says JSON (`application/json`, `application/*+json`).
pub fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(host: &str, allowed: &[&str], origins: &[&str]) -> Guard {
        let mut s = Settings::ephemeral(std::path::Path::new("/tmp/x"), "t");
        s.host = host.into();
        s.allowed_hosts = allowed.iter().map(|h| h.to_string()).collect();
        s.cors_origins = origins.iter().map(|h| h.to_string()).collect();
        Guard::new(&s)
    }

    #[test]
    fn hosts_are_loopback_the_bound_address_or_configured() {
        let g = guard("127.0.0.1", &["ops.example.com", ".corp.test"], &[]);
        for ok in [
            "127.0.0.1:8002",
            "localhost:8002",
            "LOCALHOST",
            "app.localhost:1",
            "[::1]:8002",
            "127.1.2.3",
            "ops.example.com:8002",
            "a.corp.test",
            "localhost.:8002",
            "[::1]",
        ] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8002",
            "localhost.evil.example",
            "10.0.0.5:8002",
            "corp.test.evil",
            "",
            "[::1].evil.example",
            "[::1]evil.example",
            "[::1",
            "[::1]:80x",
        ] {
            assert!(!g.host_allowed(bad), "{bad}");
        }
        // Bound to every interface: IP literals are fine (a rebound name is never one).
        let any = guard("0.0.0.0", &[], &[]);
        assert!(any.host_allowed("10.0.0.5:8002"));
        assert!(any.host_allowed("[fe80::1]:8002"));
        assert!(!any.host_allowed("rebind.evil.example:8002"));
        assert!(guard("127.0.0.1", &["*"], &[]).host_allowed("anything.example"));
    }

    #[test]
    fn origins_are_the_console_loopback_or_listed() {
        let g = guard("127.0.0.1", &[], &["https://ops.example.com"]);
        let host = Some("127.0.0.1:8002");
        for ok in [
            "http://127.0.0.1:8002",
            "http://localhost:3000",
            "http://[::1]:9",
            "https://ops.example.com",
            "https://OPS.example.com/",
        ] {
            assert!(g.origin_allowed(ok, host), "{ok}");
        }
        for bad in [
            "http://evil.example",
            "null",
            "",
            "http://localhost.evil.example",
            "file://",
            "http://127.0.0.1@evil.example",
            "https://ops.example.com.evil",
            "http://[::1]evil.example",
        ] {
            assert!(!g.origin_allowed(bad, host), "{bad}");
        }
        // Same origin as the Host it was served under (a configured name).
        assert!(g.origin_allowed("http://ops.lan:8002", Some("ops.lan:8002")));
        assert!(!g.origin_allowed("http://ops.lan:9999", Some("ops.lan:8002")));
    }

    #[test]
    fn a_cross_site_request_without_origin_is_refused_unless_it_is_a_navigation() {
        let g = guard("127.0.0.1", &[], &[]);
        let uri: axum::http::Uri = "/api/incidents".parse().unwrap();
        let v = axum::http::Version::HTTP_11;
        let check = |m: &Method, h: &HeaderMap| g.check(m, &uri, v, h).map_err(|e| e.code());
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:8002".parse().unwrap());
        assert!(check(&Method::POST, &h).is_ok());
        h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        // An <img src> or a no-cors fetch from a foreign page.
        assert_eq!(check(&Method::GET, &h), Err("origin_not_allowed"));
        h.insert("sec-fetch-mode", "navigate".parse().unwrap());
        assert!(check(&Method::GET, &h).is_ok());
        assert_eq!(check(&Method::POST, &h), Err("origin_not_allowed"));
        h.insert(header::HOST, "evil.example".parse().unwrap());
        assert_eq!(check(&Method::GET, &h), Err("host_not_allowed"));
    }

    #[test]
    fn the_target_authority_wins_and_host_must_be_there_once() {
        let g = guard("127.0.0.1", &[], &[]);
        let v11 = axum::http::Version::HTTP_11;
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "localhost".parse().unwrap());
        let abs: axum::http::Uri = "http://evil.example/api/incidents".parse().unwrap();
        let rel: axum::http::Uri = "/api/incidents".parse().unwrap();
        let code = |u: &axum::http::Uri, v, h: &HeaderMap| {
            g.check(&Method::GET, u, v, h).map_err(|e| e.code())
        };
        assert_eq!(code(&abs, v11, &h), Err("host_not_allowed"));
        assert!(code(&rel, v11, &h).is_ok());
        h.append(header::HOST, "evil.example".parse().unwrap());
        assert_eq!(code(&rel, v11, &h), Err("bad_host"));
        let none = HeaderMap::new();
        assert_eq!(code(&rel, v11, &none), Err("bad_host"));
        assert!(code(&rel, axum::http::Version::HTTP_10, &none).is_ok());
    }
}
