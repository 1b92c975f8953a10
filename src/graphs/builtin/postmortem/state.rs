//! The typed run state of `postmortem_draft`. The incident record, its timeline and the triage
//! report stay [`Json`]: they are other rooms' documents, quoted into the draft as they are.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// The run state: the incident id (from `init`), then what each node adds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostmortemState {
    /// The incident (checked by `init`).
    pub incident_id: String,
    /// The incident record as `incident_get` gave it (`load_incident`).
    #[serde(default)]
    pub incident: Json,
    /// Its timeline, oldest first.
    #[serde(default)]
    pub events: Vec<Json>,
    /// Its artifacts before this run attached any (where an earlier triage is found).
    #[serde(default)]
    pub artifacts_before: Json,
    /// The triage report used (null when none could be had; see `triage_error`).
    #[serde(default)]
    pub triage: Json,
    /// The run that wrote that report (as the report names it, or the sub-run's id).
    #[serde(default)]
    pub triage_run_id: Json,
    /// `existing`, `sub_run` or `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triage_source: Option<String>,
    /// The artifact the existing report was read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triage_artifact: Option<String>,
    /// Why there is no triage report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triage_error: Option<String>,
    /// This run's id (named in the draft, so a resumed attach recognises its own files).
    #[serde(default)]
    pub run_id: String,
    /// The markdown draft (`draft`).
    #[serde(default)]
    pub markdown: String,
    /// What should be done next, from the triage's causes and gaps.
    #[serde(default)]
    pub action_items: Vec<ActionItem>,
    /// The draft as JSON.
    #[serde(default)]
    pub postmortem: Json,
    /// The attached files (`attach_artifacts`).
    #[serde(default)]
    pub artifacts: Vec<ArtifactRef>,
    /// The action items as they went onto the timeline (`followups`).
    #[serde(default)]
    pub followups_added: Vec<ActionItem>,
}

/// An action item of the draft, appended to the timeline as a `followup`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ActionItem {
    /// What to do (one line).
    pub title: String,
    /// The incident's owner (null when unassigned).
    pub owner: Json,
    /// `YYYY-MM-DD`.
    pub due: String,
    /// From the incident's severity (`P1`…`P3`).
    pub priority: String,
}

/// An attached file, as the incident room describes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ArtifactRef {
    /// The name the incident room gave it.
    pub name: Json,
    /// Its content's sha256.
    pub sha256: Json,
    /// Its size in bytes.
    pub size: Json,
}
