//! `/api/backlog…`: the REST face of the backlog room. Each handler runs the matching
//! `backlog_tool` action through the gateway as the operator, so the audit log sees what the
//! console does.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value as Json_;

use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::gateway::auth::Principal;
use crate::tools::backlog::{BacklogCall, ListParams, UpdateBody};

/// `GET /api/backlog?status=&service=`: backlog items, most urgent first.
pub async fn list(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Response> {
    let call = BacklogCall::List(q);
    Ok(Json(s.gateway.call(&Principal::Operator, call).await?).into_response())
}

/// `PATCH /api/backlog/{id}` `{status, owner}`: a person moves or reassigns an item.
pub async fn update(
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
