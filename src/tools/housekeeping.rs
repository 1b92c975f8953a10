//! `housekeeping_tool`: the store's upkeep as audited tool calls, so the scheduled jobs that
//! do it (`audit_cleanup`, `run_ttl_cleanup`, `backup`) act through the gateway like any
//! other: `audit_purge`, `run_purge`, `backup`. Every action takes `dry_run`.

use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use serde_json::{json, Value as Json};

use super::{no_action, object, parse};
use crate::audit::Audit;
use crate::error::{Error, Result};
use crate::gateway::{Action, Params, Tool, ToolCx, ToolFuture};
use crate::transfer::backups::Backups;

const NAME: &str = "housekeeping_tool";

/// Every action, in the order `GET /v1/tools` lists them.
const ACTIONS: &[Action] = &[
    Action::write("audit_purge"),
    Action::write("run_purge"),
    Action::write("backup"),
];

/// Prefix of the `backup` action's snapshots: keep-last pruning touches only these.
pub const BACKUP_PREFIX: &str = "job-backup-";

/// Whether `name` is exactly what the `backup` action writes: `job-backup-YYYYMMDD-HHMMSS`.
pub fn is_own_backup(name: &str) -> bool {
    let Some(stamp) = name.strip_prefix(BACKUP_PREFIX) else {
        return false;
    };
    let b = stamp.as_bytes();
    b.len() == 15
        && b.iter().enumerate().all(|(i, c)| {
            if i == 8 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// Graph runs past their TTL, as the graph runner sweeps them (bound once it exists).
pub trait RunSweep: Send + Sync + 'static {
    /// Remove (or, in a dry run, count) finished runs past their TTL.
    fn sweep(&self, dry_run: bool) -> ToolFuture<'_>;
}

/// Where the graph runner is bound.
pub type SweepSlot = Arc<OnceLock<Arc<dyn RunSweep>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DryRun {
    #[serde(default)]
    dry_run: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupArgs {
    #[serde(default)]
    dry_run: bool,
    /// Snapshots of this action to keep (the new one included), 1-1000.
    keep_last: Option<usize>,
}

/// `housekeeping_tool`.
pub struct HousekeepingTool {
    audit: Audit,
    retention_days: u32,
    denied_retention_days: u32,
    backups: Backups,
    runs: SweepSlot,
}

impl HousekeepingTool {
    /// The tool over the audit log (with `data_governance.yml`'s retentions), the backups
    /// and the (later bound) graph runner.
    pub fn new(
        audit: Audit,
        retention_days: u32,
        denied_retention_days: u32,
        backups: Backups,
        runs: SweepSlot,
    ) -> HousekeepingTool {
        HousekeepingTool {
            audit,
            retention_days,
            denied_retention_days,
            backups,
            runs,
        }
    }

    async fn backup(&self, cx: ToolCx<'_>, a: BackupArgs) -> Result<Json> {
        let keep = a.keep_last.unwrap_or(7);
        if !(1..=1000).contains(&keep) {
            return Err(Error::invalid("keep_last", "must be 1-1000"));
        }
        let fmt = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
        let stamp = cx
            .now
            .format(&fmt)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let name = format!("{BACKUP_PREFIX}{stamp}");
        // Only names this action writes (job-backup-YYYYMMDD-HHMMSS) are its own.
        let mut own: Vec<String> = self
            .backups
            .own(BACKUP_PREFIX)?
            .into_iter()
            .filter(|n| is_own_backup(n))
            .collect();
        if own.contains(&name) {
            return Err(Error::Conflict(format!(
                "backups/{name} already exists (one backup per second)"
            )));
        }
        // Oldest first; after the new one there are own+1, so drop all but keep-1 of them.
        own.sort();
        let doomed: Vec<String> = own
            .iter()
            .take((own.len() + 1).saturating_sub(keep))
            .cloned()
            .collect();
        if a.dry_run {
            return Ok(json!({
                "dry_run": true,
                "would_create": format!("backups/{name}"),
                "would_remove": doomed.iter().map(|d| format!("backups/{d}")).collect::<Vec<_>>(),
                "keep_last": keep,
            }));
        }
        let report = self.backups.snapshot(&name).await?;
        let mut removed = Vec::new();
        for d in &doomed {
            self.backups.remove(d).await?;
            removed.push(format!("backups/{d}"));
        }
        Ok(json!({
            "dry_run": false,
            "created": report,
            "removed": removed,
            "keep_last": keep,
        }))
    }
}

impl Tool for HousekeepingTool {
    fn name(&self) -> &'static str {
        NAME
    }
    fn actions(&self) -> &'static [Action] {
        ACTIONS
    }
    fn execute<'a>(&'a self, cx: ToolCx<'a>, action: &'a str, params: Params) -> ToolFuture<'a> {
        Box::pin(async move {
            let p = object(params.into_json()?)?;
            match action {
                "audit_purge" => {
                    let DryRun { dry_run } = parse(p)?;
                    let cutoff = cx.now - time::Duration::days(self.retention_days.into());
                    let denied = cx.now - time::Duration::days(self.denied_retention_days.into());
                    let r = self.audit.apply_retention(cutoff, denied, dry_run).await?;
                    if !dry_run && r.removed + r.removed_denied > 0 {
                        tracing::info!(
                            removed = r.removed,
                            removed_denied = r.removed_denied,
                            kept_denied = r.kept_denied,
                            "audit_purged"
                        );
                    }
                    Ok(json!({
                        "dry_run": dry_run,
                        "retention_days": self.retention_days,
                        "denied_retention_days": self.denied_retention_days,
                        "removed": r.removed,
                        "removed_denied": r.removed_denied,
                        "kept_denied": r.kept_denied,
                    }))
                }
                "run_purge" => {
                    let DryRun { dry_run } = parse(p)?;
                    let runs = self.runs.get().ok_or_else(|| Error::Unavailable {
                        message: "the graph runner is not started yet".into(),
                        retry_after_s: 1,
                    })?;
                    runs.sweep(dry_run).await
                }
                "backup" => self.backup(cx, parse(p)?).await,
                other => Err(no_action(NAME, other, ACTIONS)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_names_the_backup_action_writes_are_pruned() {
        assert!(super::is_own_backup("job-backup-20261130-080031"));
        for other in [
            "job-backup-zzzz-precious",
            "job-backup-20261130-0800311",
            "mine",
            ".job-backup-20261130-080031.partial-ab12",
        ] {
            assert!(!super::is_own_backup(other), "{other}");
        }
    }
}
