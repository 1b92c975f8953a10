//! `/api/incidents…`: the REST face of the incident room. Every JSON endpoint runs the
//! matching `oncall_tool` action through the gateway as the operator, so the audit log sees
//! what the console does.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use serde_json::{json, Value as Json_};

use super::extract::{ApiJson, ApiPath, ApiQuery, OptionalJson};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::gateway::auth::Principal;
use crate::gateway::ToolCall;
use crate::incidents::model::{
    validate_incident_id, IncidentPatch, NewArtifact, NewEvent, NewIncident,
};
use crate::tools::oncall::{
    FeedParams, FollowupsParams, ListParams, OncallCall, ServicesParams, StatsParams, SummaryParams,
};

/// Optional note for close/reopen and follow-up close.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    message: Option<String>,
}

/// Run a typed `oncall_tool` call as the operator through the gateway (RBAC, limits, audit).
async fn oncall(s: &AppState, call: OncallCall) -> Result<Json_> {
    s.gateway.call(&Principal::Operator, call).await
}

/// A JSON body as the action's typed input: a 422 `invalid_body` naming the field, as for
/// every other endpoint.
fn body<T: serde::de::DeserializeOwned>(body: Json_) -> Result<T> {
    let invalid = |message: String| Error::Validation {
        code: "invalid_body",
        message,
    };
    if !body.is_object() {
        return Err(invalid("expected a JSON object".into()));
    }
    serde_json::from_value::<T>(body).map_err(|e| invalid(e.to_string()))
}

/// [`body`] for an endpoint whose path names the incident: the id is never in the body too.
fn body_for_path<T: serde::de::DeserializeOwned>(payload: Json_) -> Result<T> {
    if payload.get("incident_id").is_some() {
        return Err(Error::Validation {
            code: "invalid_body",
            message: "unknown field `incident_id`: the id is in the path".into(),
        });
    }
    body(payload)
}

pub async fn create(
    State(s): State<AppState>,
    ApiJson(payload): ApiJson<Json_>,
) -> Result<Response> {
    let inc = oncall(&s, OncallCall::Create(body::<NewIncident>(payload)?)).await?;
    Ok((StatusCode::CREATED, Json(inc)).into_response())
}

pub async fn list(
    State(s): State<AppState>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Response> {
    p.clone().into_query()?;
    Ok(Json(oncall(&s, OncallCall::List(p)).await?).into_response())
}

pub async fn get(State(s): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Response> {
    validate_incident_id(&id)?;
    Ok(Json(oncall(&s, OncallCall::Get { incident_id: id }).await?).into_response())
}

pub async fn update(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<Json_>,
) -> Result<Response> {
    validate_incident_id(&id)?;
    let call = OncallCall::Update {
        incident_id: id,
        patch: body_for_path::<IncidentPatch>(patch)?,
    };
    Ok(Json(oncall(&s, call).await?).into_response())
}

async fn note_action(
    s: &AppState,
    close: bool,
    incident_id: String,
    body: Option<NoteBody>,
) -> Result<Response> {
    validate_incident_id(&incident_id)?;
    let message = body.and_then(|b| b.message);
    let call = match close {
        true => OncallCall::Close {
            incident_id,
            message,
        },
        false => OncallCall::Reopen {
            incident_id,
            message,
        },
    };
    Ok(Json(oncall(s, call).await?).into_response())
}

pub async fn close(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<NoteBody>,
) -> Result<Response> {
    note_action(&s, true, id, body).await
}

pub async fn reopen(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<NoteBody>,
) -> Result<Response> {
    note_action(&s, false, id, body).await
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
    validate_incident_id(&id)?;
    let call = OncallCall::Events {
        incident_id: id,
        after: p.after,
        limit: p.limit,
    };
    Ok(Json(oncall(&s, call).await?).into_response())
}

pub async fn append_event(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(payload): ApiJson<Json_>,
) -> Result<Response> {
    validate_incident_id(&id)?;
    let call = OncallCall::AppendEvent {
        incident_id: id,
        event: body_for_path::<NewEvent>(payload)?,
    };
    let ev = oncall(&s, call).await?;
    Ok((StatusCode::CREATED, Json(ev)).into_response())
}

pub async fn close_followup(
    State(s): State<AppState>,
    ApiPath((id, event_id)): ApiPath<(String, String)>,
    OptionalJson(body): OptionalJson<NoteBody>,
) -> Result<Response> {
    validate_incident_id(&id)?;
    crate::incidents::model::validate_record_id("event", "ev", &event_id)?;
    let call = OncallCall::FollowupClose {
        incident_id: id,
        event_id,
        message: body.and_then(|b| b.message),
    };
    Ok(Json(oncall(&s, call).await?).into_response())
}

pub async fn list_artifacts(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response> {
    validate_incident_id(&id)?;
    let d = oncall(&s, OncallCall::Get { incident_id: id }).await?;
    Ok(Json(json!({"items": d["artifacts"]})).into_response())
}

pub async fn attach_artifact(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(payload): ApiJson<Json_>,
) -> Result<Response> {
    validate_incident_id(&id)?;
    let call = OncallCall::AttachArtifact {
        incident_id: id,
        artifact: body_for_path::<NewArtifact>(payload)?,
    };
    let a = oncall(&s, call).await?;
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

pub async fn download_artifact(
    State(s): State<AppState>,
    ApiPath((id, name)): ApiPath<(String, String)>,
) -> Result<Response> {
    validate_incident_id(&id)?;
    // Through the gateway like every other console call, so downloads are audited too.
    let out = oncall(
        &s,
        OncallCall::ArtifactGet {
            incident_id: id,
            name,
        },
    )
    .await?;
    let a: crate::incidents::model::Artifact = serde_json::from_value(out["artifact"].clone())
        .map_err(|e| Error::Internal(e.to_string()))?;
    let bytes = out["content"]
        .as_str()
        .unwrap_or_default()
        .as_bytes()
        .to_vec();
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

/// `GET /api/followups/summary`: open P0/P1 incidents and open and overdue follow-ups.
pub async fn followups_summary(
    State(s): State<AppState>,
    ApiQuery(p): ApiQuery<SummaryParams>,
) -> Result<Response> {
    Ok(Json(oncall(&s, OncallCall::FollowupsSummary(p)).await?).into_response())
}

/// `GET /api/followups`: open follow-ups, filtered and paged, with their total.
pub async fn followups(
    State(s): State<AppState>,
    ApiQuery(p): ApiQuery<FollowupsParams>,
) -> Result<Response> {
    p.clone().into_query()?;
    Ok(Json(oncall(&s, OncallCall::Followups(p)).await?).into_response())
}

/// `GET /api/incidents/services`: the services incidents were recorded for, with counts.
pub async fn services(
    State(s): State<AppState>,
    ApiQuery(p): ApiQuery<ServicesParams>,
) -> Result<Response> {
    Ok(Json(oncall(&s, OncallCall::Services(p)).await?).into_response())
}

/// `GET /api/incidents/stats`: counts for the overview.
pub async fn stats(
    State(s): State<AppState>,
    ApiQuery(p): ApiQuery<StatsParams>,
) -> Result<Response> {
    Ok(Json(oncall(&s, OncallCall::Stats(p)).await?).into_response())
}

/// `GET /api/events/recent`: every incident's timeline events, newest first.
pub async fn recent_events(
    State(s): State<AppState>,
    ApiQuery(p): ApiQuery<FeedParams>,
) -> Result<Response> {
    Ok(Json(oncall(&s, OncallCall::Feed(p)).await?).into_response())
}

/// `GET /api/incidents/{id}/related`: related incidents with scores and reasons
/// (`incident_intelligence_tool.correlate` without a note).
pub async fn related(State(s): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Response> {
    validate_incident_id(&id)?;
    let call = ToolCall {
        tool: "incident_intelligence_tool".into(),
        action: "correlate".into(),
        params: json!({"incident_id": id}),
        agent_id: None,
        metadata: Json_::Null,
    };
    Ok(Json(s.gateway.execute(&Principal::Operator, call).await?).into_response())
}
