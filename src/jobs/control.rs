//! `job_orchestrator_tool`'s view of the room ([`crate::tools::jobs::JobControl`]), held
//! weakly so the gateway that holds the tool does not keep the room (and the store) alive.

use serde_json::{json, Value as Json};

use super::*;

/// The room as `job_orchestrator_tool` holds it: weakly, since the room holds the gateway
/// that holds the tool (a strong link would keep the store open forever).
pub struct WeakJobs(std::sync::Weak<Inner>);

impl Jobs {
    /// A handle that does not keep the room alive.
    pub fn downgrade(&self) -> WeakJobs {
        WeakJobs(Arc::downgrade(&self.0))
    }

    async fn control(
        &self,
        caller: crate::tools::jobs::Caller,
        call: crate::tools::jobs::JobsCall,
    ) -> Result<Json> {
        use crate::tools::jobs::JobsCall;
        {
            let to =
                |r: JobRun| serde_json::to_value(r).map_err(|e| Error::Internal(e.to_string()));
            match call {
                JobsCall::Start(p) => {
                    let operator = caller.role == "operator";
                    let run = self
                        .start(StartJob {
                            task: p.task_id,
                            trigger: if operator {
                                Trigger::Manual
                            } else {
                                Trigger::Tool
                            },
                            inputs: p.inputs,
                            dry_run: p.dry_run,
                            requested_by: if operator && caller.actor == "operator" {
                                "operator".into()
                            } else {
                                format!("agent:{}", caller.actor)
                            },
                            role: caller.role,
                        })
                        .await?;
                    Ok(json!({
                        "job_run_id": run.id,
                        "task_id": run.job,
                        "status": run.status,
                        "dry_run": run.dry_run,
                        "run": to(run)?,
                    }))
                }
                JobsCall::Get { job_run_id } => to(self.get(&job_run_id).await?),
                JobsCall::List {} => self.list().await,
                JobsCall::Runs(p) => self.runs(&p.task_id, p.limit.unwrap_or(50), p.before).await,
                JobsCall::Cancel { job_run_id } => {
                    // `cancel` checks the id (through `get`) before anything else.
                    let by = if caller.role == "operator" && caller.actor == "operator" {
                        "operator".to_string()
                    } else {
                        format!("agent:{}", caller.actor)
                    };
                    to(self.cancel(&job_run_id, &by, &caller.role).await?)
                }
            }
        }
    }
}

impl crate::tools::jobs::JobControl for WeakJobs {
    fn call(
        &self,
        caller: crate::tools::jobs::Caller,
        call: crate::tools::jobs::JobsCall,
    ) -> crate::gateway::ToolFuture<'_> {
        let jobs = self.0.upgrade().map(Jobs);
        Box::pin(async move {
            match jobs {
                Some(j) => j.control(caller, call).await,
                None => Err(Error::Unavailable {
                    message: "sofiia is stopping".into(),
                    retry_after_s: 1,
                }),
            }
        })
    }
}
