//! `/api/runbooks…`: runbook search and reading (through the gateway's `runbook_tool`, as the
//! operator, so the audit log sees it), the list of runbooks, and a reindex trigger.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::extract::{ApiPath, ApiQuery, OptionalJson};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::gateway::auth::Principal;
use crate::tools::runbook::{RunbookCall, SearchArgs};

/// Run a typed `runbook_tool` call as the operator through the gateway (audited).
async fn runbook(s: &AppState, call: RunbookCall) -> Result<Response> {
    Ok(Json(s.gateway.call(&Principal::Operator, call).await?).into_response())
}

/// `GET /api/runbooks/search?q=&service=&tag=&limit=`.
pub async fn search(
    State(s): State<AppState>,
    ApiQuery(p): ApiQuery<SearchArgs>,
) -> Result<Response> {
    runbook(&s, RunbookCall::Search(p)).await
}

/// `GET /api/runbooks/{*path}`: one runbook, its sections and its markdown.
pub async fn get(State(s): State<AppState>, ApiPath(path): ApiPath<String>) -> Result<Response> {
    runbook(&s, RunbookCall::Get { path }).await
}

/// `GET /api/runbooks`: every indexed runbook and the index state.
pub async fn list(State(s): State<AppState>) -> Result<Response> {
    let rb = s.search.runbooks.clone();
    let out = tokio::task::spawn_blocking(move || rb.list())
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    Ok(Json(out).into_response())
}

/// Body of `POST /api/runbooks/reindex`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReindexBody {
    /// Index every file again, not only changed ones.
    #[serde(default)]
    full: bool,
}

/// `POST /api/runbooks/reindex`: pick up file changes now (or rebuild with `full`).
pub async fn reindex(
    State(s): State<AppState>,
    OptionalJson(body): OptionalJson<ReindexBody>,
) -> Result<Response> {
    let full = body.map(|b| b.full).unwrap_or(false);
    let rb = s.search.runbooks.clone();
    let report = tokio::task::spawn_blocking(move || rb.sync(full))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    Ok(Json(report).into_response())
}
