//! The tools the gateway executes, one file each: a thin adapter per tool that parses its
//! params into its room's typed params and calls the room. Each file defines a type that
//! implements [`crate::gateway::Tool`]; `app` registers one value of each.

pub mod alerts;
pub mod backlog;
pub mod housekeeping;
pub mod intelligence;
pub mod jobs;
pub mod observability;
pub mod oncall;
pub mod reports;
pub mod risk;
pub mod runbook;

use serde_json::{Map, Value as Json};

use crate::error::{Error, Result};
use crate::gateway::Action;

/// Take a required string field out of tool params.
pub fn take_str(params: &mut Map<String, Json>, field: &str) -> Result<String> {
    match params.remove(field) {
        Some(Json::String(s)) => Ok(s),
        Some(_) => Err(Error::invalid(field, "must be a string")),
        None => Err(Error::invalid(field, "is required")),
    }
}

/// Deserialize the remaining params into `T`, as a 422 naming the problem.
pub fn parse<T: serde::de::DeserializeOwned>(params: Map<String, Json>) -> Result<T> {
    serde_json::from_value(Json::Object(params)).map_err(|e| Error::Validation {
        code: "invalid_params",
        message: e.to_string(),
    })
}

/// The params object of a call (`null` is an empty object).
pub fn object(params: Json) -> Result<Map<String, Json>> {
    match params {
        Json::Object(m) => Ok(m),
        Json::Null => Ok(Map::new()),
        _ => Err(Error::invalid("params", "must be an object")),
    }
}

/// The error for an action a tool does not have (the gateway refuses those first; this is
/// the tool's own guard).
pub fn no_action(tool: &str, action: &str, actions: &[Action]) -> Error {
    let names: Vec<&str> = actions.iter().map(|a| a.name).collect();
    Error::NotFound(format!(
        "{tool} has no action '{}'; actions: {}",
        crate::kernel::text::clip(action, 60),
        names.join(", ")
    ))
}

/// Serialize a room's answer.
pub fn to_json<T: serde::Serialize>(v: T) -> Result<Json> {
    serde_json::to_value(v).map_err(|e| Error::Internal(e.to_string()))
}
