//! `/api/jobs…` and `/api/job-runs/…`: the governance jobs through the gateway's
//! `job_orchestrator_tool`, as the presented key's principal, so a task's `permissions` and
//! the RBAC matrix apply to the console and scripts exactly as to agents.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value as Json_};

use super::extract::{ApiPath, ApiQuery, OptionalJson};
use super::tools::presented_key;
use crate::app::AppState;
use crate::error::Result;
use crate::tools::jobs::{JobsCall, StartTask, TaskRuns};
use crate::tools::reports::ReportsCall;

async fn jobs(s: &AppState, headers: &HeaderMap, call: JobsCall) -> Result<Json_> {
    let principal = s.gateway.authenticate(presented_key(headers).as_deref())?;
    s.gateway.call(&principal, call).await
}

/// `GET /api/jobs`: every task with its schedule, next 5 fires, last run and status.
pub async fn list(State(s): State<AppState>, headers: HeaderMap) -> Result<Response> {
    Ok(Json(jobs(&s, &headers, JobsCall::List {}).await?).into_response())
}

/// Query of `GET /api/jobs/{id}/runs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    limit: Option<usize>,
    before: Option<String>,
}

/// `GET /api/jobs/{id}/runs?limit=&before=`: a task's runs, newest first.
pub async fn runs(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(task_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> Result<Response> {
    let call = JobsCall::Runs(TaskRuns {
        task_id,
        limit: q.limit,
        before: q.before,
    });
    Ok(Json(jobs(&s, &headers, call).await?).into_response())
}

/// Body of `POST /api/jobs/{id}/run` (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    #[serde(default)]
    inputs: Map<String, Json_>,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /api/jobs/{id}/run` `{inputs, dry_run}`: start it now (202 with the run).
pub async fn run(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(task_id): ApiPath<String>,
    OptionalJson(body): OptionalJson<Map<String, Json_>>,
) -> Result<Response> {
    // An object only (serde would also take a struct from an array).
    let b: RunBody = match body {
        None => RunBody::default(),
        Some(m) => crate::tools::parse(m)?,
    };
    let call = JobsCall::Start(StartTask {
        task_id,
        inputs: b.inputs,
        dry_run: b.dry_run,
    });
    let out = jobs(&s, &headers, call).await?;
    Ok((StatusCode::ACCEPTED, Json(out)).into_response())
}

/// `GET /api/job-runs/{id}`: one run (stored, or a recent dry run).
pub async fn get(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(job_run_id): ApiPath<String>,
) -> Result<Response> {
    Ok(Json(jobs(&s, &headers, JobsCall::Get { job_run_id }).await?).into_response())
}

/// `POST /api/job-runs/{id}/cancel`: stop a running or waiting run.
pub async fn cancel(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(job_run_id): ApiPath<String>,
) -> Result<Response> {
    Ok(Json(jobs(&s, &headers, JobsCall::Cancel { job_run_id }).await?).into_response())
}

/// Query of `GET /api/reports`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsQuery {
    kind: Option<String>,
}

/// `GET /api/reports?kind=`: the digests written so far, newest period first.
pub async fn reports(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ReportsQuery>,
) -> Result<Response> {
    let principal = s.gateway.authenticate(presented_key(&headers).as_deref())?;
    let out = s
        .gateway
        .call(&principal, ReportsCall::List { kind: q.kind })
        .await?;
    Ok(Json(out).into_response())
}

/// `GET /api/reports/{*path}`: one digest's markdown and JSON.
pub async fn report(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(path): ApiPath<String>,
) -> Result<Response> {
    let principal = s.gateway.authenticate(presented_key(&headers).as_deref())?;
    let path = format!("reports/{}", path.trim_start_matches("reports/"));
    let out = s
        .gateway
        .call(&principal, ReportsCall::Get { path })
        .await?;
    Ok(Json(out).into_response())
}
