//! Graph runner benchmark: runs per second of a no-op five-node graph with durable
//! checkpoints, and queue-to-start latency, next to the store's durable write rate measured
//! in the same run (a five-node run makes 13 durable writes: queued, started, a start and an
//! end per node, finished).
//!
//! Run: `cargo bench --bench graphs` (BENCH_RUNS=2000, BENCH_WORKERS=4).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sofiia::config::Settings;
use sofiia::error::Result;
use sofiia::graphs::{Graph, Node, NodeCx, NodeFuture, StartRun, Step};
use sofiia::server::App;

struct NoOp5;

const NODES: &[Node] = &[
    Node {
        name: "n1",
        safe_to_repeat: true,
    },
    Node {
        name: "n2",
        safe_to_repeat: true,
    },
    Node {
        name: "n3",
        safe_to_repeat: true,
    },
    Node {
        name: "n4",
        safe_to_repeat: true,
    },
    Node {
        name: "n5",
        safe_to_repeat: true,
    },
];

impl Graph for NoOp5 {
    fn name(&self) -> &'static str {
        "bench_noop5"
    }
    fn description(&self) -> &'static str {
        "five nodes that do nothing"
    }
    fn nodes(&self) -> &'static [Node] {
        NODES
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object"})
    }
    fn default_timeout_s(&self) -> u64 {
        600
    }
    fn init(&self, _input: &Value) -> Result<Value> {
        Ok(json!({"n": 0}))
    }
    fn step<'a>(&'a self, node: &'a str, state: &'a mut Value, _cx: &'a NodeCx) -> NodeFuture<'a> {
        Box::pin(async move {
            state["n"] = json!(state["n"].as_u64().unwrap_or(0) + 1);
            Ok(match node {
                "n1" => Step::Next("n2"),
                "n2" => Step::Next("n3"),
                "n3" => Step::Next("n4"),
                "n4" => Step::Next("n5"),
                _ => Step::Done,
            })
        })
    }
    fn result(&self, state: &Value) -> Value {
        state.clone()
    }
}

fn settings(dir: &std::path::Path, workers: usize) -> Settings {
    Settings {
        runbooks_poll_ms: 60_000,
        graph_workers: workers,
        ..Settings::ephemeral(dir, "bench")
    }
}

async fn start_noop(state: &sofiia::app::AppState) -> sofiia::graphs::Run {
    state
        .runner
        .start(
            "bench_noop5",
            StartRun {
                workspace_id: "bench".into(),
                user_id: "bench".into(),
                agent_id: "sofiia".into(),
                input: json!({}),
            },
            None,
        )
        .await
        .unwrap()
        .0
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let n: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let workers: usize = std::env::var("BENCH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let tmp = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let app = App::build(settings(tmp.path(), workers)).await.unwrap();
        let state = app.state().clone();
        state.runner.register(Arc::new(NoOp5));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = stop_rx.await;
        }));

        // Baseline: durable writes/s of the same store, `workers` writers at a time.
        let store = state.store.clone();
        let t = Instant::now();
        let baseline_n = 4000;
        let mut tasks = Vec::new();
        for w in 0..workers {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..baseline_n / workers {
                    let key = format!("bench-{w}-{i}");
                    store
                        .write(move |txn| {
                            txn.open(sofiia::store::META)?.insert(key.as_str(), "x")?;
                            Ok(())
                        })
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let writes_per_s = baseline_n as f64 / t.elapsed().as_secs_f64();

        let t = Instant::now();
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            let run = start_noop(&state).await;
            ids.push(run.run_id);
        }
        // Wait for all to finish.
        loop {
            let v = state
                .runner
                .list(sofiia::graphs::RunQuery {
                    status: Some(sofiia::graphs::RunStatus::Succeeded),
                    limit: 500,
                    graph: None,
                    cursor: None,
                })
                .await
                .unwrap();
            let done = v["items"].as_array().map(|a| a.len()).unwrap_or(0);
            let last = state.runner.get(ids.last().unwrap()).await.unwrap();
            if last["status"] == "succeeded" && done > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let secs = t.elapsed().as_secs_f64();
        let mut q2s = Vec::new();
        let mut failed = 0;
        for id in ids.iter().step_by((n / 500).max(1)) {
            let r = state.runner.get(id).await.unwrap();
            if r["status"] != "succeeded" {
                failed += 1;
                continue;
            }
            let c = sofiia::kernel::clock::parse_ts(r["created_at"].as_str().unwrap()).unwrap();
            let s = sofiia::kernel::clock::parse_ts(r["started_at"].as_str().unwrap()).unwrap();
            q2s.push((s - c).as_seconds_f64() * 1000.0);
        }
        let runs_per_s = n as f64 / secs;
        println!("graph runner: {n} runs of a no-op five-node graph, {workers} workers");
        println!(
            "{:<52} {:>9.0} /s",
            "baseline: durable writes (same store, same writers)", writes_per_s
        );
        println!(
            "{:<52} {:>9.0} /s   ({:.0} durable writes/s, {:.2}x the baseline)",
            "runs completed",
            runs_per_s,
            runs_per_s * 13.0,
            runs_per_s * 13.0 / writes_per_s
        );
        println!(
            "{:<52} p50 {:>7.2} ms  p99 {:>7.2} ms  (under a backlog of {n}; sampled {})",
            "queue-to-start latency",
            pct(&mut q2s.clone(), 0.5),
            pct(&mut q2s, 0.99),
            ids.len().min(500)
        );
        if failed > 0 {
            println!("  {failed} sampled runs did not succeed");
        }
        let _ = stop_tx.send(());
        server.await.unwrap().unwrap();
    });

    // Queue-to-start with an idle runner: one run at a time.
    let tmp = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let app = App::build(settings(tmp.path(), workers)).await.unwrap();
        let state = app.state().clone();
        state.runner.register(Arc::new(NoOp5));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = stop_rx.await;
        }));
        let mut lat = Vec::new();
        for _ in 0..200 {
            let run = start_noop(&state).await;
            loop {
                let r = state.runner.get(&run.run_id).await.unwrap();
                if r["status"] == "succeeded" {
                    let c =
                        sofiia::kernel::clock::parse_ts(r["created_at"].as_str().unwrap()).unwrap();
                    let s =
                        sofiia::kernel::clock::parse_ts(r["started_at"].as_str().unwrap()).unwrap();
                    lat.push((s - c).as_seconds_f64() * 1000.0);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        println!(
            "{:<52} p50 {:>7.2} ms  p99 {:>7.2} ms",
            "queue-to-start latency, idle runner",
            pct(&mut lat.clone(), 0.5),
            pct(&mut lat, 0.99)
        );
        let _ = stop_tx.send(());
        server.await.unwrap().unwrap();
    });
}
