//! `runbook_tool`: search the runbook index and read a runbook (SPEC §6).

use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::parse;
use crate::error::{Error, Result};
use crate::search::runbooks::{Runbooks, SearchParams};

/// Every action, for RBAC matrices and `GET /v1/tools`.
pub const ACTIONS: [&str; 2] = ["search", "get"];

/// Params of `search` (and the query of `GET /api/runbooks/search`).
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    #[serde(alias = "query")]
    pub q: String,
    pub service: Option<String>,
    pub tag: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetArgs {
    path: String,
}

fn to_json<T: serde::Serialize>(v: T) -> Result<Json> {
    serde_json::to_value(v).map_err(|e| Error::Internal(e.to_string()))
}

/// Run one action. Index work is blocking, so it runs on the blocking pool.
pub async fn call(rb: &Runbooks, action: &str, params: Json) -> Result<Json> {
    let p: Map<String, Json> = match params {
        Json::Object(m) => m,
        Json::Null => Map::new(),
        _ => return Err(Error::invalid("params", "must be an object")),
    };
    let rb = rb.clone();
    match action {
        "search" => {
            let a: SearchArgs = parse(p)?;
            let sp = SearchParams {
                q: a.q,
                service: a.service,
                tag: a.tag,
                limit: a.limit.unwrap_or(0),
            };
            blocking(move || rb.search(&sp).and_then(to_json)).await
        }
        "get" => {
            let a: GetArgs = parse(p)?;
            blocking(move || rb.get(&a.path).and_then(to_json)).await
        }
        other => Err(Error::NotFound(format!(
            "runbook_tool has no action '{}'; actions: {}",
            crate::incidents::model::clip(other, 60),
            serde_json::json!(ACTIONS)
        ))),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("search task failed: {e}")))?
}
