//! The task registry `config/task_registry.yml`: the only schedule there is. Loaded and
//! checked at start; every error names the file, the task and the field.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::schedule::Schedule;
use crate::config::ConfigError;

/// The registry shipped with this build (every seed job).
pub const DEFAULT_REGISTRY: &str = include_str!("../../config/task_registry.yml");
/// Its file name in `CONFIG_DIR`.
pub const REGISTRY_FILE: &str = "task_registry.yml";

/// What to do with fires that were missed (the laptop slept, sofiia was stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Run nothing for them (the next fire on time runs as usual); the miss is recorded.
    Skip,
    /// One catch-up run standing for all of them.
    Once,
    /// One run per missed fire, oldest first, at most `catch_up_max`.
    All,
}

/// What to do when a fire comes while the job is still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Do not start it (the skipped fire is counted on the job).
    Skip,
    /// Keep one run waiting and start it when the current one ends.
    QueueOne,
    /// Run side by side.
    Allow,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    tasks: Vec<RawTask>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTask {
    id: String,
    /// The built-in job it runs (defaults to `id`).
    job: Option<String>,
    schedule: Option<String>,
    tz: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    permissions: Vec<String>,
    #[serde(default)]
    inputs: BTreeMap<String, Json>,
    #[serde(default = "yes")]
    enabled: bool,
    catch_up: Option<CatchUp>,
    catch_up_max: Option<u32>,
    overlap: Option<Overlap>,
    timeout: Option<String>,
}

fn yes() -> bool {
    true
}

/// The kind of an input value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    Bool,
    Int,
    Text,
}

/// An input a built-in job takes.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct InputSpec {
    pub name: &'static str,
    pub kind: InputKind,
    /// What it changes, for `--help`-like listings.
    pub about: &'static str,
    /// For whole numbers: the smallest and largest accepted.
    pub min: u64,
    pub max: u64,
}

/// One task as the scheduler runs it.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    /// The built-in job it runs.
    pub job: String,
    pub schedule: Option<Schedule>,
    pub description: String,
    /// Roles (from `rbac_tools_matrix.yml`) that may start it by hand; the operator always may.
    pub permissions: Vec<String>,
    /// Defaults, overridden by a manual run's inputs.
    pub inputs: serde_json::Map<String, Json>,
    pub enabled: bool,
    pub catch_up: CatchUp,
    pub catch_up_max: u32,
    pub overlap: Overlap,
    pub timeout: Duration,
}

/// Every task, in file order.
#[derive(Debug, Clone, Default)]
pub struct TaskRegistry {
    pub tasks: Vec<Task>,
    /// Where it was read from (for messages).
    pub source: String,
}

/// Parse `30s`, `5m`, `2h` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, "s"),
    };
    let n: u64 = num.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}

impl TaskRegistry {
    /// `CONFIG_DIR/task_registry.yml`, or the shipped one. `jobs` names the built-in jobs
    /// and their inputs; `roles` the RBAC roles a task's permissions may name.
    pub fn load(
        dir: Option<&Path>,
        jobs: &[(&str, &[InputSpec])],
        roles: &[String],
    ) -> Result<TaskRegistry, ConfigError> {
        let (path, text) = match dir.map(|d| d.join(REGISTRY_FILE)) {
            Some(p) => match std::fs::read_to_string(&p) {
                Ok(t) => (p.display().to_string(), t),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
                    format!("(built-in) {REGISTRY_FILE}"),
                    DEFAULT_REGISTRY.to_string(),
                ),
                Err(e) => return Err(ConfigError(format!("{}: {e}", p.display()))),
            },
            None => (
                format!("(built-in) {REGISTRY_FILE}"),
                DEFAULT_REGISTRY.to_string(),
            ),
        };
        Self::parse(&path, &text, jobs, roles)
    }

    /// Parse and check registry text read from `path`.
    pub fn parse(
        path: &str,
        text: &str,
        jobs: &[(&str, &[InputSpec])],
        roles: &[String],
    ) -> Result<TaskRegistry, ConfigError> {
        let raw: RawFile = crate::config::parse_yaml(Path::new(path), text)?;
        let mut tasks: Vec<Task> = Vec::new();
        for t in raw.tasks {
            let err = |field: &str, m: String| {
                ConfigError(format!("{path}: task '{}': {field}: {m}", t.id))
            };
            let id_ok = !t.id.is_empty()
                && t.id.len() <= 64
                && t.id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !id_ok {
                return Err(ConfigError(format!(
                    "{path}: task '{}': id: use 1-64 of a-z, 0-9 and _",
                    crate::kernel::text::clip(&t.id, 70)
                )));
            }
            if tasks.iter().any(|x| x.id == t.id) {
                return Err(err("id", "appears twice".into()));
            }
            let job = t.job.clone().unwrap_or_else(|| t.id.clone());
            let Some((_, specs)) = jobs.iter().find(|(name, _)| *name == job) else {
                let known: Vec<&str> = jobs.iter().map(|(n, _)| *n).collect();
                return Err(err(
                    if t.job.is_some() { "job" } else { "id" },
                    format!(
                        "'{job}' is not a job of this build (known: {})",
                        known.join(", ")
                    ),
                ));
            };
            let schedule = match &t.schedule {
                Some(s) => {
                    Some(Schedule::parse(s, t.tz.as_deref()).map_err(|e| err(e.field, e.message))?)
                }
                None if t.tz.is_some() => {
                    return Err(err("tz", "is set but the task has no schedule".into()))
                }
                None => None,
            };
            // The shipped registry names the shipped roles; with an RBAC matrix of the
            // operator's own that lacks one, that role simply cannot start the task. A
            // registry the operator wrote must name roles that exist.
            let built_in = path.starts_with("(built-in)");
            let mut permissions = Vec::new();
            for r in &t.permissions {
                if r == "operator" || roles.contains(r) {
                    permissions.push(r.clone());
                } else if built_in {
                    tracing::warn!(task = %t.id, role = %r, "task_role_not_in_rbac_matrix");
                } else {
                    return Err(err(
                        "permissions",
                        format!("role '{r}' is not defined in rbac_tools_matrix.yml"),
                    ));
                }
            }
            let mut inputs = serde_json::Map::new();
            for (k, v) in &t.inputs {
                let v =
                    check_input(specs, k, v.clone()).map_err(|m| err(&format!("inputs.{k}"), m))?;
                inputs.insert(k.clone(), v);
            }
            let timeout = match &t.timeout {
                None => Duration::from_secs(600),
                Some(s) => parse_duration(s).ok_or_else(|| {
                    err(
                        "timeout",
                        format!("'{s}' is not a duration (e.g. 90s, 10m, 2h)"),
                    )
                })?,
            };
            let catch_up = t.catch_up.unwrap_or(CatchUp::Once);
            let catch_up_max = t.catch_up_max.unwrap_or(5);
            if t.catch_up_max.is_some() && catch_up != CatchUp::All {
                return Err(err("catch_up_max", "only applies to catch_up: all".into()));
            }
            if !(1..=1000).contains(&catch_up_max) {
                return Err(err("catch_up_max", "must be 1-1000".into()));
            }
            tasks.push(Task {
                id: t.id.clone(),
                job,
                schedule,
                description: t.description.clone(),
                permissions,
                inputs,
                enabled: t.enabled,
                catch_up,
                catch_up_max,
                overlap: t.overlap.unwrap_or(Overlap::Skip),
                timeout,
            });
        }
        Ok(TaskRegistry {
            tasks,
            source: path.to_string(),
        })
    }

    /// The task `id`.
    pub fn get(&self, id: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }
}

/// Check one input against a job's specs; text from the command line (`k=v`) is converted
/// to the input's kind.
pub fn check_input(specs: &[InputSpec], key: &str, v: Json) -> Result<Json, String> {
    let Some(spec) = specs.iter().find(|s| s.name == key) else {
        let known: Vec<&str> = specs.iter().map(|s| s.name).collect();
        return Err(if known.is_empty() {
            "this job takes no inputs".into()
        } else {
            format!("not an input of this job (inputs: {})", known.join(", "))
        });
    };
    let in_range = |n: u64| n >= spec.min && n <= spec.max;
    match (spec.kind, v) {
        (InputKind::Bool, Json::Bool(b)) => Ok(Json::Bool(b)),
        (InputKind::Bool, Json::String(s)) if s == "true" || s == "false" => {
            Ok(Json::Bool(s == "true"))
        }
        (InputKind::Int, Json::Number(n)) if n.as_u64().is_some_and(in_range) => {
            Ok(Json::Number(n))
        }
        (InputKind::Int, Json::String(s)) if s.parse::<u64>().is_ok_and(in_range) => {
            Ok(Json::from(s.parse::<u64>().unwrap_or(0)))
        }
        (InputKind::Text, Json::String(s)) if s.len() <= 200 => Ok(Json::String(s)),
        (kind, _) => Err(format!(
            "must be {}",
            match kind {
                InputKind::Bool => "true or false",
                InputKind::Int =>
                    return Err(format!(
                        "must be a whole number from {} to {}",
                        spec.min, spec.max
                    )),
                InputKind::Text => "text of at most 200 bytes",
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOBS: &[(&str, &[InputSpec])] = &[
        (
            "digest",
            &[InputSpec {
                name: "limit",
                kind: InputKind::Int,
                about: "",
                min: 0,
                max: u64::MAX,
            }],
        ),
        ("backup", &[]),
    ];

    fn roles() -> Vec<String> {
        vec!["agent_cto".into()]
    }

    fn parse(text: &str) -> Result<TaskRegistry, ConfigError> {
        TaskRegistry::parse("reg.yml", text, JOBS, &roles())
    }

    #[test]
    fn defaults_and_fields() {
        let r = parse(
            "tasks:\n  - id: digest\n    schedule: '0 8 * * 1'\n    permissions: [agent_cto]\n    inputs: {limit: 3}\n  - id: nightly\n    job: backup\n    schedule: '0 0 2 * * *'\n    tz: Europe/Kyiv\n    catch_up: all\n    catch_up_max: 2\n    overlap: queue_one\n    timeout: 90s\n",
        )
        .unwrap();
        let d = r.get("digest").unwrap();
        assert_eq!((d.catch_up, d.overlap), (CatchUp::Once, Overlap::Skip));
        assert_eq!(d.timeout, Duration::from_secs(600));
        assert_eq!(d.inputs["limit"], 3);
        let n = r.get("nightly").unwrap();
        assert_eq!(n.job, "backup");
        assert_eq!((n.catch_up, n.catch_up_max), (CatchUp::All, 2));
        assert_eq!(n.overlap, Overlap::QueueOne);
        assert_eq!(n.timeout, Duration::from_secs(90));
        assert_eq!(n.schedule.as_ref().unwrap().tz_name(), "Europe/Kyiv");
    }

    #[test]
    fn errors_name_file_task_and_field() {
        for (text, want) in [
            (
                "tasks:\n  - id: digest\n    schedule: '* * *'\n",
                "reg.yml: task 'digest': schedule:",
            ),
            (
                "tasks:\n  - id: digest\n    schedule: '0 9 * * *'\n    tz: Nowhere/City\n",
                "task 'digest': tz:",
            ),
            (
                "tasks:\n  - id: nope\n",
                "task 'nope': id: 'nope' is not a job",
            ),
            ("tasks:\n  - id: x\n    job: nope\n", "task 'x': job:"),
            (
                "tasks:\n  - id: digest\n    permissions: [agent_ghost]\n",
                "task 'digest': permissions: role 'agent_ghost'",
            ),
            (
                "tasks:\n  - id: digest\n    inputs: {limt: 3}\n",
                "task 'digest': inputs.limt:",
            ),
            (
                "tasks:\n  - id: digest\n    inputs: {limit: many}\n",
                "task 'digest': inputs.limit: must be a whole number",
            ),
            (
                "tasks:\n  - id: digest\n    timeout: soon\n",
                "task 'digest': timeout:",
            ),
            (
                "tasks:\n  - id: digest\n    catch_up_max: 3\n",
                "task 'digest': catch_up_max:",
            ),
            (
                "tasks:\n  - id: digest\n  - id: digest\n",
                "task 'digest': id: appears twice",
            ),
            (
                "tasks:\n  - id: digest\n    catch_up: sometimes\n",
                "reg.yml",
            ),
            ("tasks:\n  - id: digest\n    colour: red\n", "colour"),
            ("tasks:\n  - id: Bad-Id\n", "task 'Bad-Id': id:"),
        ] {
            let e = parse(text).unwrap_err().0;
            assert!(e.contains(want), "{text:?} gave {e}");
        }
    }

    #[test]
    fn the_shipped_registry_has_every_seed_job() {
        let ids: Vec<&str> = DEFAULT_REGISTRY
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- id: "))
            .collect();
        for want in [
            "alert_triage",
            "hourly_risk_snapshot",
            "daily_risk_digest",
            "weekly_platform_priority_digest",
            "weekly_backlog_generate",
            "weekly_incident_digest",
            "audit_cleanup",
            "run_ttl_cleanup",
            "backup",
        ] {
            assert!(ids.contains(&want), "{want} missing");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("1d"), None);
    }
}
