//! Scanning the log as an operator does: sorted lists with totals, services matched without
//! regard to case, a pasted id, a text search that is complete however far it must read, the
//! follow-ups list, and the sort index of a store from before it.

use serde_json::{json, Value};

use redb::TableHandle;

use crate::helpers::*;

fn ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {v}"))
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every id of a list, paged `page` at a time (each page's `total` checked against `total`).
async fn walk(app: &TestApp, query: &str, page: usize, total: Option<u64>) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = format!("/api/incidents?limit={page}&{query}");
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        let (s, v) = app.get(&q).await;
        assert_eq!(s, 200, "{q}: {v}");
        if let Some(t) = total {
            assert_eq!(v["total"], t, "{q}");
        }
        out.extend(ids(&v));
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

/// 24 incidents over three services and four severities, created a minute apart, each started
/// at a time unrelated to its creation, some updated later (so each order differs).
async fn seeded() -> (TestApp, Vec<Value>) {
    let clock = fixed_clock();
    let app = spawn_app_with_clock(clock.clone()).await;
    let services = ["Billing", "billing-api", "router"];
    let mut all = Vec::new();
    for i in 0..24usize {
        clock.advance(time::Duration::minutes(1));
        let started = format!("2026-01-01T{:02}:00:00Z", (i * 7) % 24);
        let (s, v) = app
            .post(
                "/api/incidents",
                json!({"service": services[i % 3], "severity": format!("P{}", (i * 5) % 4),
                       "title": format!("incident {i}"), "started_at": started}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        all.push(v);
    }
    // Touch a few, out of creation order: they lead the `updated` order.
    for i in [3usize, 17, 8] {
        clock.advance(time::Duration::minutes(1));
        let id = all[i]["id"].as_str().unwrap().to_string();
        let (s, v) = app
            .patch(
                &format!("/api/incidents/{id}"),
                json!({"status": "mitigated"}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        all[i] = v;
    }
    (app, all)
}

/// Ids by `field`, newest first; the same time broken by id, descending (the index's order).
fn newest_first(all: &[Value], field: &str) -> Vec<String> {
    let mut v: Vec<(i64, std::cmp::Reverse<String>)> = all
        .iter()
        .map(|x| {
            (
                -ts(x, field),
                std::cmp::Reverse(x["id"].as_str().unwrap().to_string()),
            )
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, std::cmp::Reverse(id))| id).collect()
}

fn ts(v: &Value, field: &str) -> i64 {
    let s = v[field].as_str().unwrap();
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp_nanos() as i64
        / 1000
}

#[tokio::test]
async fn every_sort_order_pages_completely_with_its_total() {
    let (app, all) = seeded().await;
    let by_created = newest_first(&all, "created_at");
    let by_updated = newest_first(&all, "updated_at");
    let by_started = newest_first(&all, "started_at");
    let by_severity: Vec<String> = {
        let mut v: Vec<(String, std::cmp::Reverse<i64>, std::cmp::Reverse<String>)> = all
            .iter()
            .map(|x| {
                (
                    x["severity"].as_str().unwrap().to_string(),
                    std::cmp::Reverse(ts(x, "created_at")),
                    std::cmp::Reverse(x["id"].as_str().unwrap().to_string()),
                )
            })
            .collect();
        v.sort();
        v.into_iter()
            .map(|(_, _, std::cmp::Reverse(id))| id)
            .collect()
    };
    assert_eq!(walk(&app, "", 5, Some(24)).await, by_created);
    assert_eq!(walk(&app, "sort=created", 7, Some(24)).await, by_created);
    assert_eq!(walk(&app, "sort=updated", 5, Some(24)).await, by_updated);
    assert_eq!(walk(&app, "sort=started", 4, Some(24)).await, by_started);
    assert_eq!(walk(&app, "sort=severity", 5, Some(24)).await, by_severity);
    // The orders really differ (else this test could not fail).
    assert_ne!(by_created, by_updated);
    assert_ne!(by_created, by_started);
    assert_ne!(by_created, by_severity);

    // Two severities of four: their segments only, in order, the cursor crossing from one to
    // the other.
    let p1_p3: Vec<String> = by_severity
        .iter()
        .filter(|id| {
            all.iter()
                .any(|v| v["id"] == **id && matches!(v["severity"].as_str(), Some("P1" | "P3")))
        })
        .cloned()
        .collect();
    assert_eq!(
        walk(&app, "sort=severity&severity=P3,P1", 5, Some(12)).await,
        p1_p3
    );

    // With filters, the total counts the matches, and the order holds within them.
    let router_sev: Vec<String> = by_severity
        .iter()
        .filter(|id| {
            all.iter()
                .any(|v| v["id"] == **id && v["service"] == "router")
        })
        .cloned()
        .collect();
    assert_eq!(
        walk(&app, "sort=severity&service=router", 3, Some(8)).await,
        router_sev
    );
    let active_p1: Vec<String> = by_updated
        .iter()
        .filter(|id| {
            all.iter()
                .any(|v| v["id"] == **id && v["severity"] == "P1" && v["status"] != "mitigated")
        })
        .cloned()
        .collect();
    let n = active_p1.len() as u64;
    assert!(n > 0);
    assert_eq!(
        walk(&app, "sort=updated&severity=P1&status=open", 2, Some(n)).await,
        active_p1
    );
    // Totals of several values of one filter come from the counts; of two filters, by walking.
    let (_, v) = app
        .get("/api/incidents?status=open,mitigated&limit=1")
        .await;
    assert_eq!(v["total"], 24);
    let (_, v) = app
        .get("/api/incidents?status=mitigated&service=router,Billing&limit=1")
        .await;
    let want = all
        .iter()
        .filter(|v| v["status"] == "mitigated" && v["service"] != "billing-api")
        .count();
    assert_eq!(v["total"], want as u64);
}

#[tokio::test]
async fn a_cursor_belongs_to_its_order_and_bad_sorts_are_refused() {
    let (app, _) = seeded().await;
    let (_, v) = app.get("/api/incidents?limit=2&sort=severity").await;
    let sev_cursor = v["next_cursor"].as_str().unwrap().to_string();
    assert!(sev_cursor.starts_with("severity."), "{sev_cursor}");
    let (_, v) = app.get("/api/incidents?limit=2").await;
    let created_cursor = v["next_cursor"].as_str().unwrap().to_string();
    for q in [
        format!("/api/incidents?sort=updated&cursor={sev_cursor}"),
        format!("/api/incidents?sort=severity&cursor={created_cursor}"),
        format!("/api/incidents?cursor={sev_cursor}"),
        "/api/incidents?sort=severity&cursor=severity.9.1.inc_20260101_0000_abc".to_string(),
    ] {
        assert_error(&app.get(&q).await, 400, "invalid_cursor");
    }
    assert_error(
        &app.get("/api/incidents?sort=priority").await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.get("/api/incidents?sort=updated&since=2026-01-01")
            .await,
        422,
        "invalid_field",
    );
    // A cursor older than `since` is an empty page, not an error.
    let (s, v) = app
        .get("/api/incidents?since=2030-01-01&cursor=1.inc_20260101_0000_abc")
        .await;
    assert_eq!((s, ids(&v).len()), (200, 0), "{v}");
}

#[tokio::test]
async fn services_are_offered_and_matched_without_regard_to_case() {
    let (app, all) = seeded().await;
    let (s, v) = app.get("/api/incidents/services").await;
    assert_eq!(s, 200);
    assert_eq!(
        v,
        json!({"total": 3, "services": [
            {"service": "Billing", "incidents": 8},
            {"service": "billing-api", "incidents": 8},
            {"service": "router", "incidents": 8}]})
    );
    let (_, v) = app.get("/api/incidents/services?prefix=BILL").await;
    assert_eq!(v["total"], 2);
    let (_, v) = app.get("/api/incidents/services?prefix=zzz").await;
    assert_eq!(v["total"], 0);

    let of = |svc: &[&str]| -> Vec<String> {
        all.iter()
            .rev()
            .filter(|v| svc.contains(&v["service"].as_str().unwrap()))
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        walk(&app, "service=billing", 5, Some(8)).await,
        of(&["Billing"])
    );
    assert_eq!(
        walk(&app, "service=ROUTER", 5, Some(8)).await,
        of(&["router"])
    );
    assert_eq!(
        walk(&app, "service=billing,Billing-API", 5, Some(16)).await,
        of(&["Billing", "billing-api"])
    );
    assert_eq!(
        walk(&app, "service=bill", 5, Some(0)).await,
        Vec::<String>::new()
    );
    // `name*`: every service starting with it, any case.
    assert_eq!(
        walk(&app, "service=BILL*", 5, Some(16)).await,
        of(&["Billing", "billing-api"])
    );
    assert_eq!(
        walk(&app, "service=bill*,router", 7, Some(24)).await,
        walk(&app, "", 7, Some(24)).await
    );
    assert_error(
        &app.get("/api/incidents?service=*").await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.get("/api/incidents?service=a*b").await,
        422,
        "invalid_field",
    );
    // An exact name leads the prefix's services, then the rest by name; a limit, and the total.
    let (_, v) = app.get("/api/incidents/services?prefix=billing-API").await;
    assert_eq!(v["services"][0]["service"], "billing-api", "{v}");
    let (_, v) = app.get("/api/incidents/services?prefix=billing").await;
    assert_eq!(v["services"][0]["service"], "Billing", "{v}");
    let (_, v) = app.get("/api/incidents/services?limit=1").await;
    assert_eq!(
        (v["total"].clone(), v["services"].as_array().unwrap().len()),
        (json!(3), 1)
    );
    assert_error(
        &app.get("/api/incidents/services?limit=501").await,
        422,
        "invalid_field",
    );
    let (s, _) = app
        .get(&format!(
            "/api/incidents/services?prefix={}",
            "%C3%A9".repeat(33)
        ))
        .await;
    assert_eq!(s, 200, "64 characters are counted as characters, not bytes");

    // The same through the tool an agent calls.
    let (s, v) = app
        .post(
            "/v1/tools/oncall_tool",
            json!({"action": "incident_services", "params": {"prefix": "r"}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["services"][0]["service"], "router", "{v}");
}

#[tokio::test]
async fn a_pasted_id_is_looked_up_and_a_rare_word_is_found_however_deep() {
    let app = spawn_app().await;
    let a = app.create("router", "P1", "router errors").await;
    let (_, v) = app.get(&format!("/api/incidents?q={a}")).await;
    assert_eq!((ids(&v), v["total"].clone()), (vec![a.clone()], json!(1)));
    assert!(v.get("partial").is_none() && v["next_cursor"].is_null());
    // The other filters still apply; an unknown id finds nothing, completely.
    let (_, v) = app
        .get(&format!("/api/incidents?q={a}&service=billing"))
        .await;
    assert_eq!(v["total"], 0);
    let (_, v) = app
        .get("/api/incidents?q=inc_20200101_0000_000000000000")
        .await;
    assert_eq!(ids(&v).len(), 0, "{v}");
    // `since` applies to it too; past its one page the total stays.
    let (_, v) = app
        .get(&format!("/api/incidents?q={a}&since=2999-01-01"))
        .await;
    assert_eq!((ids(&v).len(), v["total"].clone()), (0, json!(0)), "{v}");
    let (_, v) = app
        .get(&format!(
            "/api/incidents?q={a}&cursor=1.inc_20200101_0000_000000000000"
        ))
        .await;
    assert_eq!((ids(&v).len(), v["total"].clone()), (0, json!(1)), "{v}");
}

#[tokio::test]
async fn an_id_is_looked_up_as_typed_and_one_with_capitals_is_found() {
    // Imported ids may have capitals; the lookup keeps the case it was given.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in");
    std::fs::create_dir_all(&src).unwrap();
    let ts = "2025-01-01T00:00:00Z";
    std::fs::write(
        src.join("incidents.jsonl"),
        format!(
            "{}\n",
            json!({"id": "inc_20250101_0000_ABCDEF123456", "service": "edge", "env": "prod",
                   "severity": "P2", "status": "open", "title": "capital id", "summary": "",
                   "started_at": ts, "created_at": ts, "updated_at": ts})
        ),
    )
    .unwrap();
    import_into(&dir, &src);
    let app = spawn_in(dir, std::sync::Arc::new(sofiia::kernel::clock::SystemClock)).await;
    let (_, v) = app
        .get("/api/incidents?q=inc_20250101_0000_ABCDEF123456")
        .await;
    assert_eq!(ids(&v), ["inc_20250101_0000_ABCDEF123456"], "{v}");
    // Another case is no such id: searched as text (which ignores case), so still found.
    let (_, v) = app
        .get("/api/incidents?q=inc_20250101_0000_abcdef123456")
        .await;
    assert_eq!(ids(&v), ["inc_20250101_0000_ABCDEF123456"], "{v}");
}

/// A folder in the export layout with `n` incidents, one of them (the oldest) titled with a
/// rare word, so a text search must read past the per-page scan budget to find it.
fn big_folder(dir: &std::path::Path, n: usize) -> String {
    use std::io::Write;
    std::fs::create_dir_all(dir).unwrap();
    let mut w =
        std::io::BufWriter::new(std::fs::File::create(dir.join("incidents.jsonl")).unwrap());
    let base = time::macros::datetime!(2025-01-01 00:00 UTC);
    let mut rare = String::new();
    for k in 0..n {
        let t = base + time::Duration::seconds(k as i64 * 30);
        let id = format!(
            "inc_{}_{:012x}",
            t.format(time::macros::format_description!(
                "[year][month][day]_[hour][minute]"
            ))
            .unwrap(),
            k
        );
        let title = if k == 0 {
            rare = id.clone();
            "zanzibar outage".to_string()
        } else {
            format!("incident {k}")
        };
        let ts = t
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        writeln!(
            w,
            "{}",
            json!({"id": id, "service": "edge", "env": "prod", "severity": "P2", "status": "closed",
                   "title": title, "summary": "", "started_at": ts, "created_at": ts, "updated_at": ts,
                   "created_by": "import", "labels": [], "fingerprints": []})
        )
        .unwrap();
    }
    w.flush().unwrap();
    rare
}

#[tokio::test]
async fn a_text_search_past_the_scan_budget_continues_to_the_end() {
    let n = sofiia::incidents::MAX_TEXT_SCAN + 500;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in");
    let rare = big_folder(&src, n);
    let report = import_into(&dir, &src);
    assert_eq!(report.incidents.imported, n);
    let app = spawn_in(dir, std::sync::Arc::new(sofiia::kernel::clock::SystemClock)).await;

    // The first page stops at the budget and says how far it read, never "no more".
    let (s, v) = app.get("/api/incidents?q=zanzibar&status=closed").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["partial"], true, "{v}");
    assert!(ids(&v).is_empty());
    assert_eq!(v["candidates"], n as u64);
    assert_eq!(v["scanned"], sofiia::incidents::MAX_TEXT_SCAN as u64);
    assert!(v.get("total").is_none());
    // Its cursor continues the search, which finds the one match and ends.
    let c = v["next_cursor"].as_str().unwrap();
    let (_, v) = app
        .get(&format!(
            "/api/incidents?q=zanzibar&status=closed&cursor={c}"
        ))
        .await;
    assert_eq!(ids(&v), [rare.as_str()], "{v}");
    assert!(
        v.get("partial").is_none() && v["next_cursor"].is_null(),
        "{v}"
    );
    assert_eq!(v["scanned"], 500);
    // Without a text filter the total is exact, from the counts.
    let (_, v) = app.get("/api/incidents?status=closed&limit=1").await;
    assert_eq!(v["total"], n as u64);
}

#[tokio::test]
async fn follow_ups_are_listed_latest_due_first_with_filters_and_a_total() {
    let clock = fixed_clock();
    let app = spawn_app_with_clock(clock.clone()).await;
    let a = app.create("Billing", "P1", "invoices late").await;
    let b = app.create("router", "P2", "router errors").await;
    let add = |inc: &str, title: &str, due: Option<&str>, owner: &str| {
        let mut meta = json!({"title": title, "owner": owner});
        if let Some(d) = due {
            meta["due"] = json!(d);
        }
        (
            format!("/api/incidents/{inc}/events"),
            json!({"type": "followup", "meta": meta}),
        )
    };
    let mut created = Vec::new();
    for (inc, title, due, owner) in [
        (&a, "old miss", Some("2020-01-01"), "alice"),
        (&a, "recent miss", Some("2025-12-30"), "bob"),
        (&b, "next week", Some("2099-01-01"), "Alice"),
        (&b, "no date", None, "carol"),
        (&b, "mid miss", Some("2023-06-01"), "alice"),
    ] {
        let (path, body) = add(inc, title, due, owner);
        let (s, v) = app.post(&path, body).await;
        assert_eq!(s, 201, "{v}");
        created.push((title, v["id"].as_str().unwrap().to_string()));
    }
    let titles = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["title"].as_str().unwrap().to_string())
            .collect()
    };
    let (s, v) = app.get("/api/followups").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        titles(&v),
        [
            "next week",
            "recent miss",
            "mid miss",
            "old miss",
            "no date"
        ]
    );
    assert_eq!(v["total"], 5);
    let (_, v) = app.get("/api/followups?overdue=true").await;
    assert_eq!(titles(&v), ["recent miss", "mid miss", "old miss"]);
    assert_eq!(v["total"], 3);
    let (_, v) = app.get("/api/followups?order=soonest").await;
    assert_eq!(
        titles(&v),
        [
            "old miss",
            "mid miss",
            "recent miss",
            "next week",
            "no date"
        ]
    );
    let (_, v) = app.get("/api/followups?owner=ALICE").await;
    assert_eq!(titles(&v), ["next week", "mid miss", "old miss"]);
    let (_, v) = app.get("/api/followups?service=billing&overdue=true").await;
    assert_eq!(titles(&v), ["recent miss", "old miss"]);

    // Paging, in each order, with and without filters: every one once, in order, the total
    // on each page.
    let newest = [
        "next week",
        "recent miss",
        "mid miss",
        "old miss",
        "no date",
    ];
    let soonest = [
        "old miss",
        "mid miss",
        "recent miss",
        "next week",
        "no date",
    ];
    for (query, page, total, want) in [
        ("", 2, 5, &newest[..]),
        ("", 1, 5, &newest[..]),
        ("order=soonest", 2, 5, &soonest[..]),
        ("overdue=true", 1, 3, &newest[1..4]),
        (
            "owner=alice",
            1,
            3,
            &["next week", "mid miss", "old miss"][..],
        ),
        (
            "owner=alice&order=soonest",
            2,
            3,
            &["old miss", "mid miss", "next week"][..],
        ),
        ("env=prod&overdue=true", 2, 3, &newest[1..4]),
    ] {
        let mut seen = Vec::new();
        let mut cursor = String::new();
        loop {
            let (s, v) = app
                .get(&format!(
                    "/api/followups?limit={page}&{query}&cursor={cursor}"
                ))
                .await;
            assert_eq!((s, v["total"].clone()), (200, json!(total)), "{query}: {v}");
            seen.extend(titles(&v));
            match v["next_cursor"].as_str() {
                Some(c) => cursor = c.to_string(),
                None => break,
            }
        }
        assert_eq!(seen, want, "{query} by {page}");
    }

    // A closed follow-up leaves the list.
    let recent = &created[1].1;
    let (s, _) = app
        .post(
            &format!("/api/incidents/{a}/followups/{recent}/close"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, v) = app.get("/api/followups?overdue=true").await;
    assert_eq!(titles(&v), ["mid miss", "old miss"]);

    // Services as the list takes them (`name*`, any case); owners in any case, any script.
    let (_, v) = app.get("/api/followups?service=BILL*&overdue=true").await;
    assert_eq!(titles(&v), ["old miss"], "{v}");
    let (s, _) = app
        .post(
            &format!("/api/incidents/{b}/events"),
            json!({"type": "followup", "meta": {"title": "cyrillic owner", "owner": "Олена"}}),
        )
        .await;
    assert_eq!(s, 201);
    let (_, v) = app
        .get("/api/followups?owner=%D0%BE%D0%BB%D0%B5%D0%BD%D0%B0")
        .await;
    assert_eq!(titles(&v), ["cyrillic owner"], "{v}");

    // Bad input: a clear 4xx.
    assert_error(
        &app.get("/api/followups?order=oldest").await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.get("/api/followups?cursor=zzz").await,
        400,
        "invalid_cursor",
    );
    for bad in ["1.%F0%9F%98%80", "1.ev_a/b", "1.x"] {
        assert_error(
            &app.get(&format!("/api/followups?cursor={bad}")).await,
            400,
            "invalid_cursor",
        );
    }
    assert_error(
        &app.get(&format!("/api/followups?cursor={}", "9".repeat(201)))
            .await,
        400,
        "invalid_cursor",
    );
    assert_error(
        &app.get("/api/followups?limit=100000").await,
        422,
        "invalid_field",
    );
    let (s, _) = app.get("/api/followups?overdue=maybe").await;
    assert!((400..500).contains(&s));

    // Agents: the same list through oncall_tool.
    let (s, v) = app
        .post(
            "/v1/tools/oncall_tool",
            json!({"action": "incident_followups", "params": {"overdue": true}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["total"], 2, "{v}");
}

/// A store of schema 6 (sort index, no follow-ups by due date) gets the follow-ups' index.
#[tokio::test]
async fn the_followup_due_index_is_built_for_a_store_of_schema_6() {
    let app = spawn_app().await;
    let inc = app.create("router", "P1", "router errors").await;
    let (s, _) = app
        .post(
            &format!("/api/incidents/{inc}/events"),
            json!({"type": "followup", "meta": {"title": "late", "due": "2020-01-01"}}),
        )
        .await;
    assert_eq!(s, 201);
    let dir = app.stop().await;
    rewind_schema(&dir, 6, &[sofiia::incidents::tables::FOLLOWUP_DUE.name()]);
    let app = spawn_in(dir, std::sync::Arc::new(sofiia::kernel::clock::SystemClock)).await;
    let (_, f) = app.get("/api/followups?overdue=true").await;
    assert_eq!(
        (f["total"].clone(), f["items"][0]["title"].clone()),
        (json!(1), json!("late")),
        "{f}"
    );
}

/// A store written before the sort index gets it on the next start.
#[tokio::test]
async fn the_sort_index_is_built_for_a_store_of_schema_5() {
    let (app, all) = seeded().await;
    let inc = all[0]["id"].as_str().unwrap();
    for (title, due) in [("first", "2020-01-01"), ("second", "2021-01-01")] {
        let (s, _) = app
            .post(
                &format!("/api/incidents/{inc}/events"),
                json!({"type": "followup", "meta": {"title": title, "due": due}}),
            )
            .await;
        assert_eq!(s, 201);
    }
    let (_, before) = app.get("/api/incidents?sort=updated&limit=100").await;
    let dir = app.stop().await;
    rewind_schema(
        &dir,
        5,
        &[
            sofiia::incidents::tables::SORT_INDEX.name(),
            sofiia::incidents::tables::FOLLOWUP_DUE.name(),
        ],
    );
    let app = spawn_in(dir, std::sync::Arc::new(sofiia::kernel::clock::SystemClock)).await;
    let (_, after) = app.get("/api/incidents?sort=updated&limit=100").await;
    assert_eq!(ids(&after).len(), all.len());
    assert_eq!(ids(&after), ids(&before));
    let (_, started) = app.get("/api/incidents?sort=started&limit=100").await;
    assert_eq!(ids(&started).len(), all.len());
    let (_, f) = app.get("/api/followups?overdue=true").await;
    assert_eq!(f["total"], 2, "{f}");
    assert_eq!(f["items"][0]["title"], "second", "{f}");
}
