use serde_json::json;

use redb::TableHandle;

use crate::helpers::*;

#[tokio::test]
async fn incident_lifecycle_sets_timestamps_once_and_records_every_change() {
    let clock = fixed_clock();
    let app = spawn_app_with_clock(clock.clone()).await;
    let (s, inc) = app
        .post(
            "/api/incidents",
            json!({"service":"gateway","severity":"P1","title":"Gateway 5xx rate >5%","env":"prod",
                   "started_at":"2026-03-02T11:40:00Z","labels":["edge","edge"],"fingerprints":["fp1"]}),
        )
        .await;
    assert_eq!(s, 201, "{inc}");
    let id = inc["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("inc_20260302_1200_"), "{id}");
    assert_eq!(id.len(), "inc_20260302_1200_".len() + 12);
    assert_eq!(inc["status"], "open");
    assert_eq!(inc["labels"], json!(["edge"]));
    assert_eq!(inc["started_at"], "2026-03-02T11:40:00Z");

    clock.advance(time::Duration::minutes(3));
    let (s, v) = app
        .patch(
            &format!("/api/incidents/{id}"),
            json!({"status":"acknowledged","owner":"ivan"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["acknowledged_at"], "2026-03-02T12:03:00Z");
    assert_eq!(v["owner"], "ivan");

    clock.advance(time::Duration::minutes(10));
    let (_, v) = app
        .patch(
            &format!("/api/incidents/{id}"),
            json!({"status":"resolved","severity":"P0"}),
        )
        .await;
    assert_eq!(v["resolved_at"], "2026-03-02T12:13:00Z");
    assert_eq!(
        v["mitigated_at"],
        serde_json::Value::Null,
        "skipped states keep no timestamp"
    );
    assert_eq!(v["severity"], "P0");

    // Backwards (other than reopen) is refused and changes nothing.
    let r = app
        .patch(
            &format!("/api/incidents/{id}"),
            json!({"status":"acknowledged"}),
        )
        .await;
    assert_error(&r, 422, "invalid_transition");

    clock.advance(time::Duration::minutes(1));
    let (s, v) = app
        .post(
            &format!("/api/incidents/{id}/close"),
            json!({"message":"done"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "closed");
    assert_eq!(v["closed_at"], "2026-03-02T12:14:00Z");
    assert_error(
        &app.post(&format!("/api/incidents/{id}/close"), json!({}))
            .await,
        409,
        "conflict",
    );

    clock.advance(time::Duration::minutes(1));
    let (s, v) = app
        .post_raw(
            &format!("/api/incidents/{id}/reopen"),
            "application/json",
            "",
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "open");
    // Reopening keeps the first-entry timestamps.
    assert_eq!(v["resolved_at"], "2026-03-02T12:13:00Z");
    clock.advance(time::Duration::minutes(1));
    let (_, v) = app
        .patch(
            &format!("/api/incidents/{id}"),
            json!({"status":"resolved"}),
        )
        .await;
    assert_eq!(v["resolved_at"], "2026-03-02T12:13:00Z");

    let (s, d) = app.get(&format!("/api/incidents/{id}")).await;
    assert_eq!(s, 200);
    let kinds: Vec<&str> = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "status_change",
            "status_change",
            "update",
            "status_change",
            "severity_change",
            "status_change",
            "status_change",
            "status_change"
        ]
    );
    let seqs: Vec<u64> = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
    assert_eq!(d["events"][2]["meta"]["fields"], json!(["owner"]));
    assert_eq!(
        d["events"][3]["meta"],
        json!({"from":"acknowledged","to":"resolved"})
    );
    assert_eq!(d["events"][5]["message"], "done");

    // A no-op update writes nothing.
    let (_, v) = app
        .patch(&format!("/api/incidents/{id}"), json!({"owner":"ivan"}))
        .await;
    assert_eq!(v["updated_at"], "2026-03-02T12:16:00Z");
    let (_, d2) = app.get(&format!("/api/incidents/{id}/events")).await;
    assert_eq!(d2["items"].as_array().unwrap().len(), 8);
    let (_, page) = app
        .get(&format!("/api/incidents/{id}/events?after=6&limit=1"))
        .await;
    assert_eq!(page["items"][0]["seq"], 7);
    assert_eq!(page["next_cursor"], "7");
}

#[tokio::test]
async fn followups_can_be_added_closed_and_summarised() {
    let clock = fixed_clock();
    let app = spawn_app_with_clock(clock.clone()).await;
    let a = app.create("gateway", "P1", "Gateway down").await;
    let b = app.create("router", "P0", "Router down").await;
    let c = app.create("gateway", "P3", "Gateway slow").await;
    app.post(&format!("/api/incidents/{c}/close"), json!({}))
        .await;

    let (s, f1) = app
        .post(&format!("/api/incidents/{a}/events"),
              json!({"type":"followup","message":"","meta":{"title":"Add 5xx alert","owner":"ivan","due":"2026-03-01","priority":"P1"}}))
        .await;
    assert_eq!(s, 201, "{f1}");
    assert_eq!(f1["meta"]["status"], "open");
    assert_eq!(f1["meta"]["due"], "2026-03-01T23:59:59.999Z");
    let (_, f2) = app
        .post(&format!("/api/incidents/{a}/events"),
              json!({"type":"followup","message":"Write runbook","meta":{"due":"2026-03-20T00:00:00Z"}}))
        .await;
    assert_eq!(f2["meta"]["title"], "Write runbook");
    assert_eq!(f2["meta"]["priority"], "P2");
    let (_, _f3) = app
        .post(
            &format!("/api/incidents/{b}/events"),
            json!({"type":"followup","meta":{"title":"Router canary","due":"2026-02-01"}}),
        )
        .await;
    // An ordinary note is not a follow-up.
    let (s, _) = app
        .post(
            &format!("/api/incidents/{a}/events"),
            json!({"type":"note","message":"looking"}),
        )
        .await;
    assert_eq!(s, 201);

    let (s, sum) = app
        .get("/api/followups/summary?service=gateway&env=prod&window_days=30")
        .await;
    assert_eq!(s, 200, "{sum}");
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| {
                x["event_id"]
                    .as_str()
                    .unwrap_or(x["id"].as_str().unwrap_or(""))
                    .to_string()
            })
            .collect()
    };
    assert_eq!(
        ids(&sum["open_incidents"]),
        vec![a.clone()],
        "P3 and other services excluded"
    );
    assert_eq!(ids(&sum["open_followups"]).len(), 2);
    assert_eq!(
        ids(&sum["overdue_followups"]),
        vec![f1["id"].as_str().unwrap().to_string()]
    );
    assert_eq!(sum["stats"]["overdue_followups"], 1);

    let (_, all) = app.get("/api/followups/summary").await;
    assert_eq!(all["stats"]["open_p0"], 1);
    assert_eq!(all["stats"]["open_followups"], 3);
    assert_eq!(all["stats"]["overdue_followups"], 2);

    // Time passes: f2 becomes overdue too.
    clock.advance(time::Duration::days(20));
    let (_, sum) = app.get("/api/followups/summary?service=gateway").await;
    assert_eq!(sum["stats"]["overdue_followups"], 2);

    // Close f1: it leaves the open list; closing twice is a conflict.
    let f1_id = f1["id"].as_str().unwrap();
    let (s, done) = app
        .post(
            &format!("/api/incidents/{a}/followups/{f1_id}/close"),
            json!({"message":"alert added"}),
        )
        .await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["meta"]["status"], "done");
    assert!(done["meta"]["done_at"].is_string());
    assert_error(
        &app.post(
            &format!("/api/incidents/{a}/followups/{f1_id}/close"),
            json!({}),
        )
        .await,
        409,
        "conflict",
    );
    // A follow-up id under the wrong incident is not found.
    assert_error(
        &app.post(
            &format!("/api/incidents/{b}/followups/{f1_id}/close"),
            json!({}),
        )
        .await,
        404,
        "not_found",
    );
    let (_, sum) = app.get("/api/followups/summary?service=gateway").await;
    assert_eq!(sum["stats"]["open_followups"], 1);
    let (_, d) = app.get(&format!("/api/incidents/{a}")).await;
    let last = d["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["type"], "followup_done");
    assert_eq!(last["meta"]["followup_id"], f1_id);

    // Window statistics move with time; open P0/P1 incidents and open follow-ups do not age out.
    clock.advance(time::Duration::days(40));
    let (_, sum) = app.get("/api/followups/summary?window_days=30").await;
    assert_eq!(sum["stats"]["incidents_in_window"], 0);
    assert_eq!(sum["stats"]["open_p0"], 1);
    assert_eq!(sum["stats"]["open_followups"], 2);
    assert_eq!(sum["stats"]["overdue_followups"], 2);
    let (_, sum) = app
        .get("/api/followups/summary?env=PROD&window_days=61")
        .await;
    assert_eq!(
        sum["stats"]["incidents_in_window"], 3,
        "env filters ignore case"
    );
}

/// A follow-up's `meta.status` must be a known status: a number, an object or another word is
/// a 422 naming the field, and nothing is appended.
#[tokio::test]
async fn a_followup_with_an_unknown_status_is_refused() {
    let app = spawn_app().await;
    let id = app.create("gateway", "P1", "Gateway down").await;
    let events = format!("/api/incidents/{id}/events");
    let (_, before) = app.get(&format!("/api/incidents/{id}")).await;
    let n_before = before["events"].as_array().unwrap().len();
    for status in [json!(5), json!(true), json!({"s": "open"}), json!("closed")] {
        let got = app
            .post(
                &events,
                json!({"type":"followup","meta":{"title":"Add alert","status": status}}),
            )
            .await;
        assert_error(&got, 422, "invalid_field");
        assert_eq!(got.1["error"]["field"], "meta.status", "{}", got.1);
    }
    let (_, after) = app.get(&format!("/api/incidents/{id}")).await;
    assert_eq!(
        after["events"].as_array().unwrap().len(),
        n_before,
        "nothing written"
    );
    let (_, sum) = app.get("/api/followups/summary").await;
    assert_eq!(sum["stats"]["open_followups"], 0);
    // The known ones still work.
    for status in ["open", "done"] {
        let (s, f) = app
            .post(
                &events,
                json!({"type":"followup","meta":{"title":"Add alert","status": status}}),
            )
            .await;
        assert_eq!(s, 201, "{f}");
        assert_eq!(f["meta"]["status"], status);
    }
}

#[tokio::test]
async fn artifacts_are_sanitised_checksummed_and_never_overwritten() {
    let app = spawn_app().await;
    let id = app.create("gateway", "P2", "Artifacts").await;
    let path = format!("/api/incidents/{id}/artifacts");
    let (s, a) = app
        .post(
            &path,
            json!({"name":"../../etc/postmortem.md","content":"# Postmortem\n"}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(a["name"], "postmortem.md");
    assert_eq!(a["format"], "md");
    assert_eq!(a["size_bytes"], 13);
    // sha256("# Postmortem\n")
    assert_eq!(
        a["sha256"],
        "c8119498e63306b35cbafb6adfec94c45856c2eb91a3c3df404ef66d1cab4706"
    );
    assert!(app
        .data_dir()
        .join("incidents")
        .join(&id)
        .join("postmortem.md")
        .is_file());
    assert!(!app.data_dir().join("etc").exists());

    let (s, b) = app
        .post(
            &path,
            json!({"filename":"postmortem.md","content":"second"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["name"], "postmortem-2.md");

    let (s, j) = app
        .post(
            &path,
            json!({"name":"triage.json","content_base64":"eyJvayI6dHJ1ZX0="}),
        )
        .await;
    assert_eq!(s, 201, "{j}");
    assert_eq!(j["size_bytes"], 11);

    let r = app
        .client
        .get(app.url(&format!("{path}/postmortem.md")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/markdown; charset=utf-8");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.text().await.unwrap(), "# Postmortem\n");

    let (_, list) = app.get(&path).await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["postmortem.md", "postmortem-2.md", "triage.json"]
    );
    let (_, d) = app.get(&format!("/api/incidents/{id}")).await;
    let kinds: Vec<&str> = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "artifact").count(), 3);

    // Downloads go through the gateway too: the audit log shows them, sized.
    let (_, audit) = app.get("/api/audit?tool=oncall_tool").await;
    let get = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "incident_artifact_get")
        .expect("download audited")
        .clone();
    assert!(get["output_size"].as_u64().unwrap() > 13);
    let attach = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "incident_attach_artifact")
        .unwrap()
        .clone();
    assert!(
        attach["output_size"].as_u64().unwrap() > 100,
        "sized by the artifact record: {attach}"
    );
    assert_error(&app.get(&format!("{path}/nope.md")).await, 404, "not_found");
}

#[tokio::test]
async fn ids_do_not_collide_under_a_burst_in_one_minute() {
    let clock = fixed_clock();
    let app = spawn_app_with_clock(clock).await;
    let mut set = std::collections::HashSet::new();
    let mut handles = Vec::new();
    for i in 0..300 {
        let c = app.client.clone();
        let url = app.url("/api/incidents");
        handles.push(tokio::spawn(async move {
            let r = c
                .post(url)
                .json(&json!({"service":"s","severity":"P3","title":format!("t{i}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            r.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        }));
    }
    for h in handles {
        assert!(set.insert(h.await.unwrap()));
    }
    assert_eq!(set.len(), 300);
    assert!(set.iter().all(|id| id.starts_with("inc_20260302_1200_")));
    assert_eq!(app.count_all().await, 300);
}

/// Every reader of a timeline gives it in event time (`ts`, then insertion `seq`), however
/// late an event was posted: a deploy posted with a time 3 h ago comes first, not after the
/// events of the last minute.
#[tokio::test]
async fn every_timeline_reader_orders_events_by_time_not_by_insertion() {
    let clock = fixed_clock();
    let app = spawn_app_with_clock(clock.clone()).await;
    let id = app.create("router", "P2", "router 5xx").await; // seq 1 at 12:00
    clock.advance(time::Duration::minutes(10));
    let post = |body: serde_json::Value| {
        let (app, id) = (&app, &id);
        async move {
            let (s, v) = app.post(&format!("/api/incidents/{id}/events"), body).await;
            assert_eq!(s, 201, "{v}");
            v["seq"].as_u64().unwrap()
        }
    };
    let a =
        post(json!({"type": "note", "message": "20 s ago", "ts": "2026-03-02T12:09:40Z"})).await;
    let b =
        post(json!({"type": "note", "message": "10 s ago", "ts": "2026-03-02T12:09:50Z"})).await;
    let c = post(json!({"type": "deploy", "message": "router v2.3.1, 3 h ago", "ts": "2026-03-02T09:10:00Z"})).await;
    // Same time as a, posted later: after a (insertion order breaks ties).
    let e =
        post(json!({"type": "note", "message": "also 20 s ago", "ts": "2026-03-02T12:09:40.000Z"}))
            .await;
    let (s, _) = app
        .patch(
            &format!("/api/incidents/{id}"),
            json!({"status": "acknowledged"}),
        )
        .await;
    assert_eq!(s, 200);
    let want = vec![c, 1, a, e, b, 6];
    let seqs = |items: &serde_json::Value| -> Vec<u64> {
        items
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect()
    };

    // The incident with its events.
    let (_, d) = app.get(&format!("/api/incidents/{id}")).await;
    assert_eq!(seqs(&d["events"]), want, "{d}");
    assert_eq!(d["events"][0]["message"], "router v2.3.1, 3 h ago");

    // The events endpoint, whole and paged: `after` takes the last event's seq
    // (`next_cursor`) and goes on from its place in time, each event exactly once.
    let (_, p) = app.get(&format!("/api/incidents/{id}/events")).await;
    assert_eq!(seqs(&p["items"]), want);
    let mut paged = Vec::new();
    let mut after = 0;
    let mut cursors = Vec::new();
    loop {
        let (s, p) = app
            .get(&format!("/api/incidents/{id}/events?after={after}&limit=2"))
            .await;
        assert_eq!(s, 200, "{p}");
        paged.extend(seqs(&p["items"]));
        match p["next_cursor"].as_str() {
            Some(n) => {
                after = n.parse().unwrap();
                cursors.push(after);
            }
            None => break,
        }
    }
    assert_eq!(paged, want);
    assert_eq!(cursors, [1, e]);

    // oncall_tool incident_events, as agents and graphs read it.
    let (s, v) = app
        .post(
            "/v1/tools/execute",
            json!({"tool": "oncall_tool", "action": "incident_events",
                   "params": {"incident_id": id, "limit": 3}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(seqs(&v["result"]["items"]), want[..3]);
    let next = v["result"]["next_cursor"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    let (_, v) = app
        .post(
            "/v1/tools/execute",
            json!({"tool": "oncall_tool", "action": "incident_events",
                   "params": {"incident_id": id, "after": next}}),
        )
        .await;
    assert_eq!(seqs(&v["result"]["items"]), want[3..]);

    // The feed of every timeline is newest first by time: the old deploy is last.
    let (_, f) = app.get("/api/events/recent?limit=50").await;
    let feed: Vec<u64> = f["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["event"]["incident_id"] == id.as_str())
        .map(|i| i["event"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(feed.last(), Some(&c), "{f}");
    assert_eq!(feed.first(), Some(&6));

    // The postmortem draft's timeline.
    let (s, v) = app
        .post(
            "/v1/graphs/postmortem_draft/runs",
            json!({"agent_id": "sofiia", "input": {"incident_id": id}}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let run_id = v["run_id"].as_str().unwrap().to_string();
    let run = crate::triage::wait_finished(&app, &run_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let timeline: Vec<&str> = run["result"]["postmortem"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(timeline[0], "router v2.3.1, 3 h ago", "{timeline:?}");
    assert_eq!(timeline[2..5], ["20 s ago", "also 20 s ago", "10 s ago"]);
    let md = run["result"]["markdown"].as_str().unwrap();
    let at = |m: &str| {
        md.find(&format!("` {m}"))
            .unwrap_or_else(|| panic!("{m}: {md}"))
    };
    assert!(at("router v2.3.1") < at("20 s ago") && at("20 s ago") < at("10 s ago"));

    // A cursor that names no event is refused, as JSON.
    assert_error(
        &app.get(&format!("/api/incidents/{id}/events?after=99"))
            .await,
        422,
        "invalid_field",
    );
    let bad = app
        .get(&format!("/api/incidents/{id}/events?after=x"))
        .await;
    assert!(
        (400..500).contains(&bad.0) && bad.1["error"]["code"].is_string(),
        "{bad:?}"
    );
}

/// A store written before timelines had their time order gets it on the next start.
#[tokio::test]
async fn the_time_order_is_rebuilt_for_a_store_of_schema_4() {
    let app = spawn_app().await;
    let id = app.create("router", "P1", "router errors").await;
    let (s, _) = app
        .post(
            &format!("/api/incidents/{id}/events"),
            json!({"type": "deploy", "message": "long before", "ts": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(s, 201);
    let dir = app.stop().await;
    rewind_schema(&dir, 4, &[sofiia::incidents::tables::EVENT_ORDER.name()]);
    let app = spawn_in(dir, std::sync::Arc::new(sofiia::kernel::clock::SystemClock)).await;
    let (_, d) = app.get(&format!("/api/incidents/{id}")).await;
    let msgs: Vec<&str> = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(msgs, ["long before", "Incident opened: router errors"]);
}
