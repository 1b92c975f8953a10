//! Limits of the HTTP edge: how many connections, how long a client may take to send its
//! headers and body, and how long shutdown waits. `http::edge` enforces them.

/// Most connections served at once when nothing else is configured (before the open-file
/// limit lowers it).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Limits of the HTTP edge. Every value has an environment variable and a `sofiia.yml` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// `SOFIIA_MAX_CONNECTIONS`: open connections (WebSockets included) served at once. At the
    /// cap the connection idle the longest is closed to make room; when every one is busy a
    /// new connection gets a 503 and is closed (default 1024, lowered to half the process's
    /// open-file limit: 128 under macOS's default `ulimit -n 256`).
    pub max_connections: usize,
    /// `SOFIIA_HEADER_TIMEOUT_MS`: longest wait for a request's headers, also between
    /// requests on a kept-alive connection (default 10000).
    pub header_timeout_ms: u64,
    /// `SOFIIA_BODY_IDLE_TIMEOUT_MS`: longest pause while a request body arrives (default 10000).
    pub body_idle_timeout_ms: u64,
    /// `SOFIIA_BODY_TIMEOUT_MS`: longest time a whole request body may take (default 60000).
    pub body_timeout_ms: u64,
    /// `SOFIIA_WRITE_TIMEOUT_MS`: longest a client may leave an answer (or the live stream)
    /// unread before its connection is dropped (default 30000).
    pub write_timeout_ms: u64,
    /// `SOFIIA_WS_PING_MS`: how often the live stream pings a client; one that answers
    /// nothing for three of these is closed; each ping comes with a `heartbeat` message
    /// (default 5000).
    pub ws_ping_ms: u64,
    /// `SOFIIA_SHUTDOWN_GRACE_MS`: on shutdown, how long in-flight requests may finish before
    /// their connections are dropped (default 10000).
    pub shutdown_grace_ms: u64,
}

impl Default for Edge {
    fn default() -> Self {
        Edge {
            max_connections: default_max_connections(open_file_limit()),
            header_timeout_ms: 10_000,
            body_idle_timeout_ms: 10_000,
            body_timeout_ms: 60_000,
            write_timeout_ms: 30_000,
            ws_ping_ms: 5_000,
            shutdown_grace_ms: 10_000,
        }
    }
}

/// The default connection cap for an open-file limit: 1024, or half the limit when that is
/// lower (the other half is for the store, the indexes, runbook files and outbound calls).
pub fn default_max_connections(open_files: Option<u64>) -> usize {
    match open_files {
        Some(n) => usize::try_from(n / 2)
            .unwrap_or(usize::MAX)
            .clamp(8, DEFAULT_MAX_CONNECTIONS),
        None => DEFAULT_MAX_CONNECTIONS,
    }
}

/// The process's soft limit on open files (`ulimit -n`), when the platform has one.
#[cfg(unix)]
pub fn open_file_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass, which lives for the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    #[allow(clippy::useless_conversion)] // rlim_t is u64 on Linux and macOS, not everywhere
    u64::try_from(lim.rlim_cur).ok()
}

/// The process's soft limit on open files (none known on this platform).
#[cfg(not(unix))]
pub fn open_file_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_is_half_the_open_file_limit_up_to_1024() {
        assert_eq!(default_max_connections(Some(256)), 128);
        assert_eq!(default_max_connections(Some(1 << 20)), 1024);
        assert_eq!(default_max_connections(Some(4)), 8);
        assert_eq!(default_max_connections(None), 1024);
        if let Some(n) = open_file_limit() {
            assert!(Edge::default().max_connections as u64 <= n.max(16));
        }
    }
}
