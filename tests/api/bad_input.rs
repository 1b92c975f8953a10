use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn bad_input_gets_the_json_envelope_and_writes_nothing() {
    let app = spawn_app().await;
    let id = app.create("gateway", "P1", "Keep me").await;
    let before = app.get(&format!("/api/incidents/{id}")).await.1;

    // Malformed JSON, wrong content type, wrong types, missing and unknown fields.
    assert_error(
        &app.post_raw("/api/incidents", "application/json", "{\"service\":")
            .await,
        400,
        "bad_json",
    );
    // A browser must say JSON; curl and agents may not (the body is read as JSON).
    let r = app
        .client
        .post(app.url("/api/incidents"))
        .header("origin", &app.base)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(&split(r).await, 415, "unsupported_media_type");
    assert_error(
        &app.post_raw("/api/incidents", "text/plain", "{}").await,
        422,
        "invalid_body",
    );
    assert_error(
        &app.post(
            "/api/incidents",
            json!({"service":"x","severity":"P1","title":5}),
        )
        .await,
        422,
        "invalid_body",
    );
    assert_error(
        &app.post("/api/incidents", json!({"service":"x","severity":"P1"}))
            .await,
        422,
        "invalid_body",
    );
    assert_error(
        &app.post(
            "/api/incidents",
            json!({"service":"x","severity":"P1","title":"t","sevrity":"P0"}),
        )
        .await,
        422,
        "invalid_body",
    );
    assert_error(
        &app.post(
            "/api/incidents",
            json!({"service":"x","severity":"P7","title":"t"}),
        )
        .await,
        422,
        "invalid_body",
    );
    assert_error(
        &app.post(
            "/api/incidents",
            json!({"service":"bad service!","severity":"P1","title":"t"}),
        )
        .await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.post(
            "/api/incidents",
            json!({"service":"x","severity":"P1","title":"   "}),
        )
        .await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.post(
            "/api/incidents",
            json!({"service":"x","severity":"P1","title":"t","started_at":"tomorrow"}),
        )
        .await,
        422,
        "invalid_body",
    );
    assert_error(
        &app.post(
            "/api/incidents",
            json!({"service":"x","severity":"P1","title":"t","started_at":"2999-01-01T00:00:00Z"}),
        )
        .await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.post("/api/incidents", json!([1, 2])).await,
        422,
        "invalid_body",
    );

    // Oversize bodies.
    let big = "x".repeat(1_100_000);
    let r = app
        .post_raw(
            "/api/incidents",
            "application/json",
            format!("{{\"service\":\"x\",\"severity\":\"P1\",\"title\":\"{big}\"}}"),
        )
        .await;
    assert_error(&r, 413, "payload_too_large");
    let two_mb = "y".repeat(2 * 1024 * 1024 + 1);
    let r = app
        .post(
            &format!("/api/incidents/{id}/artifacts"),
            json!({"name":"big.txt","content": two_mb}),
        )
        .await;
    assert_error(&r, 413, "payload_too_large");

    // Bad ids and unknown records.
    assert_error(&app.get("/api/incidents/inc_nope").await, 400, "invalid_id");
    assert_error(
        &app.get("/api/incidents/..%2F..%2Fetc").await,
        400,
        "invalid_id",
    );
    assert_error(
        &app.get("/api/incidents/inc_20200101_0000_abcdef").await,
        404,
        "not_found",
    );
    assert_error(
        &app.patch(
            "/api/incidents/inc_20200101_0000_abcdef",
            json!({"status":"closed"}),
        )
        .await,
        404,
        "not_found",
    );
    assert_error(
        &app.post(
            &format!("/api/incidents/{id}/followups/ev_../close"),
            json!({}),
        )
        .await,
        400,
        "invalid_id",
    );

    // Bad updates.
    assert_error(
        &app.patch(
            &format!("/api/incidents/{id}"),
            json!({"status":"sleeping"}),
        )
        .await,
        422,
        "invalid_body",
    );
    assert_error(
        &app.patch(&format!("/api/incidents/{id}"), json!({"colour":"red"}))
            .await,
        422,
        "invalid_body",
    );
    // Same status again is a conflict (as close/reopen are) and writes no event.
    assert_error(
        &app.patch(&format!("/api/incidents/{id}"), json!({"status":"open"}))
            .await,
        409,
        "conflict",
    );

    // Bad events.
    let ev = format!("/api/incidents/{id}/events");
    assert_error(
        &app.post(&ev, json!({"type":"Bad Type"})).await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.post(&ev, json!({"type":"status_change","message":"sneaky"}))
            .await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.post(&ev, json!({"type":"note","meta":[1]})).await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.post(&ev, json!({"type":"followup","meta":{"owner":"x"}}))
            .await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.post(
            &ev,
            json!({"type":"followup","meta":{"title":"x","due":"someday"}}),
        )
        .await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.post(
            &ev,
            json!({"type":"note","meta":{"blob":"z".repeat(70_000)}}),
        )
        .await,
        413,
        "payload_too_large",
    );

    // Bad artifacts.
    let art = format!("/api/incidents/{id}/artifacts");
    assert_error(
        &app.post(&art, json!({"name":"run.sh","content":"rm -rf /"}))
            .await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.post(&art, json!({"name":"noext","content":"x"})).await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.post(&art, json!({"name":"a.json","content":"{not json"}))
            .await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.post(&art, json!({"name":"a.txt","content_base64":"!!!"}))
            .await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.post(&art, json!({"name":"a.txt","content_base64":"/w=="}))
            .await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.post(&art, json!({"name":"a.md","format":"json","content":"x"}))
            .await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.post(
            "/api/incidents/inc_20200101_0000_abcdef/artifacts",
            json!({"name":"a.md","content":"x"}),
        )
        .await,
        404,
        "not_found",
    );

    // Bad queries.
    assert_error(
        &app.get("/api/incidents?limit=abc").await,
        400,
        "invalid_query",
    );
    assert_error(
        &app.get("/api/incidents?limit=100000").await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.get("/api/incidents?severity=P9").await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.get("/api/incidents?sevrity=P1").await,
        400,
        "invalid_query",
    );
    assert_error(
        &app.get("/api/incidents?cursor=garbage").await,
        400,
        "invalid_cursor",
    );
    assert_error(
        &app.get("/api/incidents?since=yesterday").await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.get("/api/followups/summary?window_days=0").await,
        422,
        "invalid_field",
    );

    // Unknown routes and methods.
    assert_error(&app.get("/api/nothing").await, 404, "not_found");
    let r = app
        .client
        .delete(app.url("/api/incidents"))
        .send()
        .await
        .unwrap();
    assert_error(&split(r).await, 405, "method_not_allowed");

    // Nothing was written by any of it.
    assert_eq!(app.count_all().await, 1);
    let after = app.get(&format!("/api/incidents/{id}")).await.1;
    assert_eq!(before, after);
    let files: Vec<_> = std::fs::read_dir(app.data_dir().join("incidents"))
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(files.is_empty(), "no artifact files or folders: {files:?}");
}
