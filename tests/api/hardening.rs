//! The HTTP edge against a web page the operator visits, a rebound name, duplicate keys and
//! callers that write false facts (issue 12, defects 3, 4, 5, 7 and the one-rule items of 10).

use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::{json, Value};
use sofiia::gateway::auth::issue_key;
use sofiia::kernel::clock::SystemClock;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::*;

const EVIL: &str = "http://evil.example";

async fn send(r: reqwest::RequestBuilder) -> (u16, Value) {
    split(r.send().await.unwrap()).await
}

#[tokio::test]
async fn a_foreign_web_page_cannot_drive_an_open_dev_server() {
    let app = spawn_app().await;
    let id = app.create("gateway", "P1", "Keep me open").await;
    let c = &app.client;
    // The simple requests a page can send without a preflight: text/plain and form posts,
    // and bodiless posts.
    let attempts = [
        c.post(app.url(&format!("/api/incidents/{id}/close")))
            .header("content-type", "text/plain")
            .body("{}"),
        c.post(app.url(&format!("/api/incidents/{id}/close")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("message=x"),
        c.post(app.url("/api/admin/backup")),
        c.post(app.url("/api/runbooks/reindex")),
        c.post(app.url("/v1/runs/gr_0123456789/cancel")),
        c.patch(app.url(&format!("/api/incidents/{id}")))
            .json(&json!({"status": "mitigated"})),
        c.post(app.url("/v1/tools/execute")).json(&json!({
            "tool": "oncall_tool", "action": "incident_close", "params": {"incident_id": id}})),
        // Reads too: the answer must not reach the page.
        c.get(app.url("/api/incidents")),
        c.get(app.url("/api/audit")),
    ];
    for r in attempts {
        let got = send(r.header("origin", EVIL)).await;
        assert_error(&got, 403, "origin_not_allowed");
    }
    // `Origin: null` (a sandboxed frame or a file: page) is foreign too.
    let got = send(c.get(app.url("/api/incidents")).header("origin", "null")).await;
    assert_error(&got, 403, "origin_not_allowed");
    // A form post from a browser that leaves Origin out still says it is cross-site.
    let got = send(
        c.post(app.url("/api/admin/backup"))
            .header("sec-fetch-site", "cross-site"),
    )
    .await;
    assert_error(&got, 403, "origin_not_allowed");
    // Nothing was written.
    let (_, inc) = app.get(&format!("/api/incidents/{id}")).await;
    assert_eq!(inc["incident"]["status"], "open", "{inc}");
    assert!(!app.data_dir().join("backups").exists());
    // The console's own page, and loopback pages (a dev server on another port), may call.
    for origin in [app.base.clone(), "http://localhost:5173".into()] {
        let got = send(
            c.patch(app.url(&format!("/api/incidents/{id}")))
                .header("origin", &origin)
                .json(&json!({"severity": "P2"})),
        )
        .await;
        assert_eq!(got.0, 200, "{origin}: {}", got.1);
    }
}

#[tokio::test]
async fn cors_answers_only_allowed_origins() {
    let app = spawn_app().await;
    let preflight = |origin: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/incidents"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
    };
    let ok = preflight("http://localhost:3000").send().await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let evil = preflight(EVIL).send().await.unwrap();
    assert_eq!(evil.status(), 403);
    assert!(evil.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn configured_origins_and_hosts_are_allowed_and_others_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_configured(dir, Arc::new(SystemClock), |s| {
        s.cors_origins = vec!["https://ops.example.com".into()];
        s.allowed_hosts = vec!["sofiia.lan".into()];
    })
    .await;
    let c = &app.client;
    let got = send(
        c.get(app.url("/api/incidents"))
            .header("origin", "https://ops.example.com"),
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.1);
    // DNS rebinding: a name that resolves to 127.0.0.1 but is not ours.
    for host in [
        "evil.example",
        "evil.example:8002",
        "localhost.evil.example",
    ] {
        let got = send(c.get(app.url("/api/incidents")).header("host", host)).await;
        assert_error(&got, 403, "host_not_allowed");
    }
    for host in ["sofiia.lan:8002", "localhost:8002", "127.0.0.1"] {
        let got = send(c.get(app.url("/api/incidents")).header("host", host)).await;
        assert_eq!(got.0, 200, "{host}: {}", got.1);
    }
}

#[tokio::test]
async fn a_websocket_from_a_foreign_page_is_refused() {
    let app = spawn_app().await;
    let url = format!("{}/ws/events", app.base.replace("http://", "ws://"));
    let mut req = url.clone().into_client_request().unwrap();
    req.headers_mut().insert("origin", EVIL.parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("expected a 403, got {other:?}"),
    }
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", app.base.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let hello = ws.next().await.unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("hello"));
}

#[tokio::test]
async fn curl_style_json_without_a_content_type_is_accepted() {
    let app = spawn_app().await;
    let body = r#"{"service":"gateway","severity":"P2","title":"from curl -d"}"#;
    // curl -d sends application/x-www-form-urlencoded; some scripts send none.
    let (s, v) = app
        .post_raw("/api/incidents", "application/x-www-form-urlencoded", body)
        .await;
    assert_eq!(s, 201, "{v}");
    let r = app
        .client
        .post(app.url("/v1/tools/execute"))
        .body(r#"{"tool":"oncall_tool","action":"incident_list","params":{}}"#)
        .send()
        .await
        .unwrap();
    let (s, v) = split(r).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["items"][0]["title"], "from curl -d");
}

#[tokio::test]
async fn a_key_given_twice_is_refused_everywhere() {
    let app = spawn_app().await;
    let before = app.count_all().await;
    let cases = [
        (
            "/api/incidents",
            r#"{"service":"a","severity":"P2","title":"x","title":"y"}"#,
        ),
        (
            "/v1/tools/execute",
            r#"{"tool":"oncall_tool","action":"incident_create","params":{"service":"a","severity":"P2","title":"x","title":"y"}}"#,
        ),
        (
            "/v1/tools/oncall_tool",
            r#"{"action":"incident_create","service":"a","severity":"P2","title":"x","title":"y"}"#,
        ),
        (
            "/v1/tools/execute",
            r#"{"tool":"oncall_tool","tool":"oncall_tool","action":"incident_list"}"#,
        ),
    ];
    for (path, body) in cases {
        let got = app.post_raw(path, "application/json", body).await;
        assert_error(&got, 400, "bad_json");
        assert!(
            got.1["error"]["message"]
                .as_str()
                .unwrap()
                .contains("duplicate key"),
            "{path}: {}",
            got.1
        );
    }
    assert_eq!(app.count_all().await, before);
}

#[tokio::test]
async fn the_live_stream_takes_keys_with_plus_slash_and_equals() {
    let key = "AbC+/dEf=ghIJ+kl/MNop==";
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_configured(dir, Arc::new(SystemClock), |s| {
        s.console_api_key = Some(key.into());
    })
    .await;
    // As the console encodes it (URLSearchParams).
    let encoded = key
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let url = format!(
        "{}/ws/events?api_key={encoded}",
        app.base.replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let hello = ws.next().await.unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("hello"));
    // A wrong key is still refused.
    let url = format!(
        "{}/ws/events?api_key=AbC%2Bwrong",
        app.base.replace("http://", "ws://")
    );
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
}

const OPERATOR_KEY: &str = "edge-operator-key-0123456789";

#[tokio::test]
async fn agents_cannot_write_false_facts_into_the_audit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let helion = issue_key(&data, "helion", None).unwrap().0;
    let app = spawn_configured(dir, Arc::new(SystemClock), |s| {
        s.console_api_key = Some(OPERATOR_KEY.into());
    })
    .await;
    let call = |key: &str, body: Value| {
        app.client
            .post(app.url("/v1/tools/execute"))
            .bearer_auth(key)
            .json(&body)
    };
    // Run fields in metadata are the caller's claim, not the runner's: not recorded.
    let got = send(call(
        &helion,
        json!({"tool":"oncall_tool","action":"incident_list","params":{},
               "metadata":{"graph_run_id":"gr_someone_elses","node":"draft","attempt":7}}),
    ))
    .await;
    assert_eq!(got.0, 200, "{}", got.1);
    // A created_by of someone else is refused; the creator is the key's principal.
    let got = send(call(
        &helion,
        json!({"tool":"oncall_tool","action":"incident_create",
               "params":{"service":"gateway","severity":"P2","title":"t","created_by":"operator-alice"}}),
    ))
    .await;
    assert_error(&got, 422, "invalid_field");
    assert!(got.1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("created_by"));
    let got = send(call(
        &helion,
        json!({"tool":"oncall_tool","action":"incident_create",
               "params":{"service":"gateway","severity":"P2","title":"t"}}),
    ))
    .await;
    assert_eq!(got.1["result"]["created_by"], "helion");
    // A refused impersonation records no made-up agent name.
    let got = send(call(
        &helion,
        json!({"tool":"oncall_tool","action":"incident_list","params":{},
               "agent_id":"made-up-agent-x"}),
    ))
    .await;
    assert_error(&got, 403, "impersonation");
    let audit = send(
        app.client
            .get(app.url("/api/audit"))
            .bearer_auth(OPERATOR_KEY),
    )
    .await;
    let items = audit.1["items"].as_array().unwrap().clone();
    let text = serde_json::to_string(&items).unwrap();
    assert!(!text.contains("gr_someone_elses"), "{text}");
    assert!(!text.contains("made-up-agent-x"), "{text}");
    assert!(items.iter().all(|r| r["graph_run_id"].is_null()), "{text}");
    assert!(items
        .iter()
        .any(|r| r["decision"] == "deny" && r["agent_id"] == "<unknown>"));
}

#[tokio::test]
async fn setting_the_status_an_incident_already_has_is_a_conflict_every_way() {
    let app = spawn_app().await;
    let id = app.create("gateway", "P2", "Status rule").await;
    let path = format!("/api/incidents/{id}");
    assert_error(
        &app.patch(&path, json!({"status": "open"})).await,
        409,
        "conflict",
    );
    assert_error(
        &app.post(&format!("{path}/reopen"), json!({})).await,
        409,
        "conflict",
    );
    assert_eq!(app.patch(&path, json!({"status": "closed"})).await.0, 200);
    assert_error(
        &app.patch(&path, json!({"status": "closed"})).await,
        409,
        "conflict",
    );
    assert_error(
        &app.post(&format!("{path}/close"), json!({})).await,
        409,
        "conflict",
    );
    // No event was written by the refused ones: opened, then open → closed.
    let (_, ev) = app.get(&format!("{path}/events")).await;
    let changes = ev["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "status_change")
        .count();
    assert_eq!(changes, 2, "{ev}");
}

#[tokio::test]
async fn an_asset_path_that_is_not_utf8_gets_the_json_envelope() {
    let app = spawn_app().await;
    let (s, v) = app.get("/assets/v1/%FF%FE.js").await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["code"], "invalid_path", "{v}");
}

#[tokio::test]
async fn a_long_artifact_name_given_twice_keeps_backup_and_download_working() {
    let app = spawn_app().await;
    let id = app.create("gateway", "P3", "Long names").await;
    let name = format!("{}.md", "a".repeat(99));
    let mut stored = Vec::new();
    for _ in 0..3 {
        let (s, v) = app
            .post(
                &format!("/api/incidents/{id}/artifacts"),
                json!({"name": name, "content": "x"}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        stored.push(v["name"].as_str().unwrap().to_string());
    }
    assert_eq!(stored[0], name);
    assert_ne!(stored[1], stored[2]);
    for n in &stored {
        assert!(n.len() <= 103, "{n}");
        let (s, v) = app.get(&format!("/api/incidents/{id}/artifacts/{n}")).await;
        assert_eq!(s, 200, "{n}: {v}");
    }
    let (s, v) = app.post("/api/admin/backup", json!({})).await;
    assert_eq!(s, 201, "{v}");
}

#[tokio::test]
async fn a_foreign_pages_image_or_no_cors_fetch_cannot_read_or_grow_the_audit() {
    let app = spawn_app().await;
    let img = |path: &str| {
        app.client
            .get(app.url(path))
            .header("sec-fetch-site", "cross-site")
            .header("sec-fetch-mode", "no-cors")
            .header("sec-fetch-dest", "image")
    };
    for path in ["/api/incidents?q=zzz", "/api/audit", "/v1/runs"] {
        assert_error(&send(img(path)).await, 403, "origin_not_allowed");
    }
    let (_, audit) = app.get("/api/audit").await;
    assert_eq!(
        audit["items"].as_array().map(|a| a.len()),
        Some(0),
        "{audit}"
    );
    // A person following a link from another site is a navigation: it is answered.
    let nav = app
        .client
        .get(app.url("/api/health"))
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-mode", "navigate");
    assert_eq!(send(nav).await.0, 200);
}

/// Send raw bytes and return the status line's code and the body.
async fn raw(base: &str, request: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

#[tokio::test]
async fn the_request_target_names_the_host_and_host_is_given_once() {
    let app = spawn_app().await;
    let cases = [
        (
            "GET http://evil.example/api/incidents HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            403,
            "host_not_allowed",
        ),
        (
            "GET /api/incidents HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
            400,
            "bad_host",
        ),
        (
            "GET /api/incidents HTTP/1.1\r\nConnection: close\r\n\r\n",
            400,
            "bad_host",
        ),
        (
            "GET /api/incidents HTTP/1.1\r\nHost: [::1]evil.example\r\nConnection: close\r\n\r\n",
            403,
            "host_not_allowed",
        ),
    ];
    for (req, status, code) in cases {
        let (got, body) = raw(&app.base, req).await;
        assert_eq!(got, status, "{req:?}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        assert_eq!(v["error"]["code"], code, "{req:?}: {body}");
    }
    let (got, _) = raw(
        &app.base,
        "GET /api/incidents HTTP/1.1\r\nHost: localhost:8002\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(got, 200);
}

#[tokio::test]
async fn the_live_stream_without_an_upgrade_gets_the_json_envelope() {
    let app = spawn_app().await;
    let (s, v) = app.get("/ws/events").await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["code"], "websocket_required", "{v}");
}
