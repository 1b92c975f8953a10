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
