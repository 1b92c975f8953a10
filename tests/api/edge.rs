//! The HTTP edge in-process: header and body read timeouts, the connection cap (idle
//! connections make room, busy ones get a 503), spoken to over raw TCP like a hostile client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sofiia::config::Edge;
use sofiia::kernel::clock::SystemClock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// One HTTP response as read off the wire.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Value,
}

impl Answer {
    /// A header's value (names compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// A raw TCP client.
pub struct Raw {
    pub s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Connect to `base` (`http://host:port`).
    pub async fn connect(base: &str) -> Raw {
        let addr = base.trim_start_matches("http://");
        Raw {
            s: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.s.write_all(bytes).await
    }

    /// The next response (1xx included) within `within`; `None` when the connection closed
    /// or the time ran out first.
    pub async fn answer(&mut self, within: Duration) -> Option<Answer> {
        tokio::time::timeout(within, self.read_answer())
            .await
            .ok()
            .flatten()
    }

    async fn fill(&mut self) -> Option<()> {
        let mut chunk = [0u8; 8192];
        match self.s.read(&mut chunk).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Some(())
            }
        }
    }

    async fn read_answer(&mut self) -> Option<Answer> {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
        self.buf.drain(..end + 4);
        let status = head.split(' ').nth(1)?.parse().ok()?;
        let mut answer = Answer {
            status,
            head,
            body: Value::Null,
        };
        let len: usize = answer
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while self.buf.len() < len {
            self.fill().await?;
        }
        let body: Vec<u8> = self.buf.drain(..len).collect();
        answer.body = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).to_string()));
        Some(answer)
    }

    /// Whether the server closes the connection within `within` (whatever it sends first).
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.fill()).await {
                Ok(None) => return true,
                Ok(Some(())) => self.buf.clear(),
                Err(_) => return false,
            }
        }
    }
}

pub const HALF_SENT_BODY: &[u8] = b"POST /api/incidents HTTP/1.1\r\nHost: 127.0.0.1\r\n\
content-type: application/json\r\ncontent-length: 100\r\n\r\n{\"ser";

/// A POST whose body is announced but not sent, with `Expect: 100-continue`: the server's
/// `100 Continue` proves the request reached a handler, which now waits for the body.
pub async fn busy_connection(base: &str) -> Raw {
    let mut c = Raw::connect(base).await;
    c.send(
        b"POST /api/incidents HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n\
expect: 100-continue\r\ncontent-length: 100\r\n\r\n",
    )
    .await
    .unwrap();
    let interim = c
        .answer(Duration::from_secs(10))
        .await
        .expect("100 Continue");
    assert_eq!(interim.status, 100, "{interim:?}");
    c.send(b"{\"ser").await.unwrap();
    c
}

async fn spawn_edge(edge: Edge) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    spawn_configured(dir, Arc::new(SystemClock), move |s| s.edge = edge).await
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

#[tokio::test]
async fn a_half_sent_body_gets_408_after_the_body_idle_timeout() {
    let app = spawn_edge(Edge {
        body_idle_timeout_ms: 300,
        ..Edge::default()
    })
    .await;
    // A JSON body (`ApiJson`) and an optional one (`OptionalJson`, the backup endpoint).
    let backup: &[u8] = b"POST /api/admin/backup HTTP/1.1\r\nHost: 127.0.0.1\r\n\
content-type: application/json\r\ncontent-length: 50\r\n\r\n{\"na";
    for request in [HALF_SENT_BODY, backup] {
        let mut c = Raw::connect(&app.base).await;
        let started = Instant::now();
        c.send(request).await.unwrap();
        let a = c
            .answer(Duration::from_secs(5))
            .await
            .expect("an answer once the body has stalled for the idle timeout");
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(a.status, 408, "{a:?}");
        assert_eq!(a.body["error"]["code"], "request_timeout", "{a:?}");
        let msg = a.body["error"]["message"].as_str().unwrap();
        assert!(msg.contains("SOFIIA_BODY_IDLE_TIMEOUT_MS"), "{msg}");
        assert_eq!(a.header("connection").as_deref(), Some("close"));
        assert!(a.header("x-request-id").is_some(), "{a:?}");
        assert!(c.closed_within(Duration::from_secs(2)).await);
    }
    // Nothing was created from the stalled request; the server serves on.
    assert_eq!(app.count_all().await, 0);
}

#[tokio::test]
async fn a_trickling_body_gets_408_after_the_total_body_timeout() {
    let app = spawn_edge(Edge {
        body_idle_timeout_ms: 5_000,
        body_timeout_ms: 1_000,
        ..Edge::default()
    })
    .await;
    let mut c = Raw::connect(&app.base).await;
    let started = Instant::now();
    c.send(
        b"POST /api/incidents HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n\
content-length: 100\r\n\r\n",
    )
    .await
    .unwrap();
    // One byte every 100 ms: never idle for long, but 100 bytes would take 10 s.
    let (mut rd, mut wr) = c.s.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if wr.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(6), async {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = rd.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    trickle.abort();
    assert!(read.is_ok(), "the connection was closed after the answer");
    let text = String::from_utf8_lossy(&got);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains("\"request_timeout\"") && text.contains("SOFIIA_BODY_TIMEOUT_MS"),
        "{text}"
    );
}

#[tokio::test]
async fn slow_headers_and_idle_keep_alives_are_cut_off_after_the_header_timeout() {
    let app = spawn_edge(Edge {
        header_timeout_ms: 300,
        ..Edge::default()
    })
    .await;
    let mut slow = Raw::connect(&app.base).await;
    slow.send(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
    let mut silent = Raw::connect(&app.base).await;
    let mut kept = Raw::connect(&app.base).await;
    kept.send(HEALTHZ).await.unwrap();
    assert_eq!(
        kept.answer(Duration::from_secs(5)).await.unwrap().status,
        200
    );
    for (what, c) in [
        ("partial headers", &mut slow),
        ("nothing sent", &mut silent),
        ("kept alive after a request", &mut kept),
    ] {
        assert!(
            c.closed_within(Duration::from_secs(3)).await,
            "{what}: still open 3 s after a 300 ms header timeout"
        );
    }
}

#[tokio::test]
async fn at_the_cap_the_longest_idle_connection_makes_room() {
    let app = spawn_edge(Edge {
        max_connections: 8,
        ..Edge::default()
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(Raw::connect(&app.base).await);
    }
    // The ninth is accepted after the eight (accept order), evicting the first.
    let mut c = Raw::connect(&app.base).await;
    c.send(HEALTHZ).await.unwrap();
    let a = c.answer(Duration::from_secs(5)).await.unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    assert!(
        idle[0].closed_within(Duration::from_secs(2)).await,
        "the connection idle the longest was closed to make room"
    );
    assert!(
        !idle[1].closed_within(Duration::from_millis(200)).await,
        "only one connection made room"
    );
    // A flood of idle connections cannot lock the health check out.
    let mut flood = Vec::new();
    for _ in 0..40 {
        flood.push(Raw::connect(&app.base).await);
    }
    let started = Instant::now();
    let mut c = Raw::connect(&app.base).await;
    c.send(HEALTHZ).await.unwrap();
    assert_eq!(c.answer(Duration::from_secs(5)).await.unwrap().status, 200);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn when_every_connection_is_busy_a_new_one_gets_a_503() {
    let app = spawn_edge(Edge {
        max_connections: 8,
        body_idle_timeout_ms: 60_000,
        ..Edge::default()
    })
    .await;
    let mut busy = Vec::new();
    for _ in 0..8 {
        busy.push(busy_connection(&app.base).await);
    }
    let mut c = Raw::connect(&app.base).await;
    c.send(HEALTHZ).await.unwrap();
    let a = c.answer(Duration::from_secs(5)).await.expect("a 503");
    assert_eq!(a.status, 503, "{a:?}");
    assert_eq!(a.body["error"]["code"], "too_many_connections", "{a:?}");
    assert!(a.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("SOFIIA_MAX_CONNECTIONS"));
    assert_eq!(a.header("retry-after").as_deref(), Some("1"));
    assert_eq!(a.header("connection").as_deref(), Some("close"));
    assert!(c.closed_within(Duration::from_secs(2)).await);
    // The busy ones are still being served.
    assert!(!busy[0].closed_within(Duration::from_millis(200)).await);

    // One busy client leaves: there is room again.
    drop(busy.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = Raw::connect(&app.base).await;
        c.send(HEALTHZ).await.unwrap();
        let a = c.answer(Duration::from_secs(5)).await.unwrap();
        if a.status == 200 {
            break;
        }
        assert_eq!(a.status, 503);
        assert!(Instant::now() < deadline, "no room 5 s after a client left");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_an_answer_is_dropped_after_the_write_timeout() {
    let app = spawn_edge(Edge {
        write_timeout_ms: 300,
        ..Edge::default()
    })
    .await;
    let id = app.create("gateway", "P2", "big download").await;
    let content = "x".repeat(1_900_000);
    let (s, v) = app
        .post(
            &format!("/api/incidents/{id}/artifacts"),
            serde_json::json!({"name": "big.txt", "content": content}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    // Ten downloads asked for at once (19 MB of answers), and nothing read.
    let mut raw = Raw::connect(&app.base).await;
    let one =
        format!("GET /api/incidents/{id}/artifacts/big.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    raw.send(one.repeat(10).as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The server gave up on the stalled writes and dropped the connection: what is left to
    // read ends well before the 19 MB (a reading client gets every byte: see below).
    assert!(
        raw.closed_within(Duration::from_secs(3)).await,
        "a client that stopped reading kept its connection"
    );
    let r = app
        .client
        .get(app.url(&format!("/api/incidents/{id}/artifacts/big.txt")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 1_900_000);
}
