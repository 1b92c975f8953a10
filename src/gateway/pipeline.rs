//! The pipeline's stages, each a small function with its own tests:
//! [`resolve`] (known tool and action) → [`acting`] (who the call acts as) → [`rbac`] →
//! [`rollout`] → [`limits`] → execute (in `mod.rs`) → [`redact`] → audit (in `mod.rs`).

use serde_json::Value as Json;

use super::auth::Principal;
use super::limits::RateLimiter;
use super::policy::{RbacMatrix, ToolLimits, ToolsRollout};
use super::redact::Redactor;
use super::tool::{Action, Registry};
use crate::error::{Error, Result};
use crate::kernel::text::{check_token, clip};

/// What logs and audit records say for a tool or action name the gateway does not know.
pub const UNKNOWN: &str = "<unknown>";

/// A role of the RBAC matrix. Only [`acting`] makes one, from `rbac_tools_matrix.yml` or an
/// agent key's binding; the matrix may not define `operator`, so no role string can stand for
/// the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role(String);

impl Role {
    /// The role's name, as the matrix spells it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who a call acts as, decided once per call. The operator acting as itself may call every
/// tool (it holds the console's key); anything acting as an agent is held to that agent's
/// role, also when the operator chooses to act as one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acting {
    /// The operator's key, or the open dev console, with no agent named.
    Operator {
        /// The open dev console (no key at all) is rate limited; the operator's key is not.
        keyless: bool,
    },
    /// An agent, with the role RBAC checks.
    Agent { agent_id: String, role: Role },
}

impl Acting {
    /// The agent acted as, if any.
    pub fn agent(&self) -> Option<&str> {
        match self {
            Acting::Agent { agent_id, .. } => Some(agent_id),
            Acting::Operator { .. } => None,
        }
    }
    /// The role name audit records carry (`operator` for the operator).
    pub fn role_name(&self) -> &str {
        match self {
            Acting::Agent { role, .. } => role.as_str(),
            Acting::Operator { .. } => "operator",
        }
    }
    /// Who changes are attributed to.
    pub fn actor(&self) -> &str {
        self.agent().unwrap_or("operator")
    }
}

/// The names a call carries once checked: only names the gateway knows (or [`UNKNOWN`])
/// reach logs and audit records, so a caller's text is never echoed.
#[derive(Debug, Clone, PartialEq)]
pub struct Names {
    pub tool: String,
    pub action: String,
    /// The action's declaration, when both names are known.
    pub declared: Option<Action>,
}

/// Stage 1: is this a registered tool and one of its actions?
pub fn resolve(registry: &Registry, tool: &str, action: &str) -> (Names, Option<Error>) {
    match registry.get(tool) {
        None => (
            Names {
                tool: UNKNOWN.into(),
                action: UNKNOWN.into(),
                declared: None,
            },
            Some(Error::NotFound(
                "no such tool; GET /v1/tools lists them".into(),
            )),
        ),
        Some(t) => match registry.action(tool, action) {
            None => (
                Names {
                    tool: t.name().into(),
                    action: UNKNOWN.into(),
                    declared: None,
                },
                Some(Error::NotFound(format!(
                    "{} has no such action; its actions are {}",
                    t.name(),
                    t.actions()
                        .iter()
                        .map(|a| a.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            ),
            Some(a) => (
                Names {
                    tool: t.name().into(),
                    action: a.name.into(),
                    declared: Some(a),
                },
                None,
            ),
        },
    }
}

/// A caller-supplied name that may appear in logs (letters, digits, `._:-/`, ≤ 64).
pub fn loggable(s: &str) -> bool {
    check_token("name", s, 64).is_ok()
}

/// Stage 2: who the call acts as. An agent key can only ever act as its own agent; the
/// operator (or the open console) may name an agent and then acts with that agent's role.
/// `agent_id` has passed [`check_agent_id`].
pub fn acting(principal: &Principal, agent_id: Option<&str>, rbac: &RbacMatrix) -> Result<Acting> {
    match (principal, agent_id.filter(|a| !a.is_empty())) {
        (Principal::Agent { agent_id, .. }, Some(a)) if a != agent_id => Err(Error::Forbidden {
            code: "impersonation",
            message: format!(
                "this key belongs to agent '{agent_id}' and cannot act as '{}'",
                clip(a, 40)
            ),
        }),
        (Principal::Agent { agent_id, role }, _) => Ok(Acting::Agent {
            agent_id: agent_id.clone(),
            role: Role(
                role.clone()
                    .unwrap_or_else(|| rbac.role_of(agent_id).to_string()),
            ),
        }),
        (Principal::Operator | Principal::Open, Some(a)) => Ok(Acting::Agent {
            agent_id: a.to_string(),
            role: Role(rbac.role_of(a).to_string()),
        }),
        (Principal::Operator, None) => Ok(Acting::Operator { keyless: false }),
        (Principal::Open, None) => Ok(Acting::Operator { keyless: true }),
    }
}

/// Part of stage 1: a claimed `agent_id` must be an id (it goes into logs and audit).
pub fn check_agent_id(agent_id: Option<&str>) -> std::result::Result<Option<&str>, Error> {
    match agent_id.filter(|a| !a.is_empty()) {
        Some(a) if !loggable(a) => Err(Error::invalid(
            "agent_id",
            "is not an agent id (letters, digits, . _ : - /)",
        )),
        a => Ok(a),
    }
}

/// Stage 3: may this role call `tool.action`? The operator may call everything.
pub fn rbac(acting: &Acting, names: &Names, matrix: &RbacMatrix) -> Result<()> {
    match acting {
        Acting::Operator { .. } => Ok(()),
        Acting::Agent { role, .. } if matrix.allows(role.as_str(), &names.tool, &names.action) => {
            Ok(())
        }
        Acting::Agent { role, .. } => Err(Error::Forbidden {
            code: "forbidden",
            message: format!(
                "role {} may not call {}.{}",
                role.as_str(),
                names.tool,
                names.action
            ),
        }),
    }
}

/// Stage 4: is the tool enabled in this env for this caller?
pub fn rollout(acting: &Acting, tool: &str, env: &str, rollout: &ToolsRollout) -> Result<()> {
    if rollout.enabled(tool, env, acting.agent()) {
        Ok(())
    } else {
        Err(Error::Forbidden {
            code: "tool_disabled",
            message: format!("{tool} is not enabled in {env} for this caller"),
        })
    }
}

/// Stage 5: payload size, then calls per minute. Counted per acting agent (open-mode callers
/// and the operator acting as different agents do not share one budget); the operator's own
/// console is not throttled.
pub fn limits(
    acting: &Acting,
    tool: &str,
    input_len: usize,
    limits: &ToolLimits,
    limiter: &RateLimiter,
) -> Result<()> {
    let lim = limits.for_tool(tool);
    if input_len > lim.max_payload_bytes {
        return Err(Error::TooLarge(format!(
            "params are {input_len} bytes; {tool} accepts at most {}",
            lim.max_payload_bytes
        )));
    }
    let key = match acting {
        Acting::Operator { keyless: false } => return Ok(()),
        Acting::Operator { keyless: true } => "open",
        Acting::Agent { agent_id, .. } => agent_id.as_str(),
    };
    limiter
        .check(key, tool, lim.calls_per_minute)
        .map_err(|wait| Error::TooManyRequests {
            message: format!(
                "more than {} calls per minute to {tool}",
                lim.calls_per_minute
            ),
            retry_after_s: wait,
        })
}

/// Stage 7: mask the values of secret params in the result for every caller, and redact
/// secrets and personal data (`data_governance.yml`) for anything acting as an agent; the
/// operator (and the open dev console) sees stored data as it is.
pub fn redact(
    result: &mut Json,
    params: &Json,
    secret_params: &[&str],
    acting: &Acting,
    redactor: &Redactor,
) {
    mask_secrets(result, params, secret_params);
    if let Acting::Agent { .. } = acting {
        redactor.json(result);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::tool::tests::Echo;
    use serde_json::json;
    use std::sync::Arc;

    fn matrix() -> RbacMatrix {
        crate::config::parse_yaml(
            std::path::Path::new("t.yml"),
            "default_role: reader\nagents: {helion: writer}\nroles:\n  writer: {echo_tool: ['*']}\n  reader: {echo_tool: [echo]}\n",
        )
        .unwrap()
    }

    fn agent(id: &str, role: Option<&str>) -> Principal {
        Principal::Agent {
            agent_id: id.into(),
            role: role.map(str::to_string),
        }
    }

    #[test]
    fn resolve_names_only_known_tools_and_actions() {
        let mut r = Registry::default();
        r.register(Arc::new(Echo)).unwrap();
        let (n, e) = resolve(&r, "echo_tool", "fail");
        assert_eq!((n.tool.as_str(), n.action.as_str()), ("echo_tool", "fail"));
        assert!(n.declared.is_some_and(|a| a.writes) && e.is_none());
        let (n, e) = resolve(&r, "echo_tool", "<script>");
        assert_eq!(n.action, UNKNOWN);
        assert!(e
            .unwrap()
            .to_string()
            .contains("its actions are echo, fail"));
        let (n, e) = resolve(&r, "rm -rf", "x");
        assert_eq!((n.tool.as_str(), n.action.as_str()), (UNKNOWN, UNKNOWN));
        assert_eq!(e.unwrap().code(), "not_found");
    }

    #[test]
    fn an_agent_key_acts_only_as_its_agent_and_the_operator_may_act_as_one() {
        let m = matrix();
        let a = acting(&agent("helion", None), Some("helion"), &m).unwrap();
        assert_eq!(a.role_name(), "writer");
        let e = acting(&agent("helion", None), Some("sofiia"), &m).unwrap_err();
        assert_eq!(e.code(), "impersonation");
        let bound = acting(&agent("x", Some("writer")), None, &m).unwrap();
        assert_eq!(bound.role_name(), "writer");
        assert_eq!(
            acting(&Principal::Operator, None, &m).unwrap(),
            Acting::Operator { keyless: false }
        );
        let as_agent = acting(&Principal::Operator, Some("monitor"), &m).unwrap();
        assert_eq!(
            (as_agent.agent(), as_agent.role_name()),
            (Some("monitor"), "reader")
        );
        assert_eq!(
            check_agent_id(Some("bad id!")).unwrap_err().code(),
            "invalid_field"
        );
        assert_eq!(check_agent_id(Some("")).unwrap(), None);
        assert_eq!(check_agent_id(Some("a.b")).unwrap(), Some("a.b"));
    }

    #[test]
    fn rbac_holds_agents_to_their_role_and_lets_the_operator_through() {
        let m = matrix();
        let names = |a: &str| Names {
            tool: "echo_tool".into(),
            action: a.into(),
            declared: None,
        };
        let reader = acting(&Principal::Open, Some("monitor"), &m).unwrap();
        assert!(rbac(&reader, &names("echo"), &m).is_ok());
        let e = rbac(&reader, &names("fail"), &m).unwrap_err();
        assert_eq!(e.to_string(), "role reader may not call echo_tool.fail");
        let op = Acting::Operator { keyless: false };
        assert!(rbac(&op, &names("fail"), &m).is_ok());
    }

    #[test]
    fn rollout_and_limits_refuse_with_their_own_codes() {
        let ro: ToolsRollout = crate::config::parse_yaml(
            std::path::Path::new("r.yml"),
            "tools:\n  echo_tool: {envs: [dev]}\n",
        )
        .unwrap();
        let op = Acting::Operator { keyless: true };
        assert!(rollout(&op, "echo_tool", "dev", &ro).is_ok());
        assert_eq!(
            rollout(&op, "echo_tool", "prod", &ro).unwrap_err().code(),
            "tool_disabled"
        );
        let lim: ToolLimits = crate::config::parse_yaml(
            std::path::Path::new("l.yml"),
            "defaults: {max_payload_bytes: 10, timeout_ms: 100, calls_per_minute: 1}\n",
        )
        .unwrap();
        let rl = RateLimiter::default();
        assert_eq!(
            limits(&op, "echo_tool", 11, &lim, &rl).unwrap_err().code(),
            "payload_too_large"
        );
        assert!(limits(&op, "echo_tool", 10, &lim, &rl).is_ok());
        assert_eq!(
            limits(&op, "echo_tool", 1, &lim, &rl).unwrap_err().code(),
            "rate_limited"
        );
        // the operator's key is not throttled
        let key = Acting::Operator { keyless: false };
        for _ in 0..3 {
            assert!(limits(&key, "echo_tool", 1, &lim, &rl).is_ok());
        }
    }

    #[test]
    fn secret_params_are_masked_in_results() {
        let params = json!({"token": "tok-12345-secret", "name": "x"});
        let mut out = json!({"echo": "used tok-12345-secret here", "list": ["tok-12345-secret"], "name": "x"});
        assert_eq!(mask_secrets(&mut out, &params, &["token"]), 2);
        assert_eq!(out["echo"], "used [REDACTED:secret] here");
        assert_eq!(out["name"], "x");
        assert_eq!(mask_secrets(&mut out, &params, &[]), 0);
    }
}
