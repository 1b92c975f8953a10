//! The graph runner (SPEC §8): durable supervisor runs of typed node graphs.
//!
//! - A [`Graph`] is a sequence of named nodes with conditional edges (each step returns the
//!   next node, so loops are possible) over a JSON run state.
//! - Runs are `queued → running → succeeded | failed | cancelled`, stored in redb with their
//!   events (node start/end, tool call/result with sizes and hashes, errors; never payloads).
//! - State is checkpointed after every node. After a restart, queued runs start and
//!   interrupted runs resume from their last completed node, or fail with a clear reason when
//!   the interrupted node is not safe to repeat, or when the graph's definition changed.
//! - Cancel takes effect at once, also during a tool call (the call's future is dropped).
//!   Each run has an overall deadline (`input.timeouts.overall_sec`, default per graph).
//!   `workers` runs execute concurrently. Finished runs are purged after `RUN_TTL_SEC`
//!   (failed ones after four times that).
//! - Nodes reach other rooms only through the tool gateway ([`NodeCx::tool`]), with the run's
//!   id as `graph_run_id`; transient tool errors are retried with exponential backoff and
//!   jitter, a cancellation never.

pub mod postmortem;
pub mod requeue;
pub mod tables;
pub mod triage;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use time::OffsetDateTime;
use tokio::sync::{watch, Notify};

use crate::error::{Error, Result};
use crate::gateway::auth::Principal;
use crate::gateway::{Gateway, ToolCall};
use crate::kernel::clock::Clock;
use crate::store::Store;
use tables::*;

/// A node of a graph.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Node {
    pub name: &'static str,
    /// Whether running it again after an interruption is harmless (reads, idempotent
    /// writes). A run interrupted inside a node that is not fails instead of resuming.
    pub safe_to_repeat: bool,
}

/// What a node returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Continue with this node.
    Next(&'static str),
    /// The graph is done.
    Done,
}

/// A boxed future of a node.
pub type NodeFuture<'a> = Pin<Box<dyn Future<Output = Result<Step>> + Send + 'a>>;

/// A graph definition.
pub trait Graph: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    /// Every node, the first one first.
    fn nodes(&self) -> &'static [Node];
    /// JSON schema of `input` (for `GET /v1/graphs` and the console's form).
    fn input_schema(&self) -> Json;
    /// Default overall timeout when `input.timeouts.overall_sec` is not given.
    fn default_timeout_s(&self) -> u64;
    /// Check `input` (422 naming the field) and build the initial state.
    fn init(&self, input: &Json) -> Result<Json>;
    /// Run one node on `state`.
    fn step<'a>(&'a self, node: &'a str, state: &'a mut Json, cx: &'a NodeCx) -> NodeFuture<'a>;
    /// The run's result, from its final state.
    fn result(&self, state: &Json) -> Json;
    /// Bump when a node's behaviour changes in a way resumed runs must not mix.
    fn version(&self) -> u32 {
        1
    }
}

/// A definition's hash: its name, version and nodes.
pub fn definition_hash(g: &dyn Graph) -> String {
    let nodes: Vec<String> = g
        .nodes()
        .iter()
        .map(|n| format!("{}:{}", n.name, n.safe_to_repeat))
        .collect();
    let text = format!("{}|v{}|{}", g.name(), g.version(), nodes.join(","));
    crate::kernel::hash::sha256_hex(text.as_bytes())[..16].to_string()
}

/// Run states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<RunStatus> {
        Some(match s {
            "queued" => RunStatus::Queued,
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            _ => return None,
        })
    }
    pub fn finished(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

/// A run as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub run_id: String,
    pub graph: String,
    pub graph_hash: String,
    pub status: RunStatus,
    pub workspace_id: String,
    pub user_id: String,
    pub agent_id: String,
    pub input: Json,
    pub state: Json,
    /// The node to run next (None when finished).
    pub next_node: Option<String>,
    /// Set while a node runs (cleared by its checkpoint): what a restart finds interrupted.
    pub current_node: Option<String>,
    #[serde(with = "crate::kernel::clock::serde_ts")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "crate::kernel::clock::serde_ts::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(default, with = "crate::kernel::clock::serde_ts::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub timeout_s: u64,
    pub result: Option<Json>,
    pub error: Option<String>,
    pub cancel_requested: bool,
    pub idempotency_key: Option<String>,
    pub events: u64,
    /// Runs this run started as sub-runs (cancelled with it).
    #[serde(default)]
    pub children: Vec<String>,
}

/// A run event (no payloads: sizes and hashes only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunEvent {
    pub seq: u64,
    #[serde(with = "crate::kernel::clock::serde_ts")]
    pub ts: OffsetDateTime,
    #[serde(rename = "type")]
    pub kind: String,
    pub node: Option<String>,
    pub details: Json,
}

/// What `POST /v1/graphs/{name}/runs` takes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    #[serde(default = "default_workspace")]
    pub workspace_id: String,
    #[serde(default = "default_user")]
    pub user_id: String,
    #[serde(default = "default_user")]
    pub agent_id: String,
    #[serde(default)]
    pub input: Json,
}

fn default_workspace() -> String {
    "default".into()
}
fn default_user() -> String {
    "sofiia".into()
}

/// Runner settings.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    pub workers: usize,
    pub ttl: Duration,
    /// Failed runs are kept this much longer (to be looked at).
    pub failed_ttl: Duration,
    /// Tool calls: attempts for transient errors, and the first backoff.
    pub tool_attempts: u32,
    pub tool_backoff: Duration,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            workers: 4,
            ttl: Duration::from_secs(86_400),
            failed_ttl: Duration::from_secs(4 * 86_400),
            tool_attempts: 3,
            tool_backoff: Duration::from_millis(200),
        }
    }
}

/// What a node can use.
pub struct NodeCx {
    pub run_id: String,
    pub agent_id: String,
    /// The node being run (sent with every tool call, for logs and audit).
    pub node: String,
    pub attempt: u32,
    runner: Runner,
    cancel: watch::Receiver<bool>,
    /// Set when a tool call failed after its last retry (the run then waits in the requeue
    /// list for a person's decision).
    exhausted: std::sync::atomic::AtomicBool,
}

impl NodeCx {
    /// Call a tool through the gateway as the run's agent, with `graph_run_id`. Transient
    /// errors (timeout, rate limit, unavailable, storage) are retried with exponential backoff
    /// and jitter; a cancellation ends it at once.
    pub async fn tool(&self, tool: &str, action: &str, params: Json) -> Result<Json> {
        let r = &self.runner.inner;
        let size = params.to_string().len();
        let hash = crate::kernel::hash::sha256_hex(params.to_string().as_bytes());
        let mut attempt = 1u32;
        loop {
            self.runner
                .event(
                    &self.run_id,
                    "tool_call",
                    None,
                    json!({"tool": tool, "action": action, "attempt": attempt,
                       "params_bytes": size, "params_sha256": &hash[..16]}),
                )
                .await?;
            let call = ToolCall {
                tool: tool.into(),
                action: action.into(),
                params: params.clone(),
                agent_id: Some(self.agent_id.clone()),
                metadata: json!({"graph_run_id": self.run_id, "node": self.node, "attempt": attempt}),
            };
            let started = Instant::now();
            let out = self
                .cancellable(r.gateway.execute(&Principal::Operator, call))
                .await?;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            match out {
                Ok(v) => {
                    let text = v.to_string();
                    self.runner
                        .event(
                            &self.run_id,
                            "tool_result",
                            None,
                            json!({"tool": tool, "action": action, "attempt": attempt, "ok": true,
                               "result_bytes": text.len(), "elapsed_ms": elapsed_ms,
                               "result_sha256": &crate::kernel::hash::sha256_hex(text.as_bytes())[..16]}),
                        )
                        .await?;
                    return Ok(v);
                }
                Err(e) => {
                    let transient = matches!(
                        e,
                        Error::Timeout(_)
                            | Error::TooManyRequests { .. }
                            | Error::Unavailable { .. }
                            | Error::Storage(_)
                            | Error::Io(_)
                    );
                    self.runner
                        .event(
                            &self.run_id,
                            "tool_result",
                            None,
                            json!({"tool": tool, "action": action, "attempt": attempt, "ok": false,
                               "code": e.code(), "elapsed_ms": elapsed_ms, "retry": transient && attempt < r.opts.tool_attempts}),
                        )
                        .await?;
                    if !transient || attempt >= r.opts.tool_attempts {
                        if transient {
                            self.exhausted
                                .store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        return Err(e);
                    }
                    let base = r.opts.tool_backoff.as_millis() as u64 * (1 << (attempt - 1));
                    let wait = match &e {
                        Error::TooManyRequests { retry_after_s, .. } => {
                            (*retry_after_s * 1000).max(base)
                        }
                        _ => base / 2 + jitter(base / 2 + 1),
                    };
                    self.sleep(Duration::from_millis(wait)).await?;
                    attempt += 1;
                }
            }
        }
    }

    /// The runner's clock (tests inject one).
    pub fn now(&self) -> OffsetDateTime {
        self.runner.inner.clock.now()
    }

    /// Run another graph as a sub-run of this one and wait for its end. The child is started
    /// once per (run, node): after a restart the same child is found again (and resumed by
    /// whoever holds it). It runs on its own task, so a full worker pool cannot deadlock on
    /// it, and it is cancelled when this run ends without success.
    pub async fn sub_run(&self, graph: &str, input: Json) -> Result<Run> {
        let runner = &self.runner;
        let req = StartRun {
            workspace_id: default_workspace(),
            user_id: default_user(),
            agent_id: self.agent_id.clone(),
            input,
        };
        let key = format!("sub:{}:{}", self.run_id, self.node);
        let (child, created) = runner
            .start_inner(graph, req, Some(key), Some(self.run_id.clone()))
            .await?;
        let child_id = child.run_id.clone();
        if created {
            runner
                .event(
                    &self.run_id,
                    "subrun",
                    Some(&self.node),
                    json!({"run_id": child_id, "graph": graph}),
                )
                .await?;
        }
        if runner.claim(&child_id) {
            let r = runner.clone();
            let id = child_id.clone();
            let stop = runner.closing();
            tokio::spawn(async move {
                tokio::select! {
                    _ = r.execute_claimed(&id) => {}
                    _ = flipped(stop) => {}
                }
            });
        }
        // Bounded like every poll: the child's own deadline, and a minute's grace.
        let max_wait = Duration::from_secs(child.timeout_s + 60);
        self.poll(u32::MAX, max_wait, Duration::from_millis(50), |_| async {
            let run = runner.reload(&child_id).await?;
            Ok(run.status.finished().then_some(run))
        })
        .await
    }

    /// Sleep, unless the run is cancelled first.
    pub async fn sleep(&self, d: Duration) -> Result<()> {
        self.cancellable(tokio::time::sleep(d)).await
    }

    /// Run `fut` unless the run is cancelled first (then the future is dropped).
    pub async fn cancellable<T>(&self, fut: impl Future<Output = T>) -> Result<T> {
        let cancel = self.cancel.clone();
        if *cancel.borrow() {
            return Err(cancelled());
        }
        tokio::select! {
            v = fut => Ok(v),
            _ = flipped(cancel.clone()) => Err(cancelled()),
        }
    }

    /// Poll `check` until it returns Some, at most `max_iterations` times and `max_wait` in
    /// all, waiting `every` between tries.
    pub async fn poll<T, F, Fut>(
        &self,
        max_iterations: u32,
        max_wait: Duration,
        every: Duration,
        mut check: F,
    ) -> Result<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<Option<T>>>,
    {
        let started = Instant::now();
        for i in 0..max_iterations {
            if let Some(v) = check(i).await? {
                return Ok(v);
            }
            if started.elapsed() + every > max_wait {
                break;
            }
            self.sleep(every).await?;
        }
        Err(Error::Timeout(format!(
            "gave up polling after {max_iterations} tries or {} s",
            max_wait.as_secs()
        )))
    }
}

/// Resolves once the flag turns true (or its sender is gone).
async fn flipped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|c| *c).await;
}

const CANCELLED: &str = "the run was cancelled";
/// A checkpoint found the run already finished by another writer.
const ALREADY_FINISHED: &str = "the run has already finished";

fn cancelled() -> Error {
    Error::Conflict(CANCELLED.into())
}

/// Whether an error is this run's cancellation (never retried, never reported as data).
pub fn is_cancel(e: &Error) -> bool {
    matches!(e, Error::Conflict(m) if m == CANCELLED)
}

/// A 422 naming the first key of `obj` that is not in `known` (`{prefix}.{key}`).
pub fn reject_unknown(
    obj: &serde_json::Map<String, Json>,
    prefix: &str,
    known: &[&str],
) -> Result<()> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(Error::invalid(
            &format!("{prefix}.{}", crate::kernel::text::clip(k, 40)),
            format!("unknown field; fields: {}", known.join(", ")),
        )),
    }
}

/// The step after `node` in a graph whose nodes run in their listed order.
pub fn next_in_order(nodes: &[Node], node: &str) -> Step {
    let i = nodes.iter().position(|n| n.name == node);
    match i.and_then(|i| nodes.get(i + 1)) {
        Some(n) => Step::Next(n.name),
        None => Step::Done,
    }
}

fn jitter(max: u64) -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b) % max.max(1)
}

struct RInner {
    store: Store,
    gateway: Gateway,
    clock: Arc<dyn Clock>,
    bus: crate::kernel::events::Bus,
    opts: RunnerOptions,
    graphs: RwLock<HashMap<&'static str, Arc<dyn Graph>>>,
    queue: Mutex<VecDeque<String>>,
    notify: Notify,
    cancels: Mutex<HashMap<String, watch::Sender<bool>>>,
    /// Runs being executed now (by a worker or as a sub-run): never twice at once.
    active: Mutex<std::collections::HashSet<String>>,
    /// Flips when the runner stops (sub-run tasks stop with it).
    stopping: watch::Sender<bool>,
}

/// The runner (cheap to clone).
#[derive(Clone)]
pub struct Runner {
    inner: Arc<RInner>,
}

/// Filters and paging of [`Runner::list`].
#[derive(Debug, Clone, Default)]
pub struct RunQuery {
    pub graph: Option<String>,
    pub status: Option<RunStatus>,
    pub limit: usize,
    pub cursor: Option<String>,
}

impl Runner {
    pub fn new(
        store: Store,
        gateway: Gateway,
        clock: Arc<dyn Clock>,
        bus: crate::kernel::events::Bus,
        opts: RunnerOptions,
    ) -> Runner {
        Runner {
            inner: Arc::new(RInner {
                store,
                gateway,
                clock,
                bus,
                opts,
                graphs: RwLock::new(HashMap::new()),
                queue: Mutex::new(VecDeque::new()),
                notify: Notify::new(),
                cancels: Mutex::new(HashMap::new()),
                active: Mutex::new(std::collections::HashSet::new()),
                stopping: watch::channel(false).0,
            }),
        }
    }

    /// Add a graph (before [`Runner::spawn`] for runs that should resume).
    pub fn register(&self, g: Arc<dyn Graph>) {
        if let Ok(mut m) = self.inner.graphs.write() {
            m.insert(g.name(), g);
        }
    }

    fn graph(&self, name: &str) -> Option<Arc<dyn Graph>> {
        self.inner.graphs.read().ok()?.get(name).cloned()
    }

    /// The names of every graph, sorted (for `/healthz`, as the seed's supervisor lists them).
    pub fn graph_names(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self
            .inner
            .graphs
            .read()
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Every graph: name, description, nodes, input schema, definition hash.
    pub fn graphs(&self) -> Vec<Json> {
        let Ok(m) = self.inner.graphs.read() else {
            return vec![];
        };
        let mut v: Vec<Json> = m
            .values()
            .map(|g| {
                json!({"name": g.name(), "description": g.description(), "nodes": g.nodes(),
                   "input_schema": g.input_schema(), "default_timeout_s": g.default_timeout_s(),
                   "definition_hash": definition_hash(g.as_ref())})
            })
            .collect();
        v.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        v
    }

    /// Queue a run. With `idempotency_key`, the same key returns the same run (`false` =
    /// not newly created).
    pub async fn start(
        &self,
        graph: &str,
        req: StartRun,
        idempotency_key: Option<String>,
    ) -> Result<(Run, bool)> {
        if idempotency_key
            .as_deref()
            .is_some_and(|k| k.starts_with("sub:"))
        {
            return Err(Error::invalid(
                "Idempotency-Key",
                "keys starting with 'sub:' are the runner's own (sub-runs)",
            ));
        }
        self.start_inner(graph, req, idempotency_key, None).await
    }

    /// [`Runner::start`]. With a `parent`, the run is a sub-run: recorded in the parent's
    /// `children` in the same commit, and left for the parent to execute (not queued).
    async fn start_inner(
        &self,
        graph: &str,
        req: StartRun,
        idempotency_key: Option<String>,
        parent: Option<String>,
    ) -> Result<(Run, bool)> {
        let enqueue = parent.is_none();
        let g = self.graph(graph).ok_or_else(|| {
            Error::NotFound(format!(
                "no graph '{}'",
                crate::kernel::text::clip(graph, 60)
            ))
        })?;
        for (field, v) in [
            ("workspace_id", &req.workspace_id),
            ("user_id", &req.user_id),
            ("agent_id", &req.agent_id),
        ] {
            crate::kernel::text::check_token(field, v, 64)?;
        }
        if let Some(k) = &idempotency_key {
            if k.is_empty() || k.len() > 200 || k.chars().any(|c| c.is_control()) {
                return Err(Error::invalid(
                    "Idempotency-Key",
                    "1-200 printable characters",
                ));
            }
        }
        let input = if req.input.is_null() {
            json!({})
        } else {
            req.input
        };
        if !input.is_object() {
            return Err(Error::invalid("input", "must be an object"));
        }
        // `timeouts` is the runner's, for every graph: only `overall_sec` is known.
        match input.get("timeouts") {
            None | Some(Json::Null) => {}
            Some(Json::Object(m)) => reject_unknown(m, "input.timeouts", &["overall_sec"])?,
            Some(_) => {
                return Err(Error::invalid(
                    "input.timeouts",
                    "must be an object {overall_sec}",
                ))
            }
        }
        let timeout_s = match input.pointer("/timeouts/overall_sec") {
            None | Some(Json::Null) => g.default_timeout_s(),
            Some(v) => v
                .as_f64()
                .filter(|s| *s >= 1.0 && *s <= 86_400.0)
                .map(|s| s.ceil() as u64)
                .ok_or_else(|| {
                    Error::invalid("input.timeouts.overall_sec", "a number of seconds, 1-86400")
                })?,
        };
        let state = g.init(&input)?;
        let now = self.inner.clock.now();
        let run = Run {
            run_id: format!("gr_{}", crate::kernel::clock::random_hex(10)),
            graph: g.name().to_string(),
            graph_hash: definition_hash(g.as_ref()),
            status: RunStatus::Queued,
            workspace_id: req.workspace_id,
            user_id: req.user_id,
            agent_id: req.agent_id,
            input,
            state,
            next_node: g.nodes().first().map(|n| n.name.to_string()),
            current_node: None,
            created_at: now,
            started_at: None,
            finished_at: None,
            timeout_s,
            result: None,
            error: None,
            cancel_requested: false,
            idempotency_key: idempotency_key.clone(),
            events: 0,
            children: vec![],
        };
        let r2 = run.clone();
        let (run, created) = self
            .inner
            .store
            .write(move |txn| {
                if let Some(k) = &r2.idempotency_key {
                    let key = format!("{}|{k}", r2.graph);
                    let existing = txn
                        .open(RUN_IDEMPOTENCY)?
                        .get(key.as_str())?
                        .map(|g| g.value().to_string());
                    if let Some(id) = existing {
                        if let Some(r) = load_run(txn, &id)? {
                            return Ok((r, false));
                        }
                    }
                    txn.open(RUN_IDEMPOTENCY)?
                        .insert(key.as_str(), r2.run_id.as_str())?;
                }
                let mut r2 = r2;
                let details = json!({"graph": r2.graph, "parent": parent});
                let at = r2.created_at;
                append_event(txn, &mut r2, at, "run_queued", None, details)?;
                save_run(txn, &r2)?;
                if let Some(p) = &parent {
                    let mut pr = load_run(txn, p)?.ok_or_else(|| not_found(p))?;
                    if !pr.children.contains(&r2.run_id) {
                        pr.children.push(r2.run_id.clone());
                        save_run(txn, &pr)?;
                    }
                }
                Ok((r2, true))
            })
            .await?;
        if created {
            self.announce(&run);
            if enqueue {
                self.enqueue(run.run_id.clone());
            }
        }
        Ok((run, created))
    }

    fn enqueue(&self, id: String) {
        if let Ok(mut q) = self.inner.queue.lock() {
            q.push_back(id);
        }
        self.inner.notify.notify_one();
    }

    fn announce(&self, run: &Run) {
        self.inner.bus.publish(crate::kernel::events::Event::Run {
            run_id: run.run_id.clone(),
            summary: json!({"run_id": run.run_id, "graph": run.graph, "status": run.status,
                   "next_node": run.next_node, "error": run.error,
                   "cancel_requested": run.cancel_requested}),
        });
    }

    /// A run with its events (at most the first 1000; page with [`Runner::events`]).
    pub async fn get(&self, id: &str) -> Result<Json> {
        validate_run_id(id)?;
        let id = id.to_string();
        let (run, events) = self
            .inner
            .store
            .read(move |txn| {
                let run = read_run(txn, &id)?.ok_or_else(|| not_found(&id))?;
                let events = read_events(txn, &id, 0, 1000)?;
                Ok((run, events))
            })
            .await?;
        let mut v = serde_json::to_value(&run).map_err(|e| Error::Internal(e.to_string()))?;
        v["events"] = serde_json::to_value(events).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(v)
    }

    /// Events after `after` (seq), for clients that reconnect.
    pub async fn events(&self, id: &str, after: u64, limit: usize) -> Result<Vec<RunEvent>> {
        validate_run_id(id)?;
        if limit == 0 || limit > 1000 {
            return Err(Error::invalid("limit", "1-1000"));
        }
        let id = id.to_string();
        self.inner
            .store
            .read(move |txn| {
                read_run(txn, &id)?.ok_or_else(|| not_found(&id))?;
                read_events(txn, &id, after, limit)
            })
            .await
    }

    /// Runs, newest first.
    pub async fn list(&self, q: RunQuery) -> Result<Json> {
        let limit = if q.limit == 0 { 50 } else { q.limit };
        if limit > 500 {
            return Err(Error::invalid("limit", "at most 500"));
        }
        let cursor = match &q.cursor {
            None => None,
            Some(c) => {
                let (ts, id) = c.split_once('.').ok_or_else(bad_cursor)?;
                Some((ts.parse::<i64>().map_err(|_| bad_cursor())?, id.to_string()))
            }
        };
        self.inner
            .store
            .read(move |txn| {
                let by = txn.open_table(RUNS_BY_TIME)?;
                let runs = txn.open_table(RUNS)?;
                let range = match &cursor {
                    Some((ts, id)) => by.range(..(*ts, id.as_str()))?,
                    None => by.range::<(i64, &str)>(..)?,
                };
                let mut items = Vec::new();
                let mut next = None;
                for row in range.rev() {
                    let (k, _) = row?;
                    let (ts, id) = k.value();
                    let Some(g) = runs.get(id)? else { continue };
                    let run: Run = crate::store::from_json(g.value())?;
                    if q.graph.as_deref().is_some_and(|x| x != run.graph)
                        || q.status.is_some_and(|s| s != run.status)
                    {
                        continue;
                    }
                    if items.len() == limit {
                        next = Some(format!("{ts}.{id}"));
                        break;
                    }
                    items.push(
                        json!({"run_id": run.run_id, "graph": run.graph, "status": run.status,
                        "created_at": crate::kernel::clock::rfc3339(run.created_at),
                        "finished_at": run.finished_at.map(crate::kernel::clock::rfc3339),
                        "agent_id": run.agent_id, "error": run.error}),
                    );
                }
                Ok(json!({"items": items, "next_cursor": next}))
            })
            .await
    }

    /// Cancel a run: a queued one at once, a running one within its current step (its tool
    /// call is dropped). Cancelling a finished run is a 409.
    pub async fn cancel(&self, id: &str) -> Result<Json> {
        validate_run_id(id)?;
        let id2 = id.to_string();
        let now = self.inner.clock.now();
        let run = self
            .inner
            .store
            .write(move |txn| {
                let mut run = load_run(txn, &id2)?.ok_or_else(|| not_found(&id2))?;
                if run.status.finished() {
                    return Err(Error::Conflict(format!(
                        "run {} already {}",
                        run.run_id,
                        run.status.as_str()
                    )));
                }
                run.cancel_requested = true;
                let (kind, details) = if run.status == RunStatus::Queued {
                    run.status = RunStatus::Cancelled;
                    run.finished_at = Some(now);
                    run.next_node = None;
                    ("run_cancelled", json!({"while": "queued"}))
                } else {
                    ("cancel_requested", json!({}))
                };
                let node = run.current_node.clone();
                let ev = append_event(txn, &mut run, now, kind, node, details)?;
                save_run(txn, &run)?;
                Ok((run, ev))
            })
            .await?;
        let (run, ev) = run;
        self.publish_event(&run.run_id, &ev);
        if let Ok(c) = self.inner.cancels.lock() {
            if let Some(tx) = c.get(id) {
                let _ = tx.send(true);
            }
        }
        self.announce(&run);
        Ok(json!({"run_id": run.run_id, "status": run.status, "cancel_requested": true}))
    }

    /// Append an event to a run (durable before it returns).
    async fn event(&self, id: &str, kind: &str, node: Option<&str>, details: Json) -> Result<()> {
        let (id2, kind, node) = (id.to_string(), kind.to_string(), node.map(str::to_string));
        let ts = self.inner.clock.now();
        let ev = self
            .inner
            .store
            .write(move |txn| {
                let mut run = load_run(txn, &id2)?.ok_or_else(|| not_found(&id2))?;
                let ev = append_event(txn, &mut run, ts, &kind, node, details)?;
                save_run(txn, &run)?;
                Ok(ev)
            })
            .await?;
        self.publish_event(id, &ev);
        Ok(())
    }

    /// A stored event, to live clients (`ops.run.event`).
    fn publish_event(&self, run_id: &str, ev: &RunEvent) {
        self.inner
            .bus
            .publish(crate::kernel::events::Event::RunEvent {
                run_id: run_id.to_string(),
                event: json!(ev),
            });
    }

    /// Start the workers and the TTL purge; queued and interrupted runs are picked up. Returns
    /// the task to await at shutdown (it stops when `closing` flips).
    pub fn spawn(&self, closing: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        {
            let me = self.clone();
            let closing = closing.clone();
            tokio::spawn(async move {
                flipped(closing).await;
                // Kept even with no receiver yet: sub-runs spawned later see it.
                me.inner.stopping.send_replace(true);
            });
        }
        tokio::spawn(async move {
            match me.pending_runs().await {
                Ok(ids) => {
                    if !ids.is_empty() {
                        tracing::info!(runs = ids.len(), "runs_resumed");
                    }
                    for id in ids {
                        me.enqueue(id);
                    }
                }
                Err(e) => tracing::error!(error = %e, "runs_not_resumed"),
            }
            let mut workers = Vec::new();
            for _ in 0..me.inner.opts.workers.max(1) {
                let w = me.clone();
                let stop = closing.clone();
                workers.push(tokio::spawn(async move {
                    loop {
                        let next = w.inner.queue.lock().ok().and_then(|mut q| q.pop_front());
                        match next {
                            Some(id) => {
                                tokio::select! {
                                    _ = w.execute(&id) => {}
                                    // Stopping: the run stays `running` with its checkpoint
                                    // and resumes at the next start.
                                    _ = flipped(stop.clone()) => return,
                                }
                            }
                            None => {
                                tokio::select! {
                                    _ = w.inner.notify.notified() => {}
                                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                                    _ = flipped(stop.clone()) => return,
                                }
                            }
                        }
                    }
                }));
            }
            let mut purge = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = purge.tick() => {
                        if let Err(e) = me.purge_expired().await {
                            tracing::warn!(error = %e, "run_purge_failed");
                        }
                    }
                    _ = flipped(closing.clone()) => break,
                }
            }
            for w in workers {
                let _ = w.await;
            }
        })
    }

    /// Queued and interrupted runs, oldest first.
    async fn pending_runs(&self) -> Result<Vec<String>> {
        self.inner
            .store
            .read(|txn| {
                let by = txn.open_table(RUNS_BY_TIME)?;
                let mut out = Vec::new();
                for row in by.iter()? {
                    let (k, v) = row?;
                    if matches!(v.value(), "queued" | "running") {
                        out.push(k.value().1.to_string());
                    }
                }
                Ok(out)
            })
            .await
    }

    /// Drop finished runs older than their TTL. Returns how many.
    pub async fn purge_expired(&self) -> Result<usize> {
        let now = self.inner.clock.now();
        let ttl = time::Duration::try_from(self.inner.opts.ttl).unwrap_or(time::Duration::DAY);
        let failed_ttl =
            time::Duration::try_from(self.inner.opts.failed_ttl).unwrap_or(time::Duration::DAY);
        self.inner
            .store
            .write(move |txn| {
                let mut doomed = Vec::new();
                {
                    let runs = txn.open(RUNS)?;
                    for row in runs.iter()? {
                        let (_, v) = row?;
                        let run: Run = crate::store::from_json(v.value())?;
                        let keep = if run.status == RunStatus::Failed {
                            failed_ttl
                        } else {
                            ttl
                        };
                        if run.status.finished() && run.finished_at.is_some_and(|f| now - f > keep)
                        {
                            doomed.push(run);
                        }
                    }
                }
                for run in &doomed {
                    delete_run(txn, run)?;
                }
                Ok(doomed.len())
            })
            .await
    }

    /// Take the right to execute `id` (false: someone else is executing it).
    fn claim(&self, id: &str) -> bool {
        self.inner
            .active
            .lock()
            .map(|mut a| a.insert(id.to_string()))
            .unwrap_or(false)
    }

    /// A receiver that flips when the runner stops.
    fn closing(&self) -> watch::Receiver<bool> {
        self.inner.stopping.subscribe()
    }

    /// Run (or resume) one run to its end, or until the runner stops (a worker's entry).
    async fn execute(&self, id: &str) {
        if self.claim(id) {
            self.execute_claimed(id).await;
        }
    }

    /// [`Runner::execute`] once claimed; gives the claim back at the end (also when dropped).
    async fn execute_claimed(&self, id: &str) {
        struct Release<'a>(&'a Runner, &'a str);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                if let Ok(mut a) = self.0.inner.active.lock() {
                    a.remove(self.1);
                }
                if let Ok(mut c) = self.0.inner.cancels.lock() {
                    c.remove(self.1);
                }
            }
        }
        let release = Release(self, id);
        match self.execute_inner(id).await {
            Ok(()) => {}
            // Someone else finished it meanwhile (a cancel while it was still queued).
            Err(Error::Conflict(m)) if m == ALREADY_FINISHED => {}
            Err(e) => tracing::error!(run = %id, error = %e, "run_execute_failed"),
        }
        drop(release);
        // Queued again while we held it (a requeue replay resolved just as it failed): the
        // worker that popped it could not claim it, so it goes back in the queue.
        if let Ok(run) = self.reload(id).await {
            if run.status == RunStatus::Queued {
                self.enqueue(id.to_string());
            }
        }
    }

    async fn execute_inner(&self, id: &str) -> Result<()> {
        // The cancel channel exists before the run is read: a cancel committed after the read
        // finds it and is seen; one committed before is in the record.
        let (tx, rx) = watch::channel(false);
        if let Ok(mut c) = self.inner.cancels.lock() {
            c.insert(id.to_string(), tx.clone());
        }
        let idc = id.to_string();
        let Some(mut run) = self
            .inner
            .store
            .read(move |txn| read_run(txn, &idc))
            .await?
        else {
            return Ok(());
        };
        if run.status.finished() {
            return Ok(());
        }
        if run.cancel_requested {
            let _ = tx.send(true);
        }
        let Some(g) = self.graph(&run.graph) else {
            let why = format!("graph '{}' is not available in this build", run.graph);
            return self
                .finish(&mut run, RunStatus::Failed, None, Some(why))
                .await;
        };
        let resumed = run.status == RunStatus::Running;
        if resumed {
            let hash = definition_hash(g.as_ref());
            if hash != run.graph_hash {
                let why = format!(
                    "interrupted by a restart, and the graph's definition has changed since it started ({} → {hash}); start a new run",
                    run.graph_hash
                );
                return self
                    .finish(&mut run, RunStatus::Failed, None, Some(why))
                    .await;
            }
            if let Some(n) = run.current_node.clone() {
                let safe = g.nodes().iter().any(|x| x.name == n && x.safe_to_repeat);
                if !safe {
                    return self
                        .finish(&mut run, RunStatus::Failed, None, Some(format!(
                            "interrupted by a restart inside node '{n}', which is not safe to repeat"
                        )))
                        .await;
                }
            }
        }
        let now = self.inner.clock.now();
        if run.started_at.is_none() {
            run.started_at = Some(now);
        }
        run.status = RunStatus::Running;
        let kind = if resumed {
            "run_resumed"
        } else {
            "run_started"
        };
        let details = json!({"next_node": run.next_node});
        self.checkpoint(&mut run, Some((kind, None, details)))
            .await?;
        self.announce(&run);
        let started = run.started_at.unwrap_or(now);
        let deadline_in = (started + time::Duration::seconds(run.timeout_s as i64)) - now;
        let deadline =
            tokio::time::Instant::now() + Duration::try_from(deadline_in).unwrap_or(Duration::ZERO);
        let mut attempt = 0u32;
        loop {
            let Some(node) = run.next_node.clone() else {
                let result = g.result(&run.state);
                return self
                    .finish(&mut run, RunStatus::Succeeded, Some(result), None)
                    .await;
            };
            if !g.nodes().iter().any(|n| n.name == node) {
                return self
                    .finish(
                        &mut run,
                        RunStatus::Failed,
                        None,
                        Some(format!("unknown node '{node}'")),
                    )
                    .await;
            }
            if *rx.borrow() || run.cancel_requested {
                return self
                    .finish(&mut run, RunStatus::Cancelled, None, None)
                    .await;
            }
            attempt += 1;
            run.current_node = Some(node.clone());
            self.checkpoint(
                &mut run,
                Some(("node_start", Some(node.clone()), json!({}))),
            )
            .await?;
            let cx = NodeCx {
                run_id: run.run_id.clone(),
                agent_id: run.agent_id.clone(),
                node: node.clone(),
                attempt,
                runner: self.clone(),
                cancel: rx.clone(),
                exhausted: std::sync::atomic::AtomicBool::new(false),
            };
            let node_started = Instant::now();
            let mut state = run.state.clone();
            let cancel = rx.clone();
            let outcome = tokio::select! {
                r = g.step(&node, &mut state, &cx) => Some(r),
                _ = flipped(cancel.clone()) => None,
                _ = tokio::time::sleep_until(deadline) => {
                    let why = format!("timed out after {} s (in node '{node}')", run.timeout_s);
                    return self.finish(&mut run, RunStatus::Failed, None, Some(why)).await;
                }
            };
            let elapsed_ms = node_started.elapsed().as_millis() as u64;
            match outcome {
                None => {
                    return self
                        .finish(&mut run, RunStatus::Cancelled, None, None)
                        .await
                }
                Some(Err(e)) if *rx.borrow() => {
                    let _ = e;
                    return self
                        .finish(&mut run, RunStatus::Cancelled, None, None)
                        .await;
                }
                Some(Err(e)) => {
                    self.event(
                        &run.run_id,
                        "node_error",
                        Some(&node),
                        json!({"code": e.code(), "elapsed_ms": elapsed_ms}),
                    )
                    .await?;
                    run = self.reload(&run.run_id).await?;
                    let why = format!("node '{node}': {e}");
                    let exhausted = cx.exhausted.load(std::sync::atomic::Ordering::Relaxed);
                    // Out of retries: a person decides (the failed node is where a replay
                    // starts again).
                    let entry = exhausted.then(|| self.requeue_entry(&run, &node, &why));
                    return self
                        .finish_with(&mut run, RunStatus::Failed, None, Some(why), entry)
                        .await;
                }
                Some(Ok(step)) => {
                    run = self.reload(&run.run_id).await?;
                    let text = state.to_string();
                    run.state = state;
                    run.current_node = None;
                    run.next_node = match step {
                        Step::Next(n) => Some(n.to_string()),
                        Step::Done => None,
                    };
                    let details = json!({
                        "elapsed_ms": elapsed_ms, "state_bytes": text.len(),
                        "state_sha256": &crate::kernel::hash::sha256_hex(text.as_bytes())[..16],
                        "next": run.next_node});
                    self.checkpoint(&mut run, Some(("node_end", Some(node.clone()), details)))
                        .await?;
                }
            }
        }
    }

    async fn reload(&self, id: &str) -> Result<Run> {
        let id = id.to_string();
        self.inner
            .store
            .read(move |txn| read_run(txn, &id)?.ok_or_else(|| not_found(&id)))
            .await
    }

    /// Save the run (and an event) durably.
    async fn checkpoint(
        &self,
        run: &mut Run,
        ev: Option<(&'static str, Option<String>, Json)>,
    ) -> Result<()> {
        self.checkpoint_with(run, ev, None).await
    }

    /// [`Runner::checkpoint`], putting a requeue entry in the same commit.
    async fn checkpoint_with(
        &self,
        run: &mut Run,
        ev: Option<(&'static str, Option<String>, Json)>,
        requeue: Option<requeue::RequeueEntry>,
    ) -> Result<()> {
        let mut r = run.clone();
        let ts = self.inner.clock.now();
        let saved = self
            .inner
            .store
            .write(move |txn| {
                // Keep events appended meanwhile (tool calls) and a cancel request.
                if let Some(cur) = load_run(txn, &r.run_id)? {
                    // Finished by someone else (a cancel while queued): never brought back.
                    if cur.status.finished() {
                        return Err(Error::Conflict(ALREADY_FINISHED.into()));
                    }
                    r.events = cur.events;
                    r.cancel_requested |= cur.cancel_requested;
                    // Sub-runs are recorded straight in the store by the node that starts them.
                    for c in cur.children {
                        if !r.children.contains(&c) {
                            r.children.push(c);
                        }
                    }
                }
                let written = ev
                    .map(|(kind, node, details)| append_event(txn, &mut r, ts, kind, node, details))
                    .transpose()?;
                save_run(txn, &r)?;
                if let Some(e) = &requeue {
                    requeue::insert(txn, e)?;
                }
                Ok((r, written))
            })
            .await?;
        let (saved, written) = saved;
        // Live clients see every event as it is stored (node ends and the final one too).
        if let Some(e) = written {
            self.publish_event(&saved.run_id, &e);
        }
        *run = saved;
        Ok(())
    }

    async fn finish(
        &self,
        run: &mut Run,
        status: RunStatus,
        result: Option<Json>,
        error: Option<String>,
    ) -> Result<()> {
        self.finish_with(run, status, result, error, None).await
    }

    /// [`Runner::finish`], with the run put on the requeue list in the same commit.
    async fn finish_with(
        &self,
        run: &mut Run,
        status: RunStatus,
        result: Option<Json>,
        error: Option<String>,
        requeue: Option<requeue::RequeueEntry>,
    ) -> Result<()> {
        let requeued = requeue.clone();
        run.status = status;
        run.finished_at = Some(self.inner.clock.now());
        run.result = result;
        run.error = error.clone();
        run.current_node = None;
        if status != RunStatus::Succeeded {
            run.next_node = None;
        }
        let kind = match status {
            RunStatus::Succeeded => "run_succeeded",
            RunStatus::Cancelled => "run_cancelled",
            _ => "run_failed",
        };
        self.checkpoint_with(run, Some((kind, None, json!({"error": error}))), requeue)
            .await?;
        self.announce(run);
        if let Some(e) = requeued {
            self.requeue_announce(&e);
        }
        if status != RunStatus::Succeeded {
            for child in run.children.clone() {
                if let Ok(c) = self.reload(&child).await {
                    if !c.status.finished() {
                        let _ = self.cancel(&child).await;
                    }
                }
            }
        }
        Ok(())
    }
}

fn bad_cursor() -> Error {
    Error::bad_request("invalid_cursor", "cursor is not one this server returned")
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!(
        "run {} not found",
        crate::kernel::text::clip(id, 60)
    ))
}

/// `gr_` and 1-40 lowercase hex or alphanumerics.
pub fn validate_run_id(id: &str) -> Result<()> {
    let ok = id.strip_prefix("gr_").is_some_and(|r| {
        !r.is_empty() && r.len() <= 40 && r.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("run_id", "is not a run id (gr_…)"))
    }
}
