//! `/v1/graphs…` and `/v1/runs…`: the supervisor API of the seed (start, poll, cancel), plus
//! run lists, graph descriptions and an event replay for clients that reconnect.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::graphs::{RunQuery, RunStatus, StartRun};

/// `GET /v1/graphs`.
pub async fn graphs(State(s): State<AppState>) -> Response {
    Json(json!({"graphs": s.runner.graphs()})).into_response()
}

/// `POST /v1/graphs/{name}/runs` (honours `Idempotency-Key`).
pub async fn start(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Response> {
    let req: StartRun = serde_json::from_value(body).map_err(|e| Error::Validation {
        code: "invalid_body",
        message: e.to_string(),
    })?;
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| Error::invalid("Idempotency-Key", "must be printable text"))?
                .to_string(),
        ),
    };
    let (run, created) = s.runner.start(&name, req, key).await?;
    let status = if created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({"run_id": run.run_id, "status": run.status, "result": run.result})),
    )
        .into_response())
}

/// Query of `GET /v1/runs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    graph: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// `GET /v1/runs`.
pub async fn list(State(s): State<AppState>, ApiQuery(q): ApiQuery<ListQuery>) -> Result<Response> {
    let status = match q.status.as_deref().filter(|x| !x.is_empty()) {
        None => None,
        Some(x) => Some(RunStatus::parse(x).ok_or_else(|| {
            Error::invalid("status", "queued, running, succeeded, failed or cancelled")
        })?),
    };
    let out = s
        .runner
        .list(RunQuery {
            graph: q.graph.filter(|g| !g.is_empty()),
            status,
            limit: q.limit.unwrap_or(0),
            cursor: q.cursor.filter(|c| !c.is_empty()),
        })
        .await?;
    Ok(Json(out).into_response())
}

/// `GET /v1/runs/{run_id}`.
pub async fn get(State(s): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Response> {
    Ok(Json(s.runner.get(&id).await?).into_response())
}

/// Query of `GET /v1/runs/{run_id}/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

/// `GET /v1/runs/{run_id}/events?after=SEQ`: events after a sequence number.
pub async fn events(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Response> {
    let items = s
        .runner
        .events(&id, q.after.unwrap_or(0), q.limit.unwrap_or(500))
        .await?;
    Ok(Json(json!({"run_id": id, "items": items})).into_response())
}

/// `POST /v1/runs/{run_id}/cancel`.
pub async fn cancel(State(s): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Response> {
    Ok(Json(s.runner.cancel(&id).await?).into_response())
}

/// Query of `GET /v1/requeue`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequeueQuery {
    /// `pending` (default), `replayed`, `dropped` or `all`.
    status: Option<String>,
}

/// `GET /v1/requeue`: work waiting for a person's decision.
pub async fn requeue_list(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<RequeueQuery>,
) -> Result<Response> {
    let status = match q.status.as_deref().unwrap_or("pending") {
        "all" => None,
        x @ ("pending" | "replayed" | "dropped") => Some(x.to_string()),
        _ => {
            return Err(Error::invalid(
                "status",
                "pending, replayed, dropped or all",
            ))
        }
    };
    let items = s.runner.requeue_list(status).await?;
    Ok(Json(json!({"items": items})).into_response())
}

/// Body of `POST /v1/requeue/{id}/resolve`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    allow: bool,
}

/// `POST /v1/requeue/{id}/resolve` `{"allow": true|false}`: replay or drop (audited).
pub async fn requeue_resolve(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Response> {
    let r: Resolve = serde_json::from_value(body).map_err(|e| Error::Validation {
        code: "invalid_body",
        message: format!("expected {{\"allow\": true|false}}: {e}"),
    })?;
    // Who decided, for the audit record: the supervisor key or the operator.
    let by = match (
        super::tools::presented_key(&headers),
        &s.settings.supervisor_internal_key,
    ) {
        (Some(k), Some(internal)) if crate::gateway::auth::key_matches(&k, internal) => {
            "supervisor"
        }
        _ => "operator",
    };
    Ok(Json(s.runner.requeue_resolve(&id, r.allow, by).await?).into_response())
}
