//! `/api/incidents…`: the REST face of the incident room. Every JSON endpoint runs the
//! matching `oncall_tool` action through the gateway as the operator, so the audit log sees
//! what the console does.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use serde_json::{json, Map, Value as Json_};

use super::extract::{ApiJson, ApiPath, ApiQuery, OptionalJson};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::gateway::auth::Principal;
use crate::gateway::ToolCall;
use crate::incidents::model::{
    validate_incident_id, IncidentPatch, NewArtifact, NewEvent, NewIncident,
};
use crate::tools::oncall::ListParams;

/// Optional note for close/reopen and follow-up close.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    message: Option<String>,
}

/// Run an `oncall_tool` action as the operator through the gateway (RBAC, limits, audit).
async fn via_gateway(s: &AppState, action: &str, params: Json_) -> Result<Json_> {
    let call = ToolCall {
        tool: "oncall_tool".into(),
        action: action.into(),
        params,
        agent_id: None,
        metadata: Json_::Null,
    };
    s.gateway.execute(&Principal::Operator, call).await
}

/// A GET endpoint whose (already typed) query is the action's params, answered as JSON.
async fn query_action<Q: serde::Serialize>(s: &AppState, action: &str, q: &Q) -> Result<Response> {
    let params = serde_json::to_value(q).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Json(via_gateway(s, action, params).await?).into_response())
}

/// Check a body against the action's typed input first, so REST callers get 422
/// `invalid_body` naming the field, as for every other endpoint.
fn checked<T: serde::de::DeserializeOwned>(body: Json_) -> Result<Json_> {
    serde_json::from_value::<T>(body.clone()).map_err(|e| Error::Validation {
        code: "invalid_body",
        message: e.to_string(),
    })?;
    Ok(body)
}

fn with_id(id: String, body: Json_) -> Result<Json_> {
    let mut m = match body {
        Json_::Object(m) => m,
        Json_::Null => Map::new(),
        _ => {
            return Err(Error::Validation {
                code: "invalid_body",
                message: "expected a JSON object".into(),
            })
        }
    };
    if m.contains_key("incident_id") {
        return Err(Error::Validation {
            code: "invalid_body",
            message: "unknown field `incident_id`: the id is in the path".into(),
        });
    }
    m.insert("incident_id".into(), Json_::String(id));
    Ok(Json_::Object(m))
}

pub async fn create(State(s): State<AppState>, ApiJson(body): ApiJson<Json_>) -> Result<Response> {
    let inc = via_gateway(&s, "incident_create", checked::<NewIncident>(body)?).await?;
    Ok((StatusCode::CREATED, Json(inc)).into_response())
}

pub async fn list(
    State(s): State<AppState>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Response> {
    p.clone().into_query()?;
    query_action(&s, "incident_list", &p).await
}

pub async fn get(State(s): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Response> {
    validate_incident_id(&id)?;
    Ok(Json(via_gateway(&s, "incident_get", json!({"incident_id": id})).await?).into_response())
}

pub async fn update(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<Json_>,
) -> Result<Response> {
    validate_incident_id(&id)?;
    let params = with_id(id, checked::<IncidentPatch>(patch)?)?;
    Ok(Json(via_gateway(&s, "incident_update", params).await?).into_response())
}

async fn note_action(
    s: &AppState,
    action: &str,
    id: String,
    body: Option<NoteBody>,
) -> Result<Response> {
    validate_incident_id(&id)?;
    let msg = body.and_then(|b| b.message);
    let out = via_gateway(s, action, json!({"incident_id": id, "message": msg})).await?;
    Ok(Json(out).into_response())
}

pub async fn close(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<NoteBody>,
) -> Result<Response> {
    note_action(&s, "incident_close", id, body).await
}

pub async fn reopen(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<NoteBody>,
) -> Result<Response> {
    note_action(&s, "incident_reopen", id, body).await
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
    let params = json!({"incident_id": id, "after": p.after, "limit": p.limit});
    Ok(Json(via_gateway(&s, "incident_events", params).await?).into_response())
}

pub async fn append_event(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Json_>,
) -> Result<Response> {
    validate_incident_id(&id)?;
    let params = with_id(id, checked::<NewEvent>(body)?)?;
    let ev = via_gateway(&s, "incident_append_event", params).await?;
    Ok((StatusCode::CREATED, Json(ev)).into_response())
}

pub async fn close_followup(
    State(s): State<AppState>,
    ApiPath((id, event_id)): ApiPath<(String, String)>,
    OptionalJson(body): OptionalJson<NoteBody>,
) -> Result<Response> {
    validate_incident_id(&id)?;
    crate::incidents::model::validate_record_id("event", "ev", &event_id)?;
    let msg = body.and_then(|b| b.message);
    let params = json!({"incident_id": id, "event_id": event_id, "message": msg});
    Ok(Json(via_gateway(&s, "incident_followup_close", params).await?).into_response())
}

pub async fn list_artifacts(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response> {
    validate_incident_id(&id)?;
    let d = via_gateway(&s, "incident_get", json!({"incident_id": id})).await?;
    Ok(Json(json!({"items": d["artifacts"]})).into_response())
}

pub async fn attach_artifact(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Json_>,
) -> Result<Response> {
    validate_incident_id(&id)?;
    let params = with_id(id, checked::<NewArtifact>(body)?)?;
    let a = via_gateway(&s, "incident_attach_artifact", params).await?;
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

pub async fn download_artifact(
    State(s): State<AppState>,
    ApiPath((id, name)): ApiPath<(String, String)>,
) -> Result<Response> {
    validate_incident_id(&id)?;
    // Through the gateway like every other console call, so downloads are audited too.
    let out = via_gateway(
        &s,
        "incident_artifact_get",
        json!({"incident_id": id, "name": name}),
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

/// Query of `GET /api/followups/summary`.
#[derive(Debug, Deserialize, serde::Serialize)]
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
    query_action(&s, "incident_followups_summary", &p).await
}

/// Query of `GET /api/incidents/stats`.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    env: Option<String>,
}

/// `GET /api/incidents/stats`: counts for the overview.
pub async fn stats(
    State(s): State<AppState>,
    ApiQuery(p): ApiQuery<StatsQuery>,
) -> Result<Response> {
    query_action(&s, "incident_stats", &p).await
}

/// `GET /api/events/recent`: every incident's timeline events, newest first.
pub async fn recent_events(
    State(s): State<AppState>,
    ApiQuery(p): ApiQuery<crate::tools::oncall::FeedParams>,
) -> Result<Response> {
    query_action(&s, "incident_feed", &p).await
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
