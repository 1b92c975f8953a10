//! The graph runner with test graphs: a run through its nodes with tool calls through the
//! gateway, cancel during a slow call, the overall timeout, resume after a restart (and a
//! refusal to repeat an unsafe node), a changed definition, idempotency, concurrency, TTL purge.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sofiia::error::Result;
use sofiia::graphs::{Graph, Node, NodeCx, NodeFuture, Step};
use sofiia::kernel::clock::SystemClock;

use crate::helpers::*;

/// a → b (lists incidents through the gateway) → c.
struct Steps;
impl Graph for Steps {
    fn name(&self) -> &'static str {
        "t_steps"
    }
    fn description(&self) -> &'static str {
        "three nodes, one tool call"
    }
    fn nodes(&self) -> &'static [Node] {
        &[
            Node {
                name: "a",
                safe_to_repeat: true,
            },
            Node {
                name: "b",
                safe_to_repeat: true,
            },
            Node {
                name: "c",
                safe_to_repeat: true,
            },
        ]
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"service": {"type": "string"}}})
    }
    fn default_timeout_s(&self) -> u64 {
        30
    }
    fn init(&self, input: &Value) -> Result<Value> {
        Ok(json!({"service": input.get("service").cloned().unwrap_or(json!("router")), "seen": []}))
    }
    fn step<'a>(&'a self, node: &'a str, state: &'a mut Value, cx: &'a NodeCx) -> NodeFuture<'a> {
        Box::pin(async move {
            state["seen"].as_array_mut().unwrap().push(json!(node));
            match node {
                "a" => Ok(Step::Next("b")),
                "b" => {
                    let svc = state["service"].clone();
                    let page = cx
                        .tool("oncall_tool", "incident_list", json!({"service": svc}))
                        .await?;
                    state["count"] = json!(page["items"].as_array().map(|a| a.len()).unwrap_or(0));
                    Ok(Step::Next("c"))
                }
                _ => Ok(Step::Done),
            }
        })
    }
    fn result(&self, state: &Value) -> Value {
        json!({"seen": state["seen"], "count": state["count"]})
    }
}

/// One node that waits `input.wait_ms` (cancellably), as a slow tool call would.
struct Slow;
impl Graph for Slow {
    fn name(&self) -> &'static str {
        "t_slow"
    }
    fn description(&self) -> &'static str {
        "waits"
    }
    fn nodes(&self) -> &'static [Node] {
        &[Node {
            name: "wait",
            safe_to_repeat: true,
        }]
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object"})
    }
    fn default_timeout_s(&self) -> u64 {
        60
    }
    fn init(&self, input: &Value) -> Result<Value> {
        Ok(json!({"wait_ms": input.get("wait_ms").and_then(|v| v.as_u64()).unwrap_or(30_000)}))
    }
    fn step<'a>(&'a self, _node: &'a str, state: &'a mut Value, cx: &'a NodeCx) -> NodeFuture<'a> {
        Box::pin(async move {
            cx.sleep(Duration::from_millis(state["wait_ms"].as_u64().unwrap()))
                .await?;
            Ok(Step::Done)
        })
    }
    fn result(&self, _state: &Value) -> Value {
        json!({"waited": true})
    }
}

static FIRST_RUNS: AtomicUsize = AtomicUsize::new(0);
static GATE_OPEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// first (counted) → gate (waits until GATE_OPEN; safe or not per the graph) → last.
struct Gated {
    name: &'static str,
    gate_safe: bool,
}
impl Graph for Gated {
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        "waits at a gate"
    }
    fn nodes(&self) -> &'static [Node] {
        if self.gate_safe {
            &[
                Node {
                    name: "first",
                    safe_to_repeat: true,
                },
                Node {
                    name: "gate",
                    safe_to_repeat: true,
                },
                Node {
                    name: "last",
                    safe_to_repeat: true,
                },
            ]
        } else {
            &[
                Node {
                    name: "first",
                    safe_to_repeat: true,
                },
                Node {
                    name: "gate",
                    safe_to_repeat: false,
                },
                Node {
                    name: "last",
                    safe_to_repeat: true,
                },
            ]
        }
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object"})
    }
    fn default_timeout_s(&self) -> u64 {
        60
    }
    fn init(&self, _input: &Value) -> Result<Value> {
        Ok(json!({}))
    }
    fn step<'a>(&'a self, node: &'a str, state: &'a mut Value, cx: &'a NodeCx) -> NodeFuture<'a> {
        Box::pin(async move {
            match node {
                "first" => {
                    FIRST_RUNS.fetch_add(1, Ordering::SeqCst);
                    state["first_done"] = json!(true);
                    Ok(Step::Next("gate"))
                }
                "gate" => {
                    while !GATE_OPEN.load(Ordering::SeqCst) {
                        cx.sleep(Duration::from_millis(20)).await?;
                    }
                    Ok(Step::Next("last"))
                }
                _ => Ok(Step::Done),
            }
        })
    }
    fn result(&self, state: &Value) -> Value {
        json!({"first_done": state["first_done"]})
    }
}

fn register_all(s: &sofiia::app::AppState) {
    s.runner.register(Arc::new(Steps));
    s.runner.register(Arc::new(Slow));
    s.runner.register(Arc::new(Gated {
        name: "t_gated",
        gate_safe: true,
    }));
    s.runner.register(Arc::new(Gated {
        name: "t_unsafe",
        gate_safe: false,
    }));
}

async fn app_in(dir: tempfile::TempDir) -> TestApp {
    spawn_prepared(dir, Arc::new(SystemClock), |_| {}, register_all).await
}

async fn start(app: &TestApp, graph: &str, input: Value) -> String {
    let (s, v) = app
        .post(&format!("/v1/graphs/{graph}/runs"), json!({"workspace_id": "daarion", "user_id": "helion", "agent_id": "sofiia", "input": input}))
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["status"], "queued");
    assert!(v["result"].is_null());
    v["run_id"].as_str().unwrap().to_string()
}

async fn wait_status(app: &TestApp, id: &str, want: &str) -> Value {
    for _ in 0..400 {
        let (_, v) = app.get(&format!("/v1/runs/{id}")).await;
        if v["status"] == want {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (_, v) = app.get(&format!("/v1/runs/{id}")).await;
    panic!("run {id} never reached {want}: {v}");
}

async fn wait_event(app: &TestApp, id: &str, kind: &str, node: &str) {
    for _ in 0..400 {
        let (_, v) = app.get(&format!("/v1/runs/{id}/events")).await;
        if v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == kind && e["node"] == node)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no {kind} of {node} in run {id}");
}

#[tokio::test]
async fn a_run_goes_through_its_nodes_with_tool_calls_through_the_gateway() {
    let app = app_in(tempfile::tempdir().unwrap()).await;
    app.create("router", "P1", "one").await;
    let (s, g) = app.get("/v1/graphs").await;
    assert_eq!(s, 200);
    let names: Vec<&str> = g["graphs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"t_steps"), "{g}");
    let id = start(&app, "t_steps", json!({"service": "router"})).await;
    let run = wait_status(&app, &id, "succeeded").await;
    assert_eq!(run["result"], json!({"seen": ["a", "b", "c"], "count": 1}));
    assert_eq!(run["graph"], "t_steps");
    let kinds: Vec<String> = run["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}{}",
                e["type"].as_str().unwrap(),
                e["node"]
                    .as_str()
                    .map(|n| format!(":{n}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "run_queued",
            "run_started",
            "node_start:a",
            "node_end:a",
            "node_start:b",
            "tool_call",
            "tool_result",
            "node_end:b",
            "node_start:c",
            "node_end:c",
            "run_succeeded"
        ],
    );
    // Sizes and hashes, never the payload.
    let call = run["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "tool_call")
        .unwrap();
    assert!(call["details"]["params_bytes"].as_u64().unwrap() > 0);
    assert!(call["details"].get("params").is_none());
    // The tool call is audited with the run's id, as the run's agent.
    let (_, audit) = app.get("/api/audit?tool=oncall_tool").await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["graph_run_id"] == id.as_str() && r["agent_id"] == "sofiia"),
        "{audit}"
    );
    // Replay from a sequence number.
    let (_, ev) = app.get(&format!("/v1/runs/{id}/events?after=9")).await;
    assert_eq!(ev["items"].as_array().unwrap().len(), 2);
    let (_, list) = app.get("/v1/runs?graph=t_steps&status=succeeded").await;
    assert_eq!(list["items"][0]["run_id"], id.as_str());

    // Bad input: 422 naming the field; unknown graph 404; bad ids.
    let (s, v) = app
        .post(
            "/v1/graphs/t_steps/runs",
            json!({"input": {"timeouts": {"overall_sec": 0}}}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("input.timeouts.overall_sec"));
    assert_error(
        &app.post("/v1/graphs/t_steps/runs", json!({"inputs": {}}))
            .await,
        422,
        "invalid_body",
    );
    assert_error(
        &app.post("/v1/graphs/nope/runs", json!({})).await,
        404,
        "not_found",
    );
    assert_error(&app.get("/v1/runs/gr_doesnotexist").await, 404, "not_found");
    assert_error(&app.get("/v1/runs/../etc").await, 404, "not_found");
    assert_error(&app.get("/v1/runs/xyz").await, 422, "invalid_field");
    assert_error(
        &app.post(&format!("/v1/runs/{id}/cancel"), json!({})).await,
        409,
        "conflict",
    );
}

#[tokio::test]
async fn cancel_takes_effect_during_a_slow_call_and_timeouts_fail_the_run() {
    let app = app_in(tempfile::tempdir().unwrap()).await;
    let id = start(&app, "t_slow", json!({"wait_ms": 30000})).await;
    wait_event(&app, &id, "node_start", "wait").await;
    let (s, v) = app.post(&format!("/v1/runs/{id}/cancel"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    // Long before the 30 s wait would end (wait_status gives up after 10 s).
    let run = wait_status(&app, &id, "cancelled").await;
    assert!(run["finished_at"].is_string());
    assert!(!run["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["type"] == "node_end"));

    let id = start(
        &app,
        "t_slow",
        json!({"wait_ms": 30000, "timeouts": {"overall_sec": 1}}),
    )
    .await;
    let run = wait_status(&app, &id, "failed").await;
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("timed out after 1 s"),
        "{run}"
    );

    // Several runs at once (4 workers): every run started before any of them finished.
    let mut ids = vec![];
    for _ in 0..4 {
        ids.push(start(&app, "t_slow", json!({"wait_ms": 1500})).await);
    }
    let mut started = vec![];
    let mut finished = vec![];
    for id in &ids {
        let run = wait_status(&app, id, "succeeded").await;
        started.push(run["started_at"].as_str().unwrap().to_string());
        finished.push(run["finished_at"].as_str().unwrap().to_string());
    }
    let parse = |t: &str| sofiia::kernel::clock::parse_ts(t).unwrap();
    let last_start = started.iter().map(|t| parse(t)).max().unwrap();
    let first_end = finished.iter().map(|t| parse(t)).min().unwrap();
    assert!(
        last_start < first_end,
        "runs overlapped: {started:?} {finished:?}"
    );
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_run() {
    let app = app_in(tempfile::tempdir().unwrap()).await;
    let post = |key: &'static str| {
        app.client
            .post(app.url("/v1/graphs/t_steps/runs"))
            .header("Idempotency-Key", key)
            .json(&json!({"input": {}}))
            .send()
    };
    let a = post("k-1").await.unwrap();
    assert_eq!(a.status(), 202);
    let a: Value = a.json().await.unwrap();
    let b = post("k-1").await.unwrap();
    assert_eq!(b.status(), 200);
    let b: Value = b.json().await.unwrap();
    assert_eq!(a["run_id"], b["run_id"]);
    let c: Value = post("k-2").await.unwrap().json().await.unwrap();
    assert_ne!(a["run_id"], c["run_id"]);
}

#[tokio::test]
async fn interrupted_runs_resume_from_their_last_node_or_fail_when_unsafe() {
    GATE_OPEN.store(false, Ordering::SeqCst);
    let app = app_in(tempfile::tempdir().unwrap()).await;
    let safe = start(&app, "t_gated", json!({})).await;
    let unsafe_ = start(&app, "t_unsafe", json!({})).await;
    wait_event(&app, &safe, "node_start", "gate").await;
    wait_event(&app, &unsafe_, "node_start", "gate").await;
    let firsts = FIRST_RUNS.load(Ordering::SeqCst);
    // A queued run waits for the restart too.
    let queued = {
        // Fill all workers first? Four exist; two are busy. A third run starts at once, so
        // just check it survives as well.
        start(&app, "t_steps", json!({})).await
    };
    let dir = app.stop().await;
    GATE_OPEN.store(true, Ordering::SeqCst);
    let app = app_in(dir).await;
    let run = wait_status(&app, &safe, "succeeded").await;
    assert_eq!(run["result"]["first_done"], true);
    assert!(run["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["type"] == "run_resumed"));
    // The completed first node was not run again.
    assert_eq!(FIRST_RUNS.load(Ordering::SeqCst), firsts);
    let run = wait_status(&app, &unsafe_, "failed").await;
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("not safe to repeat"),
        "{run}"
    );
    wait_status(&app, &queued, "succeeded").await;
}

#[tokio::test]
async fn finished_runs_are_purged_after_their_ttl() {
    let clock = fixed_clock();
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_prepared(dir, clock.clone(), |s| s.run_ttl_sec = 3600, register_all).await;
    let id = start(&app, "t_steps", json!({})).await;
    wait_status(&app, &id, "succeeded").await;
    let failed = start(
        &app,
        "t_slow",
        json!({"wait_ms": 5000, "timeouts": {"overall_sec": 1}}),
    )
    .await;
    // The wall clock drives the timeout; the test clock stamps finished_at.
    wait_status(&app, &failed, "failed").await;
    assert_eq!(app.state.runner.purge_expired().await.unwrap(), 0);
    clock.advance(time::Duration::hours(2));
    // The sweep is the run_ttl_cleanup job: a dry run counts, the run removes.
    let (s, v) = app
        .post(
            "/v1/tools/housekeeping_tool",
            json!({"action": "run_purge", "dry_run": true}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            v["result"]["expired"].as_u64(),
            v["result"]["removed"].as_u64()
        ),
        (Some(1), Some(0))
    );
    assert_eq!(app.get(&format!("/v1/runs/{id}")).await.0, 200);
    let (s, v) = app.post("/api/jobs/run_ttl_cleanup/run", json!({})).await;
    assert_eq!(s, 202, "{v}");
    let job = v["job_run_id"].as_str().unwrap().to_string();
    let mut done = Value::Null;
    for _ in 0..500 {
        done = app.get(&format!("/api/job-runs/{job}")).await.1;
        if done["status"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["removed"], 1, "{done}");
    assert_error(&app.get(&format!("/v1/runs/{id}")).await, 404, "not_found");
    // Failed runs are kept four times longer.
    let (s, _) = app.get(&format!("/v1/runs/{failed}")).await;
    assert_eq!(s, 200);
    clock.advance(time::Duration::hours(3));
    assert_eq!(app.state.runner.purge_expired().await.unwrap(), 1);
    assert_error(
        &app.get(&format!("/v1/runs/{failed}")).await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn supervisor_internal_key_guards_the_runner() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_prepared(
        dir,
        Arc::new(SystemClock),
        |s| s.supervisor_internal_key = Some("internal-123456".into()),
        register_all,
    )
    .await;
    assert_error(&app.get("/v1/graphs").await, 401, "unauthorized");
    let r = app
        .client
        .get(app.url("/v1/graphs"))
        .bearer_auth("internal-123456")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .get(app.url("/v1/runs"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The rest of the API is not affected in open dev mode.
    assert_eq!(app.get("/api/incidents").await.0, 200);
}
