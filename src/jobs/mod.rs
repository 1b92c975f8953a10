//! Governance jobs (SPEC §7): the task registry (`config/task_registry.yml`) is the only
//! schedule there is. [`Jobs`] keeps each task's last scheduled fire in the store and re-reads
//! the wall clock at least every 30 s, so fires missed while the laptop slept or sofiia was
//! stopped are found and handled by the task's `catch_up` policy; its `overlap` policy keeps
//! two runs of one job from running at once. Every run is recorded durably (dry runs only in
//! memory: they write nothing), and a job acts on other rooms only through gateway tool calls
//! audited with its `job_run_id` ([`cx::JobCx::tool`]).
//!
//! [`registry`] parses the file, [`schedule`] computes fires (5- or 6-field cron, UTC or an
//! IANA zone across DST), [`builtin`] holds the jobs themselves.

pub mod builtin;
mod control;
pub mod cx;
pub mod model;
pub mod registry;
pub mod schedule;
mod scheduler;
pub mod tables;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::gateway::Gateway;
use crate::kernel::clock::{rfc3339, Clock};
use crate::kernel::events::{Bus, Event};
use crate::store::Store;
pub use control::WeakJobs;
pub use cx::{JobCx, SCHEDULER_AGENT};
pub use model::{JobRun, JobState, JobStatus, Missed, Trigger, WouldWrite};
pub use registry::{CatchUp, InputKind, InputSpec, Overlap, Task, TaskRegistry};

/// What a finished job says about itself.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// One line for lists ("wrote reports/risk/2026-12-04.md: 7 services, 2 high").
    pub summary: String,
    /// Figures and ids for the run record.
    pub result: Json,
}

/// The future a job's run returns.
pub type JobFuture<'a> = Pin<Box<dyn Future<Output = Result<Outcome>> + Send + 'a>>;

/// A built-in job the registry's tasks run.
pub trait Job: Send + Sync + 'static {
    /// Its name (a task's `job`, or its `id`).
    fn name(&self) -> &'static str;
    /// The inputs it takes.
    fn inputs(&self) -> &'static [InputSpec] {
        &[]
    }
    /// Do the work: tool calls through `cx.tool`, files through `cx.write_report`.
    fn run<'a>(&'a self, cx: &'a JobCx) -> JobFuture<'a>;
}

/// A fire counts as on time when it is handled within this of its time; later ones were
/// missed (the machine slept, or sofiia was stopped).
pub const GRACE: time::Duration = time::Duration::seconds(90);
/// How often the wall clock is re-read (monotonic timers stop while a laptop sleeps).
pub const WALL_CLOCK_CHECK: &str = "*/30 * * * * *";
/// Dry runs kept in memory for `get_task` and the console.
const DRY_RUNS_KEPT: usize = 50;

/// How the room runs.
#[derive(Debug, Clone, Default)]
pub struct JobsOptions {
    /// Crash tests only (`SOFIIA_JOB_HOLD_MS`): each run waits this long after its record is
    /// written before the job starts.
    pub hold: Duration,
}

/// What the jobs work with.
pub struct JobsEnv {
    pub store: Store,
    /// Every side effect of a job goes through it.
    pub gateway: Gateway,
    pub clock: Arc<dyn Clock>,
    /// Reports are written under it.
    pub data_dir: PathBuf,
    /// Run changes are published as `ops.job` events.
    pub bus: Bus,
}

/// A request to start a task by hand (console, API, CLI) or by an agent's tool call.
#[derive(Debug, Clone)]
pub struct StartJob {
    pub task: String,
    pub trigger: Trigger,
    pub inputs: serde_json::Map<String, Json>,
    pub dry_run: bool,
    /// `operator` or `agent:<id>`.
    pub requested_by: String,
    /// The role the request acts with (`operator` may start every task).
    pub role: String,
}

/// The jobs room: registry, scheduler state, live runs.
#[derive(Clone)]
pub struct Jobs(Arc<Inner>);

struct Inner {
    registry: TaskRegistry,
    impls: HashMap<&'static str, Arc<dyn Job>>,
    store: Store,
    gateway: Gateway,
    clock: Arc<dyn Clock>,
    data_dir: PathBuf,
    bus: Bus,
    started_at: OffsetDateTime,
    opts: JobsOptions,
    live: Mutex<Live>,
    tick_lock: tokio::sync::Mutex<()>,
    ticks: AtomicU64,
    /// Runs a crash left unfinished are marked interrupted before anything else happens.
    recovered: tokio::sync::OnceCell<()>,
}

#[derive(Default)]
struct Live {
    /// Task → its running runs (not dry runs).
    running: HashMap<String, Vec<String>>,
    /// Task → runs waiting for the one before them, oldest first.
    waiting: HashMap<String, VecDeque<JobRun>>,
    /// Run → its stop signal ([`cx::STOP_CANCEL`], [`cx::STOP_SHUTDOWN`]).
    stop: HashMap<String, watch::Sender<u8>>,
    /// Recent dry runs (never stored).
    dry: VecDeque<JobRun>,
    /// Run → who cancelled it (for its record).
    cancelled_by: HashMap<String, String>,
}

fn lock(m: &Mutex<Live>) -> std::sync::MutexGuard<'_, Live> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A new run id.
fn run_id() -> String {
    format!("jr_{}", crate::kernel::clock::random_hex(10))
}

/// Whether `id` has the form of a run id (so a bad one is a 400, not a lookup).
pub fn valid_run_id(id: &str) -> bool {
    id.strip_prefix("jr_")
        .is_some_and(|r| r.len() == 20 && r.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl Jobs {
    /// Build the room over its registry and jobs. Runs a crash left unfinished are marked
    /// `interrupted` (never re-run by themselves) before the room's first answer.
    pub fn new(
        registry: TaskRegistry,
        jobs: Vec<Arc<dyn Job>>,
        env: JobsEnv,
        opts: JobsOptions,
    ) -> Result<Jobs> {
        let JobsEnv {
            store,
            gateway,
            clock,
            data_dir,
            bus,
        } = env;
        let impls = jobs.into_iter().map(|j| (j.name(), j)).collect();
        let started_at = clock.now();
        let me = Jobs(Arc::new(Inner {
            registry,
            impls,
            store,
            gateway,
            clock,
            data_dir,
            bus,
            started_at,
            opts,
            live: Mutex::new(Live::default()),
            tick_lock: tokio::sync::Mutex::new(()),
            ticks: AtomicU64::new(0),
            recovered: tokio::sync::OnceCell::new(),
        }));
        Ok(me)
    }

    /// The registry.
    pub fn registry(&self) -> &TaskRegistry {
        &self.0.registry
    }

    /// How many times the scheduler has checked the clock.
    pub fn ticks(&self) -> u64 {
        self.0.ticks.load(Ordering::Relaxed)
    }

    async fn recovered(&self) -> Result<()> {
        self.0
            .recovered
            .get_or_try_init(|| async { self.recover().await.map(|_| ()) })
            .await
            .map(|_| ())
    }

    async fn recover(&self) -> Result<usize> {
        let now = self.0.clock.now();
        let n = self.0.store.write(move |txn| {
            let ids: Vec<String> = {
                let t = txn.open(tables::JOB_ACTIVE)?;
                let mut out = Vec::new();
                use redb::ReadableTable;
                for row in t.iter()? {
                    out.push(row?.0.value().to_string());
                }
                out
            };
            let mut n = 0;
            for id in ids {
                let Some(mut run) = tables::load_run(txn, &id)? else {
                    txn.open(tables::JOB_ACTIVE)?.remove(id.as_str())?;
                    continue;
                };
                let was = run.status;
                run.status = JobStatus::Interrupted;
                run.finished_at = Some(now);
                run.error = Some(if was == JobStatus::Queued {
                    "sofiia stopped before this run started; it is not run by itself (start it again by hand if it is still wanted)".into()
                } else {
                    "sofiia stopped while this run was going (a crash or kill); it is not re-run by itself (start it again by hand if needed)".into()
                });
                tables::save_run(txn, &run)?;
                n += 1;
            }
            Ok(n)
        }).await?;
        if n > 0 {
            tracing::warn!(runs = n, "job_runs_interrupted");
        }
        Ok(n)
    }

    /// Start a task by hand or for a tool call: permissions, inputs and the overlap policy
    /// are checked; the run record is durable before the job starts.
    pub async fn start(&self, req: StartJob) -> Result<JobRun> {
        self.recovered().await?;
        let task = self.task(&req.task)?.clone();
        self.may_start(&task, &req.role, "start")?;
        let inputs = self.inputs_for(&task, req.inputs)?;
        let now = self.0.clock.now();
        let mut run = JobRun {
            id: run_id(),
            job: task.id.clone(),
            trigger: req.trigger,
            status: JobStatus::Running,
            dry_run: req.dry_run,
            inputs: Json::Object(inputs),
            requested_by: req.requested_by,
            scheduled_for: None,
            missed: None,
            created_at: now,
            started_at: Some(now),
            finished_at: None,
            duration_ms: None,
            summary: String::new(),
            result: Json::Null,
            artifacts: vec![],
            would_write: vec![],
            tool_calls: 0,
            error: None,
        };
        if run.dry_run {
            // Dry runs write nothing, so they wait for nothing either.
            let rx = {
                let mut live = lock(&self.0.live);
                live.dry.push_front(run.clone());
                live.dry.truncate(DRY_RUNS_KEPT);
                self.stop_channel(&mut live, &run.id)
            };
            let me = self.clone();
            let r = run.clone();
            tokio::spawn(async move { me.drive(r, rx).await });
            return Ok(run);
        }
        let rx = {
            let mut live = lock(&self.0.live);
            let busy = live.running.get(&task.id).map(|v| v.first().cloned());
            match (busy, task.overlap) {
                (Some(Some(cur)), Overlap::Skip) => {
                    return Err(Error::Conflict(format!(
                        "'{}' is already running ({cur}); its overlap policy is skip",
                        task.id
                    )))
                }
                (Some(Some(cur)), Overlap::QueueOne) => {
                    let w = live.waiting.entry(task.id.clone()).or_default();
                    if let Some(q) = w.front() {
                        return Err(Error::Conflict(format!(
                            "'{}' is running ({cur}) and {} already waits (overlap: queue_one)",
                            task.id, q.id
                        )));
                    }
                    run.status = JobStatus::Queued;
                    run.started_at = None;
                    w.push_back(run.clone());
                    None
                }
                _ => {
                    live.running
                        .entry(task.id.clone())
                        .or_default()
                        .push(run.id.clone());
                    Some(self.stop_channel(&mut live, &run.id))
                }
            }
        };
        let rec = run.clone();
        if let Err(e) = self
            .0
            .store
            .write(move |txn| tables::save_run(txn, &rec))
            .await
        {
            self.forget(&run);
            return Err(e);
        }
        self.publish(&run);
        if let Some(rx) = rx {
            let me = self.clone();
            let r = run.clone();
            tokio::spawn(async move { me.drive(r, rx).await });
        }
        Ok(run)
    }

    /// Whether `role` may start (or cancel) `task`: the operator always may.
    fn may_start(&self, task: &Task, role: &str, what: &str) -> Result<()> {
        if role == "operator" || task.permissions.iter().any(|r| r == role) {
            return Ok(());
        }
        Err(Error::Forbidden {
            code: "job_permission",
            message: format!(
                "role '{role}' may not {what} '{}' (task_registry.yml permissions: {})",
                task.id,
                if task.permissions.is_empty() {
                    "operator only".to_string()
                } else {
                    task.permissions.join(", ")
                }
            ),
        })
    }

    fn task(&self, id: &str) -> Result<&Task> {
        self.0.registry.get(id).ok_or_else(|| {
            Error::NotFound(format!(
                "no task '{}' in task_registry.yml; GET /api/jobs lists them",
                crate::kernel::text::clip(id, 64)
            ))
        })
    }

    fn inputs_for(
        &self,
        task: &Task,
        given: serde_json::Map<String, Json>,
    ) -> Result<serde_json::Map<String, Json>> {
        let specs = self
            .0
            .impls
            .get(task.job.as_str())
            .map(|j| j.inputs())
            .unwrap_or(&[]);
        let mut inputs = task.inputs.clone();
        for (k, v) in given {
            let v = registry::check_input(specs, &k, v).map_err(|m| Error::Validation {
                code: "invalid_field",
                message: format!("inputs.{}: {m}", crate::kernel::text::clip(&k, 64)),
            })?;
            inputs.insert(k, v);
        }
        Ok(inputs)
    }

    fn stop_channel(&self, live: &mut Live, id: &str) -> watch::Receiver<u8> {
        let (tx, rx) = watch::channel(0u8);
        live.stop.insert(id.to_string(), tx);
        rx
    }

    /// Undo a reservation whose record could not be written.
    fn forget(&self, run: &JobRun) {
        let mut live = lock(&self.0.live);
        if let Some(v) = live.running.get_mut(&run.job) {
            v.retain(|x| *x != run.id);
        }
        if let Some(w) = live.waiting.get_mut(&run.job) {
            w.retain(|x| x.id != run.id);
        }
        live.stop.remove(&run.id);
    }

    fn publish(&self, run: &JobRun) {
        if !run.dry_run {
            if let Ok(v) = serde_json::to_value(run) {
                self.0.bus.publish(Event::Job { run: v });
            }
        }
    }

    /// Run `run`, then the runs waiting behind it, one after another.
    async fn drive(self, run: JobRun, rx: watch::Receiver<u8>) {
        let mut next = Some((run, rx));
        while let Some((run, rx)) = next.take() {
            let task = run.job.clone();
            self.execute(run, rx).await;
            next = self.next_waiting(&task).await;
        }
    }

    /// The next waiting run of `task`, marked running (and saved), if its turn has come.
    async fn next_waiting(&self, task: &str) -> Option<(JobRun, watch::Receiver<u8>)> {
        let (mut run, rx) = {
            let mut live = lock(&self.0.live);
            let allow = self.0.registry.get(task).map(|t| t.overlap) == Some(Overlap::Allow);
            let busy = live.running.get(task).is_some_and(|v| !v.is_empty());
            if busy && !allow {
                return None;
            }
            let run = live.waiting.get_mut(task)?.pop_front()?;
            live.running
                .entry(task.to_string())
                .or_default()
                .push(run.id.clone());
            let rx = self.stop_channel(&mut live, &run.id);
            (run, rx)
        };
        run.status = JobStatus::Running;
        run.started_at = Some(self.0.clock.now());
        let rec = run.clone();
        if let Err(e) = self
            .0
            .store
            .write(move |txn| tables::save_run(txn, &rec))
            .await
        {
            tracing::warn!(run = %run.id, error = %e, "job_run_not_saved");
        }
        self.publish(&run);
        Some((run, rx))
    }

    async fn execute(&self, mut run: JobRun, mut rx: watch::Receiver<u8>) {
        let started = Instant::now();
        let task = self.0.registry.get(&run.job).cloned();
        let job = task
            .as_ref()
            .and_then(|t| self.0.impls.get(t.job.as_str()).cloned());
        tracing::info!(run = %run.id, job = %run.job, trigger = run.trigger.as_str(), dry_run = run.dry_run, "job_started");
        let outcome: std::result::Result<Outcome, (JobStatus, String)> = match (task, job) {
            (Some(task), Some(job)) => {
                let cx = JobCx {
                    run_id: run.id.clone(),
                    task: task.id.clone(),
                    dry_run: run.dry_run,
                    now: self.0.clock.now(),
                    inputs: run.inputs.as_object().cloned().unwrap_or_default(),
                    gateway: self.0.gateway.clone(),
                    data_dir: self.0.data_dir.clone(),
                    deadline: Instant::now() + task.timeout,
                    calls: AtomicU32::new(0),
                    stop: std::sync::atomic::AtomicU8::new(0),
                    in_flight: AtomicU32::new(0),
                    written: Mutex::new(cx::Written::default()),
                };
                let hold = self.0.opts.hold;
                let work = async {
                    if !hold.is_zero() {
                        tokio::time::sleep(hold).await;
                    }
                    job.run(&cx).await
                };
                let stopped = async {
                    loop {
                        let v = *rx.borrow_and_update();
                        if v != 0 {
                            return v;
                        }
                        if rx.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    }
                };
                // A stop (timeout, cancel, shutdown) is cooperative: the call in flight
                // finishes (a tool's own limit bounds it), no further call or file write
                // starts, and the record says what was done. Dropping the work mid-call
                // would leave, say, a snapshot being written while the run says it stopped.
                let mut work = std::pin::pin!(work);
                let stop = tokio::select! {
                    r = &mut work => Err(r),
                    _ = tokio::time::sleep(task.timeout) => Ok(cx::STOP_TIMEOUT),
                    v = stopped => Ok(v),
                };
                let r = match stop {
                    Err(Ok(o)) => Ok(o),
                    Err(Err(e)) => Err((JobStatus::Failed, e.to_string())),
                    Ok(code) => {
                        cx.stop.store(code, Ordering::SeqCst);
                        // Only a call or write in flight is waited for; the job's own
                        // awaits between them are dropped.
                        let idle = async {
                            while cx.in_flight.load(Ordering::SeqCst) > 0 {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                        };
                        let finished = tokio::select! {
                            r = &mut work => r,
                            _ = idle => Err(Error::Conflict("stopped".into())),
                        };
                        let (status, why) = match code {
                            cx::STOP_TIMEOUT => (
                                JobStatus::TimedOut,
                                format!(
                                    "stopped after its timeout of {} s (task_registry.yml timeout)",
                                    task.timeout.as_secs()
                                ),
                            ),
                            cx::STOP_SHUTDOWN => (
                                JobStatus::Interrupted,
                                "sofiia stopped while this run was going; it is not re-run by itself"
                                    .to_string(),
                            ),
                            _ => (
                                JobStatus::Cancelled,
                                lock(&self.0.live)
                                    .cancelled_by
                                    .remove(&run.id)
                                    .unwrap_or_else(|| "cancelled".into()),
                            ),
                        };
                        let after = match finished {
                            Ok(o) => format!("; the call in flight finished first: {}", o.summary),
                            Err(e)
                                if cx.stop.load(Ordering::SeqCst) != 0
                                    && matches!(e, Error::Conflict(_)) =>
                            {
                                String::new()
                            }
                            Err(e) => format!("; then: {e}"),
                        };
                        Err((status, format!("{why}{after}")))
                    }
                };
                run.tool_calls = cx.calls.load(Ordering::Relaxed);
                let w = std::mem::take(&mut *cx.written.lock().unwrap_or_else(|p| p.into_inner()));
                run.artifacts = w.artifacts;
                run.would_write = w.would_write;
                r
            }
            _ => Err((
                JobStatus::Failed,
                "the task or its job is not in this build".to_string(),
            )),
        };
        run.finished_at = Some(self.0.clock.now());
        run.duration_ms = Some(started.elapsed().as_millis() as u64);
        match outcome {
            Ok(o) => {
                run.status = JobStatus::Succeeded;
                run.summary = o.summary;
                run.result = o.result;
            }
            Err((status, e)) => {
                run.status = status;
                run.summary = format!(
                    "{}: {}",
                    status.as_str(),
                    crate::kernel::text::clip(&e, 200)
                );
                run.error = Some(e);
            }
        }
        tracing::info!(run = %run.id, job = %run.job, status = run.status.as_str(), ms = run.duration_ms.unwrap_or(0), tool_calls = run.tool_calls, "job_finished");
        if run.dry_run {
            let mut live = lock(&self.0.live);
            if let Some(slot) = live.dry.iter_mut().find(|r| r.id == run.id) {
                *slot = run.clone();
            }
            live.stop.remove(&run.id);
            return;
        }
        let rec = run.clone();
        if let Err(e) = self
            .0
            .store
            .write(move |txn| {
                tables::save_run(txn, &rec)?;
                tables::prune_task(txn, &rec.job)
            })
            .await
        {
            tracing::error!(run = %run.id, error = %e, "job_run_not_saved");
        }
        {
            let mut live = lock(&self.0.live);
            if let Some(v) = live.running.get_mut(&run.job) {
                v.retain(|x| *x != run.id);
            }
            live.stop.remove(&run.id);
        }
        self.publish(&run);
    }

    /// Cancel a waiting or running run: `by` (who asks, for the record) acting with `role`,
    /// which must be one that may start the task (the operator always may).
    pub async fn cancel(&self, id: &str, by: &str, role: &str) -> Result<JobRun> {
        self.recovered().await?;
        let current = self.get(id).await?;
        if let Some(task) = self.0.registry.get(&current.job) {
            self.may_start(task, role, "cancel")?;
        }
        let note = format!("cancelled by {by}");
        let waiting = {
            let mut live = lock(&self.0.live);
            if let Some(tx) = live.stop.get(id).cloned() {
                live.cancelled_by.insert(id.to_string(), note.clone());
                let _ = tx.send(cx::STOP_CANCEL);
                None
            } else {
                let mut found = None;
                for w in live.waiting.values_mut() {
                    if let Some(i) = w.iter().position(|r| r.id == id) {
                        found = w.remove(i);
                        break;
                    }
                }
                Some(found)
            }
        };
        match waiting {
            None => {
                // Running: it stops once its call in flight returns; answer with the record
                // then (a run that finished first says so).
                for _ in 0..250 {
                    let r = self.get(id).await?;
                    if r.status == JobStatus::Cancelled {
                        return Ok(r);
                    }
                    if r.status.finished() {
                        return Err(Error::Conflict(format!(
                            "{} finished ({}) before the cancel reached it",
                            r.id,
                            r.status.as_str()
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                self.get(id).await
            }
            Some(Some(mut run)) => {
                run.status = JobStatus::Cancelled;
                run.finished_at = Some(self.0.clock.now());
                run.summary = "cancelled before it started".into();
                run.error = Some(note);
                let rec = run.clone();
                self.0
                    .store
                    .write(move |txn| tables::save_run(txn, &rec))
                    .await?;
                self.publish(&run);
                Ok(run)
            }
            Some(None) => {
                let r = self.get(id).await?;
                Err(Error::Conflict(format!(
                    "{} already finished ({})",
                    r.id,
                    r.status.as_str()
                )))
            }
        }
    }

    /// One run, stored or a recent dry run.
    pub async fn get(&self, id: &str) -> Result<JobRun> {
        self.recovered().await?;
        if !valid_run_id(id) {
            return Err(Error::invalid(
                "job_run_id",
                "is not a job run id (jr_ and 20 hex digits)",
            ));
        }
        if let Some(r) = lock(&self.0.live).dry.iter().find(|r| r.id == id) {
            return Ok(r.clone());
        }
        let key = id.to_string();
        self.0
            .store
            .read(move |txn| tables::read_run(txn, &key))
            .await?
            .ok_or_else(|| Error::NotFound(format!("no job run {id}")))
    }

    /// A task's runs, newest first (recent dry runs on the first page too).
    pub async fn runs(&self, task: &str, limit: usize, before: Option<String>) -> Result<Json> {
        let task = self.task(task)?.id.clone();
        let limit = limit.clamp(1, 200);
        let cursor = match &before {
            None => None,
            Some(b) => {
                let bad = || {
                    Error::invalid(
                        "before",
                        "is not a run id of this task from a previous page",
                    )
                };
                if !valid_run_id(b) {
                    return Err(bad());
                }
                let r = self.get(b).await.map_err(|_| bad())?;
                if r.job != task {
                    return Err(bad());
                }
                Some((crate::kernel::clock::micros(r.created_at), r.id))
            }
        };
        let t = task.clone();
        let mut runs = self
            .0
            .store
            .read(move |txn| tables::task_runs(txn, &t, cursor, limit))
            .await?;
        let full = runs.len() >= limit;
        let mut cut = false;
        if before.is_none() {
            let dry: Vec<JobRun> = lock(&self.0.live)
                .dry
                .iter()
                .filter(|r| r.job == task)
                .cloned()
                .collect();
            runs.extend(dry);
            runs.sort_by_key(|r| std::cmp::Reverse(r.created_at));
            cut = runs.len() > limit;
            runs.truncate(limit);
        }
        // The next page starts after the last stored run shown (dry runs are not stored).
        let next_before = if full || cut {
            runs.iter().rev().find(|r| !r.dry_run).map(|r| r.id.clone())
        } else {
            None
        };
        Ok(json!({"task_id": task, "runs": runs, "next_before": next_before}))
    }

    /// Every task with its schedule, next 5 fires, last run and catch-up marks.
    pub async fn list(&self) -> Result<Json> {
        self.recovered().await?;
        let now = self.0.clock.now();
        let ids: Vec<String> = self.0.registry.tasks.iter().map(|t| t.id.clone()).collect();
        let stored = self
            .0
            .store
            .read(move |txn| {
                let mut out = Vec::new();
                for id in ids {
                    let state = tables::read_state(txn, &id)?;
                    let last = tables::task_runs(txn, &id, None, 1)?.into_iter().next();
                    out.push((state, last));
                }
                Ok(out)
            })
            .await?;
        let live = lock(&self.0.live);
        let mut tasks = Vec::new();
        for (task, (state, last)) in self.0.registry.tasks.iter().zip(stored) {
            let running = live.running.get(&task.id).cloned().unwrap_or_default();
            let waiting = live.waiting.get(&task.id).map(|w| w.len()).unwrap_or(0);
            let specs = self
                .0
                .impls
                .get(task.job.as_str())
                .map(|j| j.inputs())
                .unwrap_or(&[]);
            let status = if !running.is_empty() {
                "running"
            } else if waiting > 0 {
                "queued"
            } else {
                last.as_ref()
                    .map(|r| r.status.as_str())
                    .unwrap_or("never_run")
            };
            tasks.push(json!({
                "id": task.id,
                "job": task.job,
                "description": task.description,
                "enabled": task.enabled,
                "schedule": task.schedule.as_ref().map(|s| json!({
                    "cron": s.expr,
                    "tz": s.tz_name(),
                    "words": s.describe(),
                })),
                "next_fires": match (&task.schedule, task.enabled) {
                    (Some(s), true) => s.next_n(now, 5).into_iter().map(rfc3339).collect::<Vec<_>>(),
                    _ => vec![],
                },
                "permissions": task.permissions,
                "inputs": task.inputs,
                "input_specs": specs,
                "catch_up": task.catch_up,
                "catch_up_max": task.catch_up_max,
                "overlap": task.overlap,
                "timeout_s": task.timeout.as_secs(),
                "status": status,
                "running": running,
                "waiting": waiting,
                "last_run": last,
                "last_fire": state.last_fire.map(rfc3339),
                "last_missed": state.last_missed,
                "skipped_overlap": state.skipped_overlap,
            }));
        }
        // The file's name only: where CONFIG_DIR is is no business of a reader.
        let registry = match self.0.registry.source.rsplit(['/', '\\']).next() {
            Some(name) if !self.0.registry.source.starts_with("(built-in)") => name.to_string(),
            _ => self.0.registry.source.clone(),
        };
        Ok(json!({"tasks": tasks, "now": rfc3339(now), "registry": registry}))
    }
}

#[cfg(test)]
mod tests;
