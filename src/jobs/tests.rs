//! The scheduler with an injected clock: no sleeping for time to pass.

use std::sync::atomic::AtomicUsize;

use time::macros::datetime;

use super::*;
use crate::kernel::clock::ManualClock;

/// A job that counts its runs and, when gated, waits for the gate to open.
#[derive(Default)]
struct Probe {
    runs: AtomicUsize,
    active: AtomicUsize,
    max_active: AtomicUsize,
    gate: tokio::sync::Notify,
    gated: std::sync::atomic::AtomicBool,
}

struct ProbeJob(Arc<Probe>);

impl Job for ProbeJob {
    fn name(&self) -> &'static str {
        "probe"
    }
    fn inputs(&self) -> &'static [InputSpec] {
        &[InputSpec {
            name: "label",
            kind: InputKind::Text,
            about: "goes into the report",
            min: 0,
            max: 0,
        }]
    }
    fn run<'a>(&'a self, cx: &'a JobCx) -> JobFuture<'a> {
        Box::pin(async move {
            let p = &self.0;
            let now = p.active.fetch_add(1, Ordering::SeqCst) + 1;
            p.max_active.fetch_max(now, Ordering::SeqCst);
            if p.gated.load(Ordering::SeqCst) {
                p.gate.notified().await;
            }
            let label = cx.input_str("label").unwrap_or("none").to_string();
            cx.write_report(
                "reports/probe/out.md",
                format!("# probe {label}\n").into_bytes(),
            )
            .await?;
            p.runs.fetch_add(1, Ordering::SeqCst);
            p.active.fetch_sub(1, Ordering::SeqCst);
            Ok(Outcome {
                summary: format!("probe {label}"),
                result: json!({"label": label}),
            })
        })
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    data: PathBuf,
    clock: Arc<ManualClock>,
    probe: Arc<Probe>,
    jobs: Jobs,
    store: Store,
}

const T0: OffsetDateTime = datetime!(2026-12-01 10:00:30 UTC);

/// The jobs room's tables on a store of their own; steps 2-7 belong to other rooms, which
/// these tests do not need (the jobs room may not name them: they are not below it).
fn schema() -> Arc<crate::store::Schema> {
    use crate::store::Migration;
    const OTHERS: &[Migration] = &[
        Migration::tables_added(2, "other rooms"),
        Migration::tables_added(3, "other rooms"),
        Migration::tables_added(4, "other rooms"),
        Migration::tables_added(5, "other rooms"),
        Migration::tables_added(6, "other rooms"),
        Migration::tables_added(7, "other rooms"),
    ];
    Arc::new(
        crate::store::Schema::new()
            .room(crate::audit::TABLES, OTHERS)
            .room(tables::ALL, tables::MIGRATIONS),
    )
}

fn registry(task_yaml: &str) -> TaskRegistry {
    let specs: &[InputSpec] = &[InputSpec {
        name: "label",
        kind: InputKind::Text,
        about: "",
        min: 0,
        max: 0,
    }];
    TaskRegistry::parse(
        "test.yml",
        &format!("tasks:\n{task_yaml}"),
        &[("probe", specs)],
        &["agent_cto".to_string(), "agent_monitor".to_string()],
    )
    .unwrap()
}

fn open(
    dir: tempfile::TempDir,
    task_yaml: &str,
    clock: Arc<ManualClock>,
    probe: Arc<Probe>,
) -> Harness {
    let data = dir.path().to_path_buf();
    let store = Store::open(&data, schema()).unwrap();
    let audit = crate::audit::Audit::open(store.clone(), &data).unwrap();
    // Policies for a gateway without tools (the probe job calls none).
    let conf = data.join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("rbac_tools_matrix.yml"),
        "agents: {}\ndefault_role: agent_default\nroles:\n  agent_default: {}\n  agent_cto: {}\n  agent_monitor: {}\n",
    )
    .unwrap();
    std::fs::write(conf.join("tools_rollout.yml"), "tools: {}\n").unwrap();
    std::fs::write(
        conf.join("tool_limits.yml"),
        "defaults:\n  max_payload_bytes: 1000\n  timeout_ms: 1000\n  calls_per_minute: 10\ntools: {}\n",
    )
    .unwrap();
    let gateway = Gateway::new(
        crate::gateway::policy::Policies::load(Some(&conf)).unwrap(),
        crate::gateway::auth::Keys::load(&data, None, false).unwrap(),
        crate::config::Env::Dev,
        audit,
        crate::gateway::Registry::default(),
        clock.clone(),
    )
    .unwrap();
    let jobs = Jobs::new(
        registry(task_yaml),
        vec![Arc::new(ProbeJob(probe.clone()))],
        JobsEnv {
            store: store.clone(),
            gateway,
            clock: clock.clone(),
            data_dir: data.clone(),
            bus: Bus::new(clock.clone()),
        },
        JobsOptions::default(),
    )
    .unwrap();
    Harness {
        _dir: dir,
        data,
        clock,
        probe,
        jobs,
        store,
    }
}

fn harness(task_yaml: &str) -> Harness {
    open(
        tempfile::tempdir().unwrap(),
        task_yaml,
        Arc::new(ManualClock::new(T0)),
        Arc::new(Probe::default()),
    )
}

impl Harness {
    async fn runs(&self, task: &str) -> Vec<JobRun> {
        let v = self.jobs.runs(task, 200, None).await.unwrap();
        serde_json::from_value(v["runs"].clone()).unwrap()
    }
    async fn state(&self, task: &str) -> JobState {
        let t = task.to_string();
        self.store
            .read(move |txn| tables::read_state(txn, &t))
            .await
            .unwrap()
    }
    /// Wait (real time, briefly) until no run of `task` is running or queued.
    async fn settle(&self, task: &str) {
        for _ in 0..500 {
            let idle = {
                let live = lock(&self.jobs.0.live);
                live.running.get(task).is_none_or(|v| v.is_empty())
                    && live.waiting.get(task).is_none_or(|w| w.is_empty())
                    && live.stop.is_empty()
            };
            if idle {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("runs of {task} did not finish");
    }
    fn manual(&self, task: &str) -> StartJob {
        StartJob {
            task: task.into(),
            trigger: Trigger::Manual,
            inputs: Default::default(),
            dry_run: false,
            requested_by: "operator".into(),
            role: "operator".into(),
        }
    }
    fn advance(&self, d: time::Duration) {
        self.clock.advance(d);
    }
}

const HOURLY: &str = "  - id: t\n    job: probe\n    schedule: \"0 * * * *\"\n";

#[tokio::test]
async fn a_fire_on_time_runs_once_as_scheduled() {
    let h = harness(HOURLY);
    h.jobs.tick().await.unwrap(); // first sight: fires from now on
    assert!(h.runs("t").await.is_empty());
    // 10:00:30 → 11:00:10: the 11:00 fire is 10 s old.
    h.advance(time::Duration::seconds(3580));
    h.jobs.tick().await.unwrap();
    h.jobs.tick().await.unwrap(); // a second check in the same minute starts nothing more
    h.settle("t").await;
    let runs = h.runs("t").await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].trigger, Trigger::Schedule);
    assert_eq!(runs[0].status, JobStatus::Succeeded, "{:?}", runs[0].error);
    assert_eq!(runs[0].scheduled_for, Some(datetime!(2026-12-01 11:00 UTC)));
    assert!(runs[0].missed.is_none());
    assert_eq!(runs[0].artifacts, vec!["reports/probe/out.md".to_string()]);
    assert_eq!(
        h.state("t").await.last_fire,
        Some(datetime!(2026-12-01 11:00 UTC))
    );
}

#[tokio::test]
async fn a_three_day_gap_under_once_is_exactly_one_catch_up_run() {
    let h = harness(HOURLY);
    h.jobs.tick().await.unwrap();
    h.advance(time::Duration::days(3));
    h.jobs.tick().await.unwrap();
    h.jobs.tick().await.unwrap();
    h.settle("t").await;
    let runs = h.runs("t").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let r = &runs[0];
    assert_eq!(r.trigger, Trigger::CatchUp);
    let m = r.missed.as_ref().unwrap();
    // 11:00 on Dec 1 … 10:00 on Dec 4: 72 hourly fires.
    assert_eq!(m.count, 72);
    assert_eq!(m.first, datetime!(2026-12-01 11:00 UTC));
    assert_eq!(m.last, datetime!(2026-12-04 10:00 UTC));
    // sofiia was running all along (started before the first missed fire): the laptop slept.
    assert_eq!(m.reason, "missed while asleep");
    assert_eq!(m.handled, "ran once");
    assert_eq!(h.probe.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_three_day_gap_under_skip_runs_nothing_and_records_the_miss() {
    let h = harness(&format!("{HOURLY}    catch_up: skip\n"));
    h.jobs.tick().await.unwrap();
    // Back at 10:10:30: even the 10:00 fire is too old to count as on time.
    h.advance(time::Duration::days(3) + time::Duration::minutes(10));
    h.jobs.tick().await.unwrap();
    h.settle("t").await;
    assert!(h.runs("t").await.is_empty());
    let st = h.state("t").await;
    let m = st.last_missed.unwrap();
    assert_eq!((m.count, m.handled.as_str()), (72, "skipped by policy"));
    assert_eq!(st.last_fire, Some(datetime!(2026-12-04 10:00 UTC)));
    // The next fire on time runs as usual.
    h.advance(time::Duration::minutes(50));
    h.jobs.tick().await.unwrap();
    h.settle("t").await;
    let runs = h.runs("t").await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].trigger, Trigger::Schedule);
}

#[tokio::test]
async fn a_three_day_gap_under_all_runs_at_most_the_max_one_after_another() {
    let h = harness(&format!("{HOURLY}    catch_up: all\n    catch_up_max: 5\n"));
    h.jobs.tick().await.unwrap();
    h.advance(time::Duration::days(3));
    h.jobs.tick().await.unwrap();
    h.settle("t").await;
    let mut runs = h.runs("t").await;
    runs.sort_by_key(|r| r.scheduled_for);
    assert_eq!(runs.len(), 5);
    let fires: Vec<_> = runs.iter().map(|r| r.scheduled_for.unwrap()).collect();
    assert_eq!(
        fires,
        (6..=10)
            .map(|h| datetime!(2026-12-04 00:00 UTC) + time::Duration::hours(h))
            .collect::<Vec<_>>(),
        "the latest five fires, oldest first"
    );
    assert!(runs
        .iter()
        .all(|r| r.status == JobStatus::Succeeded && r.trigger == Trigger::CatchUp));
    assert_eq!(runs[0].missed.as_ref().unwrap().handled, "ran 5 of 72");
    assert_eq!(
        h.probe.max_active.load(Ordering::SeqCst),
        1,
        "never two at once"
    );
}

#[tokio::test]
async fn fires_missed_before_this_start_are_missed_while_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let probe = Arc::new(Probe::default());
    let h = open(dir, HOURLY, clock.clone(), probe.clone());
    h.jobs.tick().await.unwrap();
    // Stop sofiia, come back two days later.
    let Harness {
        _dir, store, jobs, ..
    } = h;
    drop(jobs);
    store.shutdown();
    drop(store);
    clock.advance(time::Duration::days(2));
    let h = open(_dir, HOURLY, clock, probe);
    h.jobs.tick().await.unwrap();
    h.settle("t").await;
    let runs = h.runs("t").await;
    assert_eq!(runs.len(), 1);
    let m = runs[0].missed.as_ref().unwrap();
    assert_eq!((m.count, m.reason.as_str()), (48, "missed while stopped"));
}

#[tokio::test]
async fn six_field_schedules_fire_on_seconds() {
    let h = harness("  - id: t\n    job: probe\n    schedule: \"*/10 * * * * *\"\n");
    h.jobs.tick().await.unwrap();
    h.advance(time::Duration::seconds(5)); // 10:00:35: no fire yet
    h.jobs.tick().await.unwrap();
    assert!(h.runs("t").await.is_empty());
    h.advance(time::Duration::seconds(6)); // 10:00:41: the 10:00:40 fire
    h.jobs.tick().await.unwrap();
    h.settle("t").await;
    let runs = h.runs("t").await;
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].scheduled_for,
        Some(datetime!(2026-12-01 10:00:40 UTC))
    );
}

#[tokio::test]
async fn a_local_schedule_keeps_its_wall_clock_time_across_dst() {
    // 09:00 in New York: EDT (UTC-4) before the change of 2026-11-01 is 13:00 UTC; EST
    // (UTC-5) after it is 14:00 UTC.
    let clock = Arc::new(ManualClock::new(datetime!(2026-10-31 12:00 UTC)));
    let h = open(
        tempfile::tempdir().unwrap(),
        "  - id: t\n    job: probe\n    schedule: \"0 9 * * *\"\n    tz: America/New_York\n",
        clock,
        Arc::new(Probe::default()),
    );
    h.jobs.tick().await.unwrap();
    h.advance(time::Duration::hours(1) + time::Duration::seconds(5)); // 13:00:05 UTC
    h.jobs.tick().await.unwrap();
    h.settle("t").await;
    h.advance(time::Duration::hours(25)); // Nov 1, 14:00:05 UTC
    h.jobs.tick().await.unwrap();
    h.settle("t").await;
    let mut fires: Vec<_> = h
        .runs("t")
        .await
        .iter()
        .map(|r| (r.trigger, r.scheduled_for.unwrap()))
        .collect();
    fires.sort_by_key(|f| f.1);
    assert_eq!(
        fires,
        vec![
            (Trigger::Schedule, datetime!(2026-10-31 13:00 UTC)),
            (Trigger::Schedule, datetime!(2026-11-01 14:00 UTC)),
        ]
    );
}

#[tokio::test]
async fn overlap_skip_refuses_a_second_run_and_counts_a_skipped_fire() {
    let h = harness(HOURLY);
    h.probe.gated.store(true, Ordering::SeqCst);
    h.jobs.tick().await.unwrap();
    let first = h.jobs.start(h.manual("t")).await.unwrap();
    assert_eq!(first.status, JobStatus::Running);
    let e = h.jobs.start(h.manual("t")).await.unwrap_err();
    assert_eq!(e.code(), "conflict");
    assert!(e.to_string().contains(&first.id), "{e}");
    // The 11:00 fire comes while it still runs.
    h.advance(time::Duration::seconds(3580));
    h.jobs.tick().await.unwrap();
    assert_eq!(h.state("t").await.skipped_overlap, 1);
    h.probe.gated.store(false, Ordering::SeqCst);
    h.probe.gate.notify_waiters();
    h.settle("t").await;
    assert_eq!(h.runs("t").await.len(), 1);
    assert_eq!(h.probe.max_active.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn overlap_queue_one_keeps_one_waiting_and_runs_it_after() {
    let h = harness(&format!("{HOURLY}    overlap: queue_one\n"));
    h.probe.gated.store(true, Ordering::SeqCst);
    let a = h.jobs.start(h.manual("t")).await.unwrap();
    let b = h.jobs.start(h.manual("t")).await.unwrap();
    assert_eq!(
        (a.status, b.status),
        (JobStatus::Running, JobStatus::Queued)
    );
    let e = h.jobs.start(h.manual("t")).await.unwrap_err();
    assert_eq!(e.code(), "conflict");
    // The waiting run is stored as queued.
    assert_eq!(h.jobs.get(&b.id).await.unwrap().status, JobStatus::Queued);
    h.probe.gated.store(false, Ordering::SeqCst);
    for _ in 0..10 {
        h.probe.gate.notify_waiters();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.settle("t").await;
    let b = h.jobs.get(&b.id).await.unwrap();
    let a = h.jobs.get(&a.id).await.unwrap();
    assert_eq!(
        (a.status, b.status),
        (JobStatus::Succeeded, JobStatus::Succeeded)
    );
    assert!(b.started_at.unwrap() >= a.finished_at.unwrap());
    assert_eq!(h.probe.max_active.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn overlap_allow_runs_side_by_side() {
    let h = harness(&format!("{HOURLY}    overlap: allow\n"));
    h.probe.gated.store(true, Ordering::SeqCst);
    let a = h.jobs.start(h.manual("t")).await.unwrap();
    let b = h.jobs.start(h.manual("t")).await.unwrap();
    assert_eq!(
        (a.status, b.status),
        (JobStatus::Running, JobStatus::Running)
    );
    for _ in 0..50 {
        if h.probe.active.load(Ordering::SeqCst) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(h.probe.active.load(Ordering::SeqCst), 2);
    h.probe.gated.store(false, Ordering::SeqCst);
    h.probe.gate.notify_waiters();
    h.settle("t").await;
    assert_eq!(h.probe.max_active.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_says_what_it_would_write() {
    let h = harness(HOURLY);
    let before = std::fs::read(h.data.join(crate::store::DB_FILE)).unwrap();
    let mut req = h.manual("t");
    req.dry_run = true;
    req.inputs.insert("label".into(), json!("x"));
    let r = h.jobs.start(req).await.unwrap();
    h.settle("t").await;
    let r = h.jobs.get(&r.id).await.unwrap();
    assert_eq!(r.status, JobStatus::Succeeded);
    assert!(r.artifacts.is_empty());
    assert_eq!(r.would_write.len(), 1);
    let w = &r.would_write[0];
    assert_eq!(w.path, "reports/probe/out.md");
    assert_eq!(w.preview, "# probe x\n");
    assert_eq!(w.sha256, crate::kernel::hash::sha256_hex(b"# probe x\n"));
    assert!(!h.data.join("reports").exists());
    // No run record, no state: the store's tables are as they were.
    let stored = h
        .store
        .read(|txn| {
            use redb::ReadableTableMetadata;
            Ok(txn.open_table(tables::JOB_RUNS)?.len()?)
        })
        .await
        .unwrap();
    assert_eq!(stored, 0);
    let _ = before;
}

#[tokio::test]
async fn inputs_are_checked_and_permissions_enforced() {
    let h = harness(&format!("{HOURLY}    permissions: [agent_cto]\n"));
    let mut req = h.manual("t");
    req.inputs.insert("nope".into(), json!(1));
    let e = h.jobs.start(req).await.unwrap_err();
    assert_eq!(e.code(), "invalid_field");
    assert!(e.to_string().contains("inputs.nope"), "{e}");
    let mut req = h.manual("t");
    req.role = "agent_monitor".into();
    let e = h.jobs.start(req).await.unwrap_err();
    assert_eq!(e.code(), "job_permission");
    let mut req = h.manual("t");
    req.role = "agent_cto".into();
    assert!(h.jobs.start(req).await.is_ok());
    let e = h.jobs.start(h.manual("nope")).await.unwrap_err();
    assert_eq!(e.code(), "not_found");
    h.settle("t").await;
}

#[tokio::test]
async fn a_run_a_crash_left_running_is_marked_interrupted_and_not_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let h = open(dir, HOURLY, clock.clone(), Arc::new(Probe::default()));
    h.jobs.tick().await.unwrap();
    // What a kill -9 during the 11:00 run leaves: the fire handled, its record running.
    h.advance(time::Duration::seconds(3580));
    let mut run = h.jobs.scheduled_run(
        h.jobs.registry().get("t").unwrap(),
        Trigger::Schedule,
        datetime!(2026-12-01 11:00 UTC),
        None,
        h.clock.now(),
    );
    run.status = JobStatus::Running;
    let id = run.id.clone();
    let mut st = h.state("t").await;
    st.last_fire = Some(datetime!(2026-12-01 11:00 UTC));
    h.store
        .write(move |txn| {
            tables::save_run(txn, &run)?;
            tables::save_state(txn, "t", &st)
        })
        .await
        .unwrap();
    let Harness {
        _dir, store, jobs, ..
    } = h;
    drop(jobs);
    store.shutdown();
    drop(store);
    let probe = Arc::new(Probe::default());
    let h = open(_dir, HOURLY, clock, probe.clone());
    let r = h.jobs.get(&id).await.unwrap();
    assert_eq!(r.status, JobStatus::Interrupted);
    assert!(r.error.unwrap().contains("not re-run"));
    h.jobs.tick().await.unwrap();
    h.settle("t").await;
    assert_eq!(
        h.runs("t").await.len(),
        1,
        "the 11:00 fire is not run again"
    );
    assert_eq!(probe.runs.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_waiting_run_can_be_cancelled_and_a_finished_one_cannot() {
    let h = harness(&format!("{HOURLY}    overlap: queue_one\n"));
    h.probe.gated.store(true, Ordering::SeqCst);
    let a = h.jobs.start(h.manual("t")).await.unwrap();
    let b = h.jobs.start(h.manual("t")).await.unwrap();
    let c = h.jobs.cancel(&b.id, "operator", "operator").await.unwrap();
    assert_eq!(c.status, JobStatus::Cancelled);
    let ra = h.jobs.cancel(&a.id, "operator", "operator").await.unwrap();
    assert_eq!(ra.status, JobStatus::Cancelled);
    h.settle("t").await;
    assert_eq!(
        h.jobs
            .cancel(&a.id, "operator", "operator")
            .await
            .unwrap_err()
            .code(),
        "conflict"
    );
    assert_eq!(h.probe.runs.load(Ordering::SeqCst), 0);
}
