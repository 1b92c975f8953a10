//! The graph runner (SPEC §8): durable supervisor runs of typed node graphs.
//!
//! - A [`Graph`] is a sequence of named nodes with conditional edges (each step returns the
//!   next node, so loops are possible) over a JSON run state; a [`TypedGraph`] has a Rust
//!   state type instead, stored as JSON all the same.
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
//!
//! ## Layout
//!
//! - `mod.rs`: the [`Graph`] trait, [`Node`], [`Step`] and helpers for graph definitions.
//! - `typed.rs`: [`TypedGraph`], a graph over a typed state (the built-ins are), adapted to
//!   [`Graph`] so the runner keeps storing JSON.
//! - `model.rs`: [`Run`], [`RunStatus`], [`RunEvent`], [`StartRun`] as stored and taken.
//! - `runner.rs`: [`Runner`]: register, start, get, list, events, workers, TTL purge.
//! - `queue.rs`: the in-memory queue, the workers' loop, and the claim on a run.
//! - `execute.rs`: one run node by node (deadline, cancel, outcomes).
//! - `checkpoints.rs`: saving after every node, finishing, and the resume checks.
//! - `cancel.rs`: cancel channels, [`Runner::cancel`], [`NodeCx::cancellable`], [`is_cancel`].
//! - `node_cx.rs`: [`NodeCx`]: tool calls with retry and backoff, sub-runs, polling.
//! - `tables.rs`, `requeue.rs`: the redb tables; the requeue list.
//! - `builtin/`: the shipped graphs, one folder each (`triage/`, `postmortem/`).

pub mod builtin;
mod cancel;
mod checkpoints;
mod execute;
mod model;
mod node_cx;
mod queue;
pub mod requeue;
mod runner;
pub mod tables;
mod typed;

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use serde_json::Value as Json;

use crate::error::{Error, Result};

pub use builtin::{postmortem, triage};
pub use cancel::is_cancel;
pub use checkpoints::definition_hash;
pub use model::{Run, RunEvent, RunStatus, StartRun};
pub use node_cx::NodeCx;
pub use runner::{validate_run_id, RunQuery, Runner, RunnerOptions};
pub use typed::TypedGraph;

/// A node of a graph.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Node {
    /// The node's name (unique in its graph).
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
    /// The graph's name (its URL segment).
    fn name(&self) -> &'static str;
    /// One sentence for `GET /v1/graphs` and the console.
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
    /// [`Graph::result`], or why the final state gives none (the run then fails with it).
    fn try_result(&self, state: &Json) -> Result<Json> {
        Ok(self.result(state))
    }
    /// Bump when a node's behaviour changes in a way resumed runs must not mix.
    fn version(&self) -> u32 {
        1
    }
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
