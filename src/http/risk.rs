//! `/api/risk…`: the REST face of the risk room. Each handler runs the matching `risk_tool`
//! action through the gateway as the operator, so the audit log sees what the console does.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::extract::{ApiPath, ApiQuery};
use crate::app::AppState;
use crate::error::Result;
use crate::gateway::auth::Principal;
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
