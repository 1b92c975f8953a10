use crate::helpers::*;

#[tokio::test]
async fn health_endpoints_and_the_console_page() {
    let app = spawn_app().await;
    let (s, h) = app.get("/healthz").await;
    assert_eq!(s, 200);
    assert_eq!(h["status"], "ok");
    assert_eq!(h["state_backend"], "redb");
    assert_eq!(
        h["graphs"],
        serde_json::json!(["incident_triage", "postmortem_draft"])
    );
    assert_eq!(h["build_id"], "test");
    let (s, h) = app.get("/api/health").await;
    assert_eq!(s, 200);
    assert_eq!(h["service"], "sofiia-console");
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(h["env"], "dev");

    let r = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(r.headers()["cache-control"], "no-cache");
    assert!(r.text().await.unwrap().contains("<title>sofiia</title>"));
    assert_error(&app.get("/nope.js").await, 404, "not_found");

    app.create("gateway", "P2", "pending in the log").await;
    // The running server announces itself for the CLI, and takes the announcement down on stop.
    let marker = app.data_dir().join("server.json");
    let info: serde_json::Value = serde_json::from_slice(&std::fs::read(&marker).unwrap()).unwrap();
    assert_eq!(info["url"], app.base);
    let dir = app.stop().await;
    assert!(!dir.path().join("data").join("server.json").exists());
    // A clean stop folds the log into the redb file: no record is left to replay, so the
    // folder of a stopped sofiia is a complete copy.
    let (_, pending) = sofiia::store::wal::Wal::open(
        &dir.path().join("data").join("sofiia.wal"),
        sofiia::app::schema().version(),
    )
    .unwrap();
    assert!(pending.is_empty());
}

#[tokio::test]
async fn an_internal_failure_answers_internal_error_with_the_request_id_only() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/api/health")).send().await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(id.starts_with("req_") && id.len() > 8, "{id}");

    // A file where the incident's artifact folder must go: the write fails in the file system.
    let inc = app.create("router", "P2", "disk trouble").await;
    std::fs::write(app.data_dir().join("incidents").join(&inc), b"in the way").unwrap();
    let r = app
        .client
        .post(app.url(&format!("/api/incidents/{inc}/artifacts")))
        .json(&serde_json::json!({"name": "notes.md", "content": "# x"}))
        .send()
        .await
        .unwrap();
    let header = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let (status, body) = split(r).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["code"], "io_error");
    assert_eq!(body["error"]["message"], "internal error");
    assert_eq!(body["error"]["request_id"], header.as_str());
    assert!(!body.to_string().contains("incidents/"), "{body}");
    // nothing was recorded
    let (_, d) = app.get(&format!("/api/incidents/{inc}")).await;
    assert_eq!(d["artifacts"], serde_json::json!([]), "{d}");
}
