//! `WS /ws/events`: the live event stream (`{type, ts, data}` per text message).
//! `?types=incident.created,incident.updated` limits it to those types.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::extract::ApiQuery;
use crate::app::AppState;

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

/// Upgrade and stream.
pub async fn events(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<EventsQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let types: Vec<String> = q
        .types
        .map(|t| {
            t.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    ws.on_upgrade(move |socket| stream(s, socket, types))
}

async fn stream(s: AppState, mut socket: WebSocket, types: Vec<String>) {
    let mut rx = s.bus.subscribe();
    let mut closing = s.closing.subscribe();
    let hello = serde_json::json!({"type": "hello", "ts": crate::kernel::clock::rfc3339(s.clock.now()),
        "data": {"service": "sofiia", "version": env!("CARGO_PKG_VERSION")}});
    if socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let wanted = |msg: &crate::kernel::events::Stamped| {
        types.is_empty() || types.iter().any(|x| x == msg.event.kind())
    };
    loop {
        tokio::select! {
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
                // Clients only listen; pings are answered by axum. A close or an error ends it.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = closing.changed() => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
        }
    }
}
