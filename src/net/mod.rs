//! The one outbound HTTP client every room uses: only hosts on `network_allowlist.yml`,
//! connect and total timeouts, retries with backoff and jitter for idempotent requests, a
//! budget for each whole call (all its attempts, so a host that hangs costs one budget, not
//! three timeouts), and a circuit breaker per host so a dead node costs nothing after a few
//! failures.

/// Install rustls's `ring` crypto provider as the process default, once, before any HTTPS
/// client is built (the build carries no other provider). Later calls do nothing.
pub fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A plain HTTP client with the TLS provider installed (the CLI's calls to a running server,
/// tests and benchmarks); reqwest panics when a client is built before [`init_tls`].
pub fn client() -> reqwest::Client {
    init_tls();
    reqwest::Client::new()
}

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config::ConfigError;

/// `network_allowlist.yml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allowlist {
    pub hosts: Vec<String>,
}

impl Allowlist {
    /// Whether `host` may be called.
    pub fn allows(&self, host: &str) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        self.hosts.iter().any(|h| {
            let h = h.to_ascii_lowercase();
            match h.strip_prefix("*.") {
                Some(domain) => host.ends_with(&format!(".{domain}")),
                None => h == host,
            }
        })
    }
}

/// Default allowlist, identical to the shipped file.
pub const DEFAULT_ALLOWLIST: &str = include_str!("../../config/network_allowlist.yml");

/// Client behaviour.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub connect_timeout: Duration,
    /// Longest one attempt may take (connect to the end of the body).
    pub total_timeout: Duration,
    /// Longest a whole call may take, every attempt and backoff included, when the caller
    /// gives no deadline of its own ([`Outbound::send_until`]).
    pub call_budget: Duration,
    /// Attempts for idempotent requests (1 = no retry).
    pub attempts: u32,
    pub backoff: Duration,
    /// Consecutive failures that open a host's circuit.
    pub failure_threshold: u32,
    /// How long an open circuit refuses calls before one trial call.
    pub open_for: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connect_timeout: Duration::from_secs(2),
            total_timeout: Duration::from_secs(10),
            call_budget: Duration::from_secs(10),
            attempts: 3,
            backoff: Duration::from_millis(100),
            failure_threshold: 5,
            open_for: Duration::from_secs(30),
        }
    }
}

/// Why an outbound call failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("{0} is not on the network allowlist (config/network_allowlist.yml)")]
    NotAllowed(String),
    #[error("{host} is failing; not calling it again for {retry_in_ms} ms (circuit open)")]
    CircuitOpen { host: String, retry_in_ms: u64 },
    #[error("not an http(s) URL with a host ({0})")]
    BadUrl(&'static str),
    /// No answer in time: `after_ms` is how long the whole call waited.
    #[error("{host}: timed out (no answer in {})", secs(*after_ms))]
    Timeout { host: String, after_ms: u64 },
    #[error("{host}: cannot connect: {message}")]
    Connect { host: String, message: String },
    /// `detail`: the `error` (or `message`) field of a JSON error body, as Prometheus and
    /// Loki send it, clipped; never the raw body.
    #[error("{host}: HTTP {status}{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Status {
        host: String,
        status: u16,
        detail: Option<String>,
    },
    #[error("{host}: {message}")]
    Other { host: String, message: String },
}

#[derive(Debug, Default, Clone, Copy)]
struct Breaker {
    /// Consecutive failed calls (not attempts).
    failures: u32,
    open_until: Option<Instant>,
    /// A trial call is under way after the cool-down; others still wait.
    trial: bool,
}

/// The shared client.
pub struct Outbound {
    client: reqwest::Client,
    allow: Allowlist,
    opts: Options,
    breakers: Mutex<HashMap<String, Breaker>>,
}

impl Outbound {
    /// Load `network_allowlist.yml` (or the default) and build the client.
    pub fn new(
        config_dir: Option<&std::path::Path>,
        opts: Options,
    ) -> Result<Outbound, ConfigError> {
        let allow: Allowlist =
            crate::config::policy::load(config_dir, "network_allowlist.yml", DEFAULT_ALLOWLIST)?;
        Self::with_allowlist(allow, opts)
    }

    /// A client with an explicit allowlist.
    pub fn with_allowlist(allow: Allowlist, opts: Options) -> Result<Outbound, ConfigError> {
        // No redirects (they could leave the allowlist) and no proxy from the environment
        // (it would route allowlisted calls elsewhere).
        init_tls();
        let client = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.total_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| ConfigError(format!("outbound HTTP client: {e}")))?;
        Ok(Outbound {
            client,
            allow,
            opts,
            breakers: Mutex::new(HashMap::new()),
        })
    }

    fn breaker(&self, host: &str) -> Breaker {
        self.breakers
            .lock()
            .map(|b| b.get(host).copied().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Let a call through, or refuse it while the circuit is open. After the cool-down exactly
    /// one call (the trial) goes through; returns whether this call is it.
    fn admit(&self, host: &str) -> Result<bool, OutboundError> {
        let Ok(mut m) = self.breakers.lock() else {
            return Ok(false);
        };
        let b = m.entry(host.to_string()).or_default();
        let Some(until) = b.open_until else {
            return Ok(false);
        };
        let now = Instant::now();
        if until > now || b.trial {
            return Err(OutboundError::CircuitOpen {
                host: host.to_string(),
                retry_in_ms: until.saturating_duration_since(now).as_millis() as u64,
            });
        }
        b.trial = true;
        Ok(true)
    }

    /// Record a call's outcome (once per call, whatever its attempts).
    fn record(&self, host: &str, ok: bool, trial: bool) {
        if let Ok(mut m) = self.breakers.lock() {
            let b = m.entry(host.to_string()).or_default();
            if ok {
                *b = Breaker::default();
            } else {
                b.failures += 1;
                b.trial = false;
                if trial || b.failures >= self.opts.failure_threshold {
                    b.open_until = Some(Instant::now() + self.opts.open_for);
                    tracing::warn!(host, failures = b.failures, "outbound_circuit_open");
                }
            }
        }
    }

    /// Whether a host's circuit is open now.
    pub fn is_open(&self, host: &str) -> bool {
        self.breaker(host)
            .open_until
            .is_some_and(|t| t > Instant::now())
    }

    /// Send a request within [`Options::call_budget`]. `GET`, `HEAD`, `PUT`, `DELETE` and
    /// `OPTIONS` are retried on connection errors, timeouts and 5xx; others are sent once. A
    /// 4xx is returned as is (not a failure of the host).
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<serde_json::Value>,
    ) -> Result<reqwest::Response, OutboundError> {
        self.send_until(method, url, body, None).await
    }

    /// [`Outbound::send`] that ends by `deadline` (instead of the default call budget): every
    /// attempt is cut to the time left, and no retry starts that the time left cannot hold.
    /// Reading the response's body is bounded by the same deadline. A call the deadline ends
    /// is a failure of the host (it counts for the breaker).
    pub async fn send_until(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<serde_json::Value>,
        deadline: Option<Instant>,
    ) -> Result<reqwest::Response, OutboundError> {
        let started = Instant::now();
        let deadline = deadline.unwrap_or(started + self.opts.call_budget);
        let parsed = reqwest::Url::parse(url)
            .map_err(|_| OutboundError::BadUrl("the URL is not echoed: it may hold credentials"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(OutboundError::BadUrl(
                "the URL is not echoed: it may hold credentials",
            ));
        }
        let host = parsed
            .host_str()
            .ok_or(OutboundError::BadUrl(
                "the URL is not echoed: it may hold credentials",
            ))?
            .to_string();
        if !self.allow.allows(&host) {
            return Err(OutboundError::NotAllowed(host));
        }
        if deadline <= started {
            // No time at all: the host is not called, and learns nothing from it.
            return Err(OutboundError::Timeout { host, after_ms: 0 });
        }
        let trial = self.admit(&host)?;
        // Records the outcome once; if this future is dropped first (a tool timeout, a graph
        // cancel, a client gone), its Drop frees the trial slot so the host is not refused
        // until restart.
        let guard = TrialGuard {
            out: self,
            host: &host,
            trial,
            recorded: false,
        };
        let idempotent = matches!(
            method,
            reqwest::Method::GET
                | reqwest::Method::HEAD
                | reqwest::Method::PUT
                | reqwest::Method::DELETE
                | reqwest::Method::OPTIONS
        );
        // A trial after the cool-down is a single attempt.
        let attempts = if idempotent && !trial {
            self.opts.attempts.max(1)
        } else {
            1
        };
        let timed_out = || OutboundError::Timeout {
            host: host.clone(),
            after_ms: started.elapsed().as_millis() as u64,
        };
        let mut last = None;
        for attempt in 1..=attempts {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let mut req = self
                .client
                .request(method.clone(), parsed.clone())
                .timeout(left.min(self.opts.total_timeout));
            if let Some(b) = &body {
                req = req.json(b);
            }
            let outcome = match req.send().await {
                Ok(r) if r.status().is_server_error() => {
                    let status = r.status().as_u16();
                    let detail = r.json::<serde_json::Value>().await.ok().and_then(|v| {
                        v.get("error")
                            .or_else(|| v.get("message"))
                            .and_then(|m| m.as_str())
                            .map(|m| crate::kernel::text::clip(m, 200))
                    });
                    Err(OutboundError::Status {
                        host: host.clone(),
                        status,
                        detail,
                    })
                }
                Ok(r) => Ok(r),
                Err(e) if e.is_timeout() => Err(timed_out()),
                Err(e) if e.is_connect() => Err(OutboundError::Connect {
                    host: host.clone(),
                    message: root_cause(&e),
                }),
                Err(e) => Err(OutboundError::Other {
                    host: host.clone(),
                    message: root_cause(&e),
                }),
            };
            match outcome {
                Ok(r) => {
                    guard.record(true);
                    return Ok(r);
                }
                Err(e) => {
                    tracing::debug!(host = %host, attempt, error = %e, "outbound_attempt_failed");
                    last = Some(e);
                    if attempt < attempts {
                        // Exponential backoff with jitter: base·2^(n-1) · [0.5, 1.5).
                        let base =
                            self.opts.backoff.as_millis() as u64 * (1 << (attempt - 1).min(6));
                        let jitter = u64::from_str_radix(&crate::kernel::clock::random_hex(2), 16)
                            .unwrap_or(0)
                            % base.max(1);
                        let wait = Duration::from_millis(base / 2 + jitter);
                        // A retry that could not start before the deadline is not waited for.
                        if Instant::now() + wait >= deadline {
                            break;
                        }
                        tokio::time::sleep(wait).await;
                    } else {
                        break;
                    }
                }
            }
        }
        guard.record(false);
        // No attempt at all: the deadline passed before the first one could start.
        Err(last.unwrap_or_else(timed_out))
    }
}

/// The outcome of one call, recorded exactly once: by [`TrialGuard::record`], or, when the
/// call is dropped before it has an outcome, by Drop, which only frees a trial slot it holds
/// (a cancelled call says nothing about the host).
struct TrialGuard<'a> {
    out: &'a Outbound,
    host: &'a str,
    trial: bool,
    recorded: bool,
}

impl TrialGuard<'_> {
    fn record(mut self, ok: bool) {
        self.recorded = true;
        self.out.record(self.host, ok, self.trial);
    }
}

impl Drop for TrialGuard<'_> {
    fn drop(&mut self) {
        if self.recorded || !self.trial {
            return;
        }
        if let Ok(mut m) = self.out.breakers.lock() {
            if let Some(b) = m.get_mut(self.host) {
                b.trial = false;
            }
        }
        tracing::debug!(host = self.host, "outbound_trial_cancelled");
    }
}

/// A duration for messages: `2 s`, `1.5 s`, `250 ms`.
pub fn secs(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms % 1000 < 50 || ms % 1000 >= 950 {
        format!("{} s", (ms + 500) / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn https_clients_build_on_the_ring_provider_and_speak_tls() {
        init_tls();
        let client = reqwest::Client::builder().build().expect("a TLS client");
        // A listener that answers the TLS hello with plain text: the failure must come
        // from the TLS layer (a handshake error), which needs a working provider.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            if let Ok((mut s, _)) = l.accept().await {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
            }
        });
        let e = client
            .get(format!("https://{addr}/"))
            .send()
            .await
            .unwrap_err();
        assert!(e.is_connect(), "{e:?}");
    }

    #[test]
    fn allowlist_matches_hosts_and_subdomains_only() {
        let a = Allowlist {
            hosts: vec!["localhost".into(), "*.noda.internal".into(), "::1".into()],
        };
        assert!(a.allows("localhost"));
        assert!(a.allows("LOCALHOST"));
        assert!(a.allows("router.noda.internal"));
        assert!(a.allows("[::1]"));
        assert!(!a.allows("noda.internal.evil.com"));
        assert!(!a.allows("evilnoda.internal"));
        assert!(!a.allows("example.com"));
    }
}
