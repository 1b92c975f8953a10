use std::collections::HashSet;

use serde_json::{json, Value};

use crate::helpers::*;

/// Page through a filtered list with a small page size and collect ids in order.
async fn collect(app: &TestApp, query: &str, page: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = format!("/api/incidents?limit={page}");
        if !query.is_empty() {
            q.push('&');
            q.push_str(query);
        }
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        let (s, v) = app.get(&q).await;
        assert_eq!(s, 200, "{v}");
        let items = v["items"].as_array().unwrap();
        assert!(items.len() <= page);
        out.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_string()));
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn filters_and_cursor_pagination_match_a_full_scan() {
    let clock = fixed_clock();
    let app = spawn_app_with_clock(clock.clone()).await;
    let services = ["gateway", "router", "memory"];
    let sevs = ["P0", "P1", "P2", "P3"];
    let envs = ["prod", "staging"];
    let mut all: Vec<Value> = Vec::new();
    for i in 0..60 {
        clock.advance(time::Duration::seconds(7));
        let (s, v) = app
            .post(
                "/api/incidents",
                json!({
                "service": services[i % 3], "severity": sevs[i % 4], "env": envs[i % 2],
                "title": format!("incident {i}")}),
            )
            .await;
        assert_eq!(s, 201);
        let id = v["id"].as_str().unwrap().to_string();
        if i % 5 == 0 {
            let (_, v2) = app
                .patch(
                    &format!("/api/incidents/{id}"),
                    json!({"status": "mitigated"}),
                )
                .await;
            all.push(v2);
        } else {
            all.push(v);
        }
    }
    // Newest first: reverse creation order.
    let newest_first = |pred: &dyn Fn(&Value) -> bool| -> Vec<String> {
        all.iter()
            .rev()
            .filter(|v| pred(v))
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect()
    };

    assert_eq!(collect(&app, "", 7).await, newest_first(&|_| true));
    assert_eq!(
        collect(&app, "service=router", 4).await,
        newest_first(&|v| v["service"] == "router")
    );
    assert_eq!(
        collect(&app, "status=mitigated&env=prod", 3).await,
        newest_first(&|v| v["status"] == "mitigated" && v["env"] == "prod")
    );
    assert_eq!(
        collect(&app, "severity=P0,P1&service=gateway", 2).await,
        newest_first(
            &|v| (v["severity"] == "P0" || v["severity"] == "P1") && v["service"] == "gateway"
        )
    );
    assert_eq!(
        collect(&app, "status=open,mitigated&severity=P3&env=staging", 5).await,
        newest_first(&|v| v["severity"] == "P3" && v["env"] == "staging")
    );
    // since: created at or after the 41st incident.
    let since = all[40]["created_at"].as_str().unwrap().to_string();
    let got = collect(&app, &format!("since={since}"), 6).await;
    assert_eq!(
        got,
        newest_first(&|v| v["created_at"].as_str().unwrap() >= since.as_str())
    );
    assert_eq!(got.len(), 20);
    assert!(collect(&app, "service=nothing-here", 5).await.is_empty());

    // A status change moves the incident between status filters at once.
    let first = all[1]["id"].as_str().unwrap().to_string();
    app.patch(
        &format!("/api/incidents/{first}"),
        json!({"status":"resolved"}),
    )
    .await;
    let resolved: HashSet<String> = collect(&app, "status=resolved", 10)
        .await
        .into_iter()
        .collect();
    assert_eq!(resolved, HashSet::from([first.clone()]));
    assert!(!collect(&app, "status=open", 50).await.contains(&first));
}
