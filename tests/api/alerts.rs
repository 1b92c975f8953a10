//! The alerts room over HTTP: Alertmanager's webhook and generic alerts become incidents,
//! replays change nothing, resolves mitigate, flaps stay one incident, silences suppress,
//! malformed bodies are refused naming the field, and RBAC decides who may ingest.

use std::sync::Arc;

use serde_json::{json, Value};
use sofiia::gateway::auth::issue_key;

use crate::helpers::*;

/// One Alertmanager alert as it sends it (Go's zero `endsAt` while firing).
fn am_alert(name: &str, fp: &str, status: &str, starts: &str, ends: &str) -> Value {
    json!({
        "status": status,
        "labels": {"alertname": name, "service": "gateway", "severity": "critical", "env": "prod"},
        "annotations": {"summary": format!("{name} on gateway"), "description": "p95 > 2s"},
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        "fingerprint": fp
    })
}

/// A version 4 webhook body for one group.
fn am_body(status: &str, alerts: Vec<Value>) -> Value {
    json!({
        "receiver": "sofiia",
        "status": status,
        "alerts": alerts,
        "groupLabels": {"alertname": "HighLatency"},
        "commonLabels": {"alertname": "HighLatency", "service": "gateway"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": "{}:{alertname=\"HighLatency\"}",
        "truncatedAlerts": 0
    })
}

const ZERO: &str = "0001-01-01T00:00:00Z";

async fn incidents(app: &TestApp) -> Vec<Value> {
    let (s, v) = app.get("/api/incidents?limit=100").await;
    assert_eq!(s, 200, "{v}");
    v["items"].as_array().unwrap().clone()
}

async fn events_of(app: &TestApp, id: &str) -> Vec<Value> {
    let (s, v) = app
        .get(&format!("/api/incidents/{id}/events?limit=200"))
        .await;
    assert_eq!(s, 200, "{v}");
    v["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn alertmanager_group_opens_one_incident_from_the_earliest_start_and_replays_change_nothing()
{
    let app = spawn_app_with_clock(fixed_clock()).await; // 2026-03-02 12:00 UTC
    let mut bus = app.state.bus.subscribe();
    let body = am_body(
        "firing",
        vec![
            am_alert(
                "HighLatency",
                "1a2b3c4d5e6f7a8b",
                "firing",
                "2026-03-02T11:59:00Z",
                ZERO,
            ),
            // The earliest start, with nanoseconds and an offset, as Go writes it.
            am_alert(
                "HighLatency",
                "9f8e7d6c5b4a3921",
                "firing",
                "2026-03-02T12:58:07.987654321+01:00",
                ZERO,
            ),
        ],
    );
    let (s, v) = app.post("/api/alerts/alertmanager", body.clone()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["replay"], false);
    assert_eq!(
        (v["alerts"].as_u64(), v["new"].as_u64()),
        (Some(2), Some(2))
    );
    let opened = v["triage"]["incidents_opened"].as_array().unwrap();
    assert_eq!(opened.len(), 1, "{v}");
    let id = opened[0].as_str().unwrap().to_string();

    let all = incidents(&app).await;
    assert_eq!(all.len(), 1);
    let inc = &all[0];
    assert_eq!(inc["id"], id.as_str());
    // 11:58:07.987 → to the second.
    assert_eq!(inc["started_at"], "2026-03-02T11:58:07Z");
    assert_eq!(inc["severity"], "P1", "critical maps to P1");
    assert_eq!(inc["service"], "gateway");
    assert_eq!(inc["status"], "open");
    let mut fps: Vec<&str> = inc["fingerprints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    fps.sort();
    assert_eq!(fps, ["1a2b3c4d5e6f7a8b", "9f8e7d6c5b4a3921"]);
    let evs = events_of(&app, &id).await;
    let alert_ev = evs.iter().find(|e| e["type"] == "alert").unwrap();
    assert_eq!(
        alert_ev["meta"]["group_key"],
        "{}:{alertname=\"HighLatency\"}"
    );

    // Alertmanager repeats the notification (repeat_interval, or a retry): nothing changes.
    let (s, v) = app.post("/api/alerts/alertmanager", body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["replay"], true);
    assert!(v.get("triage").is_none(), "{v}");
    assert_eq!(incidents(&app).await.len(), 1);
    assert_eq!(events_of(&app, &id).await.len(), evs.len());

    let (_, a) = app.get("/api/alerts/1a2b3c4d5e6f7a8b").await;
    assert_eq!(a["status"], "firing");
    assert_eq!(a["incident_id"], id.as_str());
    assert_eq!(
        a["notifications"], 1,
        "a replay is not a second notification"
    );
    let (_, st) = app.get("/api/alerts/stats").await;
    let am = &st["sources"]["alertmanager"];
    assert_eq!(
        (
            am["notifications"].as_u64(),
            am["replays"].as_u64(),
            am["alerts"].as_u64()
        ),
        (Some(2), Some(1), Some(4))
    );
    assert_eq!(
        (am["new"].as_u64(), am["deduplicated"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(am["dedup_ratio"], 0.5);
    assert_eq!(st["untriaged"], 0);

    let mut kinds = Vec::new();
    while let Ok(e) = bus.try_recv() {
        kinds.push(e.event.kind());
    }
    assert_eq!(
        kinds.iter().filter(|k| **k == "alert.received").count(),
        2,
        "{kinds:?}"
    );
}

#[tokio::test]
async fn resolving_every_alert_mitigates_and_a_flap_reopens_the_same_incident() {
    let clock = fixed_clock();
    let app = spawn_app_with_clock(clock.clone()).await;
    let fire = |starts: &str| {
        am_body(
            "firing",
            vec![am_alert(
                "HighLatency",
                "00000000000000aa",
                "firing",
                starts,
                ZERO,
            )],
        )
    };
    let (s, v) = app
        .post("/api/alerts/alertmanager", fire("2026-03-02T11:55:00Z"))
        .await;
    assert_eq!(s, 200, "{v}");
    let id = v["triage"]["incidents_opened"][0]
        .as_str()
        .unwrap()
        .to_string();

    clock.advance(time::Duration::minutes(3));
    let resolved = am_body(
        "resolved",
        vec![am_alert(
            "HighLatency",
            "00000000000000aa",
            "resolved",
            "2026-03-02T11:55:00Z",
            "2026-03-02T12:02:30Z",
        )],
    );
    let (s, v) = app.post("/api/alerts/alertmanager", resolved).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["triage"]["incidents_resolved"], json!([id]));
    let (_, d) = app.get(&format!("/api/incidents/{id}")).await;
    // P1: mitigated, never closed by its alerts.
    assert_eq!(d["incident"]["status"], "mitigated");
    let evs = events_of(&app, &id).await;
    assert!(evs.iter().any(|e| e["type"] == "alert_resolved"), "{evs:?}");
    let (_, a) = app.get("/api/alerts/00000000000000aa").await;
    assert_eq!(a["status"], "resolved");
    assert_eq!(a["resolved_at"], "2026-03-02T12:02:30Z");

    // Fires again 5 minutes later (inside the 30-minute flap window): the same incident.
    clock.advance(time::Duration::minutes(5));
    let (s, v) = app
        .post("/api/alerts/alertmanager", fire("2026-03-02T12:07:00Z"))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["triage"]["incidents_opened"], json!([]), "{v}");
    assert_eq!(v["triage"]["incidents_updated"], json!([id]));
    assert_eq!(incidents(&app).await.len(), 1);
    let (_, d) = app.get(&format!("/api/incidents/{id}")).await;
    assert_eq!(d["incident"]["status"], "open");
    assert_eq!(d["incident"]["started_at"], "2026-03-02T11:55:00Z");
    let (_, a) = app.get("/api/alerts/00000000000000aa").await;
    assert_eq!(a["flaps"], 1);
    assert_eq!(a["status"], "firing");
    let evs = events_of(&app, &id).await;
    let again = evs
        .iter()
        .find(|e| e["type"] == "alert" && e["meta"]["flaps"] == 1)
        .unwrap();
    assert!(again["message"].as_str().unwrap().contains("firing again"));
}

#[tokio::test]
async fn malformed_payloads_name_the_field_and_write_nothing() {
    let app = spawn_app_with_clock(fixed_clock()).await;
    let ok = am_body(
        "firing",
        vec![am_alert(
            "X",
            "00000000000000bb",
            "firing",
            "2026-03-02T11:00:00Z",
            ZERO,
        )],
    );
    let mut v3 = ok.clone();
    v3["version"] = json!("3");
    let mut bad_start = ok.clone();
    bad_start["alerts"][0]["startsAt"] = json!("11 o'clock");
    let mut second_bad = ok.clone();
    second_bad["alerts"] = json!([ok["alerts"][0].clone(), {"status": "firing"}]);
    for (body, field) in [
        (v3, "version"),
        (bad_start, "alerts[0].startsAt"),
        (second_bad, "alerts[1].labels"),
    ] {
        let got = app.post("/api/alerts/alertmanager", body).await;
        assert_error(&got, 422, "invalid_alert");
        let msg = got.1["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with(&format!("{field}:")), "{msg}");
    }
    let got = app
        .post_raw(
            "/api/alerts/alertmanager",
            "application/json",
            "{\"version\":",
        )
        .await;
    assert_error(&got, 400, "invalid_json");
    let got = app
        .post(
            "/api/alerts",
            json!({"service": "api", "severity": "critical", "summary": "down",
                   "starts_at": "2026-03-02T11:00:00Z", "servce": "typo"}),
        )
        .await;
    assert_error(&got, 422, "invalid_alert");
    assert!(got.1["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("servce:"));
    let too_big = "x".repeat(2 * 1024 * 1024);
    let (s, _) = app
        .post_raw("/api/alerts/alertmanager", "application/json", too_big)
        .await;
    assert_eq!(s, 413);

    let (_, l) = app.get("/api/alerts").await;
    assert_eq!(l["total"], 0, "{l}");
    assert_eq!(incidents(&app).await.len(), 0);
    let (_, st) = app.get("/api/alerts/stats").await;
    assert_eq!(st["sources"], json!({}));
}

#[tokio::test]
async fn silenced_alerts_are_stored_and_listed_as_suppressed_and_open_nothing() {
    let clock = fixed_clock();
    let app = spawn_app_with_clock(clock.clone()).await;
    let (s, sil) = app
        .post(
            "/api/alerts/silences",
            json!({"matchers": ["service=\"db\"", "alertname=~\"Disk.*\""],
                   "until": "2026-03-02T13:00:00Z", "reason": "disk swap"}),
        )
        .await;
    assert_eq!(s, 201, "{sil}");
    let sid = sil["id"].as_str().unwrap().to_string();
    let generic = |starts: &str| {
        json!({"service": "db", "severity": "warning", "summary": "disk 91%",
               "labels": {"alertname": "DiskFull"}, "starts_at": starts})
    };
    let (s, v) = app
        .post("/api/alerts", generic("2026-03-02T11:50:00Z"))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["suppressed"], 1);
    let fp = v["fingerprints"][0].as_str().unwrap().to_string();
    let (_, l) = app.get("/api/alerts?status=suppressed").await;
    assert_eq!(l["total"], 1);
    assert_eq!(l["items"][0]["suppressed_by"], format!("silence:{sid}"));
    assert_eq!(incidents(&app).await.len(), 0);
    // A label the regex only partly matches is not silenced (anchored): opens an incident.
    let (_, v) = app
        .post(
            "/api/alerts",
            json!({"service": "db", "severity": "warning", "summary": "disk io",
                   "labels": {"alertname": "HighDisk"}, "starts_at": "2026-03-02T11:51:00Z"}),
        )
        .await;
    assert_eq!(v["suppressed"], 0, "{v}");
    assert_eq!(incidents(&app).await.len(), 1);
    assert_eq!(incidents(&app).await[0]["severity"], "P2");

    let (s, v) = app
        .post(&format!("/api/alerts/silences/{sid}/expire"), json!({}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["expired_at"].is_string());
    clock.advance(time::Duration::minutes(1));
    // The next notification of the same alert fires: same fingerprint, now an incident.
    let (_, v) = app
        .post("/api/alerts", generic("2026-03-02T11:50:00Z"))
        .await;
    assert_eq!(v["replay"], true, "the same body is a replay: {v}");
    let (_, v) = app
        .post(
            "/api/alerts",
            json!({"service": "db", "severity": "warning", "summary": "disk 93%",
                   "labels": {"alertname": "DiskFull"}, "starts_at": "2026-03-02T11:50:00Z"}),
        )
        .await;
    assert_eq!(v["fingerprints"][0], fp.as_str());
    assert_eq!(v["suppressed"], 0, "{v}");
    let (_, a) = app.get(&format!("/api/alerts/{fp}")).await;
    assert_eq!(a["status"], "firing");
    assert!(a["incident_id"].is_string(), "{a}");
}

#[tokio::test]
async fn an_alertmanager_key_may_ingest_only_and_the_scheduler_triages() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let am_key = issue_key(&data, "alertmanager", None).unwrap().0;
    let monitor_key = issue_key(&data, "monitor", None).unwrap().0;
    let app = spawn_configured(dir, fixed_clock(), |s| {
        s.console_api_key = Some("operator-test-key-0123456789".into());
    })
    .await;
    let post = |key: Option<String>, path: &'static str, body: Value| {
        let mut r = app.client.post(app.url(path)).json(&body);
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        async move { split(r.send().await.unwrap()).await }
    };
    let body = am_body(
        "firing",
        vec![am_alert(
            "HighLatency",
            "00000000000000cc",
            "firing",
            "2026-03-02T11:00:00Z",
            ZERO,
        )],
    );
    let (s, _) = post(None, "/api/alerts/alertmanager", body.clone()).await;
    assert_eq!(s, 401);
    let got = post(
        Some(monitor_key.clone()),
        "/api/alerts/alertmanager",
        body.clone(),
    )
    .await;
    assert_eq!(got.0, 403, "{}", got.1);
    let (s, v) = post(Some(am_key.clone()), "/api/alerts/alertmanager", body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["triage"]["incidents_opened"].as_array().unwrap().len(), 1);
    // The incident is attributed to the alertmanager agent, and the call is audited.
    let r = app
        .client
        .get(app.url("/api/incidents"))
        .bearer_auth("operator-test-key-0123456789")
        .send()
        .await
        .unwrap();
    let (_, l) = split(r).await;
    assert_eq!(l["items"][0]["created_by"], "alertmanager");
    let r = app
        .client
        .get(app.url("/api/audit?tool=alerts_tool"))
        .bearer_auth("operator-test-key-0123456789")
        .send()
        .await
        .unwrap();
    let (s, audit) = split(r).await;
    assert_eq!(s, 200, "{audit}");
    assert!(audit.to_string().contains("ingest_alertmanager"), "{audit}");
    // The webhook key reads nothing; a monitor key may list.
    let r = app
        .client
        .get(app.url("/api/alerts"))
        .bearer_auth(&am_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = app
        .client
        .get(app.url("/api/alerts"))
        .bearer_auth(&monitor_key)
        .send()
        .await
        .unwrap();
    let (s, l) = split(r).await;
    assert_eq!(s, 200, "{l}");
    assert_eq!(l["items"][0]["fingerprint"], "00000000000000cc");

    // The scheduled job runs alerts_tool.triage as the scheduler (nothing left to do).
    let r = app
        .client
        .post(app.url("/api/jobs/alert_triage/run"))
        .bearer_auth("operator-test-key-0123456789")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let (s, run) = split(r).await;
    assert_eq!(s, 202, "{run}");
}

#[tokio::test]
async fn an_alert_queued_before_a_crash_is_triaged_by_the_next_pass() {
    // Intake commits an alert and its triage queue entry together; a process killed right
    // after that commit leaves both, and the next triage pass (the job, or the next intake)
    // opens the incident.
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_in(dir, fixed_clock()).await;
    let n = sofiia::alerts::model::parse_generic(&json!({
        "service": "billing", "severity": "critical", "summary": "payments failing",
        "starts_at": "2026-03-02T11:40:00Z"}))
    .unwrap();
    let fp = n.alerts[0].fingerprint.clone();
    let dir = app.stop().await;
    // Store the alert and its queue entry with the room's own tables, as a killed intake
    // leaves them (committed, not triaged).
    {
        let store = sofiia::app::open_store(&dir.path().join("data")).unwrap();
        let alert = json!({
            "fingerprint": fp, "source": "api", "group_key": "api:billing", "status": "firing",
            "suppressed_by": null, "labels": {"service": "billing"}, "annotations": {},
            "annotations_clipped": false, "summary": "payments failing", "service": "billing",
            "env": "prod", "severity": "P1", "open_incident": true, "route": null,
            "starts_at": "2026-03-02T11:40:00Z", "ends_at": null,
            "first_seen": "2026-03-02T12:00:00Z", "last_seen": "2026-03-02T12:00:00Z",
            "notifications": 1, "flaps": 0, "resolved_at": null, "incident_id": null,
            "generator_url": null, "receiver": null, "truncated_alerts": 0,
            "acked_at": null, "acked_by": null});
        let bytes = serde_json::to_vec(&alert).unwrap();
        let fp2 = fp.clone();
        store
            .write(move |txn| {
                txn.open(sofiia::alerts::tables::ALERTS)?
                    .insert(fp2.as_str(), bytes.as_slice())?;
                txn.open(sofiia::alerts::tables::UNTRIAGED)?
                    .insert(fp2.as_str(), 1i64)?;
                Ok(())
            })
            .await
            .unwrap();
        store.shutdown();
    }
    let app = spawn_in(dir, fixed_clock()).await;
    let (_, st) = app.get("/api/alerts/stats").await;
    assert_eq!(st["untriaged"], 1);
    // The scheduled alert_triage job (as the scheduler agent, through alerts_tool.triage).
    let (s, r) = app.post("/api/jobs/alert_triage/run", json!({})).await;
    assert_eq!(s, 202, "{r}");
    let id = r["job_run_id"].as_str().unwrap().to_string();
    let mut run = Value::Null;
    for _ in 0..500 {
        run = app.get(&format!("/api/job-runs/{id}")).await.1;
        if !matches!(run["status"].as_str(), Some("running" | "queued")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        run["summary"], "1 alert(s) triaged: 1 incident(s) opened, 0 updated, 0 resolved",
        "{run}"
    );
    assert_eq!(
        run["result"]["incidents_opened"].as_array().unwrap().len(),
        1,
        "{run}"
    );
    let all = incidents(&app).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["started_at"], "2026-03-02T11:40:00Z");
    assert_eq!(all[0]["fingerprints"], json!([fp]));
    let (_, st) = app.get("/api/alerts/stats").await;
    assert_eq!(st["untriaged"], 0);
}

#[tokio::test]
async fn agents_ingest_through_the_tool_endpoint_and_ack_lists_and_hand_made_incidents_work() {
    let app = spawn_app_with_clock(fixed_clock()).await;
    // An incident opened by hand that already carries the alert's fingerprint.
    let (s, hand) = app
        .post(
            "/api/incidents",
            json!({"service": "gateway", "severity": "P2", "title": "Latency, by hand",
                   "fingerprints": ["00000000000000dd"]}),
        )
        .await;
    assert_eq!(s, 201, "{hand}");
    let hand_id = hand["id"].as_str().unwrap().to_string();
    let body = am_body(
        "firing",
        vec![am_alert(
            "HighLatency",
            "00000000000000dd",
            "firing",
            "2026-03-02T11:30:00Z",
            ZERO,
        )],
    );
    let (s, v) = app
        .post(
            "/v1/tools/execute",
            json!({"tool": "alerts_tool", "action": "ingest_alertmanager", "params": body}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let r = &v["result"];
    assert_eq!(r["triage"]["incidents_opened"], json!([]), "{v}");
    assert_eq!(r["triage"]["incidents_updated"], json!([hand_id]));
    assert_eq!(incidents(&app).await.len(), 1);

    // A generic alert on another service, then filters.
    let (s, v) = app
        .post(
            "/api/alerts",
            json!({"service": "billing", "severity": "info", "summary": "slow invoices",
                   "starts_at": "2026-03-02T11:45:00Z", "fingerprint": "billing-slow-1"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, l) = app.get("/api/alerts?service=billing").await;
    assert_eq!(l["total"], 1);
    assert_eq!(l["items"][0]["severity"], "P3", "info maps to P3");
    let (_, l) = app
        .get("/api/alerts?status=firing&since=2026-03-02T11:00:00Z")
        .await;
    assert_eq!(l["total"], 2);
    let (_, l) = app.get("/api/alerts?since=2026-03-02T12:00:01Z").await;
    assert_eq!(l["total"], 0);
    let got = app.get("/api/alerts?status=pending").await;
    assert_error(&got, 422, "invalid_field");

    // Ack by incident: its alerts are acknowledged, and so is the open incident.
    let (s, v) = app
        .post("/api/alerts/ack", json!({"incident_id": hand_id}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["acknowledged"], json!(["00000000000000dd"]));
    assert_eq!(v["incident_status"], "acknowledged");
    let (_, a) = app.get("/api/alerts/00000000000000dd").await;
    assert_eq!(a["acked_by"], "operator");
    let (s, v) = app
        .post("/api/alerts/ack", json!({"fingerprint": "billing-slow-1"}))
        .await;
    assert_eq!(s, 200, "{v}");
    let got = app.post("/api/alerts/ack", json!({})).await;
    assert_error(&got, 422, "invalid_field");
    let got = app.get("/api/alerts/nope-not-here").await;
    assert_eq!(got.0, 404, "{}", got.1);
}

#[tokio::test]
async fn a_refire_after_the_flap_window_is_no_flap_and_after_close_opens_a_new_incident() {
    let clock = fixed_clock();
    let app = spawn_app_with_clock(clock.clone()).await;
    let fire = |starts: &str| {
        am_body(
            "firing",
            vec![am_alert(
                "HighLatency",
                "00000000000000ee",
                "firing",
                starts,
                ZERO,
            )],
        )
    };
    let resolve = |starts: &str, ends: &str| {
        am_body(
            "resolved",
            vec![am_alert(
                "HighLatency",
                "00000000000000ee",
                "resolved",
                starts,
                ends,
            )],
        )
    };
    let (_, v) = app
        .post("/api/alerts/alertmanager", fire("2026-03-02T11:50:00Z"))
        .await;
    let id = v["triage"]["incidents_opened"][0]
        .as_str()
        .unwrap()
        .to_string();
    let (_, v) = app
        .post(
            "/api/alerts/alertmanager",
            resolve("2026-03-02T11:50:00Z", "2026-03-02T12:00:00Z"),
        )
        .await;
    assert_eq!(v["triage"]["incidents_resolved"], json!([id]));
    // 31 minutes later (window 30): the incident is still mitigated, so the alert rejoins it,
    // but it is not a flap.
    clock.advance(time::Duration::minutes(31));
    let (_, v) = app
        .post("/api/alerts/alertmanager", fire("2026-03-02T12:31:00Z"))
        .await;
    assert_eq!(v["triage"]["incidents_updated"], json!([id]), "{v}");
    let (_, a) = app.get("/api/alerts/00000000000000ee").await;
    assert_eq!(a["flaps"], 0);
    // Resolved again and the incident closed by a person: the next fire is a new incident.
    let (_, _) = app
        .post(
            "/api/alerts/alertmanager",
            resolve("2026-03-02T12:31:00Z", "2026-03-02T12:31:30Z"),
        )
        .await;
    let (s, c) = app
        .post(
            &format!("/api/incidents/{id}/close"),
            json!({"message": "fixed"}),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    clock.advance(time::Duration::minutes(1));
    let (_, v) = app
        .post("/api/alerts/alertmanager", fire("2026-03-02T12:32:00Z"))
        .await;
    let opened = v["triage"]["incidents_opened"].as_array().unwrap();
    assert_eq!(opened.len(), 1, "{v}");
    assert_ne!(opened[0], id.as_str());
    let all = incidents(&app).await;
    assert_eq!(all.len(), 2);
    let new = all.iter().find(|i| i["id"] == opened[0]).unwrap();
    assert_eq!(new["started_at"], "2026-03-02T12:32:00Z");
}

/// sofiia as a child process on a free port over `dir/data`; its base URL.
fn start_process(dir: &std::path::Path) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sofiia"))
        .current_dir(dir)
        .env("DATA_DIR", dir.join("data"))
        .env("PORT", "0")
        .env("RUST_LOG", "warn")
        .env_remove("CONFIG_DIR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next().unwrap().unwrap();
    let base = line.rsplit(' ').next().unwrap().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    std::thread::spawn(move || for _ in lines {});
    (child, base)
}

#[tokio::test]
async fn kill_9_during_intake_loses_no_acknowledged_alert_and_triage_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = start_process(dir.path());
    let client = sofiia::net::client();
    let acked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut tasks = Vec::new();
    for i in 0..60 {
        let (client, base, acked) = (client.clone(), base.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let fp = format!("crash-{i:03}");
            let body = json!({"service": format!("svc{}", i % 7), "severity": "critical",
                              "summary": format!("alert {i}"), "fingerprint": fp,
                              "starts_at": "2026-03-02T11:00:00Z"});
            let r = client
                .post(format!("{base}/api/alerts"))
                .json(&body)
                .send()
                .await;
            if r.is_ok_and(|r| r.status().as_u16() == 200) {
                acked.lock().unwrap().push(fp);
            }
        }));
    }
    // Kill it (SIGKILL) while requests are in flight: after some were answered.
    for _ in 0..2000 {
        if acked.lock().unwrap().len() >= 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 5, "{acked:?}");

    let (mut child, base) = start_process(dir.path());
    let get = |path: String| {
        let c = client.clone();
        async move { split(c.get(path).send().await.unwrap()).await }
    };
    let (s, r) = split(
        client
            .post(format!("{base}/api/alerts/triage"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["failed"], json!([]), "{r}");
    let (_, l) = get(format!("{base}/api/alerts?limit=500")).await;
    let stored: std::collections::HashMap<String, Value> = l["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["fingerprint"].as_str().unwrap().to_string(), a.clone()))
        .collect();
    for fp in &acked {
        let a = stored
            .get(fp)
            .unwrap_or_else(|| panic!("{fp} was answered 200 but is lost"));
        assert!(a["incident_id"].is_string(), "{fp} has no incident: {a}");
    }
    // Every stored alert (answered or not) is triaged: one incident per service group.
    for a in stored.values() {
        assert!(a["incident_id"].is_string(), "{a}");
    }
    let (_, st) = get(format!("{base}/api/alerts/stats")).await;
    assert_eq!(st["untriaged"], 0, "{st}");
    let (_, incs) = get(format!("{base}/api/incidents?limit=100")).await;
    let services: std::collections::BTreeSet<&str> = stored
        .values()
        .map(|a| a["service"].as_str().unwrap())
        .collect();
    assert_eq!(
        incs["items"].as_array().unwrap().len(),
        services.len(),
        "one incident per group: {incs}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn alert_received_and_resolved_reach_ws_events() {
    let app = spawn_app_with_clock(fixed_clock()).await;
    let url = format!(
        "{}/ws/events?types=alert.received,alert.resolved",
        app.base.replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let a = |status: &str, ends: &str| {
        am_body(
            status,
            vec![am_alert(
                "HighLatency",
                "00000000000000ff",
                status,
                "2026-03-02T11:00:00Z",
                ends,
            )],
        )
    };
    let (s, _) = app
        .post("/api/alerts/alertmanager", a("firing", ZERO))
        .await;
    assert_eq!(s, 200);
    let f = next_frame(&mut ws).await.expect("alert.received");
    assert_eq!(f["type"], "alert.received");
    assert_eq!(f["data"]["alert"]["fingerprint"], "00000000000000ff");
    assert_eq!(f["data"]["alert"]["status"], "firing");
    let (s, _) = app
        .post(
            "/api/alerts/alertmanager",
            a("resolved", "2026-03-02T11:59:00Z"),
        )
        .await;
    assert_eq!(s, 200);
    let f = next_frame(&mut ws).await.expect("alert.resolved");
    assert_eq!(f["type"], "alert.resolved");
    assert_eq!(f["data"]["alert"]["resolved_at"], "2026-03-02T11:59:00Z");
}

/// The next JSON frame of a WebSocket (skipping the greeting and heartbeats), within two seconds.
async fn next_frame(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Option<Value> {
    use futures_util::StreamExt;
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(2), ws.next())
            .await
            .ok()??
            .ok()?;
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).ok()?;
            if v["type"] != "heartbeat" && v["type"] != "hello" {
                return Some(v);
            }
        }
    }
}
