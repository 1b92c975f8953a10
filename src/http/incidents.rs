//! `/api/incidents…`: the REST face of the incident room.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::extract::{ApiJson, ApiPath, ApiQuery, OptionalJson};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::incidents::model::{
    IncidentPatch, NewArtifact, NewEvent, NewIncident, Severity, Status,
};
use crate::incidents::ListQuery;

/// Until the gateway binds keys to principals, REST calls act as the operator.
const OPERATOR: &str = "operator";

/// Query of `GET /api/incidents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// One status or a comma-separated list.
    status: Option<String>,
    service: Option<String>,
    env: Option<String>,
    /// One severity or a comma-separated list.
    severity: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

fn split<T>(field: &str, v: Option<String>, parse: fn(&str) -> Option<T>) -> Result<Vec<T>> {
    let Some(v) = v else { return Ok(Vec::new()) };
    v.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            parse(s).ok_or_else(|| {
                Error::invalid(field, format!("'{}' is not a valid value", s.trim()))
            })
        })
        .collect()
}

impl ListParams {
    /// Convert to the room's query, validating every value.
    pub fn into_query(self) -> Result<ListQuery> {
        let since = match self.since {
            None => None,
            Some(s) => Some(crate::clock::parse_ts(&s).ok_or_else(|| {
                Error::invalid("since", format!("'{s}' is not an RFC 3339 time or date"))
            })?),
        };
        Ok(ListQuery {
            status: split("status", self.status, Status::parse)?,
            severity: split("severity", self.severity, Severity::parse)?,
            service: self.service.filter(|s| !s.is_empty()),
            env: self
                .env
                .filter(|s| !s.is_empty())
                .map(|e| e.to_ascii_lowercase()),
            since,
            limit: self.limit.unwrap_or(0),
            cursor: self.cursor.filter(|c| !c.is_empty()),
        })
    }
}

/// Optional note for close/reopen and follow-up close.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    message: Option<String>,
}

pub async fn create(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<NewIncident>,
) -> Result<Response> {
    let inc = s.incidents.create(body, OPERATOR).await?;
    Ok((StatusCode::CREATED, Json(inc)).into_response())
}

pub async fn list(
    State(s): State<AppState>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Response> {
    Ok(Json(s.incidents.list(p.into_query()?).await?).into_response())
}

pub async fn get(State(s): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Response> {
    Ok(Json(s.incidents.get(&id).await?).into_response())
}

pub async fn update(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<IncidentPatch>,
) -> Result<Response> {
    Ok(Json(s.incidents.update(&id, patch, OPERATOR).await?).into_response())
}

pub async fn close(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<NoteBody>,
) -> Result<Response> {
    let msg = body.and_then(|b| b.message);
    Ok(Json(s.incidents.close(&id, msg, OPERATOR).await?).into_response())
}

pub async fn reopen(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<NoteBody>,
) -> Result<Response> {
    let msg = body.and_then(|b| b.message);
    Ok(Json(s.incidents.reopen(&id, msg, OPERATOR).await?).into_response())
}

/// Query of `GET /api/incidents/{id}/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsParams {
    after: Option<u64>,
    limit: Option<usize>,
}

pub async fn events(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(p): ApiQuery<EventsParams>,
) -> Result<Response> {
    let page = s
        .incidents
        .events(&id, p.after.unwrap_or(0), p.limit.unwrap_or(200))
        .await?;
    Ok(Json(page).into_response())
}

pub async fn append_event(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewEvent>,
) -> Result<Response> {
    let ev = s.incidents.append_event(&id, body, OPERATOR).await?;
    Ok((StatusCode::CREATED, Json(ev)).into_response())
}

pub async fn close_followup(
    State(s): State<AppState>,
    ApiPath((id, event_id)): ApiPath<(String, String)>,
    OptionalJson(body): OptionalJson<NoteBody>,
) -> Result<Response> {
    let msg = body.and_then(|b| b.message);
    Ok(Json(
        s.incidents
            .close_followup(&id, &event_id, msg, OPERATOR)
            .await?,
    )
    .into_response())
}

pub async fn list_artifacts(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response> {
    let d = s.incidents.get(&id).await?;
    Ok(Json(serde_json::json!({"items": d.artifacts})).into_response())
}

pub async fn attach_artifact(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewArtifact>,
) -> Result<Response> {
    let a = s.incidents.attach_artifact(&id, body, OPERATOR).await?;
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

pub async fn download_artifact(
    State(s): State<AppState>,
    ApiPath((id, name)): ApiPath<(String, String)>,
) -> Result<Response> {
    let (a, bytes) = s.incidents.read_artifact(&id, &name).await?;
    let ctype = match a.format.as_str() {
        "json" => "application/json",
        "md" => "text/markdown; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    };
    Ok((
        [
            (header::CONTENT_TYPE, ctype.to_string()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{}\"", a.name),
            ),
            (
                header::HeaderName::from_static("x-sha256"),
                a.sha256.clone(),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// Query of `GET /api/followups/summary`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryParams {
    service: Option<String>,
    env: Option<String>,
    window_days: Option<u32>,
}

pub async fn followups_summary(
    State(s): State<AppState>,
    ApiQuery(p): ApiQuery<SummaryParams>,
) -> Result<Response> {
    let r = s
        .incidents
        .followups_summary(
            p.service.filter(|v| !v.is_empty()),
            p.env.filter(|v| !v.is_empty()),
            p.window_days.unwrap_or(30),
        )
        .await?;
    Ok(Json(r).into_response())
}
