//! The gateway's policy files (YAML in `CONFIG_DIR`): who may call what, limits, rollout.
//! Each file is optional; the built-in defaults are the files shipped in `config/`.
//! Unknown keys and bad values are errors naming the file and field.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::tool::Registry;
use crate::config::policy::load;
use crate::config::ConfigError;

/// `rbac_tools_matrix.yml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RbacMatrix {
    /// agent id → role.
    #[serde(default)]
    pub agents: BTreeMap<String, String>,
    /// Role of any agent not listed.
    pub default_role: String,
    /// role → tool → allowed actions (`"*"` = all).
    pub roles: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

impl RbacMatrix {
    /// The role of an agent.
    pub fn role_of(&self, agent: &str) -> &str {
        self.agents
            .get(agent)
            .map(String::as_str)
            .unwrap_or(&self.default_role)
    }
    /// Whether `role` may call `tool.action`.
    pub fn allows(&self, role: &str, tool: &str, action: &str) -> bool {
        self.roles
            .get(role)
            .and_then(|t| t.get(tool))
            .is_some_and(|acts| acts.iter().any(|a| a == "*" || a == action))
    }
}

/// Limits for one tool (every field optional; missing ones come from `defaults`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_payload_bytes: Option<usize>,
    pub timeout_ms: Option<u64>,
    pub calls_per_minute: Option<u32>,
}

/// `tool_limits.yml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolLimits {
    pub defaults: Limits,
    #[serde(default)]
    pub tools: BTreeMap<String, Limits>,
}

/// Effective limits of a tool.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effective {
    pub max_payload_bytes: usize,
    pub timeout_ms: u64,
    pub calls_per_minute: u32,
}

impl ToolLimits {
    /// Limits that apply to `tool`.
    pub fn for_tool(&self, tool: &str) -> Effective {
        let t = self.tools.get(tool).cloned().unwrap_or_default();
        Effective {
            max_payload_bytes: t
                .max_payload_bytes
                .or(self.defaults.max_payload_bytes)
                .unwrap_or(256 * 1024),
            timeout_ms: t.timeout_ms.or(self.defaults.timeout_ms).unwrap_or(30_000),
            calls_per_minute: t
                .calls_per_minute
                .or(self.defaults.calls_per_minute)
                .unwrap_or(600),
        }
    }
}

/// One tool's rollout.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Envs where it is enabled (empty = all).
    #[serde(default)]
    pub envs: Vec<String>,
    /// Agents that may use it (empty or `"*"` = all).
    #[serde(default)]
    pub agents: Vec<String>,
}

fn yes() -> bool {
    true
}

/// `tools_rollout.yml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolsRollout {
    pub tools: BTreeMap<String, Rollout>,
}

impl ToolsRollout {
    /// Whether `tool` is enabled in `env` for `agent` (the operator counts as every agent).
    pub fn enabled(&self, tool: &str, env: &str, agent: Option<&str>) -> bool {
        let Some(r) = self.tools.get(tool) else {
            return false;
        };
        r.enabled
            && (r.envs.is_empty() || r.envs.iter().any(|e| e == env))
            && match agent {
                None => true,
                Some(a) => r.agents.is_empty() || r.agents.iter().any(|x| x == "*" || x == a),
            }
    }
}

/// All gateway policies.
#[derive(Debug, Clone)]
pub struct Policies {
    pub rbac: RbacMatrix,
    pub limits: ToolLimits,
    pub rollout: ToolsRollout,
    pub redactor: super::redact::Redactor,
}

/// The defaults, identical to the files shipped in `config/`.
pub const DEFAULT_RBAC: &str = include_str!("../../config/rbac_tools_matrix.yml");
/// Default limits.
pub const DEFAULT_LIMITS: &str = include_str!("../../config/tool_limits.yml");
/// Default rollout.
pub const DEFAULT_ROLLOUT: &str = include_str!("../../config/tools_rollout.yml");
/// Default data governance.
pub const DEFAULT_GOVERNANCE: &str = include_str!("../../config/data_governance.yml");

impl Policies {
    /// Load every policy from `config_dir` (or the built-in defaults) and cross-check them.
    pub fn load(config_dir: Option<&Path>) -> Result<Policies, ConfigError> {
        let rbac: RbacMatrix = load(config_dir, "rbac_tools_matrix.yml", DEFAULT_RBAC)?;
        let limits: ToolLimits = load(config_dir, "tool_limits.yml", DEFAULT_LIMITS)?;
        let rollout: ToolsRollout = load(config_dir, "tools_rollout.yml", DEFAULT_ROLLOUT)?;
        let governance: super::redact::DataGovernance =
            load(config_dir, "data_governance.yml", DEFAULT_GOVERNANCE)?;
        let redactor = super::redact::Redactor::new(&governance, "data_governance.yml")?;
        let governance_days = governance.audit_retention_days;
        for (agent, role) in &rbac.agents {
            if !rbac.roles.contains_key(role) {
                return Err(ConfigError(format!(
                    "rbac_tools_matrix.yml: agents.{agent}: role '{role}' is not defined under roles"
                )));
            }
        }
        if rbac.roles.contains_key("operator") || rbac.agents.values().any(|r| r == "operator") {
            return Err(ConfigError(
                "rbac_tools_matrix.yml: roles: 'operator' is reserved for the operator's key"
                    .into(),
            ));
        }
        for (tool, r) in &rollout.tools {
            if let Some(e) = r
                .envs
                .iter()
                .find(|e| crate::config::Env::parse(e).is_none())
            {
                return Err(ConfigError(format!(
                    "tools_rollout.yml: tools.{tool}.envs: '{e}' is not dev, staging or prod"
                )));
            }
        }
        for (name, l) in std::iter::once(("defaults", &limits.defaults))
            .chain(limits.tools.iter().map(|(k, v)| (k.as_str(), v)))
        {
            if l.max_payload_bytes == Some(0)
                || l.timeout_ms == Some(0)
                || l.calls_per_minute == Some(0)
            {
                return Err(ConfigError(format!(
                    "tool_limits.yml: {name}: limits must be above 0"
                )));
            }
        }
        if !(1..=3650).contains(&governance_days) {
            return Err(ConfigError(format!(
                "data_governance.yml: audit_retention_days: {governance_days} is not between 1 and 3650"
            )));
        }
        if let Some(d) = governance.audit_denied_retention_days {
            if !(governance_days..=3650).contains(&d) {
                return Err(ConfigError(format!(
                    "data_governance.yml: audit_denied_retention_days: {d} is not between audit_retention_days ({governance_days}) and 3650"
                )));
            }
        }
        if !rbac.roles.contains_key(&rbac.default_role) {
            return Err(ConfigError(format!(
                "rbac_tools_matrix.yml: default_role: '{}' is not defined under roles",
                rbac.default_role
            )));
        }
        Ok(Policies {
            rbac,
            limits,
            rollout,
            redactor,
        })
    }

    /// Cross-check the policies against the registered tools: every tool and action the RBAC
    /// matrix, the rollout and the limits name must exist.
    pub fn check_tools(&self, registry: &Registry) -> Result<(), ConfigError> {
        for (role, tools) in &self.rbac.roles {
            for (tool, actions) in tools {
                if !registry.knows(tool) {
                    return Err(ConfigError(format!(
                        "rbac_tools_matrix.yml: roles.{role}.{tool}: no such tool"
                    )));
                }
                for a in actions {
                    if a != "*" && registry.action(tool, a).is_none() {
                        return Err(ConfigError(format!(
                            "rbac_tools_matrix.yml: roles.{role}.{tool}: no action '{a}'"
                        )));
                    }
                }
            }
        }
        if let Some(tool) = self.rollout.tools.keys().find(|t| !registry.knows(t)) {
            return Err(ConfigError(format!(
                "tools_rollout.yml: tools.{tool}: no such tool"
            )));
        }
        if let Some(tool) = self.limits.tools.keys().find(|t| !registry.knows(t)) {
            return Err(ConfigError(format!(
                "tool_limits.yml: tools.{tool}: no such tool"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::tool::{Action, Params, Tool, ToolCx, ToolFuture};

    /// A registry with one tool named like the incident tool (names are all the check reads).
    fn oncall_only() -> Registry {
        struct Oncall;
        impl Tool for Oncall {
            fn name(&self) -> &'static str {
                "oncall_tool"
            }
            fn actions(&self) -> &'static [Action] {
                const A: &[Action] = &[Action::read("incident_get")];
                A
            }
            fn execute<'a>(&'a self, _: ToolCx<'a>, _: &'a str, p: Params) -> ToolFuture<'a> {
                Box::pin(async move { p.into_json() })
            }
        }
        let mut r = Registry::default();
        r.register(std::sync::Arc::new(Oncall)).unwrap();
        r
    }

    #[test]
    fn shipped_defaults_load_and_encode_the_seed_roles() {
        let p = Policies::load(None).unwrap();
        for (agent, write) in [
            ("sofiia", true),
            ("helion", true),
            ("monitor", false),
            ("aistalk", false),
            ("someone", false),
        ] {
            let role = p.rbac.role_of(agent);
            assert!(
                p.rbac.allows(role, "oncall_tool", "incident_get"),
                "{agent}"
            );
            assert_eq!(
                p.rbac.allows(role, "oncall_tool", "incident_create"),
                write,
                "{agent}"
            );
        }
        assert!(p.rollout.enabled("oncall_tool", "prod", Some("sofiia")));
        assert!(p.limits.for_tool("oncall_tool").calls_per_minute > 0);
    }

    #[test]
    fn bad_files_name_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("rbac_tools_matrix.yml"),
            "default_role: nobody\nroles: {}\n",
        )
        .unwrap();
        let e = Policies::load(Some(dir.path())).unwrap_err();
        assert!(e.0.contains("rbac_tools_matrix.yml: default_role"), "{e}");
        std::fs::write(
            dir.path().join("rbac_tools_matrix.yml"),
            "default_role: r\nroles: {r: {}}\nagnets: {}\n",
        )
        .unwrap();
        let e = Policies::load(Some(dir.path())).unwrap_err();
        assert!(
            e.0.contains("rbac_tools_matrix.yml") && e.0.contains("agnets"),
            "{e}"
        );
        for (bad, needle) in [
            (
                "default_role: r\nroles: {r: {}, operator: {}}\n",
                "reserved",
            ),
            (
                "default_role: r\nroles: {r: {oncal_tool: [\"*\"]}}\n",
                "roles.r.oncal_tool: no such tool",
            ),
            (
                "default_role: r\nroles: {r: {oncall_tool: [incident_delete]}}\n",
                "no action 'incident_delete'",
            ),
        ] {
            std::fs::write(dir.path().join("rbac_tools_matrix.yml"), bad).unwrap();
            let e = Policies::load(Some(dir.path()))
                .and_then(|p| p.check_tools(&oncall_only()))
                .unwrap_err();
            assert!(e.0.contains(needle), "{e}");
        }
        std::fs::remove_file(dir.path().join("rbac_tools_matrix.yml")).unwrap();
        std::fs::write(
            dir.path().join("tools_rollout.yml"),
            "tools: {oncall_tool: {envs: [production-eu]}}\n",
        )
        .unwrap();
        assert!(Policies::load(Some(dir.path()))
            .unwrap_err()
            .0
            .contains("envs"));
        std::fs::remove_file(dir.path().join("tools_rollout.yml")).unwrap();
        std::fs::write(
            dir.path().join("data_governance.yml"),
            "audit_retention_days: 0\nredaction: []\n",
        )
        .unwrap();
        assert!(Policies::load(Some(dir.path()))
            .unwrap_err()
            .0
            .contains("audit_retention_days"));
        std::fs::remove_file(dir.path().join("data_governance.yml")).unwrap();
        std::fs::write(
            dir.path().join("tool_limits.yml"),
            "defaults: {timeout_ms: soon}\n",
        )
        .unwrap();
        let e = Policies::load(Some(dir.path())).unwrap_err();
        assert!(e.0.contains("tool_limits.yml"), "{e}");
    }
}
