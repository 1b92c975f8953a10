//! The backlog room over the seeded history of `tests/api/risk.rs`: generation from overdue
//! follow-ups, recurring signatures, high risk and pressure; dry runs; no duplicates across
//! runs and weeks; updates with their checks; who may call what.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::risk::seed;

async fn backlog_tool(app: &TestApp, body: Value) -> (u16, Value) {
    app.post("/v1/tools/execute", json!({"tool": "backlog_tool", "action": body["action"], "params": body["params"], "agent_id": body["agent_id"]})).await
}

fn keys(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_string())
        .collect()
}

fn generate_params(pressure_reason: &str) -> Value {
    json!({
        // router's 53 is below the rule's 60; db's 80 is not.
        "high_risk": [{"service": "router", "score": 53, "band": "high"},
                      {"service": "db", "score": 80, "band": "critical"}],
        "pressure": [{"service": "router", "reasons": [pressure_reason]}],
    })
}

#[tokio::test]
async fn generate_dry_runs_then_writes_once_and_never_duplicates() {
    let clock = fixed_clock();
    let app = spawn_app_with_clock(clock.clone()).await;
    let seeded = seed(&app, &clock).await;
    let (_, fu) = app.get("/api/followups?overdue=true").await;
    let fu_id = fu["items"][0]["event_id"].as_str().unwrap().to_string();
    let expected = [
        "risk:db".to_string(),
        format!("followup:{}:{fu_id}", seeded.b),
        "pressure:router".to_string(),
        "recurrence:router:router # rate #".to_string(),
    ];

    let mut params = generate_params("1 signature recurred");
    params["dry_run"] = json!(true);
    let (s, v) = backlog_tool(&app, json!({"action": "generate", "params": params})).await;
    assert_eq!(s, 200, "{v}");
    let mut created = keys(&v["result"]["created"]);
    created.sort();
    let mut sorted = expected.to_vec();
    sorted.sort();
    assert_eq!(created, sorted);
    let (_, l) = app.get("/api/backlog").await;
    assert_eq!(l["total"], 0, "a dry run wrote nothing: {l}");

    let (s, v) = backlog_tool(
        &app,
        json!({"action": "generate", "params": generate_params("1 signature recurred")}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["created"].as_array().unwrap().len(), 4, "{v}");
    // Most urgent first: db's critical risk P0, the P1 follow-up and pressure, recurrence P2.
    let (_, l) = app.get("/api/backlog").await;
    assert_eq!(l["total"], 4);
    assert_eq!(keys(&l["items"])[0], expected[0]);
    assert_eq!(keys(&l["items"])[3], expected[3]);
    let fu_item = l["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "followup")
        .unwrap()
        .clone();
    assert_eq!(
        (fu_item["owner"].as_str(), fu_item["priority"].as_str()),
        (Some("ivan"), Some("P1"))
    );
    assert_eq!(fu_item["status"], "open");
    let rec = l["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "recurrence")
        .unwrap();
    assert_eq!(rec["owner"], "platform");
    assert!(
        rec["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("seen 3 times in 30 days"),
        "{rec}"
    );

    // Again: the same four, unchanged.
    let (_, v) = backlog_tool(
        &app,
        json!({"action": "generate", "params": generate_params("1 signature recurred")}),
    )
    .await;
    assert_eq!(v["result"]["created"], json!([]), "{v}");
    assert_eq!(v["result"]["updated"], json!([]), "{v}");
    assert_eq!(v["result"]["unchanged"].as_array().unwrap().len(), 4);

    // A week later with new pressure reasons: one updated, nothing new, last_seen moves.
    clock.advance(time::Duration::days(7));
    let (_, v) = backlog_tool(
        &app,
        json!({"action": "generate", "params": generate_params("risk rose 38 points")}),
    )
    .await;
    assert_eq!(v["result"]["created"], json!([]), "{v}");
    assert_eq!(keys(&v["result"]["updated"]), ["pressure:router"]);
    assert_eq!(v["result"]["unchanged"].as_array().unwrap().len(), 3);
    let (_, l) = app.get("/api/backlog?service=router").await;
    assert_eq!(l["total"], 3, "{l}");
    let p = l["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "pressure")
        .unwrap();
    assert_eq!(p["reasons"], json!(["risk rose 38 points"]));
    assert_eq!(p["last_seen"], "2026-03-09T12:00:00Z");
    assert_eq!(p["created_at"], "2026-03-02T12:00:00Z");
    let (_, all) = app.get("/api/backlog").await;
    assert_eq!(all["total"], 4);
}

#[tokio::test]
async fn updates_are_checked_and_read_only_roles_cannot_change_anything() {
    let clock = fixed_clock();
    let app = spawn_app_with_clock(clock.clone()).await;
    seed(&app, &clock).await;
    let (s, v) = backlog_tool(
        &app,
        json!({"action": "generate", "params": generate_params("x"), "agent_id": "scheduler"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, l) = app.get("/api/backlog").await;
    let item = l["items"][0].clone();
    let id = item["id"].as_str().unwrap().to_string();
    let path = format!("/api/backlog/{id}");

    assert_error(
        &app.patch(&path, json!({"status": "closed"})).await,
        400,
        "invalid_status",
    );
    assert_error(
        &app.patch(&path, json!({"status": "done", "owner": ""}))
            .await,
        422,
        "invalid_field",
    );
    assert_error(&app.patch(&path, json!({})).await, 422, "invalid_field");
    assert_error(
        &app.patch(&path, json!({"colour": "red"})).await,
        422,
        "invalid_body",
    );
    assert_error(
        &app.patch("/api/backlog/bl_nope", json!({"status": "done"}))
            .await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.patch(
            "/api/backlog/bl_0123456789abcdef",
            json!({"status": "done"}),
        )
        .await,
        404,
        "not_found",
    );
    assert_error(
        &app.get("/api/backlog?status=closed").await,
        400,
        "invalid_status",
    );
    let (_, after) = app.get("/api/backlog").await;
    assert_eq!(after["items"][0], item, "refused updates changed nothing");

    for agent in ["monitor", "aistalk", "stranger"] {
        let (s, v) = backlog_tool(
            &app,
            json!({"action": "list", "params": {"status": "open"}, "agent_id": agent}),
        )
        .await;
        assert_eq!(
            (s, v["result"]["total"].as_u64()),
            (200, Some(4)),
            "{agent}: {v}"
        );
        let (s, v) = backlog_tool(
            &app,
            json!({"action": "update", "params": {"id": id, "status": "done"}, "agent_id": agent}),
        )
        .await;
        assert_eq!(s, 403, "{agent}: {v}");
        let (s, v) = backlog_tool(
            &app,
            json!({"action": "generate", "params": {"dry_run": true}, "agent_id": agent}),
        )
        .await;
        assert_eq!(s, 403, "{agent}: {v}");
    }
    let (s, v) = backlog_tool(&app, json!({"action": "update", "params": {"id": id, "status": "done"}, "agent_id": "scheduler"})).await;
    assert_eq!(
        s, 403,
        "the scheduler generates but does not close items: {v}"
    );
    let (_, after) = app.get("/api/backlog").await;
    assert_eq!(after["items"][0], item);

    // The operator moves it; the on-call agent reassigns it.
    clock.advance(time::Duration::hours(1));
    let (s, v) = app
        .patch(&path, json!({"status": "in_progress", "owner": "ana"}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["owner"].as_str()),
        (Some("in_progress"), Some("ana"))
    );
    assert_eq!(v["updated_at"], "2026-03-02T13:00:00Z");
    let (s, v) = backlog_tool(
        &app,
        json!({"action": "update", "params": {"id": id, "owner": "helion"}, "agent_id": "helion"}),
    )
    .await;
    assert_eq!(
        (s, v["result"]["owner"].as_str()),
        (200, Some("helion")),
        "{v}"
    );
    let (_, l) = app.get("/api/backlog?status=in_progress").await;
    assert_eq!(l["total"], 1);
    // Generation keeps what people set.
    let (_, v) = backlog_tool(
        &app,
        json!({"action": "generate", "params": generate_params("x")}),
    )
    .await;
    let same = v["result"]["unchanged"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id.as_str())
        .unwrap();
    assert_eq!(
        (same["status"].as_str(), same["owner"].as_str()),
        (Some("in_progress"), Some("helion"))
    );
    // Bad risk input is refused before anything is read or written.
    let (s, v) = backlog_tool(&app, json!({"action": "generate", "params": {"high_risk": [{"service": "db", "score": 101, "band": "high"}]}})).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["message"], "high_risk[0].score: must be 0-100");
}

#[tokio::test]
async fn the_scheduler_feeds_risk_and_pressure_straight_into_generate() {
    let clock = fixed_clock();
    let app = spawn_app_with_clock(clock.clone()).await;
    seed(&app, &clock).await;
    let as_scheduler = |action: &str, params: Value| json!({"tool": "risk_tool", "action": action, "params": params, "agent_id": "scheduler"});
    let (s, top) = app
        .post(
            "/v1/tools/execute",
            as_scheduler("top", json!({"limit": 10})),
        )
        .await;
    assert_eq!(s, 200, "{top}");
    assert_eq!(
        top["result"]["scores"],
        json!([{"service": "router", "score": 53, "band": "high"}, {"service": "search", "score": 0, "band": "low"}])
    );
    let (s, p) = app
        .post(
            "/v1/tools/execute",
            as_scheduler("platform_digest", json!({"week": "2026-W10"})),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    let params =
        json!({"high_risk": top["result"]["scores"], "pressure": p["result"]["json"]["pressure"]});
    let (s, v) = backlog_tool(
        &app,
        json!({"action": "generate", "params": params, "agent_id": "scheduler"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // 53 is under the rule's 60: the follow-up, the recurrence and router's pressure.
    let mut made = keys(&v["result"]["created"]);
    made.retain(|k| !k.starts_with("followup:"));
    made.sort();
    assert_eq!(
        made,
        ["pressure:router", "recurrence:router:router # rate #"]
    );
    assert_eq!(v["result"]["created"].as_array().unwrap().len(), 3);
}
