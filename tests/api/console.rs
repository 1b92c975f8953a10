//! What the console needs from the server: its files (versioned, cached, compressed), the
//! rooms list, overview counts, the event feed, the list's text filter, field-level errors.

use std::io::Read;

use serde_json::json;

use redb::TableHandle;

use crate::helpers::*;

/// The versioned asset prefix `index.html` points at.
async fn asset_prefix(app: &TestApp) -> String {
    let html = app
        .client
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let end = html.find("/main.js").expect("main.js is linked");
    let start = html[..end]
        .rfind("/assets/")
        .expect("index.html links /assets/<version>/");
    html[start..end].to_string()
}

#[tokio::test]
async fn console_files_are_versioned_cached_and_compressed() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!r.text().await.unwrap().contains("__ASSETS__"));

    let prefix = asset_prefix(&app).await;
    let (_, h) = app.get("/api/health").await;
    assert_eq!(
        prefix,
        format!("/assets/{}", h["ui_version"].as_str().unwrap())
    );
    let plain = app
        .client
        .get(app.url(&format!("{prefix}/main.js")))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    assert_eq!(
        plain.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(plain.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    assert!(plain.headers().get("content-encoding").is_none());
    let etag = plain.headers()["etag"].to_str().unwrap().to_string();
    let source = plain.bytes().await.unwrap();
    assert!(source.starts_with(b"//"), "the module source itself");

    // gzip and brotli decode to the same bytes and are smaller.
    for enc in ["gzip", "br"] {
        let r = app
            .client
            .get(app.url(&format!("{prefix}/main.js")))
            .header("accept-encoding", enc)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-encoding"], enc);
        assert_eq!(r.headers()["vary"], "Accept-Encoding");
        assert_ne!(r.headers()["etag"].to_str().unwrap(), etag);
        let body = r.bytes().await.unwrap();
        assert!(body.len() < source.len() / 2, "{enc}: {}", body.len());
        let mut out = Vec::new();
        if enc == "gzip" {
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut out)
                .unwrap();
        } else {
            brotli::Decompressor::new(&body[..], 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        assert_eq!(out, source.to_vec(), "{enc} round trip");
    }
    // q=0 means "not this one".
    let r = app
        .client
        .get(app.url(&format!("{prefix}/main.js")))
        .header("accept-encoding", "br;q=0, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");

    // A matching ETag gets 304 with no body.
    let r = app
        .client
        .get(app.url(&format!("{prefix}/main.js")))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.unwrap().is_empty());
    // Weak tags (as proxies send them) compare equal too; Q=0 in any case refuses br.
    let r = app
        .client
        .get(app.url(&format!("{prefix}/main.js")))
        .header("if-none-match", format!("W/{etag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = app
        .client
        .get(app.url(&format!("{prefix}/main.js")))
        .header("accept-encoding", "br;Q=0")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("content-encoding").is_none());

    // A page loaded before an upgrade asks for an old version: today's file, not cached.
    let r = app
        .client
        .get(app.url("/assets/0123456789ab/main.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-cache");

    // Every module the shell imports exists (a missing one would break the page).
    let main = String::from_utf8(source.to_vec()).unwrap();
    for line in main.lines().filter(|l| l.starts_with("import ")) {
        let path = line.split('\'').nth(1).unwrap().trim_start_matches("./");
        let r = app
            .client
            .get(app.url(&format!("{prefix}/{path}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }

    // No way out of the embedded folder, and unknown files are JSON 404s.
    assert_error(
        &app.get(&format!("{prefix}/../index.html")).await,
        404,
        "not_found",
    );
    assert_error(
        &app.get("/assets/x/%2e%2e/Cargo.toml").await,
        404,
        "not_found",
    );
    assert_error(
        &app.get(&format!("{prefix}/nope.js")).await,
        404,
        "not_found",
    );
    let r = app
        .client
        .get(app.url("/favicon.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
}

#[tokio::test]
async fn health_lists_the_rooms_the_console_shows() {
    let app = spawn_app().await;
    let (_, h) = app.get("/api/health").await;
    assert_eq!(
        h["rooms"],
        json!([
            "overview",
            "incidents",
            "ops",
            "runbooks",
            "alerts",
            "jobs",
            "reports",
            "events",
            "settings"
        ])
    );
    assert_eq!(h["auth_required"], false);
}

#[tokio::test]
async fn overview_counts_active_incidents_by_severity_and_service() {
    let app = spawn_app().await;
    let a = app.create("router", "P0", "router down").await;
    app.create("router", "P2", "router slow").await;
    app.create("billing", "P1", "invoices late").await;
    let closed = app.create("billing", "P0", "old outage").await;
    let (s, _) = app
        .post(&format!("/api/incidents/{closed}/close"), json!({}))
        .await;
    assert_eq!(s, 200);
    let (s, _) = app
        .patch(
            &format!("/api/incidents/{a}"),
            json!({"status": "acknowledged"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, staging) = app
        .post(
            "/api/incidents",
            json!({"service": "search", "severity": "P3", "title": "staging only", "env": "staging"}),
        )
        .await;
    assert_eq!(s, 201, "{staging}");

    let (s, v) = app.get("/api/incidents/stats").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["active_total"], 4);
    assert_eq!(
        v["active_by_severity"],
        json!({"P0": 1, "P1": 1, "P2": 1, "P3": 1})
    );
    assert_eq!(
        v["by_status"],
        json!({"open": 3, "acknowledged": 1, "mitigated": 0, "resolved": 0, "closed": 1})
    );
    // Busiest (by worst severity first) first.
    assert_eq!(
        v["active_by_service"][0],
        json!({"service": "router", "total": 2, "P0": 1, "P1": 0, "P2": 1, "P3": 0})
    );
    assert_eq!(v["active_by_service"][1]["service"], "billing");
    assert_eq!(v["active_by_service"][2]["service"], "search");

    let (_, v) = app.get("/api/incidents/stats?env=staging").await;
    assert_eq!(v["active_total"], 1);
    assert_eq!(v["active_by_service"][0]["service"], "search");
    assert_eq!(v["by_status"]["open"], 1);

    assert_error(
        &app.get("/api/incidents/stats?env=bad%20env").await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.get("/api/incidents/stats?x=1").await,
        400,
        "invalid_query",
    );
}

#[tokio::test]
async fn the_event_feed_is_newest_first_filterable_and_paged() {
    let app = spawn_app().await;
    let a = app.create("router", "P1", "router errors").await;
    let b = app.create("billing", "P2", "billing lag").await;
    let (s, _) = app
        .post(
            &format!("/api/incidents/{a}/events"),
            json!({"type": "deploy", "message": "v2 rolled out"}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = app
        .post(
            &format!("/api/incidents/{b}/events"),
            json!({"type": "note", "message": "looking"}),
        )
        .await;
    assert_eq!(s, 201);

    let (s, v) = app.get("/api/events/recent").await;
    assert_eq!(s, 200, "{v}");
    let items = v["items"].as_array().unwrap();
    let kinds: Vec<&str> = items
        .iter()
        .map(|i| i["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["note", "deploy", "status_change", "status_change"]);
    assert_eq!(items[0]["incident"]["id"], b.as_str());
    assert_eq!(items[0]["incident"]["title"], "billing lag");
    assert_eq!(items[1]["event"]["message"], "v2 rolled out");
    assert_eq!(items[3]["incident"]["id"], a.as_str());

    let (_, v) = app.get("/api/events/recent?types=deploy,note").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 2);

    // Paging walks every event exactly once.
    let (_, p1) = app.get("/api/events/recent?limit=3").await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 3);
    let c = p1["next_cursor"].as_str().unwrap();
    let (_, p2) = app
        .get(&format!("/api/events/recent?limit=3&cursor={c}"))
        .await;
    assert_eq!(p2["items"].as_array().unwrap().len(), 1);
    assert_eq!(p2["items"][0]["event"]["incident_id"], a.as_str());
    assert!(p2["next_cursor"].is_null());

    assert_error(
        &app.get("/api/events/recent?cursor=garbage").await,
        400,
        "invalid_cursor",
    );
    assert_error(
        &app.get("/api/events/recent?types=Bad%20Type").await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.get("/api/events/recent?limit=501").await,
        422,
        "invalid_field",
    );
}

#[tokio::test]
async fn the_feed_is_rebuilt_for_a_store_of_schema_1() {
    let app = spawn_app().await;
    let a = app.create("router", "P1", "router errors").await;
    let (s, _) = app
        .post(
            &format!("/api/incidents/{a}/events"),
            json!({"type": "note", "message": "before the upgrade"}),
        )
        .await;
    assert_eq!(s, 201);
    let dir = app.stop().await;

    // Make it look like a store written before the feed existed.
    rewind_schema(&dir, 1, &[sofiia::incidents::tables::EVENT_FEED.name()]);

    let app = spawn_in(dir, std::sync::Arc::new(sofiia::kernel::clock::SystemClock)).await;
    let (s, v) = app.get("/api/events/recent").await;
    assert_eq!(s, 200, "{v}");
    let msgs: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event"]["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        msgs,
        ["before the upgrade", "Incident opened: router errors"]
    );
}

#[tokio::test]
async fn the_list_text_filter_matches_words_in_any_field() {
    let app = spawn_app().await;
    let a = app.create("router", "P1", "Checkout returns 502").await;
    let b = app.create("billing", "P2", "Invoices delayed").await;
    let (s, _) = app
        .patch(
            &format!("/api/incidents/{b}"),
            json!({"summary": "Queue backlog after the checkout change", "owner": "Alice"}),
        )
        .await;
    assert_eq!(s, 200);
    app.create("search", "P3", "Slow queries").await;

    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, v) = app.get("/api/incidents?q=CHECKOUT").await;
    assert_eq!(ids(&v), [b.clone(), a.clone()]);
    let (_, v) = app.get("/api/incidents?q=checkout%20alice").await;
    assert_eq!(ids(&v), [b.as_str()]);
    let (_, v) = app.get("/api/incidents?q=checkout&service=router").await;
    assert_eq!(ids(&v), [a.as_str()]);
    let (_, v) = app.get(&format!("/api/incidents?q={}", &a[4..])).await;
    assert_eq!(ids(&v), [a.as_str()]);
    let (_, v) = app.get("/api/incidents?q=nothing-like-this").await;
    assert!(ids(&v).is_empty());
    assert!(v.get("partial").is_none());
    // Paging with a text filter.
    let (_, v) = app.get("/api/incidents?q=checkout&limit=1").await;
    assert_eq!(ids(&v), [b.as_str()]);
    let c = v["next_cursor"].as_str().unwrap().to_string();
    let (_, v) = app
        .get(&format!("/api/incidents?q=checkout&limit=1&cursor={c}"))
        .await;
    assert_eq!(ids(&v), [a]);
    assert!(v["next_cursor"].is_null());

    let long = "x".repeat(201);
    assert_error(
        &app.get(&format!("/api/incidents?q={long}")).await,
        422,
        "invalid_field",
    );
}

#[tokio::test]
async fn field_errors_name_their_field() {
    let app = spawn_app().await;
    let (s, v) = app
        .post(
            "/api/incidents",
            json!({"service": "router", "severity": "P1", "title": ""}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["field"], "title");
    let a = app.create("router", "P1", "x").await;
    let (s, v) = app
        .post(
            &format!("/api/incidents/{a}/events"),
            json!({"type": "followup", "message": "", "meta": {"title": "t", "due": "soon"}}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["field"], "meta.due");
}
