//! `/api/risk…` and `/api/backlog…`: the REST face of the risk and backlog rooms. Each
//! handler runs the matching `risk_tool` / `backlog_tool` action through the gateway as the
//! operator, so the audit log sees what the console does.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value as Json_;

use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::gateway::auth::Principal;
use crate::tools::backlog::{BacklogCall, ListParams, UpdateBody};
use crate::tools::risk::RiskCall;

/// Query of `GET /api/risk`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopQuery {
    limit: Option<usize>,
}

/// Query of `GET /api/risk/{service}/history`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    days: Option<u32>,
}

/// `GET /api/risk?limit=`: the riskiest services now.
pub async fn top(State(s): State<AppState>, ApiQuery(q): ApiQuery<TopQuery>) -> Result<Response> {
    let call = RiskCall::Top { limit: q.limit };
    Ok(Json(s.gateway.call(&Principal::Operator, call).await?).into_response())
}

/// `GET /api/risk/{service}`: the service's score now and its last snapshot.
pub async fn service(
    State(s): State<AppState>,
    ApiPath(service): ApiPath<String>,
) -> Result<Response> {
    crate::kernel::text::check_token("service", &service, 64)?;
    let call = RiskCall::ServiceRisk { service };
    Ok(Json(s.gateway.call(&Principal::Operator, call).await?).into_response())
}

/// `GET /api/risk/{service}/history?days=`: its snapshots, oldest first.
pub async fn history(
    State(s): State<AppState>,
    ApiPath(service): ApiPath<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Response> {
    crate::kernel::text::check_token("service", &service, 64)?;
    let call = RiskCall::History {
        service,
        days: q.days,
    };
    Ok(Json(s.gateway.call(&Principal::Operator, call).await?).into_response())
}

/// `GET /api/backlog?status=&service=`: backlog items, most urgent first.
pub async fn backlog_list(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Response> {
    let call = BacklogCall::List(q);
    Ok(Json(s.gateway.call(&Principal::Operator, call).await?).into_response())
}

/// `PATCH /api/backlog/{id}` `{status, owner}`: a person moves or reassigns an item.
pub async fn backlog_update(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(payload): ApiJson<Json_>,
) -> Result<Response> {
    crate::backlog::check_id(&id)?;
    if !payload.is_object() {
        return Err(Error::Validation {
            code: "invalid_body",
            message: "expected a JSON object".into(),
        });
    }
    let body: UpdateBody = serde_json::from_value(payload).map_err(|e| Error::Validation {
        code: "invalid_body",
        message: e.to_string(),
    })?;
    let call = BacklogCall::Update { id, body };
    Ok(Json(s.gateway.call(&Principal::Operator, call).await?).into_response())
}
