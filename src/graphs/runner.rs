//! [`Runner`]: registering graphs, starting runs, reading and listing them, their events, the
//! workers and the TTL purge.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use redb::ReadableTable;
use serde_json::{json, Value as Json};
use tokio::sync::{watch, Notify};

use super::cancel::flipped;
use super::tables::*;
use super::{definition_hash, reject_unknown, Graph, Run, RunEvent, RunStatus, StartRun};
use crate::error::{Error, Result};
use crate::gateway::Gateway;
use crate::kernel::clock::Clock;
use crate::store::Store;

/// Runner settings.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Runs executed at once.
    pub workers: usize,
    /// How long finished runs are kept.
    pub ttl: Duration,
    /// Failed runs are kept this much longer (to be looked at).
    pub failed_ttl: Duration,
    /// Tool calls: attempts for transient errors, and the first backoff.
    pub tool_attempts: u32,
    /// The first wait between attempts (doubled each time, with jitter).
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

/// What every clone of a [`Runner`] shares.
pub(super) struct RInner {
    pub(super) store: Store,
    pub(super) gateway: Gateway,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) bus: crate::kernel::events::Bus,
    pub(super) opts: RunnerOptions,
    pub(super) graphs: RwLock<HashMap<&'static str, Arc<dyn Graph>>>,
    pub(super) queue: Mutex<VecDeque<String>>,
    pub(super) notify: Notify,
    pub(super) cancels: Mutex<HashMap<String, watch::Sender<bool>>>,
    /// Runs being executed now (by a worker or as a sub-run): never twice at once.
    pub(super) active: Mutex<std::collections::HashSet<String>>,
    /// Flips when the runner stops (sub-run tasks stop with it).
    pub(super) stopping: watch::Sender<bool>,
}

/// The runner (cheap to clone).
#[derive(Clone)]
pub struct Runner {
    pub(super) inner: Arc<RInner>,
}

/// Filters and paging of [`Runner::list`].
#[derive(Debug, Clone, Default)]
pub struct RunQuery {
    /// Only runs of this graph.
    pub graph: Option<String>,
    /// Only runs in this status.
    pub status: Option<RunStatus>,
    /// At most this many (0: 50; at most 500).
    pub limit: usize,
    /// Where the previous page ended (`next_cursor`).
    pub cursor: Option<String>,
}

impl Runner {
    /// A runner over the store, calling tools through the gateway; start it with [`Runner::spawn`].
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

    pub(super) fn graph(&self, name: &str) -> Option<Arc<dyn Graph>> {
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
    pub(super) async fn start_inner(
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

    pub(super) fn announce(&self, run: &Run) {
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

    /// Append an event to a run (durable before it returns).
    pub(super) async fn event(
        &self,
        id: &str,
        kind: &str,
        node: Option<&str>,
        details: Json,
    ) -> Result<()> {
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
    pub(super) fn publish_event(&self, run_id: &str, ev: &RunEvent) {
        self.inner
            .bus
            .publish(crate::kernel::events::Event::RunEvent {
                run_id: run_id.to_string(),
                event: json!(ev),
            });
    }

    /// Start the workers; queued and interrupted runs are picked up. Returns
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
                workers.push(tokio::spawn(async move { w.work(stop).await }));
            }
            // The TTL sweep is the scheduled `run_ttl_cleanup` job (housekeeping_tool).
            flipped(closing.clone()).await;
            for w in workers {
                let _ = w.await;
            }
        })
    }

    /// Drop finished runs older than their TTL. Returns how many.
    pub async fn purge_expired(&self) -> Result<usize> {
        self.sweep_expired(false).await
    }

    /// [`Runner::purge_expired`], or in a dry run only count them.
    pub async fn sweep_expired(&self, dry_run: bool) -> Result<usize> {
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
                if !dry_run {
                    for run in &doomed {
                        delete_run(txn, run)?;
                    }
                }
                Ok(doomed.len())
            })
            .await
    }
}

fn bad_cursor() -> Error {
    Error::bad_request("invalid_cursor", "cursor is not one this server returned")
}

pub(super) fn not_found(id: &str) -> Error {
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

/// The runner as `housekeeping_tool` holds it: weakly, since the runner holds the gateway that
/// holds the tool (a strong link would keep the store open forever).
pub struct WeakRunner(std::sync::Weak<RInner>);

impl Runner {
    /// A handle that does not keep the runner alive.
    pub fn downgrade(&self) -> WeakRunner {
        WeakRunner(Arc::downgrade(&self.inner))
    }
}

impl crate::tools::housekeeping::RunSweep for WeakRunner {
    fn sweep(&self, dry_run: bool) -> crate::gateway::ToolFuture<'_> {
        let runner = self.0.upgrade().map(|inner| Runner { inner });
        Box::pin(async move {
            let Some(runner) = runner else {
                return Err(Error::Unavailable {
                    message: "sofiia is stopping".into(),
                    retry_after_s: 1,
                });
            };
            let n = runner.sweep_expired(dry_run).await?;
            Ok(json!({
                "dry_run": dry_run,
                "removed": if dry_run { 0 } else { n },
                "expired": n,
                "ttl_s": runner.inner.opts.ttl.as_secs(),
                "failed_ttl_s": runner.inner.opts.failed_ttl.as_secs(),
            }))
        })
    }
}
