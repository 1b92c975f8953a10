//! [`NodeCx`]: what a node can use. Tool calls through the gateway (retried with backoff and
//! jitter when transient and not already retried by the outbound client; optionally within a
//! budget covering every attempt), sub-runs, the clock, the run's time left, and polling;
//! sleeping and cancellation are in `cancel.rs`.

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use time::OffsetDateTime;
use tokio::sync::watch;

use super::cancel::{flipped, is_cancel};
use super::model::{default_user, default_workspace};
use super::{Run, Runner, StartRun};
use crate::error::{Error, Result};
use crate::gateway::auth::Principal;
use crate::gateway::{RunTrace, ToolCall};

/// What a node can use.
pub struct NodeCx {
    /// The run's id (sent as `graph_run_id`).
    pub run_id: String,
    /// The agent the run acts as.
    pub agent_id: String,
    /// The node being run (sent with every tool call, for logs and audit).
    pub node: String,
    /// How many nodes this execution has started, this one included.
    pub attempt: u32,
    pub(super) runner: Runner,
    pub(super) cancel: watch::Receiver<bool>,
    /// Set when a tool call failed after its last retry (the run then waits in the requeue
    /// list for a person's decision).
    pub(super) exhausted: std::sync::atomic::AtomicBool,
    /// When the run's overall deadline passes (`input.timeouts.overall_sec`).
    pub(super) deadline: tokio::time::Instant,
    /// The run's overall time (`input.timeouts.overall_sec`, or the graph's default).
    pub(super) overall: Duration,
}

impl NodeCx {
    /// Call a tool through the gateway as the run's agent, with `graph_run_id`. Transient
    /// errors (timeout, rate limit, unavailable, storage) are retried with exponential backoff
    /// and jitter, except those a lower layer already retried ([`Error::retried_below`]: an
    /// outbound source's failure, retried by the outbound client); a cancellation ends it at
    /// once.
    pub async fn tool(&self, tool: &str, action: &str, params: Json) -> Result<Json> {
        self.call(tool, action, params, None).await
    }

    /// [`NodeCx::tool`] within `budget`, every attempt included: the tool is given the
    /// deadline (a source that does not answer by then is reported as not answering), no
    /// retry starts that the budget cannot hold, and a call that ends with its budget spent
    /// fails with [`Error::Timeout`] `timed out after N s`. A budget never reaches past the
    /// run's own deadline.
    pub async fn tool_within(
        &self,
        tool: &str,
        action: &str,
        params: Json,
        budget: Duration,
    ) -> Result<Json> {
        let budget = budget.min(self.time_left());
        let deadline = Instant::now() + budget;
        match self.call(tool, action, params, Some(deadline)).await {
            Err(e) if !is_cancel(&e) && Instant::now() >= deadline => Err(Error::Timeout(format!(
                "timed out after {}",
                crate::net::secs(budget.as_millis() as u64)
            ))),
            other => other,
        }
    }

    /// Time left before the run's overall deadline.
    pub fn time_left(&self) -> Duration {
        self.deadline
            .saturating_duration_since(tokio::time::Instant::now())
    }

    /// The run's overall time (its deadline is this long after it started).
    pub fn overall(&self) -> Duration {
        self.overall
    }

    async fn call(
        &self,
        tool: &str,
        action: &str,
        params: Json,
        deadline: Option<Instant>,
    ) -> Result<Json> {
        let r = &self.runner.inner;
        let size = params.to_string().len();
        let hash = crate::kernel::hash::sha256_hex(params.to_string().as_bytes());
        let mut attempt = 1u32;
        loop {
            let mut details = json!({"tool": tool, "action": action, "attempt": attempt,
                "params_bytes": size, "params_sha256": &hash[..16]});
            if let Some(d) = deadline {
                details["budget_ms"] =
                    json!(d.saturating_duration_since(Instant::now()).as_millis() as u64);
            }
            self.runner
                .event(&self.run_id, "tool_call", None, details)
                .await?;
            let call = ToolCall {
                tool: tool.into(),
                action: action.into(),
                params: params.clone(),
                agent_id: Some(self.agent_id.clone()),
                metadata: Json::Null,
            };
            let started = Instant::now();
            let out = self
                .cancellable(r.gateway.execute_in_run(
                    &Principal::Operator,
                    call,
                    RunTrace {
                        run_id: self.run_id.clone(),
                        node: self.node.clone(),
                        attempt: attempt as u64,
                        deadline,
                        job: false,
                    },
                ))
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
                    let transient = e.is_transient();
                    let base = r.opts.tool_backoff.as_millis() as u64 * (1 << (attempt - 1));
                    let wait = match &e {
                        Error::TooManyRequests { retry_after_s, .. } => {
                            (*retry_after_s * 1000).max(base)
                        }
                        _ => base / 2 + jitter(base / 2 + 1),
                    };
                    // A timeout has spent its budget; a retry must fit in what is left.
                    let fits = deadline.is_none_or(|d| {
                        !matches!(e, Error::Timeout(_))
                            && Instant::now() + Duration::from_millis(wait) < d
                    });
                    // One retry layer: what the outbound client already retried (a source's
                    // failure, an open circuit) is not retried here again.
                    let retry =
                        transient && !e.retried_below() && fits && attempt < r.opts.tool_attempts;
                    self.runner
                        .event(
                            &self.run_id,
                            "tool_result",
                            None,
                            json!({"tool": tool, "action": action, "attempt": attempt, "ok": false,
                               "code": e.code(), "elapsed_ms": elapsed_ms, "retry": retry}),
                        )
                        .await?;
                    if !retry {
                        // Transient but out of retries (here or below): a person decides.
                        if transient {
                            self.exhausted
                                .store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        return Err(e);
                    }
                    self.sleep(Duration::from_millis(wait)).await?;
                    attempt += 1;
                }
            }
        }
    }

    /// Forget that a tool call of this node ran out of retries: the node reports the failure
    /// as data, so it is no reason to put the run on the requeue list.
    pub(in crate::graphs) fn failure_reported(&self) {
        self.exhausted
            .store(false, std::sync::atomic::Ordering::Relaxed);
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

fn jitter(max: u64) -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b) % max.max(1)
}
