//! Incident intelligence on a seeded history with known answers: correlate (with reasons and
//! the optional timeline note), recurrence, the weekly digest (MTTA/MTTM/MTTR, out-of-order
//! timestamps, recurrences while a follow-up was open, saved reports), through the gateway.

use serde_json::{json, Value};
use sofiia::kernel::clock::Clock;

use crate::helpers::*;

async fn tool(app: &TestApp, body: Value) -> (u16, Value) {
    let r = app
        .client
        .post(app.url("/v1/tools/incident_intelligence_tool"))
        .json(&body)
        .send()
        .await
        .unwrap();
    split(r).await
}

async fn create(app: &TestApp, body: Value) -> String {
    let (s, v) = app.post("/api/incidents", body).await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

/// Wait until the similarity index has caught up (it follows writes within ~250 ms).
/// Wait until the incident index is open and holds every stored incident (a condition, not
/// a time: the index follows the store in the background).
async fn settle(app: &TestApp, id: &str) {
    let stored = app.count_all().await as u64;
    for _ in 0..400 {
        let (s, _) = app.get(&format!("/api/incidents/{id}/related")).await;
        if s == 200 && app.state.search.incidents.len() >= stored {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("incident index not ready");
}

#[tokio::test]
async fn correlate_scores_reasons_and_records_a_note() {
    let clock = fixed_clock();
    let app = spawn_app_with_clock(clock.clone()).await;
    let t0 = "2026-03-02T10:00:00Z";
    let a = create(&app, json!({"service": "router", "severity": "P1", "started_at": t0,
        "title": "Router 5xx spike after deploy", "summary": "upstream connection resets from the payments backend",
        "fingerprints": ["fp-router-5xx", "fp-payments"]})).await;
    // Same service, close in time, similar words, one shared fingerprint: clearly related.
    let b = create(&app, json!({"service": "router", "severity": "P2", "started_at": "2026-03-02T11:00:00Z",
        "title": "Router 5xx errors", "summary": "connection resets from the payments backend again",
        "fingerprints": ["fp-router-5xx"]})).await;
    // Other service, same words: related by text only.
    let c = create(
        &app,
        json!({"service": "payments", "severity": "P3", "started_at": "2026-02-20T10:00:00Z",
        "title": "Payments backend resets upstream connections after deploy",
        "summary": "the router sees 5xx spikes: connection resets from the payments backend"}),
    )
    .await;
    // Unrelated.
    let d = create(
        &app,
        json!({"service": "search", "severity": "P3", "started_at": "2026-01-01T10:00:00Z",
        "title": "Slow index rebuild", "summary": "disk was slow"}),
    )
    .await;
    settle(&app, &a).await;

    let (s, v) = app.get(&format!("/api/incidents/{a}/related")).await;
    assert_eq!(s, 200, "{v}");
    let related = v["related"].as_array().unwrap();
    let ids: Vec<&str> = related
        .iter()
        .map(|r| r["incident_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids[0], b, "{v}");
    assert!(ids.contains(&c.as_str()), "{v}");
    assert!(!ids.contains(&d.as_str()), "{v}");
    let kinds: Vec<&str> = related[0]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "same_service",
            "time_proximity",
            "text_similarity",
            "shared_fingerprints"
        ]
    );
    let rc = related
        .iter()
        .find(|r| r["incident_id"] == c.as_str())
        .unwrap();
    assert_eq!(rc["reasons"][0]["kind"], "text_similarity", "{rc}");
    assert!(related[0]["score"].as_f64().unwrap() > rc["score"].as_f64().unwrap());

    // With append_note the result lands on the timeline as a correlation event.
    let (s, v) = tool(
        &app,
        json!({"action": "correlate", "incident_id": a, "append_note": true}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let ev_id = v["result"]["note_event_id"].as_str().unwrap().to_string();
    let (_, detail) = app.get(&format!("/api/incidents/{a}")).await;
    let ev = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == ev_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(ev["type"], "correlation");
    assert!(ev["message"].as_str().unwrap().contains(&b));
    assert_eq!(ev["meta"]["related"][0]["incident_id"], b.as_str());

    // A note appended later is searchable for similarity (the index follows the bus).
    let e = create(
        &app,
        json!({"service": "billing", "severity": "P3", "started_at": "2026-02-01T10:00:00Z",
        "title": "Invoice export stuck"}),
    )
    .await;
    let (s, _) = app
        .post(&format!("/api/incidents/{e}/events"),
            json!({"type": "note", "message": "same as the router 5xx spike after deploy: upstream connection resets from the payments backend"}))
        .await;
    assert_eq!(s, 201);
    let found = |v: &serde_json::Value| {
        v["related"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["incident_id"] == e.as_str()))
    };
    let mut v = serde_json::Value::Null;
    for _ in 0..200 {
        v = app.get(&format!("/api/incidents/{a}/related")).await.1;
        if found(&v) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(found(&v), "{v}");

    assert_error(
        &tool(
            &app,
            json!({"action": "correlate", "incident_id": "inc_20260101_0000_nothere"}),
        )
        .await,
        404,
        "not_found",
    );
    assert_error(
        &tool(&app, json!({"action": "correlate"})).await,
        422,
        "invalid_params",
    );
}

#[tokio::test]
async fn recurrence_and_weekly_digest_on_a_known_history() {
    let clock = fixed_clock(); // 2026-03-02 12:00 UTC, the Monday after ISO week 9
    let app = spawn_app_with_clock(clock.clone()).await;
    let day = time::Duration::days(1);
    // Ten days ago: an earlier "router 5xx" incident with a follow-up still open.
    clock.advance(-day * 10);
    let old = create(
        &app,
        json!({"service": "router", "severity": "P2",
        "started_at": "2026-02-20T11:00:00Z", "title": "Router 5xx rate 7%"}),
    )
    .await;
    let (s, _) = app
        .post(&format!("/api/incidents/{old}/events"),
            json!({"type": "followup", "message": "Add retries", "meta": {"title": "Add retries to router", "due": "2026-02-25"}}))
        .await;
    assert_eq!(s, 201);
    clock.advance(day * 10);
    // This week: three more of the same signature (numbers differ), one other.
    let mut ids = vec![];
    for (i, pct) in [(3, 5), (2, 9), (1, 12)] {
        clock.advance(-day * i);
        let started = clock_now_minus(&clock, 30);
        ids.push(
            create(
                &app,
                json!({"service": "router", "severity": if i == 1 { "P1" } else { "P3" },
            "started_at": started, "title": format!("Router 5xx rate {pct}%")}),
            )
            .await,
        );
        clock.advance(day * i);
    }
    let other = create(
        &app,
        json!({"service": "search", "severity": "P2", "title": "Index lag",
        "labels": ["alertname:SearchIndexLag"], "started_at": clock_now_minus(&clock, 60)}),
    )
    .await;
    // Acknowledge, mitigate, resolve at known offsets from the start.
    let (s, v) = app
        .patch(
            &format!("/api/incidents/{other}"),
            json!({"status": "acknowledged"}),
        )
        .await;
    assert_eq!(s, 200, "{v}"); // 60 min after start
    clock.advance(time::Duration::minutes(30));
    let (s, _) = app
        .patch(
            &format!("/api/incidents/{other}"),
            json!({"status": "mitigated"}),
        )
        .await;
    assert_eq!(s, 200); // 90 min
    clock.advance(time::Duration::minutes(30));
    let (s, _) = app
        .patch(
            &format!("/api/incidents/{other}"),
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(s, 200); // 120 min
    let (s, _) = app
        .patch(
            &format!("/api/incidents/{}", ids[2]),
            json!({"status": "acknowledged"}),
        )
        .await;
    assert_eq!(s, 200); // 1 day + 1 h + 30 min after its start
                        // An acknowledgement recorded before the impact started is flagged, not averaged.
    let (s, _) = app.patch(&format!("/api/incidents/{}", ids[1]),
        json!({"started_at": rfc(clock.now() + time::Duration::minutes(5)), "status": "acknowledged"})).await;
    assert_eq!(s, 200);

    let (s, v) = tool(&app, json!({"action": "recurrence", "window_days": 7})).await;
    assert_eq!(s, 200, "{v}");
    let sigs = v["result"]["signatures"].as_array().unwrap();
    assert_eq!(sigs[0]["service"], "router");
    assert_eq!(sigs[0]["key"], "router # rate #");
    assert_eq!(sigs[0]["count"], 3);
    assert_eq!(sigs[0]["over_threshold"], true);
    assert_eq!(sigs[0]["worst_severity"], "P1");
    assert_eq!(sigs[1]["key"], "SearchIndexLag");
    assert_eq!(sigs[1]["from_alert"], true);
    assert_eq!(sigs[1]["over_threshold"], false);
    let (_, v30) = tool(&app, json!({"action": "recurrence", "window_days": 30})).await;
    assert_eq!(v30["result"]["signatures"][0]["count"], 4);

    let (s, v) = tool(
        &app,
        json!({"action": "weekly_digest", "save_artifacts": true}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let d = &v["result"];
    assert_eq!(d["week"], "2026-W09"); // the week that ended on Sunday
    assert_eq!(d["incidents"], 4);
    assert_eq!(
        d["by_severity"],
        json!({"P0": 0, "P1": 1, "P2": 1, "P3": 2})
    );
    assert_eq!(d["by_service"], json!({"router": 3, "search": 1}));
    assert_eq!(d["mtta"]["n"], 2, "{d}");
    assert_eq!(d["mtta"]["median_min"], 795.0, "{d}"); // (60 + 1530) / 2
    assert_eq!(
        d["mttm"],
        json!({"n": 1, "median_min": 90.0, "p90_min": 90.0, "mean_min": 90.0})
    );
    assert_eq!(d["mttr"]["median_min"], 120.0);
    assert_eq!(d["out_of_order"][0]["incident_id"], ids[1].as_str());
    assert_eq!(d["out_of_order"][0]["metric"], "mtta");
    assert_eq!(d["top_recurring"][0]["count"], 3);
    assert_eq!(d["overdue_followups"][0]["title"], "Add retries to router");
    let w = d["recurrences_while_followup_open"].as_array().unwrap();
    assert_eq!(w.len(), 3, "{d}");
    assert!(w.iter().all(|x| x["earlier_incident_id"] == old.as_str()));
    let paths = d["artifacts"].as_array().unwrap();
    let md = std::fs::read_to_string(paths[1].as_str().unwrap()).unwrap();
    assert!(paths[0]
        .as_str()
        .unwrap()
        .ends_with("reports/incidents/weekly/2026-W09.json"));
    assert!(md.contains("# Incident digest 2026-W09"));
    assert!(md.contains("| MTTR | 120.0 | 120.0 | 120.0 | 1 |"), "{md}");
    assert!(md.contains("recurred while \"Add retries to router\""));
    let saved: Value =
        serde_json::from_slice(&std::fs::read(paths[0].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(saved["incidents"], 4);

    assert_error(
        &tool(&app, json!({"action": "recurrence", "window_days": 0})).await,
        422,
        "invalid_field",
    );
    assert_error(
        &tool(&app, json!({"action": "weekly_digest", "save": true})).await,
        422,
        "invalid_params",
    );
}

fn rfc(t: time::OffsetDateTime) -> String {
    sofiia::kernel::clock::rfc3339(t)
}

fn clock_now_minus(clock: &sofiia::kernel::clock::ManualClock, minutes: i64) -> String {
    rfc(clock.now() - time::Duration::minutes(minutes))
}

#[tokio::test]
async fn a_deleted_incident_index_is_rebuilt_from_the_store() {
    let app = spawn_app().await;
    let a = create(
        &app,
        json!({"service": "router", "severity": "P1", "title": "Router 5xx spike",
        "summary": "connection resets from payments"}),
    )
    .await;
    let b = create(
        &app,
        json!({"service": "router", "severity": "P2", "title": "Router 5xx again",
        "summary": "connection resets from payments"}),
    )
    .await;
    settle(&app, &a).await;
    let dir = app.stop().await;
    std::fs::remove_dir_all(dir.path().join("data").join("index").join("incidents")).unwrap();
    let app = spawn_in(dir, std::sync::Arc::new(sofiia::kernel::clock::SystemClock)).await;
    // /healthz answers at once; the index is rebuilt in the background.
    assert_eq!(app.get("/healthz").await.0, 200);
    settle(&app, &a).await;
    let (_, v) = app.get(&format!("/api/incidents/{a}/related")).await;
    assert_eq!(v["related"][0]["incident_id"], b.as_str(), "{v}");
    assert!(app
        .data_dir()
        .join("index/incidents/sofiia-index.json")
        .exists());
}
