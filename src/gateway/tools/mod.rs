//! The tools the gateway can execute, one file each.

pub mod intelligence;
pub mod observability;
pub mod oncall;
pub mod runbook;

use serde_json::{Map, Value as Json};

use crate::error::{Error, Result};

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
