//! The graphs sofiia ships, one folder each: `incident_triage` ([`triage`]) and
//! `postmortem_draft` ([`postmortem`]), and the helpers both use.

pub mod postmortem;
mod shared;
pub mod triage;
