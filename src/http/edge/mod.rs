//! The HTTP edge: accepts connections and serves the router on them within the limits of
//! [`crate::config::Edge`] — a connection cap (at the cap the connection idle the longest
//! makes room; when all are busy a new one gets a 503), header and body read timeouts, and a
//! shutdown that waits a grace period for in-flight requests, then drops what is left.

mod body;
mod conns;
mod trim;

pub use body::BodyTimeout;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::config::Edge;
use body::{BodyLimits, ConnService};
use conns::Registry;

/// Pause after an accept error that is not the client's (out of file descriptors, memory):
/// accepting again at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Longest a refused client may take to receive its 503.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);
/// Refusals being written at once; past it a connection is closed without an answer.
const MAX_REFUSING: usize = 64;
/// Quiet time between two log lines about refused connections.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);
/// How long a cap lowered after running out of descriptors stays lowered.
const LOWERED_CAP_FOR: Duration = Duration::from_secs(60);

/// The connection cap in force: the configured one, or a lower one learnt when accepting
/// failed (out of file descriptors), kept with some descriptors of headroom for a while.
struct Cap {
    configured: usize,
    current: usize,
    lowered_at: Option<tokio::time::Instant>,
}

impl Cap {
    /// Accepting failed with `open` connections: serve fewer, keeping an eighth (at least 8)
    /// of them free for new connections, which then make room by closing idle ones. Never
    /// below 8: when something else holds the descriptors, refusing everyone would not help.
    fn lower(&mut self, open: usize) -> usize {
        let headroom = (open / 8).max(8);
        self.current = self.current.min(open.saturating_sub(headroom).max(8));
        self.lowered_at = Some(tokio::time::Instant::now());
        self.current
    }

    fn get(&mut self) -> usize {
        if self
            .lowered_at
            .is_some_and(|t| t.elapsed() >= LOWERED_CAP_FOR)
        {
            self.current = self.configured;
            self.lowered_at = None;
        }
        self.current
    }
}

/// Serve `router` on `listener` until `shutdown` resolves; then stop accepting, let in-flight
/// requests finish for up to the grace period, and drop the connections still open.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    edge: &Edge,
    shutdown: impl Future<Output = ()> + Send,
) {
    let cap = edge.max_connections.max(1);
    if let Some(files) = crate::config::edge::open_file_limit() {
        if cap as u64 > files / 2 {
            tracing::warn!(
                max_connections = cap,
                open_file_limit = files,
                "max_connections is above half the open-file limit (ulimit -n): accepts may fail"
            );
        }
    }
    let limits = BodyLimits {
        idle: Duration::from_millis(edge.body_idle_timeout_ms),
        total: Duration::from_millis(edge.body_timeout_ms),
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(edge.header_timeout_ms))
        .keep_alive(true);
    let builder = Arc::new(builder);
    let registry = Registry::new(Duration::from_millis(edge.write_timeout_ms));
    let trimmer = Arc::new(trim::Trimmer::default());
    let (drain_tx, drain_rx) = tokio::sync::watch::channel(false);
    let refusal: Arc<[u8]> = refusal_response().into();
    let mut cap = Cap {
        configured: cap,
        current: cap,
        lowered_at: None,
    };
    let refusing = Arc::new(AtomicUsize::new(0));
    let mut accept_errors = 0u64;
    let mut refused = 0u64;
    let mut refusal_logged: Option<tokio::time::Instant> = None;
    tokio::pin!(shutdown);

    loop {
        let accepted = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            r = listener.accept() => r,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Short of descriptors or memory: serve fewer connections for a while, and
                // the ones idle the longest give theirs up now.
                let open = registry.len();
                let lowered = cap.lower(open);
                let mut closed = 0;
                while registry.len() > lowered && registry.evict_idle() {
                    closed += 1;
                }
                if accept_errors == 0 {
                    tracing::warn!(error = %e, open, max_connections = lowered, idle_closed = closed, "accept_failed");
                }
                accept_errors += 1;
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        if accept_errors > 0 {
            tracing::info!(errors = accept_errors, "accept_recovered");
            accept_errors = 0;
        }
        if registry.len() >= cap.get() && !registry.evict_idle() {
            refused += 1;
            let quiet = refusal_logged.is_none_or(|t| t.elapsed() >= REFUSAL_LOG_EVERY);
            if quiet {
                tracing::warn!(
                    max_connections = cap.current,
                    refused,
                    "connections_refused: every connection is busy"
                );
                refused = 0;
                refusal_logged = Some(tokio::time::Instant::now());
            }
            if refusing.fetch_add(1, Ordering::AcqRel) < MAX_REFUSING {
                let (refusal, refusing) = (refusal.clone(), refusing.clone());
                tokio::spawn(async move {
                    refuse(stream, &refusal).await;
                    refusing.fetch_sub(1, Ordering::AcqRel);
                });
            } else {
                refusing.fetch_sub(1, Ordering::AcqRel);
            }
            continue;
        }
        let _ = stream.set_nodelay(true);
        let (conn, io) = registry.open(stream);
        let service = ConnService::new(router.clone(), conn.clone(), limits, trimmer.clone());
        let builder = builder.clone();
        let mut drain = drain_rx.clone();
        tokio::spawn(async move {
            let served = builder
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            tokio::pin!(served);
            let mut draining = false;
            loop {
                tokio::select! {
                    res = served.as_mut() => {
                        if let Err(e) = res {
                            tracing::debug!(error = %e, "connection_ended");
                        }
                        break;
                    }
                    _ = drain.wait_for(|d| *d), if !draining => {
                        draining = true;
                        served.as_mut().graceful_shutdown();
                    }
                    _ = conn.killed() => break,
                }
            }
        });
    }

    // New connections are refused from here on.
    drop(listener);
    let started = tokio::time::Instant::now();
    let open = registry.len();
    let _ = drain_tx.send(true);
    let idle = registry.kill_idle();
    let grace = Duration::from_millis(edge.shutdown_grace_ms);
    let dropped = if registry.wait_empty(started + grace).await {
        0
    } else {
        registry.kill_all()
    };
    tracing::info!(
        open,
        idle_closed = idle,
        dropped_after_grace = dropped,
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "http_drained"
    );
}

/// Errors of one connection attempt (the client gave up): accept the next one at once.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset | Interrupted
    )
}

/// The whole answer to a connection past the cap.
fn refusal_response() -> Vec<u8> {
    let body = serde_json::json!({"error": {
        "code": "too_many_connections",
        "message": "sofiia is serving as many connections as it may (SOFIIA_MAX_CONNECTIONS, open-file limit) and all are busy; retry shortly",
    }})
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Send the 503 and close; a client that does not read cannot hold the socket past
/// [`REFUSAL_TIMEOUT`]. What it sent is read and dropped before closing, so the close does
/// not reset the connection before the client has read the answer.
async fn refuse(mut stream: TcpStream, answer: &[u8]) {
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        stream.write_all(answer).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut read = 0usize;
        while read < 64 * 1024 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => read += n,
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_lowered_after_accept_failures_keeps_headroom_and_a_floor() {
        let mut cap = Cap {
            configured: 1000,
            current: 1000,
            lowered_at: None,
        };
        assert_eq!(cap.get(), 1000);
        assert_eq!(cap.lower(240), 210, "an eighth of the open ones kept free");
        assert_eq!(cap.get(), 210);
        assert_eq!(cap.lower(230), 202, "only ever lowered further");
        assert_eq!(cap.lower(12), 8, "never below 8");
        let refusal = String::from_utf8(refusal_response()).unwrap();
        let (head, body) = refusal.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 ") && head.contains("retry-after: 1"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "too_many_connections");
    }
}
