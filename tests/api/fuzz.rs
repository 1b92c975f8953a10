//! Generated bad values for every field of every JSON endpoint (REST, tool calls, graph
//! starts): wrong types, huge strings, deep nesting, invalid UTF-8, bad dates, out-of-range
//! numbers. Every one must get a 4xx JSON error, never a 5xx, and write nothing.

use serde_json::{json, Value};

use crate::helpers::*;

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A string with a bounded length.
    Str,
    /// An artifact's content (up to 2 MB).
    Content,
    /// A string from a fixed set.
    Enum,
    /// A date-time string.
    Date,
    /// A list of short strings.
    List,
    /// An object.
    Obj,
    /// An integer with bounds.
    Int,
    /// A boolean.
    Bool,
}

/// Values no field of that kind accepts.
fn bad_values(kind: Kind) -> Vec<(String, Value)> {
    let huge = "x".repeat(300_000);
    let mut v: Vec<(&str, Value)> = match kind {
        Kind::Str => vec![
            ("number", json!(12345)),
            ("bool", json!(true)),
            ("list", json!(["a"])),
            ("object", json!({"a": 1})),
            ("huge string", json!(huge)),
        ],
        Kind::Content => vec![
            ("number", json!(12345)),
            ("object", json!({"a": 1})),
            ("over 2 MB", json!("y".repeat(2_500_000))),
        ],
        Kind::Enum => vec![
            ("number", json!(1)),
            ("unknown value", json!("NOT_A_VALUE")),
            ("list", json!([])),
            ("huge string", json!(huge)),
        ],
        Kind::Date => vec![
            ("impossible date", json!("2026-13-45T99:00:00Z")),
            ("words", json!("yesterday")),
            // ("" means "not given", as in the seeds' JSONL: not a bad value.)
            ("number", json!(12345)),
            ("object", json!({})),
        ],
        Kind::List => vec![
            ("string", json!("a")),
            ("number", json!(5)),
            ("object", json!({"a": 1})),
            ("numbers inside", json!([1, 2])),
            ("huge item", json!([huge])),
            ("10000 items", json!(vec!["x"; 10_000])),
        ],
        Kind::Obj => vec![
            ("string", json!("a")),
            ("number", json!(5)),
            ("list", json!([])),
        ],
        Kind::Int => vec![
            ("string", json!("ten")),
            ("negative", json!(-1)),
            ("huge", json!(1e300)),
            ("fraction", json!(1.5)),
            ("object", json!({})),
        ],
        Kind::Bool => vec![
            ("string", json!("yes")),
            ("number", json!(1)),
            ("list", json!([])),
        ],
    };
    // Any field: a value nested past any sane depth.
    let deep: Value = serde_json::from_str(&format!("{}{}", "[".repeat(100), "]".repeat(100)))
        .unwrap_or(Value::Null);
    v.push(("deep nesting", deep));
    v.into_iter().map(|(n, x)| (n.to_string(), x)).collect()
}

/// Set `path` (dotted) in `body` to `value`.
fn set(body: &mut Value, path: &str, value: Value) {
    let mut cur = body;
    let parts: Vec<&str> = path.split('.').collect();
    for p in &parts[..parts.len() - 1] {
        cur = cur.get_mut(*p).unwrap();
    }
    cur[parts[parts.len() - 1]] = value;
}

struct Endpoint {
    method: reqwest::Method,
    path: String,
    /// A valid body (never sent as is).
    base: Value,
    fields: Vec<(&'static str, Kind)>,
}

fn post(path: impl Into<String>, base: Value, fields: Vec<(&'static str, Kind)>) -> Endpoint {
    Endpoint {
        method: reqwest::Method::POST,
        path: path.into(),
        base,
        fields,
    }
}

/// What a write would change: counts and the fixture incident as stored.
async fn snapshot(app: &TestApp, id: &str) -> Value {
    let (_, inc) = app.get(&format!("/api/incidents/{id}")).await;
    let (_, events) = app
        .get(&format!("/api/incidents/{id}/events?limit=500"))
        .await;
    let (_, artifacts) = app.get(&format!("/api/incidents/{id}/artifacts")).await;
    let (_, runs) = app.get("/v1/runs?limit=100").await;
    json!({
        "incidents": app.count_all().await,
        "incident": inc,
        "events": events["items"].as_array().map(|a| a.len()),
        "artifacts": artifacts,
        "runs": runs["items"].as_array().map(|a| a.len()),
        "backups": app.data_dir().join("backups").exists(),
    })
}

fn incident_fields() -> Vec<(&'static str, Kind)> {
    vec![
        ("service", Kind::Str),
        ("env", Kind::Str),
        ("severity", Kind::Enum),
        ("title", Kind::Str),
        ("summary", Kind::Str),
        ("started_at", Kind::Date),
        ("owner", Kind::Str),
        ("labels", Kind::List),
        ("fingerprints", Kind::List),
    ]
}

fn endpoints(id: &str, followup: &str) -> Vec<Endpoint> {
    let incident = json!({"service":"gateway","env":"prod","severity":"P2","title":"t",
        "summary":"s","started_at":"2026-01-01T00:00:00Z","owner":"alice",
        "labels":["a"],"fingerprints":["f"]});
    let patch = json!({"status":"mitigated","severity":"P3","title":"t2","summary":"s2",
        "owner":"bob","service":"api","env":"staging","labels":["b"],"fingerprints":["g"],
        "started_at":"2026-01-01T00:00:00Z","message":"m"});
    let patch_fields = vec![
        ("status", Kind::Enum),
        ("severity", Kind::Enum),
        ("title", Kind::Str),
        ("summary", Kind::Str),
        ("owner", Kind::Str),
        ("service", Kind::Str),
        ("env", Kind::Str),
        ("labels", Kind::List),
        ("fingerprints", Kind::List),
        ("started_at", Kind::Date),
        ("message", Kind::Str),
    ];
    let event = json!({"type":"note","message":"m","meta":{"k":"v"},"ts":"2026-01-01T00:00:00Z"});
    let event_fields = vec![
        ("type", Kind::Str),
        ("message", Kind::Str),
        ("meta", Kind::Obj),
        ("ts", Kind::Date),
    ];
    let followup_event = json!({"type":"followup","message":"m",
        "meta":{"title":"t","owner":"o","due":"2026-03-01T00:00:00Z","priority":"P1","status":"open"}});
    let followup_fields = vec![
        ("meta.title", Kind::Str),
        ("meta.owner", Kind::Str),
        ("meta.due", Kind::Date),
        ("meta.priority", Kind::Enum),
        ("meta.status", Kind::Enum),
    ];
    let artifact = json!({"name":"notes.md","content":"hello","encoding":"utf8"});
    let artifact_fields = vec![
        ("name", Kind::Str),
        ("content", Kind::Content),
        ("encoding", Kind::Enum),
    ];
    let note = json!({"message":"m"});
    let tool = |action: &str, params: Value| json!({"tool":"oncall_tool","action":action,"params":params,"agent_id":"sofiia","metadata":{}});
    let in_params = |fields: &[(&'static str, Kind)]| -> Vec<(&'static str, Kind)> {
        fields
            .iter()
            .map(|(f, k)| {
                let p: &'static str = Box::leak(format!("params.{f}").into_boxed_str());
                (p, *k)
            })
            .collect()
    };
    let with_id = |mut v: Value| {
        v["incident_id"] = json!(id);
        v
    };
    let triage = json!({"workspace_id":"w","user_id":"u","agent_id":"sofiia",
        "input":{"service":"gateway","symptom":"5xx","env":"prod","max_log_lines":50,
        "include_traces":false,"time_range":{"from":"2026-01-01T00:00:00Z","to":"2026-01-01T01:00:00Z"}}});
    let postmortem = json!({"workspace_id":"w","user_id":"u","agent_id":"sofiia",
        "input":{"incident_id": id}});
    vec![
        post("/api/incidents", incident.clone(), incident_fields()),
        Endpoint {
            method: reqwest::Method::PATCH,
            path: format!("/api/incidents/{id}"),
            base: patch.clone(),
            fields: patch_fields.clone(),
        },
        post(
            format!("/api/incidents/{id}/close"),
            note.clone(),
            vec![("message", Kind::Str)],
        ),
        post(
            format!("/api/incidents/{id}/events"),
            event.clone(),
            event_fields.clone(),
        ),
        post(
            format!("/api/incidents/{id}/events"),
            followup_event.clone(),
            followup_fields.clone(),
        ),
        post(
            format!("/api/incidents/{id}/followups/{followup}/close"),
            note.clone(),
            vec![("message", Kind::Str)],
        ),
        post(
            format!("/api/incidents/{id}/artifacts"),
            artifact.clone(),
            artifact_fields.clone(),
        ),
        post(
            "/api/admin/backup",
            json!({"name":"b1"}),
            vec![("name", Kind::Str)],
        ),
        post(
            "/v1/tools/execute",
            tool("incident_list", json!({})),
            vec![
                ("tool", Kind::Str),
                ("action", Kind::Str),
                ("params", Kind::Obj),
                ("agent_id", Kind::Str),
            ],
        ),
        post(
            "/v1/tools/execute",
            tool("incident_create", incident.clone()),
            in_params(&incident_fields()),
        ),
        post(
            "/v1/tools/execute",
            tool("incident_update", with_id(patch)),
            in_params(&patch_fields),
        ),
        post(
            "/v1/tools/execute",
            tool("incident_append_event", with_id(event)),
            in_params(&event_fields),
        ),
        post(
            "/v1/tools/execute",
            tool("incident_attach_artifact", with_id(artifact)),
            in_params(&artifact_fields),
        ),
        post(
            "/v1/tools/execute",
            tool(
                "incident_list",
                json!({"service":"gateway","status":"open","limit":10}),
            ),
            vec![
                ("params.service", Kind::Str),
                ("params.status", Kind::Enum),
                ("params.limit", Kind::Int),
            ],
        ),
        post(
            "/v1/tools/execute",
            json!({"tool":"runbook_tool","action":"search","params":{"query":"redis","limit":5}}),
            vec![("params.query", Kind::Str), ("params.limit", Kind::Int)],
        ),
        post(
            "/v1/tools/execute",
            json!({"tool":"incident_intelligence_tool","action":"correlate",
                   "params":{"incident_id": id, "max_results": 5}}),
            vec![
                ("params.incident_id", Kind::Str),
                ("params.max_results", Kind::Int),
            ],
        ),
        post(
            "/v1/tools/oncall_tool",
            json!({"action":"incident_create","service":"gateway","severity":"P2","title":"t"}),
            vec![
                ("action", Kind::Str),
                ("service", Kind::Str),
                ("severity", Kind::Enum),
                ("title", Kind::Str),
            ],
        ),
        post(
            "/v1/graphs/incident_triage/runs",
            triage,
            vec![
                ("workspace_id", Kind::Str),
                ("user_id", Kind::Str),
                ("agent_id", Kind::Str),
                ("input", Kind::Obj),
                ("input.service", Kind::Str),
                ("input.symptom", Kind::Str),
                ("input.env", Kind::Enum),
                ("input.max_log_lines", Kind::Int),
                ("input.include_traces", Kind::Bool),
                ("input.time_range", Kind::Obj),
                ("input.time_range.from", Kind::Date),
            ],
        ),
        post(
            "/v1/graphs/postmortem_draft/runs",
            postmortem,
            vec![("input.incident_id", Kind::Str)],
        ),
    ]
}

/// Bodies that are not JSON objects at all, or not valid text.
fn bad_bodies(base: &Value) -> Vec<(&'static str, Vec<u8>)> {
    let mut utf8 = serde_json::to_vec(base).unwrap();
    // Replace the first string's first byte with bytes that are not UTF-8.
    if let Some(pos) = utf8.windows(2).position(|w| w == b":\"") {
        utf8.splice(pos + 2..pos + 2, [0xff, 0xfe]);
    }
    let text = serde_json::to_vec(base).unwrap();
    vec![
        ("invalid UTF-8 in a string", utf8),
        ("truncated", text[..text.len() / 2].to_vec()),
        ("a list", b"[]".to_vec()),
        ("a number", b"5".to_vec()),
        ("a string", b"\"x\"".to_vec()),
        ("null", b"null".to_vec()),
        ("not JSON", b"service=gateway".to_vec()),
        ("NUL bytes", vec![0u8; 64]),
        (
            "nesting past any depth",
            format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
        ),
    ]
}

#[tokio::test]
async fn every_bad_value_of_every_json_endpoint_gets_a_4xx_and_writes_nothing() {
    let app = spawn_app().await;
    let id = app.create("gateway", "P1", "Fuzz target").await;
    let (s, fu) = app
        .post(
            &format!("/api/incidents/{id}/events"),
            json!({"type":"followup","message":"do it","meta":{"title":"t","due":"2026-03-01T00:00:00Z"}}),
        )
        .await;
    assert_eq!(s, 201, "{fu}");
    let followup = fu["id"].as_str().unwrap().to_string();
    let before = snapshot(&app, &id).await;
    let mut failures: Vec<String> = Vec::new();
    let mut sent = 0usize;
    for ep in endpoints(&id, &followup) {
        let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
        for (field, kind) in &ep.fields {
            for (what, value) in bad_values(*kind) {
                let mut body = ep.base.clone();
                set(&mut body, field, value);
                cases.push((
                    format!("{field} = {what}"),
                    serde_json::to_vec(&body).unwrap(),
                ));
            }
        }
        for (what, bytes) in bad_bodies(&ep.base) {
            cases.push((what.to_string(), bytes));
        }
        for (what, bytes) in cases {
            sent += 1;
            let r = app
                .client
                .request(ep.method.clone(), app.url(&ep.path))
                .header("content-type", "application/json")
                .body(bytes)
                .send()
                .await
                .unwrap();
            let (status, v) = split(r).await;
            let envelope = v["error"]["code"].is_string() && v["error"]["message"].is_string();
            if !(400..500).contains(&status) || !envelope {
                let shown: String = v.to_string().chars().take(200).collect();
                failures.push(format!(
                    "{} {} [{what}]: {status} {shown}",
                    ep.method, ep.path
                ));
            }
        }
        let after = snapshot(&app, &id).await;
        if after != before {
            failures.push(format!(
                "{} {}: something was written\nbefore: {before}\nafter:  {after}",
                ep.method, ep.path
            ));
            break;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {sent} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(sent > 400, "only {sent} cases");
}
