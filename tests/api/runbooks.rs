//! Runbook search over HTTP and through the gateway: the starter runbooks on a fresh data
//! dir, reading a runbook, path checks, live reindex, RBAC for agents.

use std::sync::Arc;

use serde_json::{json, Value};
use sofiia::gateway::auth::issue_key;
use sofiia::kernel::clock::SystemClock;

use crate::helpers::*;

const OPERATOR_KEY: &str = "operator-test-key-0123456789";

/// Wait until the background index build is done.
async fn ready(app: &TestApp, key: Option<&str>) {
    for _ in 0..200 {
        let mut r = app.client.get(app.url("/api/runbooks"));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        let v: Value = r.send().await.unwrap().json().await.unwrap();
        if v["ready"] == true {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the runbook index was not ready within 10 s");
}

#[tokio::test]
async fn a_fresh_data_dir_gets_the_starter_runbooks_searchable() {
    let app = spawn_app().await;
    ready(&app, None).await;
    let (s, list) = app.get("/api/runbooks").await;
    assert_eq!(s, 200);
    let paths: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert!(paths.len() >= 8, "{paths:?}");
    for p in [
        "backup-restore.md",
        "key-rotation.md",
        "disk-full.md",
        "prod-hardening.md",
    ] {
        assert!(paths.contains(&p), "{p} missing from {paths:?}");
    }

    let (s, v) = app
        .get("/api/runbooks/search?q=restore%20from%20backup")
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["items"][0]["path"], "backup-restore.md");
    assert!(v["items"][0]["snippet"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["hl"] == true));
    let (_, v) = app.get("/api/runbooks/search?q=keys&tag=no-such-tag").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 0);

    let (s, doc) = app.get("/api/runbooks/backup-restore.md").await;
    assert_eq!(s, 200, "{doc}");
    assert!(doc["markdown"].as_str().unwrap().contains("sofiia restore"));
    assert!(doc["sections"].as_array().unwrap().len() > 3);

    assert_error(&app.get("/api/runbooks/search").await, 400, "invalid_query");
    assert_error(
        &app.get("/api/runbooks/search?q=").await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.get("/api/runbooks/search?q=x&limit=51").await,
        422,
        "invalid_field",
    );
    assert_error(&app.get("/api/runbooks/nope.md").await, 404, "not_found");
    assert_error(
        &app.get("/api/runbooks/..%2F..%2Fetc%2Fpasswd.md").await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.get("/api/runbooks/sofiia.redb").await,
        422,
        "invalid_field",
    );
}

#[tokio::test]
async fn edited_files_are_searchable_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_configured(dir, Arc::new(SystemClock), |s| {
        s.runbooks_poll_ms = 100;
    })
    .await;
    ready(&app, None).await;
    let (_, v) = app.get("/api/runbooks/search?q=quokka%20").await;
    assert_eq!(v["total"], 0);
    std::fs::write(
        app.data_dir().join("runbooks").join("zoo.md"),
        "---\ntags: [zoo]\n---\n# Zoo\n\n## Quokka escaped\nCount the quokkas.\n",
    )
    .unwrap();
    let mut found = Value::Null;
    for _ in 0..100 {
        let (_, v) = app.get("/api/runbooks/search?q=quokka%20").await;
        if v["total"] == 1 {
            found = v;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        found["items"][0]["path"], "zoo.md",
        "picked up by the poller"
    );
    assert_eq!(found["items"][0]["anchor"], "quokka-escaped");
    std::fs::remove_file(app.data_dir().join("runbooks").join("zoo.md")).unwrap();
    // An explicit reindex applies it at once.
    let (s, r) = app.post("/api/runbooks/reindex", json!({})).await;
    assert_eq!(s, 200, "{r}");
    let (_, v) = app.get("/api/runbooks/search?q=quokka%20").await;
    assert_eq!(v["total"], 0);
    let (s, r) = app
        .post("/api/runbooks/reindex", json!({"full": true}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(r["rebuilt"], true);
    assert_error(
        &app.post("/api/runbooks/reindex", json!({"fast": true}))
            .await,
        422,
        "invalid_body",
    );
}

#[tokio::test]
async fn agents_search_through_the_gateway_by_role() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let monitor = issue_key(&data, "monitor", None).unwrap().0;
    let stranger = issue_key(&data, "stranger", None).unwrap().0;
    // A matrix where unknown agents may not read runbooks.
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("rbac_tools_matrix.yml"),
        "agents: {monitor: agent_monitor}\ndefault_role: agent_default\nroles:\n  \
         agent_monitor: {runbook_tool: [search, get]}\n  agent_default: {oncall_tool: [incident_list]}\n",
    )
    .unwrap();
    let app = spawn_configured(dir, Arc::new(SystemClock), move |s| {
        s.console_api_key = Some(OPERATOR_KEY.into());
        s.config_dir = Some(config);
    })
    .await;
    ready(&app, Some(OPERATOR_KEY)).await;
    let post = |key: String, body: Value| {
        let req = app
            .client
            .post(app.url("/v1/tools/runbook_tool"))
            .bearer_auth(key)
            .json(&body);
        async move { split(req.send().await.unwrap()).await }
    };
    let (s, v) = post(
        monitor.clone(),
        json!({"action": "search", "q": "disk full", "limit": 3}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["items"][0]["path"], "disk-full.md");
    let (s, v) = post(
        monitor.clone(),
        json!({"action": "get", "path": "disk-full.md"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["path"], "disk-full.md");
    assert_error(
        &post(monitor.clone(), json!({"action": "delete", "path": "x.md"})).await,
        404,
        "not_found",
    );
    assert_error(
        &post(stranger, json!({"action": "search", "q": "disk"})).await,
        403,
        "forbidden",
    );
    assert_error(
        &post(
            monitor,
            json!({"action": "search", "q": "disk", "bogus": 1}),
        )
        .await,
        422,
        "invalid_params",
    );
    // The operator's REST search is audited as a runbook_tool call.
    let r = app
        .client
        .get(app.url("/api/audit?tool=runbook_tool"))
        .bearer_auth(OPERATOR_KEY)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(v["items"].as_array().unwrap().len() >= 3, "{v}");
}
