//! The risk room on a seeded history with answers worked out by hand from the shipped
//! `risk_policy.yml` and `risk_attribution.yml`: scores, bands, attribution points, snapshots
//! and history, digests and architecture pressure, and who may call what.

use serde_json::{json, Value};
use sofiia::kernel::clock::ManualClock;

use crate::helpers::*;

pub async fn risk_tool(app: &TestApp, body: Value) -> (u16, Value) {
    app.post("/v1/tools/risk_tool", body).await
}

async fn create_at(
    app: &TestApp,
    clock: &ManualClock,
    back: time::Duration,
    body: Value,
) -> String {
    clock.advance(-back);
    let (s, v) = app.post("/api/incidents", body).await;
    clock.advance(back);
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

pub struct Seeded {
    /// The P1 opened 2 h ago, 1 h after the deploy.
    pub a: String,
    /// The P2 opened 10 days ago, with the overdue follow-up.
    pub b: String,
    /// The deploy event's id.
    pub deploy: String,
}

/// At 2026-03-02 12:00 (the fixed clock), `router` has:
/// - active: a (P1, 2 h old, "Router 5xx rate 5%") and b (P2, 10 days old, "Disk full on
///   node 7") -> 25 + 10 = 35 points;
/// - "router # rate #" created 3 times in 7 days (a; c 2 days ago; d 4 days ago, both closed)
///   -> (3 - 1) * 5 = 10 points;
/// - one open P1 follow-up of b due 2026-03-01 (overdue) -> 8 points;
/// - a deploy event 3 h ago, 1 h before a's impact started.
///
/// Score 53 (high). `search` has one closed P3: score 0 (low).
pub async fn seed(app: &TestApp, clock: &ManualClock) -> Seeded {
    let h = time::Duration::hours;
    let d = time::Duration::days;
    let b = create_at(app, clock, d(10), json!({"service": "router", "severity": "P2", "title": "Disk full on node 7", "env": "prod"})).await;
    for (back, title) in [(d(4), "Router 5xx rate 12%"), (d(2), "Router 5xx rate 7%")] {
        let sev = if back == d(4) { "P3" } else { "P2" };
        let id = create_at(
            app,
            clock,
            back,
            json!({"service": "router", "severity": sev, "title": title, "env": "prod"}),
        )
        .await;
        let (s, v) = app
            .post(&format!("/api/incidents/{id}/close"), json!({}))
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let s = create_at(
        app,
        clock,
        d(3),
        json!({"service": "search", "severity": "P3", "title": "Slow reindex", "env": "prod"}),
    )
    .await;
    let (st, v) = app
        .post(&format!("/api/incidents/{s}/close"), json!({}))
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, dep) = app
        .post(
            &format!("/api/incidents/{b}/events"),
            json!({"type": "deploy", "message": "router v2.4 rolled out", "ts": "2026-03-02T09:00:00Z"}),
        )
        .await;
    assert_eq!(st, 201, "{dep}");
    let (st, v) = app
        .post(
            &format!("/api/incidents/{b}/events"),
            json!({"type": "followup", "message": "", "meta": {"title": "Alert on disk usage", "owner": "ivan", "due": "2026-03-01", "priority": "P1"}}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let a = create_at(app, clock, h(2), json!({"service": "router", "severity": "P1", "title": "Router 5xx rate 5%", "env": "prod"})).await;
    Seeded {
        a,
        b,
        deploy: dep["id"].as_str().unwrap().to_string(),
    }
}

fn contributors(v: &Value) -> Vec<(String, String, u64)> {
    v["risk_attribution"]["contributors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["id"].as_str().unwrap().to_string(),
                c["points"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn scores_bands_and_attribution_are_worked_out_by_hand() {
    let clock = fixed_clock();
    let app = spawn_app_with_clock(clock.clone()).await;
    let seeded = seed(&app, &clock).await;

    let (s, v) = risk_tool(&app, json!({"action": "service_risk", "service": "router"})).await;
    assert_eq!(s, 200, "{v}");
    let cur = &v["result"]["current"];
    assert_eq!(
        (cur["score"].as_u64(), cur["band"].as_str()),
        (Some(53), Some("high")),
        "{cur}"
    );
    let pts: Vec<(&str, Value)> = cur["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["factor"].as_str().unwrap(), f["points"].clone()))
        .collect();
    assert_eq!(
        pts,
        [
            ("open_incidents", json!(35)),
            ("recurrence", json!(10)),
            ("overdue_followups", json!(8)),
            ("slo_burn", Value::Null),
            ("failed_release_checks", Value::Null),
            ("alert_volume", Value::Null),
        ]
    );
    // No observability source here: the factor says so instead of counting 0.
    assert_eq!(cur["factors"][3]["available"], false);
    assert!(cur["factors"][3]["reason"]
        .as_str()
        .unwrap()
        .contains("no metrics source is configured for env 'prod'"));
    assert_eq!(
        cur["factors"][4]["reason"],
        "no release-check room in this build"
    );
    assert_eq!(cur["factors"][5]["reason"], "no alert room in this build");
    assert_eq!(cur["factors"][1]["items"][0]["id"], "router # rate #");
    // The deploy 1 h before a's impact carries a's 25 and its signature's 10; b is 10 days
    // old and stands under its factor, like the follow-up.
    assert_eq!(
        contributors(cur),
        [
            ("change".to_string(), seeded.deploy.clone(), 35),
            ("factor".to_string(), "open_incidents".to_string(), 10),
            ("factor".to_string(), "overdue_followups".to_string(), 8),
        ]
    );
    assert_eq!(
        cur["risk_attribution"]["contributors"][0]["factors"],
        json!({"open_incidents": 25, "recurrence": 10})
    );
    assert_eq!(cur["factors"][0]["items"][0]["id"], seeded.a.as_str());
    assert_eq!(cur["factors"][0]["items"][1]["id"], seeded.b.as_str());
    assert_eq!(v["result"]["last_snapshot"], Value::Null);

    // A quiet service: 0, and a service never seen: 0 with every factor saying why.
    let (_, q) = app.get("/api/risk/search").await;
    assert_eq!(
        (
            q["current"]["score"].as_u64(),
            q["current"]["band"].as_str()
        ),
        (Some(0), Some("low"))
    );
    assert_eq!(q["current"]["factors"][0]["detail"], "no active incidents");

    // top: router first, both services counted.
    let (s, t) = app.get("/api/risk?limit=1").await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["services"], 2);
    assert_eq!(t["items"].as_array().unwrap().len(), 1);
    assert_eq!(t["items"][0]["service"], "router");
}

#[tokio::test]
async fn snapshots_dry_run_history_and_digests() {
    let clock = fixed_clock();
    let app = spawn_app_with_clock(clock.clone()).await;
    seed(&app, &clock).await;

    // dry_run computes every service and writes nothing.
    let (s, v) = risk_tool(&app, json!({"action": "snapshot", "dry_run": true})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            v["result"]["written"].as_u64(),
            v["result"]["dry_run"].as_bool()
        ),
        (Some(0), Some(true))
    );
    let scores: Vec<(&str, u64)> = v["result"]["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["service"].as_str().unwrap(), r["score"].as_u64().unwrap()))
        .collect();
    assert_eq!(scores, [("router", 53), ("search", 0)]);
    let (_, h) = app.get("/api/risk/router/history?days=7").await;
    assert_eq!(h["snapshots"], json!([]), "{h}");

    // A real one a day ago, then one now after a's close: two rows, oldest first.
    clock.advance(-time::Duration::days(1));
    let (s, v) = risk_tool(&app, json!({"action": "snapshot"})).await;
    clock.advance(time::Duration::days(1));
    assert_eq!((s, v["result"]["written"].as_u64()), (200, Some(2)), "{v}");
    let (s, v) = risk_tool(&app, json!({"action": "snapshot", "dry_run": false})).await;
    assert_eq!((s, v["result"]["written"].as_u64()), (200, Some(2)), "{v}");
    let (s, h) = app.get("/api/risk/router/history?days=7").await;
    assert_eq!(s, 200, "{h}");
    let rows = h["snapshots"].as_array().unwrap();
    // A day ago a did not exist yet and the follow-up was not due: 10 (b) + recurrence (c, d:
    // 2 occurrences -> 5) = 15.
    assert_eq!(rows.len(), 2, "{h}");
    assert_eq!(
        (rows[0]["score"].as_u64(), rows[0]["band"].as_str()),
        (Some(15), Some("low"))
    );
    assert_eq!(rows[0]["factors"]["overdue_followups"], 0);
    assert_eq!(rows[0]["factors"]["recurrence"], 5);
    assert_eq!(rows[1]["score"], 53);
    assert_eq!(rows[1]["factors"]["slo_burn"], Value::Null);
    let (_, one) = app.get("/api/risk/router/history?days=7").await;
    assert_eq!(one, h);
    let (_, last) = app.get("/api/risk/router").await;
    assert_eq!(last["last_snapshot"]["score"], 53);

    // The daily digest of today: 53, up 38 from yesterday's 15.
    let (s, d) = risk_tool(&app, json!({"action": "daily_digest"})).await;
    assert_eq!(s, 200, "{d}");
    let r = &d["result"];
    assert_eq!(r["date"], "2026-03-02");
    assert_eq!(r["json"]["items"][0]["service"], "router");
    assert_eq!(r["json"]["items"][0]["delta"], 38);
    assert_eq!(
        r["json"]["by_band"],
        json!({"critical": 0, "high": 1, "medium": 0, "low": 1})
    );
    let md = r["markdown"].as_str().unwrap();
    assert!(md.starts_with("# Risk digest 2026-03-02"), "{md}");
    assert!(
        md.contains("| router | 53 | high | +38 | deploy on "),
        "{md}"
    );
    assert!(md.contains("router v2.4 rolled out (35); open incidents without a recent change (10); overdue followups without a recent change (8) |"), "{md}");
    // Yesterday's, from its snapshots: 15, nothing before it.
    let (_, y) = risk_tool(
        &app,
        json!({"action": "daily_digest", "date": "2026-03-01"}),
    )
    .await;
    assert_eq!(y["result"]["json"]["items"][0]["score"], 15, "{y}");
    assert_eq!(y["result"]["json"]["items"][0]["delta"], Value::Null);
    let future = risk_tool(
        &app,
        json!({"action": "daily_digest", "date": "2026-03-03"}),
    )
    .await;
    assert_error(&future, 422, "invalid_field");

    // Platform digest of this week (judged now): three "router # rate #" in 30 days is
    // pressure. Last week's (judged at its end, before a was opened, with yesterday's snapshot
    // of 15): two, no pressure.
    let (s, p) = risk_tool(
        &app,
        json!({"action": "platform_digest", "week": "2026-W10"}),
    )
    .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["result"]["week"], "2026-W10");
    let pressure = &p["result"]["json"]["pressure"];
    assert_eq!(pressure[0]["service"], "router", "{p}");
    assert_eq!(
        pressure[0]["reasons"][0],
        "1 signature(s) recurred at least 3 times in 30 days: 'router # rate #' x3"
    );
    // ... and the score rose from yesterday's snapshot.
    assert_eq!(
        pressure[0]["reasons"][1],
        "risk rose 38 points in 7 days (15 to 53)"
    );
    assert!(p["result"]["markdown"]
        .as_str()
        .unwrap()
        .contains("## router (score 53)"));
    let (_, last_week) = risk_tool(&app, json!({"action": "platform_digest"})).await;
    assert_eq!(last_week["result"]["week"], "2026-W09");
    assert_eq!(
        last_week["result"]["json"]["under_pressure"], 0,
        "{last_week}"
    );
}

#[tokio::test]
async fn bad_input_is_refused_and_read_only_roles_cannot_snapshot() {
    let clock = fixed_clock();
    let app = spawn_app_with_clock(clock.clone()).await;
    seed(&app, &clock).await;
    assert_error(&app.get("/api/risk?limit=0").await, 422, "invalid_field");
    assert_error(&app.get("/api/risk?limit=x").await, 400, "invalid_query");
    assert_error(
        &app.get("/api/risk/router/history?days=0").await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.get("/api/risk/router/history?days=91").await,
        422,
        "invalid_field",
    );
    assert_error(&app.get("/api/risk/rou%20ter").await, 422, "invalid_field");
    let (s, v) = risk_tool(&app, json!({"action": "top", "colour": "red"})).await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = risk_tool(
        &app,
        json!({"action": "platform_digest", "week": "2026-10"}),
    )
    .await;
    assert_eq!(s, 422, "{v}");

    for agent in ["monitor", "aistalk", "stranger"] {
        let (s, v) = risk_tool(&app, json!({"action": "top", "agent_id": agent})).await;
        assert_eq!(s, 200, "{agent}: {v}");
        let (s, v) = risk_tool(
            &app,
            json!({"action": "service_risk", "service": "router", "agent_id": agent}),
        )
        .await;
        assert_eq!(s, 200, "{agent}: {v}");
        let (s, v) = risk_tool(&app, json!({"action": "snapshot", "agent_id": agent})).await;
        assert_eq!(s, 403, "{agent}: {v}");
        let (s, v) = risk_tool(&app, json!({"action": "daily_digest", "agent_id": agent})).await;
        assert_eq!(s, 403, "{agent}: {v}");
    }
    let (_, h) = app.get("/api/risk/router/history?days=7").await;
    assert_eq!(
        h["snapshots"],
        json!([]),
        "a refused snapshot wrote nothing"
    );
    // The scheduler and the on-call agent may snapshot.
    for agent in ["scheduler", "helion"] {
        let (s, v) = risk_tool(
            &app,
            json!({"action": "snapshot", "dry_run": true, "agent_id": agent}),
        )
        .await;
        assert_eq!(s, 200, "{agent}: {v}");
    }
    let (_, tools) = app.get("/v1/tools").await;
    let risk = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "risk_tool")
        .unwrap();
    assert_eq!(risk["write_actions"], json!(["snapshot"]));
}

/// A Prometheus double: every service has a 2% error rate and a 100 ms p95.
async fn prometheus_burning() -> String {
    async fn query(
        axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>,
    ) -> axum::Json<Value> {
        let expr = q
            .iter()
            .find(|(k, _)| k == "query")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let value = if expr.contains("histogram_quantile") {
            "100"
        } else {
            "0.02"
        };
        axum::Json(json!({"status": "success", "data": {"resultType": "vector",
            "result": [{"metric": {}, "value": [1772452800.0, value]}]}}))
    }
    let app = axum::Router::new().route("/api/v1/query", axum::routing::get(query));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn slo_burn_counts_where_a_metrics_source_is_configured() {
    let prom = prometheus_burning().await;
    let dir = tempfile::tempdir().unwrap();
    let config = sources_config(
        dir.path(),
        &format!("envs:\n  prod:\n    prometheus: {{url: \"{prom}\"}}\n"),
    );
    let clock = fixed_clock();
    let app = spawn_configured(dir, clock.clone(), move |s| s.config_dir = Some(config)).await;
    let seeded = seed(&app, &clock).await;
    // 2% errors against a 0.5% budget: burn rate 4, "burning", 10 points on top of 53.
    let (s, v) = app.get("/api/risk/router").await;
    assert_eq!(s, 200, "{v}");
    let cur = &v["current"];
    assert_eq!(
        (cur["score"].as_u64(), cur["band"].as_str()),
        (Some(63), Some("high")),
        "{cur}"
    );
    let slo = &cur["factors"][3];
    assert_eq!(
        (slo["available"].as_bool(), slo["points"].as_u64()),
        (Some(true), Some(10)),
        "{slo}"
    );
    assert_eq!(slo["detail"], "burning in prod (burn rate 4)");
    // The burn is no recent change: it stands under its factor (ties by factor name).
    assert_eq!(
        contributors(cur),
        [
            ("change".to_string(), seeded.deploy.clone(), 35),
            ("factor".to_string(), "open_incidents".to_string(), 10),
            ("factor".to_string(), "slo_burn".to_string(), 10),
            ("factor".to_string(), "overdue_followups".to_string(), 8),
        ]
    );
    let (_, q) = app.get("/api/risk/search").await;
    assert_eq!(q["current"]["score"], 10, "{q}");
}

#[tokio::test]
async fn snapshots_past_the_retention_are_dropped_and_bad_policies_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let shipped = include_str!("../../config/risk_policy.yml");
    std::fs::write(
        config.join("risk_policy.yml"),
        shipped.replace("retention_days: 90", "retention_days: 2"),
    )
    .unwrap();
    let clock = fixed_clock();
    let cfg = config.clone();
    let app = spawn_configured(dir, clock.clone(), move |s| s.config_dir = Some(cfg)).await;
    seed(&app, &clock).await;
    clock.advance(-time::Duration::days(3));
    let (_, v) = risk_tool(&app, json!({"action": "snapshot"})).await;
    assert_eq!(v["result"]["pruned"], 0, "{v}");
    clock.advance(time::Duration::days(3));
    // Three days later: each service's old row goes (2 in all), the new ones stay.
    let (_, v) = risk_tool(&app, json!({"action": "snapshot"})).await;
    assert_eq!(
        (
            v["result"]["written"].as_u64(),
            v["result"]["pruned"].as_u64()
        ),
        (Some(2), Some(2)),
        "{v}"
    );
    let (_, h) = app.get("/api/risk/router/history?days=2").await;
    assert_eq!(h["snapshots"].as_array().unwrap().len(), 1, "{h}");
    // Without days: 7, or the retention when it is shorter.
    let (s, d) = app.get("/api/risk/router/history").await;
    assert_eq!((s, d["days"].as_u64()), (200, Some(2)), "{d}");
    assert_error(
        &app.get("/api/risk/router/history?days=3").await,
        422,
        "invalid_field",
    );
    let data = app.stop().await;

    // An unknown key in a policy file names the file and the field, and sofiia does not start.
    std::fs::write(
        config.join("architecture_pressure.yml"),
        include_str!("../../config/architecture_pressure.yml").replace(
            "  rising_points: 20",
            "  rising_points: 20\n  falling_points: 5",
        ),
    )
    .unwrap();
    let mut settings = settings_for(&data.path().join("data"));
    settings.config_dir = Some(config);
    let e = match sofiia::server::App::build_with_clock(settings, clock).await {
        Ok(_) => panic!("started with a bad architecture_pressure.yml"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("architecture_pressure.yml") && e.contains("falling_points"),
        "{e}"
    );
}

#[tokio::test]
async fn an_unreachable_source_makes_slo_burn_unavailable_not_zero() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let dir = tempfile::tempdir().unwrap();
    let config = sources_config(
        dir.path(),
        &format!("envs:\n  prod:\n    prometheus: {{url: \"http://127.0.0.1:{port}\"}}\n"),
    );
    let clock = fixed_clock();
    let app = spawn_configured(dir, clock.clone(), move |s| s.config_dir = Some(config)).await;
    seed(&app, &clock).await;
    let (s, v) = risk_tool(&app, json!({"action": "snapshot", "dry_run": true})).await;
    assert_eq!(s, 200, "{v}");
    for r in v["result"]["snapshots"].as_array().unwrap() {
        let slo = &r["factors"][3];
        assert_eq!(
            (slo["available"].as_bool(), &slo["points"]),
            (Some(false), &Value::Null),
            "{slo}"
        );
        assert!(
            slo["reason"]
                .as_str()
                .unwrap()
                .starts_with("slo_status failed: "),
            "{slo}"
        );
    }
    assert_eq!(v["result"]["snapshots"][0]["score"], 53);
}
