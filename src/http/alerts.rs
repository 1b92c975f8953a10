//! `/api/alerts…`: alert intake (Alertmanager's webhook, generic alerts) and the alert list,
//! each running an `alerts_tool` action through the gateway as the presented key's principal,
//! so RBAC decides (an `alertmanager` agent key may ingest) and the audit log sees every call.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value as Json_;

use super::extract::{ApiPath, ApiQuery, OptionalJson};
use super::tools::presented_key;
use crate::alerts::model::{parse_alertmanager, parse_generic};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::tools::alerts::{AckParams, AlertsCall, ListParams, SilenceParams};

async fn alerts(s: &AppState, headers: &HeaderMap, call: AlertsCall) -> Result<Json_> {
    let principal = s.gateway.authenticate(presented_key(headers).as_deref())?;
    s.gateway.call(&principal, call).await
}

/// A JSON body, or a 400 `invalid_json` saying where it broke.
fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<Json_> {
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.is_empty() && !ct.to_ascii_lowercase().starts_with("application/json") {
        return Err(Error::bad_request(
            "invalid_json",
            "Content-Type must be application/json",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| Error::bad_request("invalid_json", format!("body is not JSON: {e}")))
}

/// `POST /api/alerts/alertmanager`: Alertmanager's webhook (version 4). 200 once stored.
pub async fn alertmanager(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let n = parse_alertmanager(&json_body(&headers, &body)?)?;
    let out = alerts(&s, &headers, AlertsCall::IngestAlertmanager(n)).await?;
    Ok(Json(out).into_response())
}

/// `POST /api/alerts`: one generic alert. 200 once stored.
pub async fn ingest(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let n = parse_generic(&json_body(&headers, &body)?)?;
    let out = alerts(&s, &headers, AlertsCall::Ingest(n)).await?;
    Ok(Json(out).into_response())
}

/// `GET /api/alerts?status=&service=&since=&limit=`: alerts, latest seen first.
pub async fn list(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Response> {
    Ok(Json(alerts(&s, &headers, AlertsCall::List(q)).await?).into_response())
}

/// `GET /api/alerts/stats`: intake counts and dedup ratio per source.
pub async fn stats(State(s): State<AppState>, headers: HeaderMap) -> Result<Response> {
    Ok(Json(alerts(&s, &headers, AlertsCall::Stats {}).await?).into_response())
}

/// `GET /api/alerts/{fingerprint}`: one alert.
pub async fn get(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(fingerprint): ApiPath<String>,
) -> Result<Response> {
    let call = AlertsCall::Get { fingerprint };
    Ok(Json(alerts(&s, &headers, call).await?).into_response())
}

/// `POST /api/alerts/ack` `{fingerprint | incident_id}`.
pub async fn ack(
    State(s): State<AppState>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<AckParams>,
) -> Result<Response> {
    let call = AlertsCall::Ack(body.unwrap_or_default());
    Ok(Json(alerts(&s, &headers, call).await?).into_response())
}

/// `POST /api/alerts/triage`: triage whatever is queued now.
pub async fn triage(State(s): State<AppState>, headers: HeaderMap) -> Result<Response> {
    Ok(Json(alerts(&s, &headers, AlertsCall::Triage {}).await?).into_response())
}

/// `GET /api/alerts/silences`: every silence.
pub async fn silences(State(s): State<AppState>, headers: HeaderMap) -> Result<Response> {
    Ok(Json(alerts(&s, &headers, AlertsCall::Silences {}).await?).into_response())
}

/// `POST /api/alerts/silences` `{matchers, until, reason}`: 201 with the silence.
pub async fn silence(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let p: SilenceParams =
        serde_json::from_value(json_body(&headers, &body)?).map_err(|e| Error::Validation {
            code: "invalid_body",
            message: e.to_string(),
        })?;
    let out = alerts(&s, &headers, AlertsCall::Silence(p)).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// `POST /api/alerts/silences/{id}/expire`: end a silence now.
pub async fn unsilence(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response> {
    Ok(Json(alerts(&s, &headers, AlertsCall::Unsilence { id }).await?).into_response())
}
