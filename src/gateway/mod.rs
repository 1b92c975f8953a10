//! The tool gateway (SPEC §5): every tool call passes one pipeline,
//! authenticate → RBAC → rollout → limits → execute → redact → audit.
//! Redaction (`data_governance.yml`) masks secrets and personal data in results returned to
//! agents; the operator sees stored data as it is.
//!
//! Callers present a key ([`auth`]); [`Gateway::execute`] does the rest. Audit records carry
//! hashes and sizes, never payloads, and a call whose audit record cannot be written fails.
//! Log lines follow the old stack's form: `gateway_call`, `gateway_ok`, `gateway_tool_fail`.

pub mod auth;
pub mod limits;
pub mod pipeline;
pub mod policy;
pub mod redact;
pub mod tool;

use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use serde_json::Value as Json;

use crate::audit::{Audit, AuditRecord};
use crate::config::Env;
use crate::error::{Error, Result};
use crate::kernel::clock::Clock;
use crate::kernel::text::clip;
use auth::{Keys, Principal};
pub use pipeline::mask_secrets;
use pipeline::{Acting, Names};
use policy::Policies;
pub use tool::{Action, Params, Registry, Tool, ToolCx, ToolFuture, ToolSchema, TypedCall};

/// One tool call as agents send it. `metadata` is accepted for the caller's own use and is
/// never trusted: the run, node and attempt in audit records come from the runner alone
/// ([`Gateway::execute_in_run`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    pub tool: String,
    pub action: String,
    #[serde(default)]
    pub params: Json,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub metadata: Json,
}

/// The gateway: policies, keys, limits, audit, and the registered tools.
#[derive(Clone)]
pub struct Gateway(Arc<Inner>);

struct Inner {
    policies: Policies,
    keys: Keys,
    env: Env,
    limiter: limits::RateLimiter,
    audit: Audit,
    tools: Registry,
    clock: Arc<dyn Clock>,
}

/// The graph run a tool call is made for, as the runner knows it (never from a request).
#[derive(Debug, Clone)]
pub struct RunTrace {
    pub run_id: String,
    pub node: String,
    pub attempt: u64,
    /// When the node's time for this call is up (all its attempts): the tool is given this
    /// deadline when it comes before its own limit.
    pub deadline: Option<Instant>,
    /// A job run of the scheduler (`job_run_id` in the audit), not a graph run.
    pub job: bool,
}

/// One call on its way into the pipeline.
struct Request<'a> {
    tool: &'a str,
    action: &'a str,
    agent_id: Option<&'a str>,
    run: Option<RunTrace>,
    /// The params as JSON bytes (hashed and measured for the audit record, never stored).
    input: Vec<u8>,
    /// The params as JSON for masking secret values in the result (`null` when the tool has
    /// no secret params).
    mask: Json,
}

/// What the log lines and audit records of one call say about it (never its payload).
struct Trace {
    names: Names,
    input_hash: String,
    input_size: usize,
    graph_run_id: Option<String>,
    job_run_id: Option<String>,
    node: String,
    attempt: u64,
    /// The caller's deadline for the call, if it gave one.
    deadline: Option<Instant>,
}

impl Gateway {
    /// Assemble the gateway. Policies naming a tool or action the registry does not have, and
    /// keys bound to a role the RBAC matrix does not define, are refused.
    pub fn new(
        policies: Policies,
        keys: Keys,
        env: Env,
        audit: Audit,
        tools: Registry,
        clock: Arc<dyn Clock>,
    ) -> Result<Gateway> {
        policies
            .check_tools(&tools)
            .map_err(|e| Error::Validation {
                code: "config",
                message: e.0,
            })?;
        if let Some((agent, role)) = keys
            .roles()
            .into_iter()
            .find(|(_, r)| !policies.rbac.roles.contains_key(r))
        {
            return Err(Error::Validation {
                code: "config",
                message: format!(
                    "agent_keys.yml: a key of agent '{agent}' is bound to role '{role}', which rbac_tools_matrix.yml does not define"
                ),
            });
        }
        Ok(Gateway(Arc::new(Inner {
            policies,
            keys,
            env,
            limiter: limits::RateLimiter::default(),
            audit,
            tools,
            clock,
        })))
    }

    /// Resolve a presented key.
    pub fn authenticate(&self, key: Option<&str>) -> Result<Principal> {
        self.0.keys.authenticate(key)
    }

    /// Whether requests must carry a key.
    pub fn auth_required(&self) -> bool {
        self.0.keys.required()
    }

    /// The compiled `data_governance.yml` rules (graphs apply them to what they report).
    pub fn redactor(&self) -> &redact::Redactor {
        &self.0.policies.redactor
    }

    /// The audit room.
    pub fn audit(&self) -> &Audit {
        &self.0.audit
    }

    /// Every registered tool's schema (`GET /v1/tools`).
    pub fn schemas(&self) -> Vec<ToolSchema> {
        self.0.tools.schemas()
    }

    /// The params kept for masking secret values in the result: only for a tool that declares
    /// secret params (a large artifact upload is not copied for nothing).
    fn mask_for(&self, tool: &str, params: impl FnOnce() -> Json) -> Json {
        match self.0.tools.get(tool) {
            Some(t) if !t.secret_params().is_empty() => params(),
            _ => Json::Null,
        }
    }

    /// Run one call, as agents send it, through the whole pipeline.
    pub async fn execute(&self, principal: &Principal, call: ToolCall) -> Result<Json> {
        self.execute_traced(principal, call, None).await
    }

    /// Run one call a graph run makes: the audit record and log lines carry the run, node
    /// and attempt given here by the runner (a caller's `metadata` never does).
    pub async fn execute_in_run(
        &self,
        principal: &Principal,
        call: ToolCall,
        run: RunTrace,
    ) -> Result<Json> {
        self.execute_traced(principal, call, Some(run)).await
    }

    async fn execute_traced(
        &self,
        principal: &Principal,
        call: ToolCall,
        run: Option<RunTrace>,
    ) -> Result<Json> {
        let input = serde_json::to_vec(&call.params).unwrap_or_default();
        let req = Request {
            tool: &call.tool,
            action: &call.action,
            agent_id: call.agent_id.as_deref(),
            run,
            input,
            mask: self.mask_for(&call.tool, || call.params.clone()),
        };
        self.pipeline(principal, req, Params::Json(call.params))
            .await
    }

    /// Run a typed call an in-process caller built (an HTTP handler, as the operator or the
    /// presented key's principal) through the same pipeline: the tool receives the value
    /// itself, and the audit record hashes the value's JSON (defaults filled in).
    pub async fn call<C: TypedCall>(&self, principal: &Principal, call: C) -> Result<Json> {
        // Through a JSON value, so keys are sorted as in an agent's params.
        let value = serde_json::to_value(&call).map_err(|e| Error::Internal(e.to_string()))?;
        let input = serde_json::to_vec(&value).unwrap_or_default();
        let mask = self.mask_for(C::TOOL, || value);
        let action = call.action();
        let req = Request {
            tool: C::TOOL,
            action,
            agent_id: None,
            run: None,
            input,
            mask,
        };
        self.pipeline(principal, req, Params::Typed(Box::new(call)))
            .await
    }

    async fn pipeline(
        &self,
        principal: &Principal,
        call: Request<'_>,
        params: Params,
    ) -> Result<Json> {
        let g = &self.0;
        let started = Instant::now();
        // Stage 1: known names only (a caller's text is never echoed into logs or audit).
        let (names, mut refused) = pipeline::resolve(&g.tools, call.tool, call.action);
        let agent_id = match pipeline::check_agent_id(call.agent_id) {
            Ok(a) => a,
            Err(e) => {
                refused.get_or_insert(e);
                None
            }
        };
        let trace = trace_of(&g.audit, names, &call);
        tracing::info!(
            tool = %trace.names.tool, action = %trace.names.action, node = %trace.node,
            run = %trace.graph_run_id.as_deref().or(trace.job_run_id.as_deref()).unwrap_or("-"), hash = %&trace.input_hash[..16.min(trace.input_hash.len())],
            size = trace.input_size, attempt = trace.attempt, "gateway_call"
        );
        // Stage 2: who is acting.
        let acting = match pipeline::acting(principal, agent_id, &g.policies.rbac) {
            Ok(a) => a,
            // The claimed name is the caller's text: recorded as unknown, like refused names.
            Err(e) => {
                return self
                    .deny(principal, Some(pipeline::UNKNOWN), "-", &trace, e)
                    .await
            }
        };
        if let Some(e) = refused {
            return self.deny(principal, acting.agent(), "-", &trace, e).await;
        }
        // Stages 3-5: RBAC, rollout, limits.
        let checked = pipeline::rbac(&acting, &trace.names, &g.policies.rbac)
            .and_then(|_| {
                pipeline::rollout(
                    &acting,
                    &trace.names.tool,
                    g.env.as_str(),
                    &g.policies.rollout,
                )
            })
            .and_then(|_| {
                pipeline::limits(
                    &acting,
                    &trace.names.tool,
                    trace.input_size,
                    &g.policies.limits,
                    &g.limiter,
                )
            });
        if let Err(e) = checked {
            return self
                .deny(principal, acting.agent(), acting.role_name(), &trace, e)
                .await;
        }
        let Some(tool) = g.tools.get(&trace.names.tool).cloned() else {
            // resolve() found it; the registry does not change after start.
            return Err(Error::Internal("tool vanished from the registry".into()));
        };
        // Stage 6: execute, with the tool's time limit.
        let base = AuditRecord {
            id: Audit::new_id(),
            ts: g.clock.now(),
            principal: principal.name(),
            agent_id: acting.agent().map(str::to_string),
            role: acting.role_name().to_string(),
            tool: trace.names.tool.clone(),
            action: trace.names.action.clone(),
            decision: "allow".into(),
            status: "ok".into(),
            input_hash: trace.input_hash.clone(),
            input_size: trace.input_size as u64,
            output_size: 0,
            elapsed_ms: 0,
            graph_run_id: trace.graph_run_id.clone(),
            job_run_id: trace.job_run_id.clone(),
        };
        let writes = trace.names.declared.is_some_and(|a| a.writes);
        let (result, rode) = self
            .run(&*tool, &acting, &trace, params, &base, writes, started)
            .await;
        // Stage 7: redact.
        let result = result.map(|mut v| {
            pipeline::redact(
                &mut v,
                &call.mask,
                tool.secret_params(),
                &acting,
                &g.policies.redactor,
            );
            v
        });
        // Stage 8: audit. A write carried its record into its own transaction; reads,
        // refusals and failures are recorded on their own. Fail closed: no record, no answer.
        let elapsed_ms = started.elapsed().as_millis() as u64;
        if !(result.is_ok() && rode) {
            let output_size = result
                .as_ref()
                .map(|v| serde_json::to_vec(v).map(|b| b.len()).unwrap_or(0))
                .unwrap_or(0);
            let rec = AuditRecord {
                status: match &result {
                    Ok(_) => "ok".into(),
                    Err(e) => e.code().into(),
                },
                output_size: output_size as u64,
                elapsed_ms,
                ..base
            };
            g.audit.write(rec).await?;
        }
        let (tool, action, node) = (&trace.names.tool, &trace.names.action, &trace.node);
        let run = trace
            .graph_run_id
            .as_deref()
            .or(trace.job_run_id.as_deref())
            .unwrap_or("-");
        match &result {
            Ok(_) => {
                tracing::info!(tool = %tool, action = %action, node = %node, run = %run, elapsed_ms, "gateway_ok")
            }
            Err(e) => {
                tracing::warn!(tool = %tool, action = %action, node = %node, run = %run, code = e.code(), elapsed_ms, "gateway_tool_fail")
            }
        }
        result
    }

    /// Stage 6: run the tool within its time limit. A write carries its audit record into
    /// the transaction of its first successful write (the change and its record commit
    /// together or not at all); returns whether it did.
    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        tool: &dyn Tool,
        acting: &Acting,
        trace: &Trace,
        params: Params,
        base: &AuditRecord,
        writes: bool,
        started: Instant,
    ) -> (Result<Json>, bool) {
        let g = &self.0;
        let limit = started
            + std::time::Duration::from_millis(
                g.policies.limits.for_tool(&trace.names.tool).timeout_ms,
            );
        // A caller's deadline that comes first is the tool's to meet (it reports its own
        // timeout, e.g. a source that did not answer); the cut-off follows a moment later.
        let (deadline, cut) = match trace.deadline {
            Some(d) if d < limit => (d, limit.min(d + DEADLINE_GRACE)),
            _ => (limit, limit),
        };
        let timeout = deadline.saturating_duration_since(started);
        let cut = tokio::time::Instant::from_std(cut);
        let cx = ToolCx {
            actor: acting.actor(),
            role: acting.role_name(),
            now: g.clock.now(),
            deadline,
        };
        let work = tool.execute(cx, &trace.names.action, params);
        if !writes {
            return match tokio::time::timeout_at(cut, work).await {
                Ok(r) => (r, false),
                Err(_) => (Err(timed_out(trace, timeout)), false),
            };
        }
        let slot = {
            let mut rec = base.clone();
            crate::store::RiderSlot::new(Box::new(move |tx, size| {
                rec.output_size = size as u64;
                rec.elapsed_ms = started.elapsed().as_millis() as u64;
                Audit::insert(tx, &rec)
            }))
        };
        let work = crate::store::with_rider(slot.clone(), work);
        tokio::pin!(work);
        let result = tokio::select! {
            r = &mut work => r,
            _ = tokio::time::sleep_until(cut) => {
                if slot.taken() {
                    // Its write is already queued: cancelling now would answer "failed" for a
                    // change that commits anyway. Wait for the outcome instead.
                    work.await
                } else {
                    Err(timed_out(trace, timeout))
                }
            }
        };
        (result, slot.written())
    }

    async fn deny(
        &self,
        principal: &Principal,
        agent: Option<&str>,
        role: &str,
        trace: &Trace,
        err: Error,
    ) -> Result<Json> {
        let rec = AuditRecord {
            id: Audit::new_id(),
            ts: self.0.clock.now(),
            principal: principal.name(),
            agent_id: agent.map(str::to_string),
            role: role.to_string(),
            tool: clip(&trace.names.tool, 64),
            action: clip(&trace.names.action, 64),
            decision: "deny".into(),
            status: err.code().into(),
            input_hash: trace.input_hash.clone(),
            input_size: trace.input_size as u64,
            output_size: 0,
            elapsed_ms: 0,
            graph_run_id: trace.graph_run_id.clone(),
            job_run_id: trace.job_run_id.clone(),
        };
        self.0.audit.write(rec).await?;
        tracing::warn!(tool = %trace.names.tool, action = %trace.names.action,
            code = err.code(), principal = %principal.name(), "gateway_deny");
        Err(err)
    }
}

/// How long after a caller's deadline a tool that has not answered is cut off: time for it
/// to report its own timeout, which says more than the cut-off does.
const DEADLINE_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

fn timed_out(trace: &Trace, timeout: std::time::Duration) -> Error {
    Error::Timeout(format!(
        "{}.{} took longer than {} ms",
        trace.names.tool,
        trace.names.action,
        timeout.as_millis()
    ))
}

/// Hash and size of the params, and the run, node and attempt the runner gave.
fn trace_of(audit: &Audit, names: Names, call: &Request<'_>) -> Trace {
    let input = &call.input;
    let run = call.run.as_ref();
    Trace {
        names,
        input_hash: audit.hash(input),
        input_size: input.len(),
        graph_run_id: run.filter(|r| !r.job).map(|r| r.run_id.clone()),
        job_run_id: run.filter(|r| r.job).map(|r| r.run_id.clone()),
        node: run.map_or_else(|| "-".into(), |r| r.node.clone()),
        attempt: run.map_or(1, |r| r.attempt),
        deadline: run.and_then(|r| r.deadline),
    }
}
