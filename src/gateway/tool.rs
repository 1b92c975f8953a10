//! The [`Tool`] trait and the [`Registry`] that `app` fills: the gateway knows no tool by
//! name. `GET /v1/tools`, the checks of `rbac_tools_matrix.yml`, `tools_rollout.yml` and
//! `tool_limits.yml`, and the pipeline's lookups all read the registry, so adding a tool is its
//! own file under `src/tools/` plus one registration line in `app`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value as Json;
use time::OffsetDateTime;

use crate::error::{Error, Result};

/// The future a tool's action returns.
pub type ToolFuture<'a> = Pin<Box<dyn Future<Output = Result<Json>> + Send + 'a>>;

/// One action of a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Action {
    /// The name callers send (`incident_create`).
    pub name: &'static str,
    /// Whether it may change stored state. A write's audit record commits in the same
    /// transaction as the change; a read's is written on its own.
    pub writes: bool,
}

impl Action {
    /// An action that only reads.
    pub const fn read(name: &'static str) -> Action {
        Action {
            name,
            writes: false,
        }
    }
    /// An action that may write.
    pub const fn write(name: &'static str) -> Action {
        Action { name, writes: true }
    }
}

/// A call's params: JSON from agents and graphs, or the typed value an in-process caller
/// (an HTTP handler) built, so the tool runs it without turning it into JSON and back.
pub enum Params {
    /// As sent over `/v1/tools/*` or by a graph node.
    Json(Json),
    /// The tool's own typed call (see [`TypedCall`]).
    Typed(Box<dyn std::any::Any + Send>),
}

impl Params {
    /// The typed call `T` the caller built, or the JSON parsed by `parse`.
    pub fn into_typed<T: 'static>(self, parse: impl FnOnce(Json) -> Result<T>) -> Result<T> {
        match self {
            Params::Json(j) => parse(j),
            Params::Typed(b) => b
                .downcast::<T>()
                .map(|b| *b)
                .map_err(|_| Error::Internal("typed params of another tool".into())),
        }
    }

    /// The JSON params (tools without typed calls).
    pub fn into_json(self) -> Result<Json> {
        self.into_typed(Ok)
    }
}

/// A typed call of one tool, built in process: it names its tool and action, and serializes
/// to the params an agent would send (what the audit record hashes).
pub trait TypedCall: Serialize + Send + 'static {
    /// The tool it is for.
    const TOOL: &'static str;
    /// The action it runs.
    fn action(&self) -> &'static str;
}

/// What a tool is told about the call it runs (after auth, RBAC, rollout and limits).
#[derive(Debug, Clone, Copy)]
pub struct ToolCx<'a> {
    /// Who the change is attributed to: the acting agent, or `operator`.
    pub actor: &'a str,
    /// The role the call acts with (`operator` for the operator).
    pub role: &'a str,
    /// The gateway's clock at the start of the call.
    pub now: OffsetDateTime,
    /// When the call's time is up: its limit from `tool_limits.yml`, or the caller's deadline
    /// when that comes first. A tool that waits on something outside sofiia stops by then
    /// and says why; the gateway cuts off one that does not.
    pub deadline: std::time::Instant,
}

/// A tool the gateway can execute: a thin adapter that parses its params into the typed
/// params of its room and calls the room.
pub trait Tool: Send + Sync + 'static {
    /// The name callers use (`oncall_tool`).
    fn name(&self) -> &'static str;
    /// Other names callers may use for it (`jobs` for `job_orchestrator_tool`, as the old
    /// stack's scripts call it); audit records and policies use [`Tool::name`].
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }
    /// Every action, in the order `GET /v1/tools` lists them.
    fn actions(&self) -> &'static [Action];
    /// Params whose values are secrets: never logged or audited (nothing of a payload is),
    /// and masked wherever they would appear in a result, for every caller.
    fn secret_params(&self) -> &'static [&'static str] {
        &[]
    }
    /// Run `action` (one of [`Tool::actions`]) with `params`.
    fn execute<'a>(&'a self, cx: ToolCx<'a>, action: &'a str, params: Params) -> ToolFuture<'a>;
}

/// What `GET /v1/tools` says of a tool.
#[derive(Debug, Clone, Serialize)]
pub struct ToolSchema {
    pub name: &'static str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub aliases: &'static [&'static str],
    pub actions: Vec<&'static str>,
    /// The actions that may write.
    pub write_actions: Vec<&'static str>,
    pub secret_params: &'static [&'static str],
}

/// The tools of this build, filled once by `app`.
#[derive(Clone, Default)]
pub struct Registry {
    tools: Vec<Arc<dyn Tool>>,
}

impl Registry {
    /// Add a tool; a second tool of the same name, or a tool with no or repeated actions, is
    /// a wiring bug and refused.
    pub fn register(&mut self, tool: Arc<dyn Tool>) -> Result<&mut Registry> {
        let name = tool.name();
        if std::iter::once(name)
            .chain(tool.aliases().iter().copied())
            .any(|n| self.get(n).is_some())
        {
            return Err(Error::Internal(format!("tool {name} is registered twice")));
        }
        let acts = tool.actions();
        let repeated = acts
            .iter()
            .enumerate()
            .any(|(i, a)| acts[..i].iter().any(|b| b.name == a.name));
        if acts.is_empty() || repeated {
            return Err(Error::Internal(format!(
                "tool {name} needs a non-empty list of distinct actions"
            )));
        }
        self.tools.push(tool);
        Ok(self)
    }

    /// The tool named `name` (or one of its aliases).
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools
            .iter()
            .find(|t| t.name() == name || t.aliases().contains(&name))
    }

    /// Whether a tool of this name is registered.
    pub fn knows(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The action `action` of tool `name`.
    pub fn action(&self, name: &str, action: &str) -> Option<Action> {
        self.get(name)?
            .actions()
            .iter()
            .copied()
            .find(|a| a.name == action)
    }

    /// Every tool's schema, in registration order.
    pub fn schemas(&self) -> Vec<ToolSchema> {
        self.tools
            .iter()
            .map(|t| ToolSchema {
                name: t.name(),
                aliases: t.aliases(),
                actions: t.actions().iter().map(|a| a.name).collect(),
                write_actions: t
                    .actions()
                    .iter()
                    .filter(|a| a.writes)
                    .map(|a| a.name)
                    .collect(),
                secret_params: t.secret_params(),
            })
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tool for the gateway's own tests: `echo` returns its params; `fail` fails.
    pub struct Echo;
    impl Tool for Echo {
        fn name(&self) -> &'static str {
            "echo_tool"
        }
        fn actions(&self) -> &'static [Action] {
            const A: &[Action] = &[Action::read("echo"), Action::write("fail")];
            A
        }
        fn secret_params(&self) -> &'static [&'static str] {
            &["token"]
        }
        fn execute<'a>(&'a self, _: ToolCx<'a>, action: &'a str, params: Params) -> ToolFuture<'a> {
            Box::pin(async move {
                match action {
                    "echo" => params.into_json(),
                    _ => Err(Error::Conflict("failed on purpose".into())),
                }
            })
        }
    }

    #[test]
    fn registry_lists_schemas_and_refuses_a_second_tool_of_one_name() {
        let mut r = Registry::default();
        r.register(Arc::new(Echo)).unwrap();
        assert!(r.register(Arc::new(Echo)).is_err());
        assert!(r.knows("echo_tool") && !r.knows("nope"));
        assert_eq!(r.action("echo_tool", "fail"), Some(Action::write("fail")));
        assert_eq!(r.action("echo_tool", "nope"), None);
        let s = &r.schemas()[0];
        assert_eq!(s.actions, ["echo", "fail"]);
        assert_eq!(s.write_actions, ["fail"]);
        assert_eq!(s.secret_params, ["token"]);
    }
}
