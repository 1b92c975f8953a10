//! `reports_tool`: the digests the governance jobs write under `DATA_DIR/reports/`
//! (`incidents/weekly/YYYY-Www`, `risk/YYYY-MM-DD`, `platform/YYYY-Www`, each as `.md` and
//! `.json`): `list {kind}` and `get {path}`. Only those folders and names are ever read.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

use super::{no_action, object, parse};
use crate::error::{Error, Result};
use crate::gateway::{Action, Params, Tool, ToolCx, ToolFuture, TypedCall};

const NAME: &str = "reports_tool";

/// Every action, in the order `GET /v1/tools` lists them.
const ACTIONS: &[Action] = &[Action::read("list"), Action::read("get")];

/// The kinds of report and their folders under `reports/`.
pub const KINDS: &[(&str, &str)] = &[
    ("incidents_weekly", "incidents/weekly"),
    ("risk", "risk"),
    ("platform", "platform"),
];

/// One `reports_tool` call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReportsCall {
    Get { path: String },
    List { kind: Option<String> },
}

impl TypedCall for ReportsCall {
    const TOOL: &'static str = NAME;
    fn action(&self) -> &'static str {
        match self {
            ReportsCall::List { .. } => "list",
            ReportsCall::Get { .. } => "get",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetArgs {
    path: String,
}

/// A period name as the jobs write them: `2026-12-04` or `2026-W49`.
fn period_ok(p: &str) -> bool {
    let b = p.as_bytes();
    let date = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    let week = b.len() == 8
        && b[..4].iter().all(u8::is_ascii_digit)
        && &b[4..6] == b"-W"
        && b[6..].iter().all(u8::is_ascii_digit);
    date || week
}

/// `reports/<folder>/<period>`, checked: (kind, folder, period).
fn parse_path(path: &str) -> Option<(&'static str, &'static str, String)> {
    let rest = path.strip_prefix("reports/")?;
    let rest = rest
        .strip_suffix(".md")
        .or_else(|| rest.strip_suffix(".json"))
        .unwrap_or(rest);
    KINDS.iter().find_map(|(kind, folder)| {
        let period = rest.strip_prefix(folder)?.strip_prefix('/')?;
        period_ok(period).then(|| (*kind, *folder, period.to_string()))
    })
}

/// The largest report file read (a digest is a few KiB to a few hundred).
pub const MAX_REPORT_BYTES: u64 = 4 * 1024 * 1024;

/// A plain file's bytes: `None` if missing; refused if it, or a folder on the way from `root`,
/// is a link, or it is not a regular file, or it is too large.
fn read_plain(
    root: &std::path::Path,
    path: &std::path::Path,
    rel: &str,
) -> Result<Option<Vec<u8>>> {
    let refuse = || Error::Validation {
        code: "unreadable_report",
        message: format!("{rel} is not a plain report file"),
    };
    // Every folder from DATA_DIR/reports down, and the file: no links, nothing special.
    if !std::fs::symlink_metadata(root).is_ok_and(|m| m.is_dir()) {
        return Ok(None);
    }
    let mut at = root.to_path_buf();
    let inner = path.strip_prefix(root).map_err(|_| refuse())?;
    let parts: Vec<_> = inner.components().collect();
    for (i, c) in parts.iter().enumerate() {
        at.push(c);
        let meta = match std::fs::symlink_metadata(&at) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::Io(format!("{rel}: {e}"))),
        };
        let last = i + 1 == parts.len();
        let ok = if last {
            meta.file_type().is_file()
        } else {
            meta.file_type().is_dir()
        };
        if !ok {
            return Err(refuse());
        }
        if last && meta.len() > MAX_REPORT_BYTES {
            return Err(Error::TooLarge(format!(
                "{rel} is larger than {} MiB",
                MAX_REPORT_BYTES / 1024 / 1024
            )));
        }
    }
    let mut f = std::fs::File::open(path).map_err(|e| Error::Io(format!("{rel}: {e}")))?;
    let mut out = Vec::new();
    use std::io::Read;
    (&mut f)
        .take(MAX_REPORT_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::Io(format!("{rel}: {e}")))?;
    if out.len() as u64 > MAX_REPORT_BYTES {
        return Err(refuse());
    }
    Ok(Some(out))
}

/// `reports_tool`, over `DATA_DIR/reports`.
#[derive(Clone)]
pub struct ReportsTool {
    reports_dir: PathBuf,
}

impl ReportsTool {
    /// The tool over `reports_dir`.
    pub fn new(reports_dir: PathBuf) -> ReportsTool {
        ReportsTool { reports_dir }
    }

    fn list(&self, kind: Option<String>) -> Result<Json> {
        if let Some(k) = &kind {
            if !KINDS.iter().any(|(n, _)| n == k) {
                return Err(Error::invalid(
                    "kind",
                    "must be incidents_weekly, risk or platform",
                ));
            }
        }
        let mut out = Vec::new();
        for (k, folder) in KINDS {
            if kind.as_deref().is_some_and(|want| want != *k) {
                continue;
            }
            let dir = self.reports_dir.join(folder);
            // A folder that is a link (or a link on the way) is not ours: skip it.
            let mut at = self.reports_dir.clone();
            let plain = std::fs::symlink_metadata(&at).is_ok_and(|m| m.is_dir())
                && folder.split('/').all(|p| {
                    at.push(p);
                    std::fs::symlink_metadata(&at).is_ok_and(|m| m.is_dir())
                });
            if !plain {
                continue;
            }
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut periods: std::collections::BTreeMap<String, (Vec<&str>, u64)> =
                Default::default();
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let (stem, fmt) = match name.rsplit_once('.') {
                    Some((s, "md")) => (s.to_string(), "md"),
                    Some((s, "json")) => (s.to_string(), "json"),
                    _ => continue,
                };
                // Regular files only (file_type does not follow links).
                if !period_ok(&stem) || !e.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                let slot = periods.entry(stem).or_default();
                slot.0.push(fmt);
                slot.1 += size;
            }
            for (period, (mut formats, bytes)) in periods.into_iter().rev().take(500) {
                formats.sort();
                out.push(json!({
                    "kind": k,
                    "period": period,
                    "path": format!("reports/{folder}/{period}"),
                    "formats": formats,
                    "bytes": bytes,
                }));
            }
        }
        Ok(json!({"reports": out}))
    }

    fn get(&self, path: &str) -> Result<Json> {
        let Some((kind, folder, period)) = parse_path(path) else {
            return Err(Error::invalid(
                "path",
                "must be reports/<incidents/weekly|risk|platform>/<YYYY-MM-DD or YYYY-Www>",
            ));
        };
        let base = self.reports_dir.join(folder);
        let read = |ext: &str| -> Result<Option<String>> {
            let rel = format!("reports/{folder}/{period}.{ext}");
            let Some(bytes) = read_plain(
                &self.reports_dir,
                &base.join(format!("{period}.{ext}")),
                &rel,
            )?
            else {
                return Ok(None);
            };
            String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| Error::Validation {
                    code: "unreadable_report",
                    message: format!("{rel} is not UTF-8 text"),
                })
        };
        let markdown = read("md")?;
        let data = match read("json")? {
            Some(t) => Some(
                serde_json::from_str::<Json>(&t).map_err(|e| Error::Validation {
                    code: "unreadable_report",
                    message: format!("reports/{folder}/{period}.json is not JSON: {e}"),
                })?,
            ),
            None => None,
        };
        if markdown.is_none() && data.is_none() {
            return Err(Error::NotFound(format!(
                "no report reports/{folder}/{period}"
            )));
        }
        Ok(json!({
            "kind": kind,
            "period": period,
            "path": format!("reports/{folder}/{period}"),
            "markdown": markdown,
            "json": data,
        }))
    }
}

impl Tool for ReportsTool {
    fn name(&self) -> &'static str {
        NAME
    }
    fn actions(&self) -> &'static [Action] {
        ACTIONS
    }
    fn execute<'a>(&'a self, _: ToolCx<'a>, action: &'a str, params: Params) -> ToolFuture<'a> {
        Box::pin(async move {
            let call = params.into_typed(|j| {
                let p = object(j)?;
                match action {
                    "list" => Ok(ReportsCall::List {
                        kind: parse::<ListArgs>(p)?.kind,
                    }),
                    "get" => Ok(ReportsCall::Get {
                        path: parse::<GetArgs>(p)?.path,
                    }),
                    other => Err(no_action(NAME, other, ACTIONS)),
                }
            })?;
            let me = self.clone();
            tokio::task::spawn_blocking(move || match call {
                ReportsCall::List { kind } => me.list(kind),
                ReportsCall::Get { path } => me.get(&path),
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_report_paths_of_known_kinds_and_periods_are_read() {
        assert_eq!(
            parse_path("reports/risk/2026-12-04.md"),
            Some(("risk", "risk", "2026-12-04".into()))
        );
        assert_eq!(
            parse_path("reports/incidents/weekly/2026-W48"),
            Some(("incidents_weekly", "incidents/weekly", "2026-W48".into()))
        );
        for bad in [
            "reports/risk/../../agent_keys.yml",
            "reports/risk/2026-12-04/../x",
            "/etc/passwd",
            "reports/other/2026-12-04.md",
            "reports/risk/2026-1-4.md",
            "reports/platform/2026-W4x.json",
            "backups/x",
        ] {
            assert_eq!(parse_path(bad), None, "{bad}");
        }
    }
}
