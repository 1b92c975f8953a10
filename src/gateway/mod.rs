//! The tool gateway (SPEC §5): every tool call passes one pipeline,
//! authenticate → RBAC → rollout → limits → execute → redact → audit.
//! Redaction (`data_governance.yml`) masks secrets and personal data in results returned to
//! agents; the operator sees stored data as it is.
//!
//! Callers present a key ([`auth`]); [`Gateway::execute`] does the rest. Audit records carry
//! hashes and sizes, never payloads, and a call whose audit record cannot be written fails.
//! Log lines follow the old stack's form: `gateway_call`, `gateway_ok`, `gateway_tool_fail`.

pub mod audit;
pub mod auth;
pub mod limits;
pub mod outbound;
pub mod policy;
pub mod redact;
pub mod tools;

use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use serde_json::Value as Json;

use crate::clock::Clock;
use crate::config::Env;
use crate::error::{Error, Result};
use crate::incidents::Incidents;
use audit::{Audit, AuditRecord};
use auth::{Keys, Principal};
use policy::Policies;

/// One tool call as agents send it.
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

/// What logs and audit records say for a tool or action name the gateway does not know.
const UNKNOWN: &str = "<unknown>";

/// Tools known to the gateway.
pub const TOOLS: [&str; 4] = [
    "oncall_tool",
    "runbook_tool",
    "incident_intelligence_tool",
    "observability_tool",
];

/// What a tool offers: its actions and the params it declares secret. Secret params are
/// never logged or audited (nothing of a payload is) and their values are masked wherever
/// they would appear in a result, for every caller.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ToolSchema {
    pub name: &'static str,
    pub actions: &'static [&'static str],
    pub secret_params: &'static [&'static str],
}

/// Schemas of every tool (`GET /v1/tools`).
pub fn schemas() -> Vec<ToolSchema> {
    vec![
        ToolSchema {
            name: "oncall_tool",
            actions: &tools::oncall::ACTIONS,
            secret_params: &[],
        },
        ToolSchema {
            name: "runbook_tool",
            actions: &tools::runbook::ACTIONS,
            secret_params: &[],
        },
        ToolSchema {
            name: "incident_intelligence_tool",
            actions: &tools::intelligence::ACTIONS,
            secret_params: &[],
        },
        ToolSchema {
            name: "observability_tool",
            actions: &tools::observability::ACTIONS,
            secret_params: &[],
        },
    ]
}

/// Replace every occurrence of a secret param's value in the result's strings.
pub fn mask_secrets(result: &mut Json, params: &Json, secret_params: &[&str]) -> usize {
    let secrets: Vec<String> = secret_params
        .iter()
        .filter_map(|p| params.get(*p).and_then(|v| v.as_str()))
        .filter(|v| v.len() >= 4)
        .map(str::to_string)
        .collect();
    fn walk(v: &mut Json, secrets: &[String]) -> usize {
        match v {
            Json::String(s) if secrets.iter().any(|x| s.contains(x.as_str())) => {
                for x in secrets {
                    *s = s.replace(x.as_str(), "[REDACTED:secret]");
                }
                1
            }
            Json::Array(a) => a.iter_mut().map(|x| walk(x, secrets)).sum(),
            Json::Object(m) => m.values_mut().map(|x| walk(x, secrets)).sum(),
            _ => 0,
        }
    }
    if secrets.is_empty() {
        0
    } else {
        walk(result, &secrets)
    }
}

/// The gateway: policies, keys, limits, audit, and the rooms tools call into.
#[derive(Clone)]
pub struct Gateway(Arc<Inner>);

struct Inner {
    policies: Policies,
    keys: Keys,
    env: Env,
    limiter: limits::RateLimiter,
    audit: Audit,
    incidents: Incidents,
    search: crate::search::Search,
    observability: crate::observability::Observability,
    reports_dir: std::path::PathBuf,
    clock: Arc<dyn Clock>,
}

/// The rooms tools call into.
pub struct Rooms {
    pub incidents: Incidents,
    pub search: crate::search::Search,
    pub observability: crate::observability::Observability,
    /// Where reports (digests) are written.
    pub reports_dir: std::path::PathBuf,
}

impl Gateway {
    /// Assemble the gateway; a key bound to a role the RBAC matrix does not define is refused.
    pub fn new(
        policies: Policies,
        keys: Keys,
        env: Env,
        audit: Audit,
        rooms: Rooms,
        clock: Arc<dyn Clock>,
    ) -> Result<Gateway> {
        let Rooms {
            incidents,
            search,
            observability,
            reports_dir,
        } = rooms;
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
            incidents,
            search,
            observability,
            reports_dir,
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

    /// Remove audit records past `data_governance.yml`'s `audit_retention_days`.
    pub async fn purge_expired_audit(&self) -> Result<usize> {
        let days = self.0.policies.redactor.audit_retention_days as i64;
        let cutoff = self.0.clock.now() - time::Duration::days(days);
        let mut total = 0;
        loop {
            let n = self.0.audit.purge_older_than(cutoff, 5000).await?;
            total += n;
            if n < 5000 {
                break;
            }
        }
        if total > 0 {
            tracing::info!(removed = total, retention_days = days, "audit_purged");
        }
        Ok(total)
    }

    /// Run one call through the whole pipeline.
    pub async fn execute(&self, principal: &Principal, call: ToolCall) -> Result<Json> {
        let g = &self.0;
        let started = Instant::now();
        let mut call = call;
        // Only names the gateway knows (or a fixed placeholder) reach logs and audit records:
        // a caller's tool, action, agent or run names are never echoed.
        let token = |s: &str| crate::incidents::model::check_token("name", s, 64).is_ok();
        let mut refused: Option<Error> = match schemas().into_iter().find(|s| s.name == call.tool) {
            None => {
                call.tool = UNKNOWN.into();
                call.action = UNKNOWN.into();
                Some(Error::NotFound(
                    "no such tool; GET /v1/tools lists them".into(),
                ))
            }
            Some(s) if !s.actions.contains(&call.action.as_str()) => {
                call.action = UNKNOWN.into();
                Some(Error::NotFound(format!(
                    "{} has no such action; its actions are {}",
                    s.name,
                    s.actions.join(", ")
                )))
            }
            Some(_) => None,
        };
        if call
            .agent_id
            .as_deref()
            .is_some_and(|a| !a.is_empty() && !token(a))
        {
            call.agent_id = None;
            refused.get_or_insert(Error::invalid(
                "agent_id",
                "is not an agent id (letters, digits, . _ : - /)",
            ));
        }
        let input = serde_json::to_vec(&call.params).unwrap_or_default();
        let input_hash = g.audit.hash(&input);
        let graph_run_id = call
            .metadata
            .get("graph_run_id")
            .and_then(|v| v.as_str())
            .filter(|s| token(s))
            .map(str::to_string);
        let node = call
            .metadata
            .get("node")
            .and_then(|v| v.as_str())
            .filter(|s| token(s))
            .unwrap_or("-")
            .to_string();
        let attempt = call
            .metadata
            .get("attempt")
            .and_then(|v| v.as_u64())
            .unwrap_or(1);
        tracing::info!(
            tool = %call.tool, action = %call.action, node = %node,
            run = %graph_run_id.as_deref().unwrap_or("-"), hash = %&input_hash[..16.min(input_hash.len())],
            size = input.len(), attempt, "gateway_call"
        );

        // Who is acting: an agent key can only ever act as its own agent.
        let agent = match (
            principal,
            call.agent_id.as_deref().filter(|a| !a.is_empty()),
        ) {
            (Principal::Agent { agent_id, .. }, Some(a)) if a != agent_id => {
                return self
                    .deny(
                        principal,
                        Some(a),
                        "-",
                        &call,
                        &input_hash,
                        input.len(),
                        graph_run_id,
                        Error::Forbidden {
                            code: "impersonation",
                            message: format!(
                                "this key belongs to agent '{agent_id}' and cannot act as '{}'",
                                crate::incidents::model::clip(a, 40)
                            ),
                        },
                    )
                    .await
            }
            (Principal::Agent { agent_id, .. }, _) => Some(agent_id.clone()),
            (_, a) => a.map(str::to_string),
        };
        if let Some(e) = refused {
            return self
                .deny(
                    principal,
                    agent.as_deref(),
                    "-",
                    &call,
                    &input_hash,
                    input.len(),
                    graph_run_id,
                    e,
                )
                .await;
        }
        // An agent's role applies whenever the call acts as an agent, also when the operator
        // chooses to act as one; the operator acting as itself may call everything.
        let role = match (principal, &agent) {
            (Principal::Agent { role: Some(r), .. }, _) => r.clone(),
            (_, Some(a)) => g.policies.rbac.role_of(a).to_string(),
            (Principal::Operator | Principal::Open, None) => "operator".to_string(),
            (Principal::Agent { .. }, None) => g.policies.rbac.default_role.clone(),
        };
        let check = || -> Result<()> {
            if !TOOLS.contains(&call.tool.as_str()) {
                return Err(Error::NotFound(format!(
                    "no tool '{}'",
                    crate::incidents::model::clip(&call.tool, 60)
                )));
            }
            if role != "operator" && !g.policies.rbac.allows(&role, &call.tool, &call.action) {
                return Err(Error::Forbidden {
                    code: "forbidden",
                    message: format!(
                        "role {role} may not call {}.{}",
                        call.tool,
                        crate::incidents::model::clip(&call.action, 60)
                    ),
                });
            }
            let rollout_agent = if role == "operator" {
                None
            } else {
                agent.as_deref()
            };
            if !g
                .policies
                .rollout
                .enabled(&call.tool, g.env.as_str(), rollout_agent)
            {
                return Err(Error::Forbidden {
                    code: "tool_disabled",
                    message: format!(
                        "{} is not enabled in {} for this caller",
                        call.tool,
                        g.env.as_str()
                    ),
                });
            }
            let lim = g.policies.limits.for_tool(&call.tool);
            if input.len() > lim.max_payload_bytes {
                return Err(Error::TooLarge(format!(
                    "params are {} bytes; {} accepts at most {}",
                    input.len(),
                    call.tool,
                    lim.max_payload_bytes
                )));
            }
            // The rate limit reins in agents; the operator's own console is not throttled.
            let limited = !matches!(principal, Principal::Operator) || agent.is_some();
            let counted = match limited {
                // Counted per acting agent: open-mode callers and the operator acting as
                // different agents do not share one budget.
                true => g.limiter.check(
                    agent.as_deref().unwrap_or(&principal.name()),
                    &call.tool,
                    lim.calls_per_minute,
                ),
                false => Ok(()),
            };
            if let Err(wait) = counted {
                return Err(Error::TooManyRequests {
                    message: format!(
                        "more than {} calls per minute to {}",
                        lim.calls_per_minute, call.tool
                    ),
                    retry_after_s: wait,
                });
            }
            Ok(())
        };
        if let Err(e) = check() {
            return self
                .deny(
                    principal,
                    agent.as_deref(),
                    &role,
                    &call,
                    &input_hash,
                    input.len(),
                    graph_run_id,
                    e,
                )
                .await;
        }

        let timeout =
            std::time::Duration::from_millis(g.policies.limits.for_tool(&call.tool).timeout_ms);
        let actor = agent.clone().unwrap_or_else(|| "operator".into());
        let base = AuditRecord {
            id: Audit::new_id(),
            ts: g.clock.now(),
            principal: principal.name(),
            agent_id: agent.clone(),
            role,
            tool: call.tool.clone(),
            action: call.action.clone(),
            decision: "allow".into(),
            status: "ok".into(),
            input_hash,
            input_size: input.len() as u64,
            output_size: 0,
            elapsed_ms: 0,
            graph_run_id: graph_run_id.clone(),
        };
        // A call that writes carries its audit record into that same transaction: the
        // change and its record commit together or not at all.
        let slot = {
            let mut rec = base.clone();
            crate::store::RiderSlot::new(Box::new(move |tx, size| {
                rec.output_size = size as u64;
                rec.elapsed_ms = started.elapsed().as_millis() as u64;
                Audit::insert(tx, &rec)
            }))
        };
        let run = async {
            match call.tool.as_str() {
                "oncall_tool" => {
                    tools::oncall::call(&g.incidents, &call.action, call.params.clone(), &actor)
                        .await
                }
                "incident_intelligence_tool" => {
                    let ctx = tools::intelligence::Ctx {
                        incidents: &g.incidents,
                        index: &g.search.incidents,
                        policy: &g.policies.intelligence,
                        now: g.clock.now(),
                        reports_dir: &g.reports_dir,
                    };
                    tools::intelligence::call(ctx, &call.action, call.params.clone(), &actor).await
                }
                "observability_tool" => {
                    tools::observability::call(
                        &g.observability,
                        &call.action,
                        call.params.clone(),
                        g.clock.now(),
                    )
                    .await
                }
                "runbook_tool" => {
                    tools::runbook::call(&g.search.runbooks, &call.action, call.params.clone())
                        .await
                }
                other => Err(Error::NotFound(format!("no tool '{other}'"))),
            }
        };
        let run = crate::store::with_rider(slot.clone(), run);
        tokio::pin!(run);
        let result = tokio::select! {
            r = &mut run => r,
            _ = tokio::time::sleep(timeout) => {
                if slot.taken() {
                    // Its write is already queued: cancelling now would answer "failed" for a
                    // change that commits anyway. Wait for the outcome instead.
                    run.await
                } else {
                    Err(Error::Timeout(format!(
                        "{}.{} took longer than {} ms",
                        call.tool,
                        call.action,
                        timeout.as_millis()
                    )))
                }
            }
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let secret = schemas()
            .into_iter()
            .find(|t| t.name == call.tool)
            .map(|t| t.secret_params)
            .unwrap_or(&[]);
        let result = result.map(|mut v| {
            mask_secrets(&mut v, &call.params, secret);
            if agent.is_some() || !matches!(principal, Principal::Operator | Principal::Open) {
                g.policies.redactor.json(&mut v);
            }
            v
        });
        if !(result.is_ok() && slot.written()) {
            // Reads, refusals and failures: the record is written on its own.
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
            // Fail closed: no audit record, no answer.
            g.audit.write(rec).await?;
        }
        match &result {
            Ok(_) => tracing::info!(tool = %call.tool, action = %call.action, node = %node,
                run = %graph_run_id.as_deref().unwrap_or("-"), elapsed_ms, "gateway_ok"),
            Err(e) => tracing::warn!(tool = %call.tool, action = %call.action, node = %node,
                run = %graph_run_id.as_deref().unwrap_or("-"), code = e.code(), elapsed_ms, "gateway_tool_fail"),
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn deny(
        &self,
        principal: &Principal,
        agent: Option<&str>,
        role: &str,
        call: &ToolCall,
        input_hash: &str,
        input_size: usize,
        graph_run_id: Option<String>,
        err: Error,
    ) -> Result<Json> {
        let rec = AuditRecord {
            id: Audit::new_id(),
            ts: self.0.clock.now(),
            principal: principal.name(),
            agent_id: agent.map(str::to_string),
            role: role.to_string(),
            tool: crate::incidents::model::clip(&call.tool, 64),
            action: crate::incidents::model::clip(&call.action, 64),
            decision: "deny".into(),
            status: err.code().into(),
            input_hash: input_hash.to_string(),
            input_size: input_size as u64,
            output_size: 0,
            elapsed_ms: 0,
            graph_run_id,
        };
        self.0.audit.write(rec).await?;
        tracing::warn!(tool = %crate::incidents::model::clip(&call.tool, 64), action = %crate::incidents::model::clip(&call.action, 64),
            code = err.code(), principal = %principal.name(), "gateway_deny");
        Err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_params_are_masked_in_results() {
        let params = serde_json::json!({"token": "tok-12345-secret", "name": "x"});
        let mut out = serde_json::json!({"echo": "used tok-12345-secret here", "list": ["tok-12345-secret"], "name": "x"});
        assert_eq!(mask_secrets(&mut out, &params, &["token"]), 2);
        assert_eq!(out["echo"], "used [REDACTED:secret] here");
        assert_eq!(out["name"], "x");
        assert_eq!(mask_secrets(&mut out, &params, &[]), 0);
    }
}
