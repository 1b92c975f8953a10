//! observability_tool against a local Prometheus double that speaks the real HTTP API
//! (`/api/v1/query`, `/api/v1/query_range`, `/api/v1/alerts`, the success/error envelope) and
//! against local log files (JSON lines and plain text).

use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use sofiia::kernel::clock::SystemClock;

use crate::helpers::*;

type Seen = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

async fn prometheus_double() -> (String, Seen) {
    let seen: Seen = Arc::default();
    async fn query(
        State(seen): State<Seen>,
        Query(q): Query<Vec<(String, String)>>,
    ) -> (axum::http::StatusCode, Json<Value>) {
        seen.lock().unwrap().push(("query".into(), q.clone()));
        let expr = q
            .iter()
            .find(|(k, _)| k == "query")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if expr.contains("((") {
            return (
                axum::http::StatusCode::BAD_REQUEST,
                Json(
                    json!({"status": "error", "errorType": "bad_data", "error": "1:3: parse error: unexpected left parenthesis"}),
                ),
            );
        }
        let value = if expr.contains("http_requests_total") {
            "0.02"
        } else if expr.contains("histogram_quantile") {
            "850"
        } else {
            "1"
        };
        (
            axum::http::StatusCode::OK,
            Json(
                json!({"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {"__name__": "up", "job": "router"}, "value": [1772452800.0, value]}]}}),
            ),
        )
    }
    async fn range(
        State(seen): State<Seen>,
        Query(q): Query<Vec<(String, String)>>,
    ) -> Json<Value> {
        seen.lock().unwrap().push(("query_range".into(), q));
        Json(
            json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"job": "router"}, "values": [[1772452800.0, "0.02"], [1772452860.0, "0.05"]]}]}}),
        )
    }
    async fn alerts() -> Json<Value> {
        Json(json!({"status": "success", "data": {"alerts": [
            {"labels": {"alertname": "HighErrorRate", "service": "router", "severity": "page"},
             "annotations": {"summary": "5xx above 5%"}, "state": "firing",
             "activeAt": "2026-03-02T11:50:00Z", "value": "0.07"}]}}))
    }
    let app = Router::new()
        .route("/api/v1/query", get(query))
        .route("/api/v1/query_range", get(range))
        .route("/api/v1/alerts", get(alerts))
        .with_state(seen.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

/// `POST /v1/tools/observability_tool` with `body` (`action` + its params).
pub async fn tool(app: &TestApp, body: Value) -> (u16, Value) {
    let r = app
        .client
        .post(app.url("/v1/tools/observability_tool"))
        .json(&body)
        .send()
        .await
        .unwrap();
    split(r).await
}

#[tokio::test]
async fn metrics_alerts_and_logs_from_configured_sources() {
    let (prom, seen) = prometheus_double().await;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(
        logs.join("router-1.log"),
        "{\"ts\":\"2026-03-02T11:55:00Z\",\"level\":\"error\",\"service\":\"router\",\"msg\":\"upstream reset by payments\"}\n\
         {\"ts\":\"2026-03-02T11:56:00Z\",\"level\":\"info\",\"service\":\"router\",\"msg\":\"request ok\"}\n\
         {\"ts\":\"2026-03-02T11:57:00Z\",\"level\":\"error\",\"service\":\"billing\",\"msg\":\"upstream reset\"}\n\
         {\"ts\":\"2026-03-02T09:00:00Z\",\"level\":\"error\",\"service\":\"router\",\"msg\":\"too old\"}\n\
         not json and no time\n",
    )
    .unwrap();
    std::fs::write(
        logs.join("router-2.log"),
        "2026-03-02T11:58:00Z ERROR router: upstream reset again\n",
    )
    .unwrap();
    std::fs::write(
        logs.join("other.txt"),
        "2026-03-02T11:58:00Z ERROR router: not matched by the pattern\n",
    )
    .unwrap();
    let config = sources_config(
        dir.path(),
        &format!(
            "envs:\n  prod:\n    prometheus: {{url: \"{prom}\"}}\n    logs: {{files: [\"{}\"]}}\n",
            logs.join("router-*.log").display()
        ),
    );
    std::fs::write(
        config.join("slo_policy.yml"),
        "defaults: {availability: 0.995, latency_p95_ms: 500}\n\
         queries:\n  error_rate: 'sum(rate(http_requests_total{service=\"{service}\",code=~\"5..\"}[5m]))'\n  \
         latency_p95_ms: 'histogram_quantile(0.95, x{service=\"{service}\"})'\n\
         services: {router: {availability: 0.99}}\n",
    )
    .unwrap();
    let app = spawn_configured(dir, Arc::new(SystemClock), move |s| {
        s.config_dir = Some(config)
    })
    .await;

    // SLO status: 2% errors against router's 1% budget is a burn rate of 2; p95 850 ms is
    // over the 500 ms default; billing, with the 0.5% default budget, burns at 4.
    let (s, v) = tool(&app, json!({"action": "slo_status", "service": "router"})).await;
    assert_eq!(s, 200, "{v}");
    let r = &v["result"];
    assert_eq!(r["status"], "burning", "{r}");
    assert_eq!(r["burn_rate"], 2.0);
    assert_eq!(r["error_rate"], 0.02);
    assert_eq!(r["latency_p95_ms"], 850.0);
    assert_eq!(r["latency_over_target"], true);
    let (_, v) = tool(&app, json!({"action": "slo_status", "service": "billing"})).await;
    assert_eq!(v["result"]["burn_rate"], 4.0);
    assert_eq!(v["result"]["status"], "burning");
    assert_error(
        &tool(
            &app,
            json!({"action": "slo_status", "service": "x\"} or vector(1)"}),
        )
        .await,
        422,
        "invalid_field",
    );
    seen.lock().unwrap().clear();

    let (s, v) = tool(&app, json!({"action": "metrics_query", "query": "up{job=\"router\"}", "time": "2026-03-02T12:00:00Z"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["resultType"], "vector");
    assert_eq!(v["result"]["result"][0]["value"][1], "1");
    let (s, v) = tool(
        &app,
        json!({"action": "metrics_query", "query": "rate(x[5m])",
        "start": "2026-03-02T11:00:00Z", "end": "2026-03-02T12:00:00Z", "step": 60}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["resultType"], "matrix");
    {
        let seen = seen.lock().unwrap();
        let (path, q) = &seen[0];
        assert_eq!(path, "query");
        assert!(q.contains(&("query".into(), "up{job=\"router\"}".into())));
        assert!(
            q.contains(&("time".into(), "1772452800.000".into())),
            "{q:?}"
        );
        let (path, q) = &seen[1];
        assert_eq!(path, "query_range");
        assert!(
            q.contains(&("start".into(), "1772449200.000".into())),
            "{q:?}"
        );
        assert!(q.contains(&("step".into(), "60".into())));
    }
    // Prometheus's own error envelope comes back as a 422 naming the query.
    let (s, v) = tool(&app, json!({"action": "metrics_query", "query": "((up"})).await;
    assert_eq!(s, 422, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("bad_data"));
    let (s, v) = tool(&app, json!({"action": "alerts"})).await;
    assert_eq!(s, 200);
    assert_eq!(
        v["result"]["alerts"][0]["labels"]["alertname"],
        "HighErrorRate"
    );

    let (s, v) = tool(
        &app,
        json!({"action": "logs_query", "service": "router", "level": "error",
        "from": "2026-03-02T11:00:00Z", "to": "2026-03-02T12:00:00Z"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let msgs: Vec<&str> = v["result"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        msgs,
        [
            "upstream reset by payments",
            "2026-03-02T11:58:00Z ERROR router: upstream reset again"
        ]
    );
    assert_eq!(v["result"]["files"], 2);
    let (_, v) = tool(
        &app,
        json!({"action": "logs_query", "contains": "RESET", "from": "2026-03-02T11:00:00Z",
        "to": "2026-03-02T12:00:00Z", "limit": 1}),
    )
    .await;
    assert_eq!(v["result"]["matched"], 3);
    assert_eq!(v["result"]["lines"].as_array().unwrap().len(), 1);

    // Not configured: said so, not invented.
    let (s, v) = tool(&app, json!({"action": "alerts", "env": "staging"})).await;
    assert_eq!(s, 404, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no metrics source is configured for env 'staging'"));
    assert_error(&tool(&app, json!({"action": "logs_query", "from": "2026-03-02T12:00:00Z", "to": "2026-03-02T11:00:00Z"})).await, 422, "invalid_field");
    assert_error(
        &tool(&app, json!({"action": "metrics_query", "query": ""})).await,
        422,
        "invalid_field",
    );
}

#[tokio::test]
async fn an_unreachable_prometheus_is_a_503_not_a_made_up_answer() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    // A port nothing listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    std::fs::write(
        config.join("observability_sources.yml"),
        format!("envs:\n  prod:\n    prometheus: {{url: \"http://127.0.0.1:{port}\"}}\n"),
    )
    .unwrap();
    let app = spawn_configured(dir, Arc::new(SystemClock), move |s| {
        s.config_dir = Some(config)
    })
    .await;
    let (s, v) = tool(&app, json!({"action": "metrics_query", "query": "up"})).await;
    assert_eq!(s, 503, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{v}"
    );
}

/// Loki, Jaeger and Tempo doubles speaking their real response formats.
async fn loki_jaeger_tempo_double() -> (String, Seen) {
    let seen: Seen = Arc::default();
    async fn loki(State(seen): State<Seen>, Query(q): Query<Vec<(String, String)>>) -> Json<Value> {
        seen.lock().unwrap().push(("loki".into(), q));
        Json(
            json!({"status": "success", "data": {"resultType": "streams", "result": [
            {"stream": {"service": "router", "level": "error"}, "values": [
                ["1772452680000000000", "{\"level\":\"error\",\"msg\":\"upstream reset by payments\"}"],
                ["1772452620000000000", "plain line without json"]]}]}}),
        )
    }
    async fn jaeger(
        axum::extract::Path(id): axum::extract::Path<String>,
    ) -> (axum::http::StatusCode, Json<Value>) {
        if id != "4bf92f3577b34da6a3ce929d0e0e4736" {
            return (
                axum::http::StatusCode::NOT_FOUND,
                Json(json!({"data": null, "errors": [{"code": 404, "msg": "trace not found"}]})),
            );
        }
        (
            axum::http::StatusCode::OK,
            Json(json!({"data": [{"traceID": id, "spans": [
            {"traceID": id, "spanID": "a1", "operationName": "GET /checkout", "processID": "p1",
             "startTime": 1772452680000000i64, "duration": 250000, "tags": []},
            {"traceID": id, "spanID": "b2", "operationName": "charge", "processID": "p2",
             "startTime": 1772452680050000i64, "duration": 180000, "tags": [{"key": "error", "type": "bool", "value": true}]}],
            "processes": {"p1": {"serviceName": "router"}, "p2": {"serviceName": "payments"}}}]})),
        )
    }
    async fn tempo(axum::extract::Path(_id): axum::extract::Path<String>) -> Json<Value> {
        Json(
            json!({"batches": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "router"}}]},
            "scopeSpans": [{"spans": [{"spanId": "c3", "name": "GET /", "startTimeUnixNano": "1772452680000000000",
                "endTimeUnixNano": "1772452680100000000", "status": {"code": 2}}]}]}]}),
        )
    }
    let app = Router::new()
        .route("/loki/api/v1/query_range", get(loki))
        .route("/jaeger/api/traces/{id}", get(jaeger))
        .route("/tempo/api/traces/{id}", get(tempo))
        .with_state(seen.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn logs_from_loki_and_traces_from_jaeger_and_tempo() {
    let (base, seen) = loki_jaeger_tempo_double().await;
    let dir = tempfile::tempdir().unwrap();
    let config = sources_config(dir.path(), &format!(
            "envs:\n  prod:\n    logs: {{loki: \"{base}\"}}\n    traces: {{url: \"{base}/jaeger\"}}\n  staging:\n    traces: {{url: \"{base}/tempo\", api: tempo}}\n"
        ));
    let app = spawn_configured(dir, Arc::new(SystemClock), move |s| {
        s.config_dir = Some(config)
    })
    .await;

    let (s, v) = tool(
        &app,
        json!({"action": "logs_query", "service": "router", "contains": "reset\"x",
        "from": "2026-03-02T11:00:00Z", "to": "2026-03-02T12:00:00Z", "limit": 50}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let r = &v["result"];
    assert_eq!(r["source"], "loki");
    assert_eq!(r["lines"][0]["message"], "plain line without json");
    assert_eq!(r["lines"][1]["message"], "upstream reset by payments");
    assert_eq!(r["lines"][1]["level"], "error");
    assert_eq!(r["lines"][1]["service"], "router");
    {
        let seen = seen.lock().unwrap();
        let q = &seen[0].1;
        // A real LogQL selector with the caller's text escaped, and nanosecond bounds.
        assert!(
            q.contains(&(
                "query".into(),
                "{service=\"router\"} |~ \"(?i)reset\\\"x\"".into()
            )),
            "{q:?}"
        );
        assert!(
            q.contains(&("start".into(), "1772449200000000000".into())),
            "{q:?}"
        );
        assert!(q.contains(&("direction".into(), "backward".into())));
        // Everything fitted in the limit: no second query for the oldest line.
        assert_eq!(seen.len(), 1);
    }
    assert_eq!(r["first_ts"], "2026-03-02T11:57:00Z");
    // At the limit, the oldest matching line of the window is asked for separately.
    let (s, v) = tool(
        &app,
        json!({"action": "logs_query", "service": "router",
        "from": "2026-03-02T11:00:00Z", "to": "2026-03-02T12:00:00Z", "limit": 2}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    {
        let seen = seen.lock().unwrap();
        let q = &seen.last().unwrap().1;
        assert!(q.contains(&("direction".into(), "forward".into())), "{q:?}");
        assert!(q.contains(&("limit".into(), "1".into())), "{q:?}");
    }
    assert_eq!(v["result"]["first_ts"], "2026-03-02T11:57:00Z");

    let (s, v) = tool(
        &app,
        json!({"action": "traces_lookup", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let r = &v["result"];
    assert_eq!(r["spans"], 2);
    assert_eq!(r["services"], json!(["payments", "router"]));
    assert_eq!(r["error_spans"], 1);
    assert_eq!(r["duration_ms"], 250.0);
    assert_error(
        &tool(
            &app,
            json!({"action": "traces_lookup", "trace_id": "00000000000000000000000000000001"}),
        )
        .await,
        404,
        "not_found",
    );
    assert_error(
        &tool(
            &app,
            json!({"action": "traces_lookup", "trace_id": "../../x"}),
        )
        .await,
        422,
        "invalid_field",
    );

    let (s, v) = tool(&app, json!({"action": "traces_lookup", "env": "staging", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["api"], "tempo");
    assert_eq!(v["result"]["services"], json!(["router"]));
    assert_eq!(v["result"]["error_spans"], 1);
    assert_eq!(v["result"]["duration_ms"], 100.0);
}

#[test]
fn source_files_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    for (yml, needle) in [
        (
            "envs: {prod: {prometheus: {url: \"ftp://x\"}}}",
            "prometheus.url",
        ),
        ("envs: {qa: {}}", "envs.qa"),
        (
            "envs: {prod: {logs: {files: [a.log], loki: \"http://x\"}}}",
            "either files or loki",
        ),
        (
            "envs: {prod: {traces: {url: \"http://x\", api: zipkin}}}",
            "jaeger or tempo",
        ),
        ("envs: {prod: {metrics: {}}}", "unknown field"),
    ] {
        std::fs::write(dir.path().join("observability_sources.yml"), yml).unwrap();
        let e = sofiia::observability::Sources::load(Some(dir.path())).unwrap_err();
        assert!(e.0.contains(needle), "{yml}: {}", e.0);
    }
}
