use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use sofiia::gateway::auth::issue_key;
use sofiia::kernel::clock::SystemClock;

use crate::helpers::*;

const OPERATOR_KEY: &str = "operator-test-key-0123456789";

struct Keyed {
    app: TestApp,
    keys: std::collections::HashMap<&'static str, String>,
}

/// A server with an operator key and one issued key per seed agent (plus an unknown agent).
async fn keyed_app(config: Option<&Path>) -> Keyed {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut keys = std::collections::HashMap::new();
    for agent in ["sofiia", "helion", "monitor", "aistalk", "stranger"] {
        keys.insert(agent, issue_key(&data, agent, None).unwrap().0);
    }
    let config = config.map(Path::to_path_buf);
    let app = spawn_configured(dir, Arc::new(SystemClock), move |s| {
        s.console_api_key = Some(OPERATOR_KEY.into());
        s.config_dir = config;
    })
    .await;
    Keyed { app, keys }
}

async fn call(app: &TestApp, key: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = app.client.post(app.url("/v1/tools/execute")).json(&body);
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    split(r.send().await.unwrap()).await
}

#[tokio::test]
async fn every_seed_role_gets_exactly_its_access() {
    let k = keyed_app(None).await;
    let (s, created) = call(
        &k.app,
        Some(OPERATOR_KEY),
        json!({"tool":"oncall_tool","action":"incident_create",
        "params":{"service":"gateway","severity":"P1","title":"Gateway 5xx"}}),
    )
    .await;
    assert_eq!(s, 200, "{created}");
    let id = created["result"]["id"].as_str().unwrap().to_string();
    for (agent, can_write) in [
        ("sofiia", true),
        ("helion", true),
        ("monitor", false),
        ("aistalk", false),
        ("stranger", false),
    ] {
        let key = k.keys[agent].as_str();
        for (action, params, write) in [
            ("incident_get", json!({"incident_id": id}), false),
            ("incident_list", json!({"status": "open"}), false),
            (
                "incident_followups_summary",
                json!({"service": "gateway"}),
                false,
            ),
            (
                "incident_create",
                json!({"service":"gateway","severity":"P3","title": format!("by {agent}")}),
                true,
            ),
            (
                "incident_append_event",
                json!({"incident_id": id, "type":"note","message":"hi"}),
                true,
            ),
            (
                "incident_update",
                json!({"incident_id": id, "owner": agent}),
                true,
            ),
        ] {
            let (s, v) = call(
                &k.app,
                Some(key),
                json!({"tool":"oncall_tool","action":action,"params":params,"agent_id":agent}),
            )
            .await;
            if !write || can_write {
                assert_eq!(s, 200, "{agent} {action}: {v}");
            } else {
                assert_error(&(s, v), 403, "forbidden");
            }
        }
    }
    // The audit shows both decisions, attributed to the key's agent.
    let r = k
        .app
        .client
        .get(k.app.url("/api/audit?decision=deny&agent_id=monitor"))
        .bearer_auth(OPERATOR_KEY)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 3, "{v}");
    assert!(v["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["principal"] == "agent:monitor" && r["role"] == "agent_monitor"));
}

#[tokio::test]
async fn keys_authenticate_and_never_impersonate() {
    let k = keyed_app(None).await;
    let body = json!({"tool":"oncall_tool","action":"incident_list","params":{}});
    assert_error(&call(&k.app, None, body.clone()).await, 401, "unauthorized");
    assert_error(
        &call(&k.app, Some("wrong"), body.clone()).await,
        401,
        "unauthorized",
    );
    // X-API-Key works too.
    let r = k
        .app
        .client
        .post(k.app.url("/v1/tools/execute"))
        .header("X-API-Key", &k.keys["helion"])
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A key bound to helion cannot act as sofiia.
    let imp =
        json!({"tool":"oncall_tool","action":"incident_list","params":{},"agent_id":"sofiia"});
    assert_error(
        &call(&k.app, Some(&k.keys["helion"]), imp).await,
        403,
        "impersonation",
    );
    // The console's REST API needs the operator key once keys are configured.
    assert_error(&k.app.get("/api/incidents").await, 401, "unauthorized");
    let r = k
        .app
        .client
        .get(k.app.url("/api/incidents"))
        .bearer_auth(&k.keys["sofiia"])
        .send()
        .await
        .unwrap();
    assert_error(&split(r).await, 403, "forbidden");
    let r = k
        .app
        .client
        .get(k.app.url("/api/incidents"))
        .bearer_auth(OPERATOR_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Health and the console's page stay open; unknown API paths still need the key.
    assert_eq!(k.app.get("/").await.0, 200);
    assert_error(&k.app.get("/api/nothing").await, 401, "unauthorized");
    assert_eq!(k.app.get("/healthz").await.0, 200);
    assert_eq!(k.app.get("/api/health").await.0, 200);
    // Agents can list the tools; without a key nobody can.
    let r = k
        .app
        .client
        .get(k.app.url("/v1/tools"))
        .bearer_auth(&k.keys["monitor"])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["tools"][0]["name"], "oncall_tool");
    assert!(v["tools"][0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "incident_create"));
    assert_error(&k.app.get("/v1/tools").await, 401, "unauthorized");
    // Agents cannot read the audit log.
    let r = k
        .app
        .client
        .get(k.app.url("/api/audit"))
        .bearer_auth(&k.keys["sofiia"])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn shorthand_endpoint_takes_nested_or_flat_params() {
    let k = keyed_app(None).await;
    let key = &k.keys["helion"];
    let r = k
        .app
        .client
        .post(k.app.url("/v1/tools/oncall_tool"))
        .bearer_auth(key)
        .json(
            &json!({"action":"incident_create","service":"gateway","severity":"P2","title":"flat"}),
        )
        .send()
        .await
        .unwrap();
    let (s, v) = split(r).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["created_by"], "helion");
    let r = k
        .app
        .client
        .post(k.app.url("/v1/tools/oncall_tool"))
        .bearer_auth(key)
        .json(&json!({"action":"incident_list","params":{"service":"gateway"}}))
        .send()
        .await
        .unwrap();
    let (s, v) = split(r).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["items"][0]["title"], "flat");
    let r = k
        .app
        .client
        .post(k.app.url("/v1/tools/oncall_tool"))
        .bearer_auth(key)
        .json(&json!({"action":"incident_list","params":{},"service":"x"}))
        .send()
        .await
        .unwrap();
    assert_error(&split(r).await, 422, "invalid_field");
    let r = k
        .app
        .client
        .post(k.app.url("/v1/tools/nope"))
        .bearer_auth(key)
        .json(&json!({"action":"x"}))
        .send()
        .await
        .unwrap();
    assert_error(&split(r).await, 404, "not_found");
    // An unknown action is refused before RBAC, for every role, and its name is not echoed
    // into the audit log.
    let (s, v) = call(
        &k.app,
        Some(&k.keys["monitor"]),
        json!({"tool":"oncall_tool","action":"incident_explode","params":{}}),
    )
    .await;
    assert_error(&(s, v), 404, "not_found");
    let r = k
        .app
        .client
        .get(k.app.url("/api/audit?decision=deny"))
        .bearer_auth(OPERATOR_KEY)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(
        !text.contains("incident_explode") && text.contains("<unknown>"),
        "{text}"
    );
    let (s, v) = call(
        &k.app,
        Some(key),
        json!({"tool":"oncall_tool","action":"incident_explode","params":{}}),
    )
    .await;
    assert_error(&(s, v), 404, "not_found");
    let (s, v) = call(
        &k.app,
        Some(OPERATOR_KEY),
        json!({"tool":"oncall_tool","action":"incident_explode","params":{}}),
    )
    .await;
    assert_error(&(s, v), 404, "not_found");
    let (s, v) = call(&k.app, Some(OPERATOR_KEY), json!({"tool":"oncall_tool","action":"incident_create","params":{"service":"x","severity":"P1","title":"t","bogus":1}})).await;
    assert_error(&(s, v), 422, "invalid_params");
}

fn write_policies(dir: &Path, limits: &str, rollout: &str) {
    std::fs::write(dir.join("tool_limits.yml"), limits).unwrap();
    std::fs::write(dir.join("tools_rollout.yml"), rollout).unwrap();
}

#[tokio::test]
async fn limits_give_413_429_and_504_and_rollout_can_deny() {
    let cfg = tempfile::tempdir().unwrap();
    write_policies(
        cfg.path(),
        "defaults: {max_payload_bytes: 2000, calls_per_minute: 3}\n",
        "tools:\n  oncall_tool: {enabled: true, envs: [dev], agents: [helion]}\n",
    );
    let k = keyed_app(Some(cfg.path())).await;
    let helion = k.keys["helion"].clone();
    let big = "x".repeat(3000);
    let (s, v) = call(&k.app, Some(&helion), json!({"tool":"oncall_tool","action":"incident_create","params":{"service":"s","severity":"P3","title":"t","summary": big}})).await;
    assert_error(&(s, v), 413, "payload_too_large");
    // Rollout: only helion may use the tool here.
    let (s, v) = call(
        &k.app,
        Some(&k.keys["sofiia"]),
        json!({"tool":"oncall_tool","action":"incident_list","params":{}}),
    )
    .await;
    assert_error(&(s, v), 403, "tool_disabled");
    // Rate: 3 calls a minute per principal and tool (refused calls do not count).
    for _ in 0..3 {
        let r = call(
            &k.app,
            Some(&helion),
            json!({"tool":"oncall_tool","action":"incident_list","params":{}}),
        )
        .await;
        assert_eq!(r.0, 200, "{}", r.1);
    }
    let r = k
        .app
        .client
        .post(k.app.url("/v1/tools/execute"))
        .bearer_auth(&helion)
        .json(&json!({"tool":"oncall_tool","action":"incident_list","params":{}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait));
}

#[tokio::test]
async fn a_slow_call_times_out_with_504() {
    let cfg = tempfile::tempdir().unwrap();
    write_policies(
        cfg.path(),
        "defaults: {timeout_ms: 1}\ntools: {oncall_tool: {max_payload_bytes: 4000000}}\n",
        "tools:\n  oncall_tool: {enabled: true}\n",
    );
    let k = keyed_app(Some(cfg.path())).await;
    let id = {
        // Straight into the room: through the gateway this create would hit the 1 ms limit too.
        let input =
            serde_json::from_value(json!({"service":"s","severity":"P3","title":"t"})).unwrap();
        k.app
            .state
            .incidents
            .create(input, "test")
            .await
            .unwrap()
            .id
    };
    // Hashing, writing and fsyncing 2 MB takes far longer than 1 ms.
    let content = "y".repeat(2 * 1024 * 1024 - 10);
    let (s, v) = call(
        &k.app,
        Some(OPERATOR_KEY),
        json!({"tool":"oncall_tool","action":"incident_attach_artifact",
        "params":{"incident_id": id, "name":"big.txt","content": content}}),
    )
    .await;
    assert_error(&(s, v), 504, "timeout");
    let r = k
        .app
        .client
        .get(k.app.url("/api/audit?tool=oncall_tool"))
        .bearer_auth(OPERATOR_KEY)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["items"][0]["status"], "timeout");
}

#[tokio::test]
async fn no_payload_byte_reaches_the_audit_log() {
    let k = keyed_app(None).await;
    let marker = "MARKER-7f3a9c1e-do-not-log";
    let (s, v) = call(
        &k.app,
        Some(&k.keys["sofiia"]),
        json!({"tool":"oncall_tool","action":"incident_create",
        "params":{"service":"gateway","severity":"P1","title": marker, "summary": marker},
        "metadata": {"graph_run_id": "gr_test"}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let r = k
        .app
        .client
        .get(k.app.url("/api/audit"))
        .bearer_auth(OPERATOR_KEY)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(!text.contains(marker), "marker leaked into the audit log");
    let v: Value = serde_json::from_str(&text).unwrap();
    let rec = &v["items"][0];
    assert_eq!(rec["tool"], "oncall_tool");
    // A caller's metadata never names the run in the audit (only the runner does).
    assert_eq!(rec["graph_run_id"], Value::Null);
    assert_eq!(rec["input_hash"].as_str().unwrap().len(), 64);
    assert!(rec["input_size"].as_u64().unwrap() > marker.len() as u64);
    // The hash is keyed: it is not the plain sha256 of the input.
    let plain = sofiia::kernel::hash::sha256_hex(
        serde_json::to_vec(
            &json!({"service":"gateway","severity":"P1","title": marker, "summary": marker}),
        )
        .unwrap()
        .as_slice(),
    );
    assert_ne!(rec["input_hash"], plain);
    // Nor into the audit part of a JSONL export.
    let out = tempfile::tempdir().unwrap();
    let out_path = out.path().to_path_buf();
    let n = k
        .app
        .state
        .store
        .read(move |txn| sofiia::audit::export(txn, &out_path))
        .await
        .unwrap();
    assert!(n >= 1);
    let exported = std::fs::read_to_string(out.path().join("audit.jsonl")).unwrap();
    let rec_id = rec["id"].as_str().unwrap();
    assert!(exported.contains(rec_id) && !exported.contains(marker));
}

#[tokio::test]
async fn cors_allows_loopback_pages_in_dev_and_listed_origins_once_keys_are_set() {
    // Open dev mode: loopback pages (a front-end dev server) may read, foreign ones may not
    // even call (tests/api/hardening.rs).
    let open = spawn_app().await;
    let r = open
        .client
        .get(open.url("/api/health"))
        .header("Origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );

    let dir = tempfile::tempdir().unwrap();
    let app = spawn_configured(dir, Arc::new(SystemClock), |s| {
        s.console_api_key = Some(OPERATOR_KEY.into());
        s.cors_origins = vec!["http://localhost:8002".into()];
    })
    .await;
    let r = app
        .client
        .get(app.url("/api/health"))
        .header("Origin", "http://localhost:8002")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:8002"
    );
    let r = app
        .client
        .get(app.url("/api/health"))
        .header("Origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        r.headers().get("access-control-allow-origin").is_none(),
        "unknown origin refused"
    );
    // A preflight from an unknown origin gets no permission either.
    let r = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/incidents"))
        .header("Origin", "http://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn agents_get_redacted_results_the_operator_sees_the_record() {
    let k = keyed_app(None).await;
    let secret = "db at postgres://app:hunter2@db:5432, page ivan@example.com";
    let (s, v) = call(
        &k.app,
        Some(OPERATOR_KEY),
        json!({"tool":"oncall_tool","action":"incident_create",
        "params":{"service":"db","severity":"P2","title":"DB auth failures","summary": secret}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["result"]["summary"], secret,
        "the operator sees what is stored"
    );
    let id = v["result"]["id"].as_str().unwrap().to_string();
    let (s, v) = call(
        &k.app,
        Some(&k.keys["monitor"]),
        json!({"tool":"oncall_tool","action":"incident_get","params":{"incident_id": id}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let summary = v["result"]["incident"]["summary"].as_str().unwrap();
    assert!(
        !summary.contains("hunter2") && !summary.contains("ivan@example.com"),
        "{summary}"
    );
    assert!(
        summary.contains("postgres://app:[REDACTED]@db") && summary.contains("[REDACTED:email]"),
        "{summary}"
    );
}

#[tokio::test]
async fn audit_records_expire_after_the_retention_period() {
    let clock = fixed_clock();
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_configured(dir, clock.clone(), |_| {}).await;
    for i in 0..3 {
        let (s, _) = app
            .post(
                "/api/incidents",
                json!({"service":"s","severity":"P3","title": format!("t{i}")}),
            )
            .await;
        assert_eq!(s, 201);
    }
    let count = |v: &Value| v["items"].as_array().unwrap().len();
    assert_eq!(count(&app.get("/api/audit").await.1), 3);
    let purge = || async {
        let (s, v) = app
            .post(
                "/v1/tools/housekeeping_tool",
                json!({"action": "audit_purge"}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v["result"]["removed"].as_u64().unwrap()
    };
    assert_eq!(purge().await, 0, "nothing is old yet");
    clock.advance(time::Duration::days(91));
    app.post(
        "/api/incidents",
        json!({"service":"s","severity":"P3","title":"fresh"}),
    )
    .await;
    // The three creates and the first purge's own record are past 90 days.
    assert_eq!(purge().await, 4);
    let left = app.get("/api/audit").await.1;
    assert_eq!(
        count(&left),
        2,
        "only the fresh create and the last purge remain: {left}"
    );
}

#[tokio::test]
async fn a_key_bound_to_a_role_keeps_that_role() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // sofiia's own role may write; this key of sofiia's is bound to the read-only monitor role.
    let (key, _) = issue_key(&data, "sofiia", Some("agent_monitor")).unwrap();
    let app = spawn_configured(dir, Arc::new(SystemClock), |s| {
        s.console_api_key = Some(OPERATOR_KEY.into());
    })
    .await;
    let create = json!({"tool":"oncall_tool","action":"incident_create",
        "params":{"service":"s","severity":"P3","title":"t"}});
    assert_error(&call(&app, Some(&key), create).await, 403, "forbidden");
    let list = json!({"tool":"oncall_tool","action":"incident_list","params":{}});
    assert_eq!(call(&app, Some(&key), list).await.0, 200);
}

#[tokio::test]
async fn keys_issued_or_revoked_while_running_take_effect() {
    let k = keyed_app(None).await;
    let data = k.app.data_dir();
    let (fresh, _) = issue_key(&data, "newbie", None).unwrap();
    let list = json!({"tool":"oncall_tool","action":"incident_list","params":{}});
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        call(&k.app, Some(&fresh), list.clone()).await.0,
        200,
        "new key works without a restart"
    );
    // Revoke helion's key by deleting its entry.
    let path = data.join("agent_keys.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let file: serde_json::Value =
        serde_json::to_value(sofiia::gateway::auth::list_keys(&data).unwrap()).unwrap();
    assert!(file.as_array().unwrap().len() >= 6);
    let kept: Vec<_> = sofiia::gateway::auth::list_keys(&data)
        .unwrap()
        .into_iter()
        .filter(|e| e.agent_id != "helion")
        .collect();
    let yaml = serde_saphyr::to_string(&sofiia::gateway::auth::KeyFile { keys: kept }).unwrap();
    assert_ne!(yaml, text);
    std::fs::write(&path, yaml).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_error(
        &call(&k.app, Some(&k.keys["helion"]), list).await,
        401,
        "unauthorized",
    );
}
