//! `WS /ws/events`: live incident events, filters, auth, shutdown.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sofiia::kernel::clock::SystemClock;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, query: &str) -> Ws {
    let url = format!("{}/ws/events{query}", app.base.replace("http://", "ws://"));
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws
}

/// The next JSON text message (skipping pings and heartbeats), within two seconds.
async fn next(ws: &mut Ws) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(2), ws.next())
            .await
            .ok()??
            .ok()?;
        match msg {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).ok()?;
                if v["type"] != "heartbeat" {
                    return Some(v);
                }
            }
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

#[tokio::test]
async fn changes_are_broadcast_live_to_every_client() {
    let app = spawn_app().await;
    let mut all = connect(&app, "").await;
    let mut only_created = connect(&app, "?types=incident.created").await;
    assert_eq!(next(&mut all).await.unwrap()["type"], "hello");
    assert_eq!(next(&mut only_created).await.unwrap()["type"], "hello");

    let id = app.create("gateway", "P1", "live").await;
    let ev = next(&mut all).await.unwrap();
    assert_eq!(ev["type"], "incident.created");
    assert_eq!(ev["data"]["incident"]["id"], id);
    assert!(ev["ts"].is_string());
    app.patch(
        &format!("/api/incidents/{id}"),
        json!({"status":"acknowledged"}),
    )
    .await;
    let ev = next(&mut all).await.unwrap();
    assert_eq!(ev["type"], "incident.updated");
    assert_eq!(ev["data"]["incident"]["status"], "acknowledged");
    app.post(
        &format!("/api/incidents/{id}/events"),
        json!({"type":"note","message":"hi"}),
    )
    .await;
    assert_eq!(
        next(&mut all).await.unwrap()["data"]["event"]["message"],
        "hi"
    );
    app.post(
        &format!("/api/incidents/{id}/artifacts"),
        json!({"name":"a.md","content":"# a"}),
    )
    .await;
    assert_eq!(
        next(&mut all).await.unwrap()["data"]["artifact"]["name"],
        "a.md"
    );

    // The filtered client saw only the creation.
    let ev = next(&mut only_created).await.unwrap();
    assert_eq!(ev["type"], "incident.created");
    let id2 = app.create("gateway", "P3", "second").await;
    let ev = next(&mut only_created).await.unwrap();
    assert_eq!(
        ev["data"]["incident"]["id"], id2,
        "nothing else came in between"
    );
}

#[tokio::test]
async fn sockets_need_the_key_when_keys_are_set_and_close_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_configured(dir, Arc::new(SystemClock), |s| {
        s.console_api_key = Some("ws-operator-key-123456".into());
    })
    .await;
    let url = format!("{}/ws/events", app.base.replace("http://", "ws://"));
    let refused = tokio_tungstenite::connect_async(url.clone()).await;
    assert!(refused.is_err(), "no key, no socket");
    let mut ws = connect(&app, "?api_key=ws-operator-key-123456").await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "hello");
    // A graceful stop closes open sockets instead of leaving them hanging.
    let stopping = tokio::spawn(app.stop());
    assert!(next(&mut ws).await.is_none(), "socket closed by the server");
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_runs_progress_goes_out_live_and_every_stored_event_is_sent_once() {
    let app = spawn_app().await;
    let mut ws = connect(&app, "?types=ops.run,ops.run.event").await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "hello");
    let (s, v) = app
        .post(
            "/v1/graphs/incident_triage/runs",
            json!({"input": {"service": "router", "symptom": "live"}}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let id = v["run_id"].as_str().unwrap().to_string();
    let mut statuses = Vec::new();
    let mut seqs = Vec::new();
    while let Some(m) = next(&mut ws).await {
        let d = &m["data"];
        if d["run_id"] != id.as_str() {
            continue;
        }
        match m["type"].as_str().unwrap() {
            "ops.run" => statuses.push(d["status"].as_str().unwrap().to_string()),
            "ops.run.event" => {
                seqs.push(d["event"]["seq"].as_u64().unwrap());
                if d["event"]["type"] == "run_succeeded" {
                    break;
                }
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(statuses.first().map(String::as_str), Some("queued"));
    assert!(statuses.contains(&"running".to_string()), "{statuses:?}");
    // Live frames and the store agree: every stored event after the first was sent, once, in
    // order (the first, run_queued, is written before anyone could subscribe to the run).
    let (_, stored) = app.get(&format!("/v1/runs/{id}/events?after=0")).await;
    let stored: Vec<u64> = stored["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        stored[1..].to_vec(),
        "live {seqs:?} stored {stored:?}"
    );
}

/// The close frame the server ends with (skipping everything before it), within five seconds.
async fn close_code(ws: &mut Ws) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await.ok()?? {
            Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn a_large_client_message_closes_the_socket_with_1009() {
    let app = spawn_app().await;
    let mut ws = connect(&app, "").await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "hello");
    // A small message is tolerated (within the allowance) and the stream goes on.
    ws.send(Message::Text("hi".into())).await.unwrap();
    let id = app.create("gateway", "P2", "still streaming").await;
    assert_eq!(next(&mut ws).await.unwrap()["data"]["incident"]["id"], id);
    // 64 KiB is past the 8 KiB limit: closed with 1009 (message too big).
    let _ = ws.send(Message::Binary(vec![7u8; 64 * 1024].into())).await;
    assert_eq!(close_code(&mut ws).await, Some(1009));
}

#[tokio::test]
async fn a_client_that_keeps_sending_is_closed_with_1008() {
    let app = spawn_app().await;
    let mut ws = connect(&app, "").await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "hello");
    for i in 0..20 {
        if ws
            .send(Message::Text(format!("chatter {i}").into()))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(close_code(&mut ws).await, Some(1008));
}

#[tokio::test]
async fn a_ping_flood_is_closed_with_1008() {
    let app = spawn_app().await;
    let mut ws = connect(&app, "").await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "hello");
    for _ in 0..50 {
        if ws.send(Message::Ping(vec![1u8; 125].into())).await.is_err() {
            break;
        }
    }
    assert_eq!(close_code(&mut ws).await, Some(1008));
}

#[tokio::test]
async fn a_client_that_answers_no_pings_is_closed_and_one_that_answers_stays() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_configured(dir, Arc::new(SystemClock), |s| {
        s.edge.ws_ping_ms = 200;
    })
    .await;
    // Never polled for 2 s: tungstenite answers pings only while the stream is read, so to
    // the server this peer is silent.
    let mut silent = connect(&app, "").await;
    // Read all along: pings are answered, and heartbeats arrive even through a type filter.
    let mut alive = connect(&app, "?types=incident.created").await;
    let reader = tokio::spawn(async move {
        let until = tokio::time::Instant::now() + Duration::from_secs(2);
        let (mut pings, mut beats, mut hello) = (0, 0, Value::Null);
        while let Ok(Some(Ok(m))) = tokio::time::timeout_at(until, alive.next()).await {
            match m {
                Message::Ping(_) => pings += 1,
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    match v["type"].as_str() {
                        Some("heartbeat") => beats += 1,
                        Some("hello") => hello = v,
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        (alive, pings, beats, hello)
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (mut alive, pings, beats, hello) = reader.await.unwrap();
    assert!(pings >= 3, "pinged {pings} times");
    assert!(beats >= 3, "{beats} heartbeats");
    assert_eq!(hello["data"]["heartbeat_ms"], 200, "{hello}");
    // The silent one was closed as gone (1001) after three unanswered pings: reading it now
    // finds the close frame, or the socket already gone — not a socket still open.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let ended = loop {
        match tokio::time::timeout_at(deadline, silent.next()).await {
            Ok(Some(Ok(Message::Close(f)))) => break f.map(|f| u16::from(f.code)).or(Some(0)),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) => break Some(0),
            Err(_) => break None,
        }
    };
    assert!(
        matches!(ended, Some(1001) | Some(0)),
        "silent socket still open"
    );
    // The one that answered still gets events.
    let id = app.create("gateway", "P2", "after pings").await;
    loop {
        let v = next(&mut alive).await.expect("still open");
        if v["type"] == "incident.created" {
            assert_eq!(v["data"]["incident"]["id"], id);
            break;
        }
    }
}
