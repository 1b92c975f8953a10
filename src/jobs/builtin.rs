//! The built-in jobs the task registry's tasks run. Each acts on other rooms only through
//! gateway tool calls ([`JobCx::tool`]) and writes report files only through
//! [`JobCx::write_report`], so a dry run computes everything and writes nothing.

use std::sync::Arc;

use serde_json::{json, Value as Json};

use super::{InputKind, InputSpec, Job, JobCx, JobFuture, Outcome};
use crate::error::{Error, Result};

/// Every built-in job of this build.
pub fn all() -> Vec<Arc<dyn Job>> {
    vec![
        Arc::new(AlertTriage),
        Arc::new(HourlyRiskSnapshot),
        Arc::new(DailyRiskDigest),
        Arc::new(WeeklyPlatformPriorityDigest),
        Arc::new(WeeklyBacklogGenerate),
        Arc::new(WeeklyIncidentDigest),
        Arc::new(AuditCleanup),
        Arc::new(RunTtlCleanup),
        Arc::new(Backup),
    ]
}

fn pretty(v: &Json) -> Result<Vec<u8>> {
    let mut b = serde_json::to_vec_pretty(v).map_err(|e| Error::Internal(e.to_string()))?;
    b.push(b'\n');
    Ok(b)
}

fn n(v: &Json) -> u64 {
    v.as_u64()
        .or_else(|| v.as_array().map(|a| a.len() as u64))
        .unwrap_or(0)
}

/// `alert_triage`: `alerts_tool.triage`, catching every alert the triage right after intake
/// missed (a crash between intake and triage, an incident room error). A dry run lists what
/// is queued without triaging it.
pub struct AlertTriage;

impl Job for AlertTriage {
    fn name(&self) -> &'static str {
        "alert_triage"
    }
    fn run<'a>(&'a self, cx: &'a JobCx) -> JobFuture<'a> {
        Box::pin(async move {
            if cx.dry_run {
                let stats = cx.tool("alerts_tool", "stats", json!({})).await?;
                let queued = stats["untriaged"].as_u64().unwrap_or(0);
                return Ok(Outcome {
                    summary: format!("dry run: {queued} alert(s) waiting for triage"),
                    result: json!({"dry_run": true, "untriaged": queued}),
                });
            }
            let r = cx.tool("alerts_tool", "triage", json!({})).await?;
            let mut summary = format!(
                "{} alert(s) triaged: {} incident(s) opened, {} updated, {} resolved",
                n(&r["processed"]),
                n(&r["incidents_opened"]),
                n(&r["incidents_updated"]),
                n(&r["incidents_resolved"])
            );
            let failed = n(&r["failed"]);
            if failed > 0 {
                summary.push_str(&format!("; {failed} failed and stay queued"));
            }
            Ok(Outcome { summary, result: r })
        })
    }
}

/// `weekly_incident_digest`: the incident digest of the week, saved as
/// `reports/incidents/weekly/YYYY-Www.{md,json}` (a re-run for the week replaces them).
pub struct WeeklyIncidentDigest;

impl Job for WeeklyIncidentDigest {
    fn name(&self) -> &'static str {
        "weekly_incident_digest"
    }
    fn run<'a>(&'a self, cx: &'a JobCx) -> JobFuture<'a> {
        Box::pin(async move {
            let mut d = cx
                .tool(
                    "incident_intelligence_tool",
                    "weekly_digest",
                    json!({"save_artifacts": false}),
                )
                .await?;
            let markdown = match d.as_object_mut().and_then(|o| o.remove("markdown")) {
                Some(Json::String(m)) => m,
                _ => {
                    return Err(Error::Internal(
                        "the digest came without its markdown".into(),
                    ))
                }
            };
            let week = d["week"].as_str().unwrap_or_default().to_string();
            if week.len() != 8 || !week.is_ascii() {
                return Err(Error::Internal(format!("unexpected digest week '{week}'")));
            }
            let base = format!("reports/incidents/weekly/{week}");
            cx.write_report(&format!("{base}.json"), pretty(&d)?)
                .await?;
            cx.write_report(&format!("{base}.md"), markdown.into_bytes())
                .await?;
            Ok(Outcome {
                summary: format!(
                    "{base}.md: {} incidents, {} recurring signatures, {} overdue follow-ups",
                    n(&d["incidents"]),
                    n(&d["top_recurring"]),
                    n(&d["overdue_followups"]),
                ),
                result: json!({
                    "week": week,
                    "incidents": d["incidents"],
                    "by_severity": d["by_severity"],
                    "top_recurring": n(&d["top_recurring"]),
                    "overdue_followups": n(&d["overdue_followups"]),
                }),
            })
        })
    }
}

/// `audit_cleanup`: audit retention from `data_governance.yml` (denials kept longer).
pub struct AuditCleanup;

impl Job for AuditCleanup {
    fn name(&self) -> &'static str {
        "audit_cleanup"
    }
    fn run<'a>(&'a self, cx: &'a JobCx) -> JobFuture<'a> {
        Box::pin(async move {
            let r = cx
                .tool(
                    "housekeeping_tool",
                    "audit_purge",
                    json!({"dry_run": cx.dry_run}),
                )
                .await?;
            let verb = if cx.dry_run {
                "would remove"
            } else {
                "removed"
            };
            Ok(Outcome {
                summary: format!(
                    "{verb} {} audit records older than {} days and {} denials older than {} days; kept {} younger denials",
                    r["removed"], r["retention_days"], r["removed_denied"], r["denied_retention_days"], r["kept_denied"]
                ),
                result: r,
            })
        })
    }
}

/// `run_ttl_cleanup`: graph runs past their TTL (`SOFIIA_RUN_TTL_SEC`; failed ones 4×).
pub struct RunTtlCleanup;

impl Job for RunTtlCleanup {
    fn name(&self) -> &'static str {
        "run_ttl_cleanup"
    }
    fn run<'a>(&'a self, cx: &'a JobCx) -> JobFuture<'a> {
        Box::pin(async move {
            let r = cx
                .tool(
                    "housekeeping_tool",
                    "run_purge",
                    json!({"dry_run": cx.dry_run}),
                )
                .await?;
            let verb = if cx.dry_run {
                "would remove"
            } else {
                "removed"
            };
            Ok(Outcome {
                summary: format!(
                    "{verb} {} graph runs past their TTL ({} s; failed {} s)",
                    r["expired"], r["ttl_s"], r["failed_ttl_s"]
                ),
                result: r,
            })
        })
    }
}

/// `backup`: a snapshot into `DATA_DIR/backups/job-backup-…`, keeping the last `keep_last`
/// of its own (other backups are never touched).
pub struct Backup;

const BACKUP_INPUTS: &[InputSpec] = &[InputSpec {
    name: "keep_last",
    kind: InputKind::Int,
    about: "snapshots of this job to keep, the new one included (1-1000)",
    min: 1,
    max: 1000,
}];

impl Job for Backup {
    fn name(&self) -> &'static str {
        "backup"
    }
    fn inputs(&self) -> &'static [InputSpec] {
        BACKUP_INPUTS
    }
    fn run<'a>(&'a self, cx: &'a JobCx) -> JobFuture<'a> {
        Box::pin(async move {
            let mut p = json!({"dry_run": cx.dry_run});
            if let Some(k) = cx.input_u64("keep_last") {
                p["keep_last"] = json!(k);
            }
            let r = cx.tool("housekeeping_tool", "backup", p).await?;
            let summary = if cx.dry_run {
                format!(
                    "would write {} and remove {} older snapshots",
                    r["would_create"].as_str().unwrap_or("?"),
                    n(&r["would_remove"])
                )
            } else {
                format!(
                    "wrote {} ({} bytes, {} files); removed {} older snapshots",
                    r["created"]["path"].as_str().unwrap_or("?"),
                    r["created"]["bytes"],
                    r["created"]["files"],
                    n(&r["removed"])
                )
            };
            if !cx.dry_run {
                if let Some(p) = r["created"]["path"].as_str() {
                    if let Ok(mut w) = cx.written.lock() {
                        w.artifacts.push(p.to_string());
                    }
                }
            }
            Ok(Outcome { summary, result: r })
        })
    }
}

/// `hourly_risk_snapshot`: every service's 0-100 score (`risk_policy.yml`), kept as history.
pub struct HourlyRiskSnapshot;

impl Job for HourlyRiskSnapshot {
    fn name(&self) -> &'static str {
        "hourly_risk_snapshot"
    }
    fn run<'a>(&'a self, cx: &'a JobCx) -> JobFuture<'a> {
        Box::pin(async move {
            let r = cx
                .tool("risk_tool", "snapshot", json!({"dry_run": cx.dry_run}))
                .await?;
            let snaps = r["snapshots"].as_array().cloned().unwrap_or_default();
            let high: Vec<Json> = snaps
                .iter()
                .filter(|s| matches!(s["band"].as_str(), Some("high" | "critical")))
                .map(|s| json!({"service": s["service"], "score": s["score"], "band": s["band"]}))
                .collect();
            let verb = if cx.dry_run {
                "would record"
            } else {
                "recorded"
            };
            Ok(Outcome {
                summary: format!(
                    "{verb} scores of {} services ({} high or critical)",
                    snaps.len(),
                    high.len()
                ),
                result: json!({
                    "services": snaps.len(),
                    "written": r["written"],
                    "pruned": r["pruned"],
                    "high_or_critical": high,
                }),
            })
        })
    }
}

/// Write a digest the risk tool rendered (`{json, markdown}`) as `base.{json,md}`.
async fn write_digest(cx: &JobCx, base: &str, d: &Json) -> Result<()> {
    let md = d["markdown"]
        .as_str()
        .ok_or_else(|| Error::Internal("the digest came without its markdown".into()))?;
    cx.write_report(&format!("{base}.json"), pretty(&d["json"])?)
        .await?;
    cx.write_report(&format!("{base}.md"), md.as_bytes().to_vec())
        .await
}

/// A period id from a tool (`2026-12-04`, `2026-W49`): digits and dashes, and a `W`.
fn period(v: &Json) -> Result<String> {
    let p = v.as_str().unwrap_or_default();
    let ok = (8..=10).contains(&p.len())
        && p.bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b'W');
    if ok {
        Ok(p.to_string())
    } else {
        Err(Error::Internal(format!("unexpected digest period '{p}'")))
    }
}

/// `daily_risk_digest`: `reports/risk/YYYY-MM-DD.{md,json}`.
pub struct DailyRiskDigest;

impl Job for DailyRiskDigest {
    fn name(&self) -> &'static str {
        "daily_risk_digest"
    }
    fn run<'a>(&'a self, cx: &'a JobCx) -> JobFuture<'a> {
        Box::pin(async move {
            let date = cx.now.date().to_string();
            let d = cx
                .tool("risk_tool", "daily_digest", json!({"date": date}))
                .await?;
            let day = period(&d["date"])?;
            let base = format!("reports/risk/{day}");
            write_digest(cx, &base, &d).await?;
            Ok(Outcome {
                summary: format!("{base}.md: {} services scored", n(&d["json"]["services"])),
                result: json!({"date": day, "services": n(&d["json"]["services"])}),
            })
        })
    }
}

/// `weekly_platform_priority_digest`: services whose recurrence and risk trend say "fix the
/// design" (`architecture_pressure.yml`), to `reports/platform/YYYY-Www.{md,json}`.
pub struct WeeklyPlatformPriorityDigest;

impl Job for WeeklyPlatformPriorityDigest {
    fn name(&self) -> &'static str {
        "weekly_platform_priority_digest"
    }
    fn run<'a>(&'a self, cx: &'a JobCx) -> JobFuture<'a> {
        Box::pin(async move {
            let d = cx.tool("risk_tool", "platform_digest", json!({})).await?;
            let week = period(&d["week"])?;
            let base = format!("reports/platform/{week}");
            write_digest(cx, &base, &d).await?;
            Ok(Outcome {
                summary: format!(
                    "{base}.md: {} services under architecture pressure",
                    n(&d["json"]["pressure"])
                ),
                result: json!({"week": week, "pressure": n(&d["json"]["pressure"])}),
            })
        })
    }
}

/// `weekly_backlog_generate`: backlog items from overdue follow-ups, recurring signatures,
/// high risk and pressure (`backlog.yml`), deduplicated across weeks by a stable key.
pub struct WeeklyBacklogGenerate;

impl Job for WeeklyBacklogGenerate {
    fn name(&self) -> &'static str {
        "weekly_backlog_generate"
    }
    fn run<'a>(&'a self, cx: &'a JobCx) -> JobFuture<'a> {
        Box::pin(async move {
            let top = cx.tool("risk_tool", "top", json!({"limit": 200})).await?;
            // backlog.yml's high_risk rule decides which of them become items.
            let high_risk: Vec<Json> = top["scores"].as_array().cloned().unwrap_or_default();
            let platform = cx.tool("risk_tool", "platform_digest", json!({})).await?;
            let pressure: Vec<Json> = platform["json"]["pressure"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| json!({"service": p["service"], "reasons": p["reasons"]}))
                .collect();
            let r = cx
                .tool(
                    "backlog_tool",
                    "generate",
                    json!({"dry_run": cx.dry_run, "high_risk": high_risk, "pressure": pressure}),
                )
                .await?;
            let verb = if cx.dry_run {
                "would create"
            } else {
                "created"
            };
            Ok(Outcome {
                summary: format!(
                    "{verb} {} backlog items, updated {}, {} unchanged",
                    n(&r["created"]),
                    n(&r["updated"]),
                    n(&r["unchanged"])
                ),
                result: r,
            })
        })
    }
}
