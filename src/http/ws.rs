//! `WS /ws/events`: the live event stream (`{type, ts, data}` per text message).
//! `?types=incident.created,incident.updated` limits it to those types. Every connection also
//! gets `hello` (with `heartbeat_ms`) first and a `heartbeat` every `SOFIIA_WS_PING_MS`,
//! whatever the filter: a client that hears nothing for a few heartbeats knows the server is
//! gone even while TCP stays open.
//!
//! The stream is server → client: a client message larger than [`MAX_CLIENT_MESSAGE`] closes
//! the socket with 1009 before it is buffered, and a client that keeps sending data messages
//! is closed with 1008.

use std::time::{Duration, Instant};

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::extract::ApiQuery;
use crate::app::AppState;

/// Largest message (and frame) a client may send. Clients only listen; pings, pongs and
/// close frames are far smaller.
pub const MAX_CLIENT_MESSAGE: usize = 8 * 1024;
/// Data messages a client may send in a burst before it is closed; one more is allowed
/// every [`ALLOWANCE_REFILL`].
const CLIENT_MESSAGE_ALLOWANCE: f64 = 8.0;
const ALLOWANCE_REFILL: Duration = Duration::from_secs(10);
/// Longest wait to deliver a close frame to a client that may not be reading.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// A client that answers nothing (no pong, no frame at all) for this many of the server's
/// pings (`SOFIIA_WS_PING_MS`) is gone: its socket is closed, so a dead peer does not hold a
/// connection slot.
const SILENT_PINGS: u32 = 3;

/// Query of `/ws/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Comma-separated event types to receive (default: all).
    types: Option<String>,
    /// The key, for browsers that cannot set headers on a WebSocket (checked by the
    /// key middleware before the upgrade).
    #[allow(dead_code)]
    api_key: Option<String>,
}

/// Upgrade and stream. A request that is not a WebSocket upgrade gets the JSON envelope.
pub async fn events(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<EventsQuery>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => {
            return crate::error::Error::bad_request(
                "websocket_required",
                format!("/ws/events is a WebSocket: {}", e.body_text()),
            )
            .into_response()
        }
    };
    let types: Vec<String> = q
        .types
        .map(|t| {
            t.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    ws.max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .read_buffer_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| stream(s, socket, types))
}

async fn stream(s: AppState, mut socket: WebSocket, types: Vec<String>) {
    let mut rx = s.bus.subscribe();
    let mut closing = s.closing.subscribe();
    let every = Duration::from_millis(s.settings.edge.ws_ping_ms);
    let hello = serde_json::json!({"type": "hello", "ts": crate::kernel::clock::rfc3339(s.clock.now()),
        "data": {"service": "sofiia", "version": env!("CARGO_PKG_VERSION"),
                 "heartbeat_ms": every.as_millis() as u64}});
    if socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let mut allowance = Allowance::new();
    let wanted = |msg: &crate::kernel::events::Stamped| {
        types.is_empty() || types.iter().any(|x| x == msg.event.kind())
    };
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut heard = Instant::now();
    loop {
        tokio::select! {
            _ = ping.tick() => {
                if heard.elapsed() >= every * SILENT_PINGS {
                    close(&mut socket, close_code::AWAY, "no answer to pings; closing").await;
                    return;
                }
                // A ping for the peer's TCP stack, a heartbeat for the page's script (browsers
                // hide pings): a page that hears neither knows the server is gone.
                let beat = serde_json::json!({"type": "heartbeat", "ts": crate::kernel::clock::rfc3339(s.clock.now())});
                if socket.send(Message::Ping(Default::default())).await.is_err()
                    || socket.send(Message::Text(beat.to_string().into())).await.is_err()
                {
                    return;
                }
            }
            ev = rx.recv() => match ev {
                Ok(msg) => {
                    if wanted(&msg) && socket.send(Message::Text(msg.to_frame().into())).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    let warn = serde_json::json!({"type": "error", "ts": crate::kernel::clock::rfc3339(s.clock.now()),
                        "data": {"message": format!("this connection fell behind and missed {n} events; reload to resync")}});
                    if socket.send(Message::Text(warn.to_string().into())).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                // Clients only listen (and answer pings); axum answers their pings. A close
                // ends it; data messages and pings count against a small allowance.
                Some(Ok(Message::Close(_))) | None => return,
                Some(Ok(Message::Text(_) | Message::Binary(_) | Message::Ping(_))) => {
                    heard = Instant::now();
                    if !allowance.take() {
                        let why = "this stream only sends; clients must not send messages";
                        close(&mut socket, close_code::POLICY, why).await;
                        return;
                    }
                }
                Some(Ok(_)) => heard = Instant::now(),
                Some(Err(e)) => {
                    if too_large(&e) {
                        let why = "client messages are limited to 8 KiB; this stream only sends";
                        close(&mut socket, close_code::SIZE, why).await;
                    }
                    return;
                }
            },
            _ = closing.changed() => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
        }
    }
}

/// Whether a receive failed because the client's message or frame was over the limit.
fn too_large(e: &axum::Error) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<tungstenite::Error>())
        .is_some_and(|t| matches!(t, tungstenite::Error::Capacity(_)))
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
}

/// A token bucket of data messages a client may send.
struct Allowance {
    tokens: f64,
    at: Instant,
}

impl Allowance {
    fn new() -> Self {
        Allowance {
            tokens: CLIENT_MESSAGE_ALLOWANCE,
            at: Instant::now(),
        }
    }

    /// Spend one message; false when the allowance is used up.
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let earned = now.duration_since(self.at).as_secs_f64() / ALLOWANCE_REFILL.as_secs_f64();
        self.tokens = (self.tokens + earned).min(CLIENT_MESSAGE_ALLOWANCE);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
