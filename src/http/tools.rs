//! `/v1/tools/…` (agents' tool calls) and `/api/audit`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value as Json_};

use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::app::AppState;
use crate::audit::AuditQuery;
use crate::error::{Error, Result};
use crate::gateway::auth::Principal;
use crate::gateway::ToolCall;

/// The key a request presents: `Authorization: Bearer <key>` or `X-API-Key: <key>`.
pub fn presented_key(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if let Some(k) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            return Some(k.trim().to_string());
        }
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| k.trim().to_string())
}

/// The key of a WebSocket request: a header, or `api_key=` in the query (browsers cannot set
/// headers on a WebSocket), percent-decoded as the console encodes it
/// (`encodeURIComponent`), so keys with `+ / =` work. A `+` stays a `+` (keys hold no spaces).
/// Request logs record routes only, so the query is never logged.
pub fn presented_ws_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    presented_key(headers).or_else(|| {
        query?
            .split('&')
            .find_map(|kv| kv.strip_prefix("api_key="))
            .and_then(percent_decode)
    })
}

/// `%XX` escapes decoded; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_websocket_key_in_the_query_is_percent_decoded() {
        let h = HeaderMap::new();
        let key = "ab+c/d=e%f";
        let encoded = "ab%2Bc%2Fd%3De%25f";
        assert_eq!(
            presented_ws_key(&h, Some(&format!("types=x&api_key={encoded}"))).as_deref(),
            Some(key)
        );
        // Typed by hand without escapes: + and / are taken as they are.
        assert_eq!(
            presented_ws_key(&h, Some("api_key=ab+c/d=")).as_deref(),
            Some("ab+c/d=")
        );
        assert_eq!(presented_ws_key(&h, Some("api_key=%zz")), None);
        assert_eq!(presented_ws_key(&h, Some("api_key=%ff")), None);
    }
}

/// `POST /v1/tools/execute` `{tool, action, params, agent_id, metadata}`.
pub async fn execute(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(call): ApiJson<ToolCall>,
) -> Result<Response> {
    let principal = s.gateway.authenticate(presented_key(&headers).as_deref())?;
    let out = s.gateway.execute(&principal, call).await?;
    Ok(Json(serde_json::json!({"status": "ok", "result": out})).into_response())
}

/// `POST /v1/tools/{tool}` `{action, …}`: params under `params`, or flat beside `action`.
pub async fn execute_short(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(tool): ApiPath<String>,
    ApiJson(body): ApiJson<Map<String, Json_>>,
) -> Result<Response> {
    let principal = s.gateway.authenticate(presented_key(&headers).as_deref())?;
    let mut body = body;
    let action = match body.remove("action") {
        Some(Json_::String(a)) => a,
        _ => return Err(Error::invalid("action", "is required (a string)")),
    };
    let agent_id = match body.remove("agent_id") {
        Some(Json_::String(a)) => Some(a),
        None | Some(Json_::Null) => None,
        Some(_) => return Err(Error::invalid("agent_id", "must be a string")),
    };
    let metadata = body.remove("metadata").unwrap_or(Json_::Null);
    let params = match body.remove("params") {
        Some(p) if body.is_empty() => p,
        Some(_) => {
            return Err(Error::invalid(
                "params",
                "give params nested under `params` or flat, not both",
            ))
        }
        None => Json_::Object(body),
    };
    let call = ToolCall {
        tool,
        action,
        params,
        agent_id,
        metadata,
    };
    let out = s.gateway.execute(&principal, call).await?;
    Ok(Json(serde_json::json!({"status": "ok", "result": out})).into_response())
}

/// Query of `GET /api/audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    tool: Option<String>,
    principal: Option<String>,
    agent_id: Option<String>,
    decision: Option<String>,
    since: Option<String>,
    before_us: Option<i64>,
    limit: Option<usize>,
}

/// `GET /api/audit`: newest first; operator only when keys are required.
pub async fn audit(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<AuditParams>,
) -> Result<Response> {
    let principal = s.gateway.authenticate(presented_key(&headers).as_deref())?;
    if matches!(principal, Principal::Agent { .. }) {
        return Err(Error::Forbidden {
            code: "forbidden",
            message: "the audit log is for the operator".into(),
        });
    }
    let since = match p.since {
        None => None,
        Some(t) => Some(
            crate::kernel::clock::parse_ts(&t)
                .ok_or_else(|| Error::invalid("since", "not an RFC 3339 time"))?,
        ),
    };
    let items = s
        .gateway
        .audit()
        .list(AuditQuery {
            tool: p.tool,
            principal: p.principal,
            agent_id: p.agent_id,
            decision: p.decision,
            since,
            before_us: p.before_us,
            limit: p.limit.unwrap_or(100),
        })
        .await?;
    Ok(Json(serde_json::json!({"items": items})).into_response())
}

/// `GET /v1/tools`: tools, actions and secret params.
pub async fn list(State(s): State<AppState>, headers: HeaderMap) -> Result<Response> {
    s.gateway.authenticate(presented_key(&headers).as_deref())?;
    Ok(Json(serde_json::json!({"tools": s.gateway.schemas()})).into_response())
}
