//! `cargo bench --bench jobs`: the scheduler's cost and punctuality, and each job's time on a
//! big store, each next to a baseline measured in the same run.
//!
//! 1. Idle wake-ups: the real scheduler (tokio-cron-scheduler + the 30 s wall-clock check)
//!    on the shipped registry for `BENCH_IDLE_SECS` (61): checks per hour, next to the
//!    crate's own 500 ms tick (7,200 per hour, its design).
//! 2. Lateness, real clock: a `*/2 * * * * *` task for `BENCH_LATE_SECS` (30): how long after
//!    its scheduled second each run started.
//! 3. Lateness over a simulated day (injected clock): the shipped registry, woken only by the
//!    30 s wall-clock check (what a task with a `tz`, or any task after a sleep, relies on),
//!    and woken at each fire plus the crate delay measured in 2.
//! 4. Each job on `BENCH_INCIDENTS` (100,000) incidents, next to the tool call it makes alone.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sofiia::app::AppState;
use sofiia::config::Settings;
use sofiia::jobs::{JobRun, StartJob, Trigger};
use sofiia::kernel::clock::{Clock, ManualClock, SystemClock};

#[path = "common/populate.rs"]
mod populate;

fn env_u64(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(d)
}

fn settings(dir: &Path, config: Option<&Path>) -> Settings {
    let mut s = Settings::ephemeral(dir, "bench");
    s.config_dir = config.map(Path::to_path_buf);
    s
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn open(dir: &Path, config: Option<&Path>, clock: Arc<dyn Clock>) -> AppState {
    AppState::open(settings(dir, config), clock).unwrap()
}

/// A config dir with the shipped policies and this registry.
fn config_with(dir: &Path, registry: &str) -> std::path::PathBuf {
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    for e in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/config")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), conf.join(e.file_name())).unwrap();
    }
    std::fs::write(conf.join("task_registry.yml"), registry).unwrap();
    conf
}

async fn run(state: &AppState, task: &str, inputs: Value) -> JobRun {
    let r = state
        .jobs
        .start(StartJob {
            task: task.into(),
            trigger: Trigger::Manual,
            inputs: inputs.as_object().cloned().unwrap_or_default(),
            dry_run: false,
            requested_by: "operator".into(),
            role: "operator".into(),
        })
        .await
        .unwrap();
    loop {
        let r = state.jobs.get(&r.id).await.unwrap();
        if r.status.finished() {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();

    // 1. Idle wake-ups.
    let idle = env_u64("BENCH_IDLE_SECS", 61);
    rt.block_on(async {
        let state = open(&tmp.path().join("idle"), None, Arc::new(SystemClock));
        let (tx, rx) = tokio::sync::watch::channel(false);
        let t = Instant::now();
        let h = state.jobs.spawn(rx);
        tokio::time::sleep(Duration::from_secs(idle)).await;
        let ticks = state.jobs.ticks();
        let secs = t.elapsed().as_secs_f64();
        let _ = tx.send(true);
        let _ = h.await;
        let per_h = ticks as f64 * 3600.0 / secs;
        // What the registry implies for a whole hour: the 30 s checks and every UTC fire
        // (instants that coincide wake it once).
        let h0 = time::macros::datetime!(2026-12-07 10:00 UTC);
        let mut at: std::collections::BTreeSet<time::OffsetDateTime> = (1..=120)
            .map(|k| h0 + time::Duration::seconds(30 * k))
            .collect();
        for task in &state.jobs.registry().tasks {
            if let Some(s) = &task.schedule {
                at.extend(
                    s.next_n(h0, 400)
                        .into_iter()
                        .filter(|f| *f <= h0 + time::Duration::HOUR),
                );
            }
        }
        println!(
            "{:<58} {:>9.0} /h   ({ticks} in {secs:.0} s; the registry implies {} /h; the crate's own tick: 7200 /h, {:.0}x that)",
            "scheduler checks when idle (shipped registry)",
            per_h,
            at.len(),
            7200.0 / at.len() as f64
        );
        state.store.shutdown();
    });

    // 2. Lateness on the real clock.
    let late_secs = env_u64("BENCH_LATE_SECS", 30);
    let measured: Vec<f64> = rt.block_on(async {
        let dir = tmp.path().join("late");
        let conf = config_with(
            &dir,
            "tasks:\n  - id: probe\n    job: alert_triage\n    schedule: \"*/2 * * * * *\"\n    overlap: allow\n",
        );
        let state = open(&dir.join("data"), Some(&conf), Arc::new(SystemClock));
        let (tx, rx) = tokio::sync::watch::channel(false);
        let h = state.jobs.spawn(rx);
        tokio::time::sleep(Duration::from_secs(late_secs)).await;
        let _ = tx.send(true);
        let _ = h.await;
        let v = state.jobs.runs("probe", 200, None).await.unwrap();
        let runs: Vec<JobRun> = serde_json::from_value(v["runs"].clone()).unwrap();
        let mut late: Vec<f64> = runs
            .iter()
            .filter(|r| r.trigger == Trigger::Schedule)
            .filter_map(|r| Some((r.started_at? - r.scheduled_for?).as_seconds_f64() * 1000.0))
            .collect();
        late.sort_by(f64::total_cmp);
        println!(
            "{:<58} {:>9.0} ms p50 {:>6.0} ms p99   ({} fires in {late_secs} s; the crate ticks every 500 ms)",
            "fire lateness, real clock (*/2 s task)",
            pct(&late, 0.5),
            pct(&late, 0.99),
            late.len()
        );
        state.store.shutdown();
        late
    });

    // 3. Lateness over a simulated day.
    for (label, cron_wakes) in [
        ("simulated day: cron wake-ups + 30 s checks", true),
        ("simulated day: fallback 30 s interval only", false),
    ] {
        rt.block_on(async {
            let start = time::macros::datetime!(2026-12-07 00:00:00 UTC);
            let clock = Arc::new(ManualClock::new(start));
            let dir = tmp.path().join(format!("day{cron_wakes}"));
            let state = open(&dir, None, clock.clone());
            state.jobs.tick().await.unwrap();
            let end = start + time::Duration::DAY;
            let mut delays = measured.iter().copied().cycle();
            let mut delay = move || {
                time::Duration::milliseconds(delays.next().unwrap_or(250.0) as i64)
            };
            let mut wakes: Vec<time::OffsetDateTime> = Vec::new();
            if cron_wakes {
                // The crate's */30 check and each UTC task's fire, each as late as a real
                // wake-up measured above.
                let mut t = start;
                while t < end {
                    t += time::Duration::seconds(30);
                    wakes.push(t + delay());
                }
                for task in &state.jobs.registry().tasks {
                    let Some(s) = &task.schedule else { continue };
                    for f in s.next_n(start, 2000).into_iter().filter(|f| *f < end) {
                        wakes.push(f + delay());
                    }
                }
            } else {
                // Without the crate: a plain interval that started at some moment of a
                // minute (here 13.7 s past it), so a fire waits for the next check.
                let mut t = start + time::Duration::milliseconds(13_700);
                while t < end {
                    wakes.push(t);
                    t += time::Duration::seconds(30);
                }
            }
            wakes.sort();
            wakes.dedup();
            for w in wakes {
                let d = w - clock.now();
                if d > time::Duration::ZERO {
                    clock.advance(d);
                }
                state.jobs.tick().await.unwrap();
            }
            // Let the last runs finish.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut late = Vec::new();
            for task in &state.jobs.registry().tasks {
                let v = state.jobs.runs(&task.id, 200, None).await.unwrap();
                let runs: Vec<JobRun> = serde_json::from_value(v["runs"].clone()).unwrap();
                for r in runs.iter().filter(|r| r.scheduled_for.is_some()) {
                    late.push((r.created_at - r.scheduled_for.unwrap()).as_seconds_f64());
                }
            }
            late.sort_by(f64::total_cmp);
            println!(
                "{:<58} {:>9.2} s  p50 {:>6.2} s  p99   ({} fires in 24 h; wall-clock check period 30 s)",
                label,
                pct(&late, 0.5),
                pct(&late, 0.99),
                late.len()
            );
            state.store.shutdown();
        });
    }

    // 4. Each job on a big store.
    let n = env_u64("BENCH_INCIDENTS", 100_000) as usize;
    rt.block_on(async {
        let now = time::OffsetDateTime::now_utc();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let state = open(&tmp.path().join("big"), None, clock);
        let t = Instant::now();
        // The last week holds 10,080 of them (one a minute).
        populate::populate(&state.store, now - time::Duration::minutes(n as i64), n).await;
        println!(
            "{:<58} {:>9.1} s    ({n} incidents, setup)",
            "populate",
            t.elapsed().as_secs_f64()
        );
        let op = sofiia::gateway::auth::Principal::Operator;
        let call = |tool: &str, action: &str, params: Value| sofiia::gateway::ToolCall {
            tool: tool.into(),
            action: action.into(),
            params,
            agent_id: None,
            metadata: Value::Null,
        };
        for (task, inputs, base) in [
            (
                "weekly_incident_digest",
                json!({}),
                Some(call(
                    "incident_intelligence_tool",
                    "weekly_digest",
                    json!({}),
                )),
            ),
            (
                "audit_cleanup",
                json!({}),
                Some(call(
                    "housekeeping_tool",
                    "audit_purge",
                    json!({"dry_run": true}),
                )),
            ),
            (
                "run_ttl_cleanup",
                json!({}),
                Some(call(
                    "housekeeping_tool",
                    "run_purge",
                    json!({"dry_run": true}),
                )),
            ),
            ("backup", json!({"keep_last": 2}), None),
            ("alert_triage", json!({}), None),
            ("hourly_risk_snapshot", json!({}), None),
            ("daily_risk_digest", json!({}), None),
            ("weekly_platform_priority_digest", json!({}), None),
            ("weekly_backlog_generate", json!({}), None),
        ] {
            let r = run(&state, task, inputs).await;
            let job_ms = r.duration_ms.unwrap_or(0) as f64;
            let base_ms = match base {
                Some(c) => {
                    let t = Instant::now();
                    let _ = state.gateway.execute(&op, c).await;
                    format!("{:.1} ms alone", t.elapsed().as_secs_f64() * 1000.0)
                }
                None if task == "backup" => {
                    let t = Instant::now();
                    state.backup_to("bench-baseline").await.unwrap();
                    format!(
                        "{:.1} ms for POST /api/admin/backup",
                        t.elapsed().as_secs_f64() * 1000.0
                    )
                }
                None => "-".into(),
            };
            println!(
                "{:<58} {:>9.1} ms   {} ({base_ms}){}",
                format!("job {task}"),
                job_ms,
                r.status.as_str(),
                r.error
                    .as_deref()
                    .map(|e| format!(": {}", sofiia::kernel::text::clip(e, 80)))
                    .unwrap_or_default()
            );
        }
        state.store.shutdown();
    });
}
