//! The built-in graphs over HTTP: the seeds' curl examples for `incident_triage` and
//! `postmortem_draft`, input validation, a cancel that reaches a sub-run, and the requeue list.
//! Sources are a Prometheus double speaking the real HTTP API and local log files.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use sofiia::error::Result;
use sofiia::graphs::{Graph, Node, NodeCx, NodeFuture, Step};
use sofiia::kernel::clock::SystemClock;

use crate::helpers::*;

/// What the Prometheus double answers, and how.
#[derive(Default)]
pub struct PromKnobs {
    /// Milliseconds `/api/v1/alerts` waits before answering (the first `slow_calls` calls).
    pub alerts_delay_ms: AtomicU64,
    pub slow_calls: AtomicU64,
    /// When set, every query answers 503 with Prometheus's error envelope.
    pub failing: AtomicBool,
    /// Requests `/api/v1/query` has received.
    pub query_hits: AtomicU64,
}

/// A Prometheus double: error ratio 2.1 %, p95 850 ms, 100 req/s, two `router` targets of
/// which one is down, and `HighErrorRate` firing.
pub async fn prometheus_double(knobs: Arc<PromKnobs>) -> String {
    async fn query(
        State(k): State<Arc<PromKnobs>>,
        Query(q): Query<Vec<(String, String)>>,
    ) -> (axum::http::StatusCode, Json<Value>) {
        k.query_hits.fetch_add(1, Ordering::SeqCst);
        if k.failing.load(Ordering::SeqCst) {
            return (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    json!({"status": "error", "errorType": "unavailable", "error": "tsdb not ready"}),
                ),
            );
        }
        let expr = q
            .iter()
            .find(|(k, _)| k == "query")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let t = 1771840800.0;
        let one = |v: &str| json!([{"metric": {"service": "router"}, "value": [t, v]}]);
        let result = if expr.starts_with("up{") {
            json!([
                {"metric": {"__name__": "up", "job": "router", "instance": "router-1:9100"}, "value": [t, "1"]},
                {"metric": {"__name__": "up", "job": "router", "instance": "router-2:9100"}, "value": [t, "0"]}])
        } else if expr.contains("code=~") {
            one("0.021")
        } else if expr.contains("histogram_quantile") {
            one("850")
        } else if expr.contains("http_requests_total") {
            one("100")
        } else {
            json!([])
        };
        (
            axum::http::StatusCode::OK,
            Json(json!({"status": "success", "data": {"resultType": "vector", "result": result}})),
        )
    }
    async fn alerts(State(k): State<Arc<PromKnobs>>) -> Json<Value> {
        if k.slow_calls.load(Ordering::SeqCst) > 0 {
            k.slow_calls.fetch_sub(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(
                k.alerts_delay_ms.load(Ordering::SeqCst),
            ))
            .await;
        }
        Json(json!({"status": "success", "data": {"alerts": [
            {"labels": {"alertname": "HighErrorRate", "service": "router", "severity": "page"},
             "annotations": {"summary": "5xx above 2%"}, "state": "firing",
             "activeAt": "2026-02-23T09:06:00Z", "value": "0.021"},
            {"labels": {"alertname": "DiskFull", "service": "billing"}, "state": "firing",
             "annotations": {}, "activeAt": "2026-02-23T09:00:00Z", "value": "1"}]}}))
    }
    let app = Router::new()
        .route("/api/v1/query", get(query))
        .route("/api/v1/alerts", get(alerts))
        .with_state(knobs);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

/// Router error logs of 2026-02-23 09:00-10:00: one template five times (with trace ids and
/// a secret), another twice, and lines outside the window or of other services.
pub fn write_router_logs(dir: &std::path::Path) -> std::path::PathBuf {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut text = String::new();
    for (i, ip) in [
        "10.0.0.12",
        "10.0.0.13",
        "10.0.0.14",
        "10.0.0.12",
        "10.0.0.15",
    ]
    .iter()
    .enumerate()
    {
        text.push_str(&format!(
            "{{\"ts\":\"2026-02-23T09:{:02}:00Z\",\"level\":\"error\",\"service\":\"router\",\"msg\":\"upstream timeout after {}ms calling {ip}:5432\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e47{i:02}\"}}\n",
            5 + i * 3,
            3000 + i * 10
        ));
    }
    text.push_str("{\"ts\":\"2026-02-23T09:30:00Z\",\"level\":\"error\",\"service\":\"router\",\"msg\":\"db pool exhausted for user bob@example.com password=hunter2secret\"}\n");
    text.push_str("{\"ts\":\"2026-02-23T09:31:00Z\",\"level\":\"error\",\"service\":\"router\",\"msg\":\"db pool exhausted for user eve@example.com password=other2secret\"}\n");
    text.push_str("{\"ts\":\"2026-02-23T09:32:00Z\",\"level\":\"info\",\"service\":\"router\",\"msg\":\"request ok\"}\n");
    text.push_str("{\"ts\":\"2026-02-23T09:33:00Z\",\"level\":\"error\",\"service\":\"billing\",\"msg\":\"not ours\"}\n");
    text.push_str("{\"ts\":\"2026-02-23T07:00:00Z\",\"level\":\"error\",\"service\":\"router\",\"msg\":\"before the window\"}\n");
    std::fs::write(logs.join("router.log"), text).unwrap();
    logs.join("*.log")
}

/// A config folder whose prod env reads metrics from `prom` and logs from `logs`.
pub fn config_with(
    dir: &std::path::Path,
    prom: Option<&str>,
    logs: Option<&std::path::Path>,
) -> std::path::PathBuf {
    let mut y = String::from("envs:\n  prod:\n");
    if let Some(p) = prom {
        y.push_str(&format!("    prometheus: {{url: \"{p}\"}}\n"));
    }
    if let Some(l) = logs {
        y.push_str(&format!("    logs: {{files: [\"{}\"]}}\n", l.display()));
    }
    if prom.is_none() && logs.is_none() {
        y = "envs: {}\n".into();
    }
    sources_config(dir, &y)
}

async fn start(app: &TestApp, graph: &str, body: Value) -> String {
    let (s, v) = app.post(&format!("/v1/graphs/{graph}/runs"), body).await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["status"], "queued");
    assert!(v["result"].is_null());
    let id = v["run_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("gr_"));
    id
}

pub async fn wait_finished(app: &TestApp, id: &str) -> Value {
    for _ in 0..600 {
        let (_, v) = app.get(&format!("/v1/runs/{id}")).await;
        if matches!(
            v["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (_, v) = app.get(&format!("/v1/runs/{id}")).await;
    panic!("run {id} never finished: {v}");
}

async fn wait_runbooks(app: &TestApp) {
    for _ in 0..400 {
        let (s, _) = app.get("/api/runbooks/search?q=incident").await;
        if s == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("runbook index never opened");
}

#[tokio::test]
async fn the_seed_triage_example_ranks_causes_from_real_signals() {
    let knobs = Arc::new(PromKnobs::default());
    let prom = prometheus_double(knobs).await;
    let dir = tempfile::tempdir().unwrap();
    let logs = write_router_logs(dir.path());
    let config = config_with(dir.path(), Some(&prom), Some(&logs));
    let app = spawn_configured(dir, Arc::new(SystemClock), move |s| {
        s.config_dir = Some(config)
    })
    .await;
    wait_runbooks(&app).await;
    // A deploy on a router incident's timeline, 15 minutes before the first error.
    let inc = app.create("router", "P1", "router errors").await;
    let (s, v) = app
        .post(
            &format!("/api/incidents/{inc}/events"),
            json!({"type": "deploy", "message": "router v2.3.1 rolled out", "ts": "2026-02-23T08:50:00Z",
                   "meta": {"version": "2.3.1"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    // A later deploy (the fix, after the errors began) is not blamed; its tab and newline
    // do not leak into one-line texts.
    let (s, v) = app
        .post(
            &format!("/api/incidents/{inc}/events"),
            json!({"type": "deploy", "message": "hotfix\tfor\ntimeouts", "ts": "2026-02-23T09:20:00Z"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    // The seed's curl example, as is.
    let id = start(
        &app,
        "incident_triage",
        json!({
            "workspace_id": "daarion", "user_id": "helion", "agent_id": "sofiia",
            "input": {"service": "router", "symptom": "High error rate after deploy", "env": "prod",
                      "include_traces": true,
                      "time_range": {"from": "2026-02-23T09:00:00Z", "to": "2026-02-23T10:00:00Z"}}}),
    )
    .await;
    let run = wait_finished(&app, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["graph"], "incident_triage");
    let nodes: Vec<&str> = run["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "node_start")
        .map(|e| e["node"].as_str().unwrap())
        .collect();
    assert_eq!(
        nodes,
        [
            "validate_input",
            "service_overview",
            "top_errors_logs",
            "health_and_runbooks",
            "trace_lookup",
            "slo_context",
            "privacy",
            "cost",
            "build_triage_report"
        ]
    );
    let r = &run["result"];
    for k in [
        "summary",
        "suspected_root_causes",
        "impact_assessment",
        "mitigations_now",
        "next_checks",
        "references",
    ] {
        assert!(!r[k].is_null(), "{k} missing: {r}");
    }
    let causes = r["suspected_root_causes"].as_array().unwrap();
    let ranks: Vec<u64> = causes.iter().map(|c| c["rank"].as_u64().unwrap()).collect();
    assert_eq!(ranks, (1..=causes.len() as u64).collect::<Vec<_>>());
    // The deploy 15 minutes before the first error, while the budget burns, ranks first.
    assert_eq!(causes[0]["kind"], "deploy", "{r:#}");
    assert_eq!(causes[0]["score"], 0.9);
    assert!(causes[0]["evidence"]
        .to_string()
        .contains("first error log 15 min after the deploy"));
    let kinds: Vec<&str> = causes.iter().map(|c| c["kind"].as_str().unwrap()).collect();
    for k in ["health", "slo_burn", "latency", "error_logs", "alerts"] {
        assert!(kinds.contains(&k), "{k} not among {kinds:?}");
    }
    let health = causes.iter().find(|c| c["kind"] == "health").unwrap();
    assert!(health["cause"]
        .as_str()
        .unwrap()
        .contains("1 of 2 router targets"));
    assert!(health["evidence"].to_string().contains("router-2:9100"));
    // Five timeouts with different values are one template.
    let top_logs = causes.iter().find(|c| c["kind"] == "error_logs").unwrap();
    assert_eq!(
        top_logs["cause"],
        "Recurring error: upstream timeout after <n> calling <ip>"
    );
    assert!(top_logs["evidence"][0]
        .as_str()
        .unwrap()
        .starts_with("5 of 7 error lines"));
    // Only router's alert counts.
    assert_eq!(r["references"]["metrics"]["alerts_count"], 1);
    assert_eq!(r["references"]["metrics"]["slo"]["burn_rate"], 4.2);
    assert!(r["impact_assessment"]
        .as_str()
        .unwrap()
        .contains("error_rate=2.10%"));
    // Cost: 2.1 % × 100 req/s × 60 min = 7560 failed requests at 0.002, plus half the
    // targets down for 60 min at 10 a minute.
    let cost = &r["references"]["metrics"]["cost"];
    assert_eq!(cost["failed_requests"], 7560.0);
    assert_eq!(cost["cost_failed_requests"], 15.12);
    assert_eq!(cost["unavailable_minutes"], 30.0);
    assert_eq!(cost["total"], 315.12);
    // Traces were asked for but no traces API is configured: said so, nothing invented.
    assert_eq!(r["sources"]["traces"], "not_configured");
    assert_eq!(r["references"]["traces"]["traces"], json!([]));
    assert_eq!(r["sources"]["metrics"], "ok");
    assert_eq!(r["sources"]["logs"], "ok");
    assert_eq!(r["sources"]["runbooks"], "ok");
    // Runbook sections matched on the symptom and the top error words, with their text.
    let snippets = r["references"]["runbook_snippets"].as_array().unwrap();
    assert!(!snippets.is_empty(), "{r:#}");
    for sn in snippets {
        assert!(sn["path"].as_str().unwrap().ends_with(".md"), "{sn}");
        assert!(!sn["text"].as_str().unwrap().is_empty(), "{sn}");
    }
    assert!(r["next_checks"]
        .to_string()
        .contains("Configure a traces source"));
    assert!(r["mitigations_now"].to_string().contains("Roll back"));
    assert_eq!(causes.iter().filter(|c| c["kind"] == "deploy").count(), 1);
    assert_eq!(
        r["references"]["deploys"][1]["message"],
        "hotfix for timeouts"
    );
    // Secrets and personal data in the log samples are masked.
    let samples = r["references"]["log_samples"].to_string();
    assert!(samples.contains("db pool exhausted"), "{samples}");
    for secret in ["hunter2secret", "bob@example.com"] {
        assert!(!run.to_string().contains(secret), "{secret} leaked");
    }
    assert_eq!(r["window"]["clamped"], false);
    // Every read went through the gateway, audited with the run's id.
    let (_, audit) = app.get("/api/audit?limit=500").await;
    let mine = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["graph_run_id"] == id.as_str())
        .count();
    assert!(mine >= 8, "{mine} audited calls");
    // No incident was linked: nothing was attached anywhere.
    let (_, d) = app.get(&format!("/api/incidents/{inc}")).await;
    assert_eq!(d["artifacts"], json!([]));
}

#[tokio::test]
async fn triage_input_is_checked_and_long_windows_are_clamped() {
    let app = spawn_app().await;
    let bad = [
        (json!({"symptom": "x"}), "input.service"),
        (json!({"service": "router"}), "input.symptom"),
        (
            json!({"service": "router", "symptom": "x", "max_log_lines": 500}),
            "input.max_log_lines",
        ),
        (
            json!({"service": "router", "symptom": "x", "env": "moon"}),
            "input.env",
        ),
        (
            json!({"service": "router", "symptom": "x", "time_range": {"from": "yesterday"}}),
            "input.time_range.from",
        ),
        (
            json!({"service": "router", "symptom": "x", "time_range": {"from": "2026-02-23T10:00:00Z", "to": "2026-02-23T09:00:00Z"}}),
            "input.time_range.from",
        ),
        (
            json!({"service": "router", "symptom": "x", "incident_id": "../etc"}),
            "input.incident_id",
        ),
        (
            json!({"service": "router", "symptom": "x", "colour": "red"}),
            "input.colour",
        ),
        (
            json!({"service": "router", "symptom": "x", "time_range": {"start": "2026-02-23T09:00:00Z"}}),
            "input.time_range.start",
        ),
        (
            json!({"service": "router", "symptom": "x", "time_range": {"to": "2999-01-01T00:00:00Z"}}),
            "input.time_range.to",
        ),
        (
            json!({"service": "router", "symptom": "x", "timeouts": 30}),
            "input.timeouts",
        ),
    ];
    for (input, field) in bad {
        let (s, v) = app
            .post("/v1/graphs/incident_triage/runs", json!({"input": input}))
            .await;
        assert_eq!(s, 422, "{input}: {v}");
        assert_eq!(v["error"]["field"], field, "{v}");
    }
    let (s, v) = app
        .post("/v1/graphs/postmortem_draft/runs", json!({"input": {}}))
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("input.incident_id"))
    );
    // The runner's own key space for sub-runs is not the caller's.
    let r = app
        .client
        .post(app.url("/v1/graphs/incident_triage/runs"))
        .header("Idempotency-Key", "sub:gr_abc:ensure_triage")
        .json(&json!({"input": {"service": "router", "symptom": "x"}}))
        .send()
        .await
        .unwrap();
    let (s, v) = split(r).await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("Idempotency-Key")),
        "{v}"
    );
    let (_, runs) = app.get("/v1/runs").await;
    assert_eq!(runs["items"], json!([]), "refused input wrote a run");

    // 48 hours asked, 24 (INCIDENT_MAX_TIME_WINDOW_H) used; no sources configured at all.
    wait_runbooks(&app).await;
    let id = start(
        &app,
        "incident_triage",
        json!({"input": {"service": "router", "symptom": "disk full on the data volume",
               "time_range": {"from": "2026-02-21T10:00:00Z", "to": "2026-02-23T10:00:00Z"}}}),
    )
    .await;
    let run = wait_finished(&app, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let r = &run["result"];
    assert_eq!(r["window"]["from"], "2026-02-22T10:00:00Z");
    assert_eq!(r["window"]["clamped"], true);
    for k in ["metrics", "logs"] {
        assert_eq!(r["sources"][k], "not_configured");
    }
    assert_eq!(r["sources"]["traces"], "skipped: include_traces is false");
    assert!(r["impact_assessment"]
        .as_str()
        .unwrap()
        .starts_with("Impact unknown"));
    assert!(r["references"]["metrics"]["slo"].is_null());
    assert_eq!(r["references"]["log_samples"], json!([]));
    // The best runbook section wins over one that merely names the service.
    assert_eq!(
        r["references"]["runbook_snippets"][0]["path"], "disk-full.md",
        "{r:#}"
    );
}

#[tokio::test]
async fn the_seed_postmortem_example_drafts_attaches_and_adds_followups() {
    let app = spawn_app().await;
    wait_runbooks(&app).await;
    let (s, v) = app
        .post(
            "/api/incidents",
            json!({"service": "router", "severity": "P1", "title": "Router 5xx after deploy", "env": "prod",
                   "owner": "ana", "summary": "Checkout failed for some users.\n## Action items\n| fake | row |"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let inc = v["id"].as_str().unwrap().to_string();
    for (t, m) in [
        ("deploy", "router v2.3.1"),
        ("mitigation", "rolled back to v2.3.0"),
    ] {
        let (s, v) = app
            .post(
                &format!("/api/incidents/{inc}/events"),
                json!({"type": t, "message": m}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    for st in ["acknowledged", "mitigated", "resolved"] {
        let (s, v) = app
            .patch(&format!("/api/incidents/{inc}"), json!({"status": st}))
            .await;
        assert_eq!(s, 200, "{v}");
    }

    // The seed's example body.
    let id = start(
        &app,
        "postmortem_draft",
        json!({"agent_id": "sofiia", "input": {"incident_id": inc}}),
    )
    .await;
    let run = wait_finished(&app, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let r = &run["result"];
    // No triage artifact yet: triage ran as a sub-run and attached its own report.
    assert_eq!(r["triage"], "sub_run");
    let child = r["triage_run_id"].as_str().unwrap();
    let (_, c) = app.get(&format!("/v1/runs/{child}")).await;
    assert_eq!(
        (c["graph"].as_str(), c["status"].as_str()),
        (Some("incident_triage"), Some("succeeded"))
    );
    assert!(run["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["type"] == "subrun" && e["details"]["run_id"] == child));
    let names: Vec<&str> = r["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["postmortem.md", "postmortem.json"]);
    let md = r["markdown"].as_str().unwrap();
    for h in [
        "# Postmortem: Router 5xx after deploy",
        "## Timeline",
        "## Root cause",
        "## What went well",
        "## What went badly",
        "## Action items",
    ] {
        assert!(md.contains(h), "{h} missing:\n{md}");
    }
    assert!(md.contains("rolled back to v2.3.0"));
    assert!(md.contains("> Checkout failed for some users.\n> ## Action items\n> | fake | row |"));
    assert_eq!(md.matches("\n## Action items\n").count(), 1);

    let (_, d) = app.get(&format!("/api/incidents/{inc}")).await;
    let arts: Vec<String> = d["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    assert!(arts.contains(&format!("triage_{child}.json")), "{arts:?}");
    assert!(arts.contains(&"postmortem.md".to_string()));
    // The attached markdown is the drafted text.
    let (s, a) = app
        .post(
            "/v1/tools/oncall_tool",
            json!({"action": "incident_artifact_get", "incident_id": inc, "name": "postmortem.md"}),
        )
        .await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["result"]["content"].as_str().unwrap(), md);
    let events = d["events"].as_array().unwrap();
    let followups: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "followup" && e["meta"]["run_id"] == id.as_str())
        .collect();
    assert_eq!(followups.len(), r["followups"].as_array().unwrap().len());
    assert!(!followups.is_empty());
    for f in &followups {
        assert_eq!(f["meta"]["owner"], "ana");
        assert_eq!(f["meta"]["status"], "open");
        assert!(f["meta"]["due"]
            .as_str()
            .unwrap()
            .ends_with("T23:59:59.999Z"));
        assert_eq!(f["meta"]["priority"], "P1");
    }
    assert!(events
        .iter()
        .any(|e| e["type"] == "triage" && e["meta"]["run_id"] == child));
    assert!(events
        .iter()
        .any(|e| e["type"] == "postmortem" && e["meta"]["run_id"] == id.as_str()));

    // A second draft reuses the attached triage and does not overwrite the first draft.
    let id2 = start(
        &app,
        "postmortem_draft",
        json!({"input": {"incident_id": inc}}),
    )
    .await;
    let run2 = wait_finished(&app, &id2).await;
    assert_eq!(run2["status"], "succeeded", "{run2}");
    assert_eq!(run2["result"]["triage"], "existing");
    assert_eq!(run2["result"]["triage_run_id"], child);
    assert_eq!(run2["result"]["artifacts"][0]["name"], "postmortem-2.md");
    assert_eq!(run2["result"]["artifacts"][1]["name"], "postmortem-2.json");

    // An unknown incident fails the run with the reason.
    let id3 = start(
        &app,
        "postmortem_draft",
        json!({"input": {"incident_id": "inc_20260101_0000_000000000000"}}),
    )
    .await;
    let run3 = wait_finished(&app, &id3).await;
    assert_eq!(run3["status"], "failed");
    assert!(
        run3["error"].as_str().unwrap().contains("load_incident"),
        "{run3}"
    );
}

#[tokio::test]
async fn cancelling_a_postmortem_cancels_its_triage_sub_run_mid_call() {
    let knobs = Arc::new(PromKnobs::default());
    knobs.alerts_delay_ms.store(20_000, Ordering::SeqCst);
    knobs.slow_calls.store(100, Ordering::SeqCst);
    let prom = prometheus_double(knobs).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), Some(&prom), None);
    let app = spawn_configured(dir, Arc::new(SystemClock), move |s| {
        s.config_dir = Some(config)
    })
    .await;
    let inc = app.create("router", "P2", "slow alerts").await;
    let id = start(
        &app,
        "postmortem_draft",
        json!({"input": {"incident_id": inc}}),
    )
    .await;
    // Wait until the sub-run is inside its slow alerts call.
    let mut child = String::new();
    for _ in 0..400 {
        let (_, v) = app.get(&format!("/v1/runs/{id}")).await;
        if let Some(c) = v["children"][0].as_str() {
            let (_, cv) = app.get(&format!("/v1/runs/{c}")).await;
            if cv["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["type"] == "tool_call" && e["details"]["action"] == "alerts")
            {
                child = c.to_string();
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        !child.is_empty(),
        "the sub-run never reached its alerts call"
    );
    let (s, v) = app.post(&format!("/v1/runs/{id}/cancel"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    let run = wait_finished(&app, &id).await;
    assert_eq!(run["status"], "cancelled");
    let c = wait_finished(&app, &child).await;
    assert_eq!(c["status"], "cancelled", "{c}");
}

/// One node that must read a metric (no soft failure): for the requeue list.
struct MustQuery;
impl Graph for MustQuery {
    fn name(&self) -> &'static str {
        "t_must_query"
    }
    fn description(&self) -> &'static str {
        "reads a metric or fails"
    }
    fn nodes(&self) -> &'static [Node] {
        &[
            Node {
                name: "prepare",
                safe_to_repeat: true,
            },
            Node {
                name: "query",
                safe_to_repeat: true,
            },
        ]
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object"})
    }
    fn default_timeout_s(&self) -> u64 {
        60
    }
    fn init(&self, _input: &Value) -> Result<Value> {
        Ok(json!({"prepared": 0}))
    }
    fn step<'a>(&'a self, node: &'a str, state: &'a mut Value, cx: &'a NodeCx) -> NodeFuture<'a> {
        Box::pin(async move {
            if node == "prepare" {
                state["prepared"] = json!(state["prepared"].as_u64().unwrap() + 1);
                return Ok(Step::Next("query"));
            }
            let v = cx
                .tool(
                    "observability_tool",
                    "metrics_query",
                    json!({"query": "sum(rate(http_requests_total{service=\"router\"}[5m]))"}),
                )
                .await?;
            state["value"] = v["result"][0]["value"][1].clone();
            Ok(Step::Done)
        })
    }
    fn result(&self, state: &Value) -> Value {
        json!({"value": state["value"], "prepared": state["prepared"]})
    }
}

/// One retry layer: a source that keeps failing is called at most 3 times per node call (the
/// outbound client's attempts), not 3 graph attempts × 3 outbound attempts.
#[tokio::test]
async fn a_failing_source_is_hit_at_most_three_times_per_node_call() {
    let knobs = Arc::new(PromKnobs::default());
    knobs.failing.store(true, Ordering::SeqCst);
    let prom = prometheus_double(knobs.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), Some(&prom), None);
    let app = spawn_prepared(
        dir,
        Arc::new(SystemClock),
        move |s| s.config_dir = Some(config),
        |st| st.runner.register(Arc::new(MustQuery)),
    )
    .await;
    let id = start(&app, "t_must_query", json!({"input": {}})).await;
    let run = wait_finished(&app, &id).await;
    assert_eq!(run["status"], "failed", "{run}");
    let hits = knobs.query_hits.load(Ordering::SeqCst);
    assert!(
        (1..=3).contains(&hits),
        "the failing source was hit {hits} times"
    );
    let results: Vec<&Value> = run["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "tool_result")
        .collect();
    assert_eq!(results.len(), 1, "{run}");
    assert_eq!(results[0]["details"]["retry"], false, "{run}");
    assert_eq!(results[0]["details"]["code"], "unavailable", "{run}");
}

#[tokio::test]
async fn runs_that_exhaust_their_retries_wait_in_the_requeue_list() {
    let knobs = Arc::new(PromKnobs::default());
    knobs.failing.store(true, Ordering::SeqCst);
    let prom = prometheus_double(knobs.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), Some(&prom), None);
    let app = spawn_prepared(
        dir,
        Arc::new(SystemClock),
        move |s| s.config_dir = Some(config),
        |st| st.runner.register(Arc::new(MustQuery)),
    )
    .await;
    let (s, v) = app.get("/v1/requeue").await;
    assert_eq!((s, v["items"].clone()), (200, json!([])));

    // One failing run at a time: more failures in a row would (rightly) open the outbound
    // circuit to this Prometheus for 30 s.
    let failed_run = || async {
        let id = start(&app, "t_must_query", json!({"input": {}})).await;
        let run = wait_finished(&app, &id).await;
        assert_eq!(run["status"], "failed");
        // The outbound client retried the query; the node's tool call was not retried on top.
        let attempts = run["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "tool_call")
            .count();
        assert_eq!(attempts, 1, "{run}");
        let (_, v) = app.get("/v1/requeue").await;
        let e = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["run_id"] == id.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("{id} not in {v}"));
        assert_eq!(e["kind"], "retries_exhausted");
        // Prometheus's own error message comes through, not just the status.
        assert!(
            e["reason"]
                .as_str()
                .unwrap()
                .contains("HTTP 503 (tsdb not ready)"),
            "{e}"
        );
        assert_eq!(e["node"], "query");
        assert_eq!(e["status"], "pending");
        (id, e["id"].as_str().unwrap().to_string())
    };
    let (a, ea) = failed_run().await;

    // Prometheus is back: replaying a picks up at the failed node with its saved state.
    knobs.failing.store(false, Ordering::SeqCst);
    let (s, v) = app
        .post(&format!("/v1/requeue/{ea}/resolve"), json!({"allow": true}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["run_status"], "queued");
    let run = wait_finished(&app, &a).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["result"], json!({"value": "100", "prepared": 1}));
    assert!(run["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["type"] == "run_requeued" && e["node"] == "query"));

    // Dropping b leaves it failed.
    knobs.failing.store(true, Ordering::SeqCst);
    let (b, eb) = failed_run().await;
    let (s, _) = app
        .post(
            &format!("/v1/requeue/{eb}/resolve"),
            json!({"allow": false}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, rb) = app.get(&format!("/v1/runs/{b}")).await;
    assert_eq!(rb["status"], "failed");
    // Decided once only; bad ids and bodies are refused.
    let again = app
        .post(&format!("/v1/requeue/{ea}/resolve"), json!({"allow": true}))
        .await;
    assert_error(&again, 409, "conflict");
    let bad = app
        .post("/v1/requeue/../resolve", json!({"allow": true}))
        .await;
    assert!(bad.0 == 404 || bad.0 == 422, "{bad:?}");
    let bad = app
        .post(
            &format!("/v1/requeue/{eb}/resolve"),
            json!({"allow": "yes"}),
        )
        .await;
    assert_eq!(bad.0, 422);
    let (_, v) = app.get("/v1/requeue").await;
    assert_eq!(v["items"], json!([]));
    let (_, v) = app.get("/v1/requeue?status=all").await;
    let statuses: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), 2);
    assert!(statuses.contains(&"replayed") && statuses.contains(&"dropped"));
    // Both decisions are audited, with the run and no payload.
    let (_, audit) = app.get("/api/audit?tool=requeue").await;
    let recs = audit["items"].as_array().unwrap();
    assert_eq!(recs.len(), 2, "{audit}");
    assert!(recs
        .iter()
        .any(|r| r["decision"] == "allow" && r["graph_run_id"] == a.as_str()));
    assert!(recs
        .iter()
        .any(|r| r["decision"] == "deny" && r["graph_run_id"] == b.as_str()));
}

#[tokio::test]
async fn triage_against_a_real_prometheus_and_log_files() {
    use crate::realprom::{config_with_prometheus, prometheus_or_skip, Prom, Target};
    let Some(bin) = prometheus_or_skip("triage_against_a_real_prometheus_and_log_files") else {
        return;
    };
    // 10 % of router's requests fail (burn rate 20 against the 0.5 % budget), p95 well under
    // the 500 ms target; a second job of the same Prometheus is down.
    let router = Target::start("router", 40.0, 0.1, 0.05).await;
    let prom = Prom::start(&bin, &[&router], Some("legacy")).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_prometheus(dir.path(), prom.url());
    // Error logs of the last few minutes, beside the metrics.
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let mut text = String::new();
    for i in 0..4 {
        let ts = sofiia::kernel::clock::rfc3339(now - time::Duration::seconds(150 - i * 20));
        text.push_str(&format!(
            "{ts} ERROR router: upstream payments returned 503 for order {} trace_id=a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d{i}\n",
            1000 + i
        ));
    }
    std::fs::write(logs.join("router.log"), text).unwrap();
    let sources = config.join("observability_sources.yml");
    let mut y = std::fs::read_to_string(&sources).unwrap();
    y.push_str(&format!(
        "    logs: {{files: [\"{}\"]}}\n",
        logs.join("*.log").display()
    ));
    std::fs::write(&sources, y).unwrap();
    let app = spawn_configured(dir, Arc::new(SystemClock), move |s| {
        s.config_dir = Some(config)
    })
    .await;
    // Wait (bounded) until Prometheus's HighErrorRate rule fires for router.
    let mut firing = false;
    for _ in 0..120 {
        let (_, v) = crate::observability::tool(&app, json!({"action": "alerts"})).await;
        firing = v["result"]["alerts"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["labels"]["service"] == "router" && x["state"] == "firing")
        });
        if firing {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(firing, "HighErrorRate never fired:\n{}", prom.log_tail());

    let id = start(
        &app,
        "incident_triage",
        json!({"agent_id": "sofiia", "input": {"service": "router", "symptom": "checkout errors",
               "time_range": {"from": sofiia::kernel::clock::rfc3339(now - time::Duration::minutes(10)),
                              "to": sofiia::kernel::clock::rfc3339(time::OffsetDateTime::now_utc())}}}),
    )
    .await;
    let run = wait_finished(&app, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let r = &run["result"];
    assert_eq!(r["sources"]["metrics"], "ok", "{r:#}");
    assert_eq!(r["sources"]["logs"], "ok");
    let slo = &r["references"]["metrics"]["slo"];
    assert_eq!(slo["status"], "fast_burn", "{slo}");
    let burn = slo["burn_rate"].as_f64().unwrap();
    assert!((burn - 20.0).abs() < 2.0, "burn rate {burn}");
    assert_eq!(slo["latency_over_target"], false);
    assert_eq!(r["references"]["metrics"]["alerts_count"], 1);
    // router's one target is up (the dead job is another service's).
    let health = &r["references"]["metrics"]["health"];
    assert_eq!(health["checked"], true);
    assert_eq!(health["failing"], 0);
    assert_eq!(health["targets"].as_array().unwrap().len(), 1);
    let causes = r["suspected_root_causes"].as_array().unwrap();
    assert_eq!(causes[0]["kind"], "slo_burn", "{r:#}");
    assert_eq!(causes[0]["score"], 0.75);
    let logs_cause = causes.iter().find(|c| c["kind"] == "error_logs").unwrap();
    assert_eq!(
        logs_cause["cause"],
        "Recurring error: <ts> ERROR router: upstream payments returned <n> for order <n> trace_id=<hex>"
    );
    assert!(causes.iter().any(|c| c["kind"] == "alerts"));
    assert!(causes
        .iter()
        .all(|c| c["kind"] != "latency" && c["kind"] != "health"));
    // Cost comes from the real request rate and error rate.
    let cost = &r["references"]["metrics"]["cost"];
    assert_eq!(cost["estimated"], true, "{cost}");
    assert!(cost["failed_requests"].as_f64().unwrap() > 0.0, "{cost}");
    assert!(r["impact_assessment"]
        .as_str()
        .unwrap()
        .contains("status=fast_burn"));
    assert!(r["next_checks"]
        .to_string()
        .contains("include_traces to look up 4 trace ids"));
}

/// The release binary of this build, serving `data` with `config`; returns the child and
/// its base URL.
fn spawn_binary(data: &std::path::Path, config: &std::path::Path) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sofiia"))
        .env("DATA_DIR", data)
        .env("CONFIG_DIR", config)
        .env("PORT", "0")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let line = lines.next().unwrap().unwrap();
    let base = line.rsplit(' ').next().unwrap().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    std::thread::spawn(move || for _ in lines {});
    (child, base)
}

#[tokio::test]
async fn a_triage_run_survives_kill_9_of_the_binary_and_resumes() {
    // Prometheus's alerts endpoint hangs on its first call: the run is inside
    // service_overview, mid tool call, when the process is killed.
    let knobs = Arc::new(PromKnobs::default());
    knobs.alerts_delay_ms.store(60_000, Ordering::SeqCst);
    knobs.slow_calls.store(1, Ordering::SeqCst);
    let prom = prometheus_double(knobs).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), Some(&prom), None);
    let data = dir.path().join("data");
    let http = sofiia::net::client();
    let get = |base: String, path: String| {
        let http = http.clone();
        async move {
            let r = http.get(format!("{base}{path}")).send().await.unwrap();
            split(r).await
        }
    };

    let (mut child, base) = spawn_binary(&data, &config);
    let r = http
        .post(format!("{base}/v1/graphs/incident_triage/runs"))
        .header("Idempotency-Key", "kill-9-test")
        .json(&json!({"input": {"service": "router", "symptom": "errors after deploy"}}))
        .send()
        .await
        .unwrap();
    let (s, v) = split(r).await;
    assert_eq!(s, 202, "{v}");
    let id = v["run_id"].as_str().unwrap().to_string();
    let mut inside = false;
    for _ in 0..400 {
        let (_, v) = get(base.clone(), format!("/v1/runs/{id}")).await;
        if v["current_node"] == "service_overview"
            && v["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["type"] == "tool_call" && e["details"]["action"] == "alerts")
        {
            inside = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(inside, "the run never reached its alerts call");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let (mut child, base) = spawn_binary(&data, &config);
    let mut run = Value::Null;
    for _ in 0..600 {
        let (_, v) = get(base.clone(), format!("/v1/runs/{id}")).await;
        if matches!(
            v["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            run = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // The same Idempotency-Key still names the same run after the crash.
    let r = http
        .post(format!("{base}/v1/graphs/incident_triage/runs"))
        .header("Idempotency-Key", "kill-9-test")
        .json(&json!({"input": {"service": "router", "symptom": "errors after deploy"}}))
        .send()
        .await
        .unwrap();
    let (s, again) = split(r).await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        (s, again["run_id"].as_str()),
        (200, Some(id.as_str())),
        "{again}"
    );
    assert_eq!(run["status"], "succeeded", "{run}");
    let events = run["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"run_resumed"), "{kinds:?}");
    // validate_input ran once; service_overview, interrupted, ran again from its checkpoint.
    let starts = |n: &str| {
        events
            .iter()
            .filter(|e| e["type"] == "node_start" && e["node"] == n)
            .count()
    };
    assert_eq!(starts("validate_input"), 1);
    assert_eq!(starts("service_overview"), 2);
    assert_eq!(starts("build_triage_report"), 1);
    assert_eq!(run["result"]["references"]["metrics"]["alerts_count"], 1);
    assert_eq!(run["result"]["sources"]["metrics"], "ok");
}

#[tokio::test]
async fn a_postmortem_and_its_triage_sub_run_need_only_one_worker() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_configured(dir, Arc::new(SystemClock), |s| s.graph_workers = 1).await;
    wait_runbooks(&app).await;
    let inc = app.create("router", "P3", "one worker").await;
    // The parent holds the only worker while it waits for its child.
    let id = start(
        &app,
        "postmortem_draft",
        json!({"input": {"incident_id": inc}}),
    )
    .await;
    let run = wait_finished(&app, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["result"]["triage"], "sub_run");
    // P3: follow-ups due in 60 days, priority P3, no owner set.
    let f = &run["result"]["followups"][0];
    assert_eq!(f["priority"], "P3");
    assert!(f["owner"].is_null());
}

#[tokio::test]
async fn a_run_acts_with_its_agents_role_only() {
    let app = spawn_app().await;
    wait_runbooks(&app).await;
    let inc = app.create("router", "P2", "read-only agent").await;
    // monitor may read incidents but not write them: triage (reads) works, the postmortem's
    // first write is refused by the gateway's RBAC and the run fails with that reason.
    let id = start(
        &app,
        "postmortem_draft",
        json!({"agent_id": "monitor", "input": {"incident_id": inc}}),
    )
    .await;
    let run = wait_finished(&app, &id).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("may not call oncall_tool"),
        "{run}"
    );
    let (_, d) = app.get(&format!("/api/incidents/{inc}")).await;
    assert!(
        d["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| !a["name"].as_str().unwrap().starts_with("postmortem")),
        "{d}"
    );
    let (_, audit) = app.get("/api/audit?decision=deny&limit=50").await;
    assert!(audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["agent_id"] == "monitor" && a["graph_run_id"] == id.as_str()));
}

/// A source that accepts connections and never answers (a hung Prometheus or Loki): it keeps
/// every connection open and counts them.
pub async fn hanging_source() -> (String, Arc<AtomicU64>) {
    let accepted = Arc::new(AtomicU64::new(0));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let n = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            n.fetch_add(1, Ordering::SeqCst);
            held.push(s);
        }
    });
    (format!("http://{addr}"), accepted)
}

/// Wait for a run to finish, at most `max`.
async fn wait_finished_within(app: &TestApp, id: &str, max: Duration) -> Value {
    let started = std::time::Instant::now();
    loop {
        let (_, v) = app.get(&format!("/v1/runs/{id}")).await;
        if matches!(
            v["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            return v;
        }
        assert!(
            started.elapsed() < max,
            "run {id} still running after {max:?}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Start `incident_triage` with `body` and wait for it: it must succeed within a minute.
async fn triage_succeeds_within_a_minute(app: &TestApp, body: Value) -> Value {
    let started = std::time::Instant::now();
    let id = start(app, "incident_triage", body).await;
    let run = wait_finished_within(app, &id, Duration::from_secs(90)).await;
    let took = started.elapsed();
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
    run
}

/// The `tool_call` events of a run for one action.
fn calls_of<'a>(run: &'a Value, action: &str) -> Vec<&'a Value> {
    run["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "tool_call" && e["details"]["action"] == action)
        .collect()
}

/// A server whose prod Prometheus accepts and never answers, with the router logs as a file
/// source and `source_timeout_ms` for each source call; and the hanging source's count of
/// accepted connections.
async fn with_a_hanging_prometheus(source_timeout_ms: u64) -> (TestApp, Arc<AtomicU64>) {
    let (prom, accepted) = hanging_source().await;
    let dir = tempfile::tempdir().unwrap();
    let logs = write_router_logs(dir.path());
    let config = config_with(dir.path(), Some(&prom), Some(&logs));
    let app = spawn_configured(dir, Arc::new(SystemClock), move |s| {
        s.config_dir = Some(config);
        s.source_timeout_ms = source_timeout_ms;
    })
    .await;
    (app, accepted)
}

/// Prometheus accepts and never answers: each source call has its own 2 s budget, the first
/// one that times out marks metrics unavailable for the rest of the run, and the report is
/// still written from the logs and the incident log, and attached. Before budgets, the alerts
/// call was tried 3 × 30 s and the run failed at its 120 s deadline.
#[tokio::test]
async fn a_hanging_prometheus_becomes_a_next_check_and_the_report_is_still_attached() {
    let (app, accepted) = with_a_hanging_prometheus(2000).await;
    let inc = app.create("router", "P1", "router errors").await;
    let run = triage_succeeds_within_a_minute(
        &app,
        json!({"agent_id": "sofiia", "input": {"service": "router", "symptom": "5xx after deploy",
               "incident_id": inc,
               "time_range": {"from": "2026-02-23T09:00:00Z", "to": "2026-02-23T10:00:00Z"}}}),
    )
    .await;
    let id = run["run_id"].as_str().unwrap().to_string();
    let r = &run["result"];
    assert_eq!(
        r["sources"]["alerts"], "unavailable: timed out after 2 s",
        "{r:#}"
    );
    // Later calls to the same source are not made: one budget for the hung source, not four.
    for k in ["health", "metrics"] {
        assert_eq!(
            r["sources"][k], "unavailable: timed out after 2 s, not asked again",
            "{k}: {r:#}"
        );
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one attempt of one call"
    );
    assert_eq!(calls_of(&run, "alerts").len(), 1, "{run}");
    assert!(calls_of(&run, "metrics_query").is_empty(), "{run}");
    assert!(calls_of(&run, "slo_status").is_empty(), "{run}");
    assert!(
        r["next_checks"]
            .to_string()
            .contains("The metrics source did not answer (timed out after 2 s"),
        "{r:#}"
    );
    assert!(
        r["summary"]
            .as_str()
            .unwrap()
            .contains("Not available: metrics"),
        "{r:#}"
    );
    // The rest still counts: the logs were read and rank a cause.
    assert_eq!(r["sources"]["logs"], "ok");
    let kinds: Vec<&str> = r["suspected_root_causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"error_logs"), "{kinds:?}");
    assert!(
        !kinds.contains(&"slo_burn") && !kinds.contains(&"health"),
        "{kinds:?}"
    );
    // Attached as usual, with its timeline event.
    let name = format!("triage_{id}.json");
    assert_eq!(r["artifact"], name.as_str());
    let (_, d) = app.get(&format!("/api/incidents/{inc}")).await;
    assert!(
        d["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == name.as_str()),
        "{d}"
    );
    assert!(d["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["type"] == "triage" && e["meta"]["run_id"] == id.as_str()));
    // The timed-out call is audited like any other.
    let (_, audit) = app.get("/api/audit?tool=observability_tool").await;
    let mine: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["graph_run_id"] == id.as_str())
        .collect();
    assert_eq!(mine.len(), 2, "{audit}"); // alerts (timed out) and logs_query
    assert!(mine
        .iter()
        .any(|a| a["action"] == "alerts" && a["status"] == "unavailable"));
}

/// Loki accepts and never answers: logs are unavailable (a next check), the metrics from a
/// working Prometheus still rank their causes.
#[tokio::test]
async fn a_hanging_loki_becomes_a_next_check_and_the_metrics_still_count() {
    let (loki, accepted) = hanging_source().await;
    let prom = prometheus_double(Arc::new(PromKnobs::default())).await;
    let dir = tempfile::tempdir().unwrap();
    let config = sources_config(
        dir.path(),
        &format!(
            "envs:\n  prod:\n    prometheus: {{url: \"{prom}\"}}\n    logs: {{loki: \"{loki}\"}}\n"
        ),
    );
    let app = spawn_configured(dir, Arc::new(SystemClock), move |s| {
        s.config_dir = Some(config);
        s.source_timeout_ms = 2000;
    })
    .await;
    let run = triage_succeeds_within_a_minute(
        &app,
        json!({"agent_id": "sofiia", "input": {"service": "router", "symptom": "5xx",
               "time_range": {"from": "2026-02-23T09:00:00Z", "to": "2026-02-23T10:00:00Z"}}}),
    )
    .await;
    let r = &run["result"];
    assert_eq!(
        r["sources"]["logs"], "unavailable: timed out after 2 s",
        "{r:#}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(calls_of(&run, "logs_query").len(), 1, "{run}");
    assert!(
        r["next_checks"]
            .to_string()
            .contains("The logs source did not answer (timed out after 2 s)"),
        "{r:#}"
    );
    for k in ["metrics", "alerts", "health"] {
        assert_eq!(r["sources"][k], "ok", "{k}: {r:#}");
    }
    let kinds: Vec<&str> = r["suspected_root_causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    for k in ["health", "slo_burn", "alerts"] {
        assert!(kinds.contains(&k), "{k} not among {kinds:?}");
    }
    assert!(!kinds.contains(&"error_logs"), "{kinds:?}");
}

/// A source budget never reaches past the run's deadline: with a 10-minute source timeout
/// and a 6 s run, the hung Prometheus gets what the run has left minus the time kept for the
/// report, and the run still succeeds with its report (before: failed at 6 s, no report).
#[tokio::test]
async fn a_source_budget_never_outlasts_the_run() {
    let (app, _) = with_a_hanging_prometheus(600_000).await;
    let id = start(
        &app,
        "incident_triage",
        json!({"agent_id": "sofiia", "input": {"service": "router", "symptom": "5xx",
               "timeouts": {"overall_sec": 6},
               "time_range": {"from": "2026-02-23T09:00:00Z", "to": "2026-02-23T10:00:00Z"}}}),
    )
    .await;
    let run = wait_finished_within(&app, &id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let alerts = run["result"]["sources"]["alerts"].as_str().unwrap();
    let secs: f64 = alerts
        .strip_prefix("unavailable: timed out after ")
        .and_then(|s| s.strip_suffix(" s"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{alerts}"));
    // 6 s less a reserve of a fifth: under 5 s, and more than nothing.
    assert!((1.0..5.0).contains(&secs), "{alerts}");
    // Nothing is left for another source call: logs are not asked, and say why.
    let logs = run["result"]["sources"]["logs"].as_str().unwrap();
    assert!(
        logs.starts_with("unavailable: not asked: the ") && logs.ends_with("kept for its report"),
        "{logs}"
    );
    assert!(run["result"]["next_checks"]
        .to_string()
        .contains("The logs source did not answer (not asked"));
}
