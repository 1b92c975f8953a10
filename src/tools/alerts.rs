//! `alerts_tool`: `ingest_alertmanager`, `ingest`, `list`, `get`, `ack`, `silence`,
//! `unsilence`, `silences`, `triage`, `stats` (SPEC §11), calling the alerts room.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::{no_action, object, parse, to_json};
use crate::alerts::model::{parse_alertmanager, parse_generic, AlertStatus, Matcher, Notification};
use crate::alerts::{AckTarget, Alerts, ListQuery};
use crate::error::{Error, Result};
use crate::gateway::{Action, Params, Tool, ToolCx, ToolFuture, TypedCall};

const NAME: &str = "alerts_tool";

/// Every action, in the order `GET /v1/tools` lists them.
const ACTIONS: &[Action] = &[
    Action::write("ingest_alertmanager"),
    Action::write("ingest"),
    Action::read("list"),
    Action::read("get"),
    Action::write("ack"),
    Action::write("silence"),
    Action::write("unsilence"),
    Action::read("silences"),
    Action::write("triage"),
    Action::read("stats"),
];

/// Params of `list`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// `firing`, `resolved` or `suppressed`.
    pub status: Option<String>,
    /// One service.
    pub service: Option<String>,
    /// RFC 3339: only alerts seen since.
    pub since: Option<String>,
    /// Page size (default 50, at most 500).
    pub limit: Option<usize>,
}

/// Params of `ack`: exactly one of them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckParams {
    /// One alert.
    pub fingerprint: Option<String>,
    /// Every alert of this incident.
    pub incident_id: Option<String>,
}

/// Params of `silence`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceParams {
    /// Matchers in Alertmanager's syntax; all must match.
    pub matchers: Vec<Matcher>,
    /// RFC 3339 end.
    pub until: String,
    /// Why.
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FingerprintArgs {
    fingerprint: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdArgs {
    id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

/// One `alerts_tool` call with its typed params.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum AlertsCall {
    /// `ingest_alertmanager`: Alertmanager's webhook body (version 4).
    IngestAlertmanager(Notification),
    /// `ingest`: one generic alert.
    Ingest(Notification),
    /// `list {status, service, since, limit}`.
    List(ListParams),
    /// `get {fingerprint}`.
    Get {
        /// The alert.
        fingerprint: String,
    },
    /// `ack {fingerprint | incident_id}`.
    Ack(AckParams),
    /// `silence {matchers, until, reason}`.
    Silence(SilenceParams),
    /// `unsilence {id}`.
    Unsilence {
        /// The silence.
        id: String,
    },
    /// `silences {}`.
    Silences {},
    /// `triage {}`.
    Triage {},
    /// `stats {}`.
    Stats {},
}

impl TypedCall for AlertsCall {
    const TOOL: &'static str = NAME;
    fn action(&self) -> &'static str {
        match self {
            AlertsCall::IngestAlertmanager(_) => "ingest_alertmanager",
            AlertsCall::Ingest(_) => "ingest",
            AlertsCall::List(_) => "list",
            AlertsCall::Get { .. } => "get",
            AlertsCall::Ack(_) => "ack",
            AlertsCall::Silence(_) => "silence",
            AlertsCall::Unsilence { .. } => "unsilence",
            AlertsCall::Silences {} => "silences",
            AlertsCall::Triage {} => "triage",
            AlertsCall::Stats {} => "stats",
        }
    }
}

impl AlertsCall {
    /// Parse an agent's params for `action` (a 422 naming the field).
    pub fn parse(action: &str, params: Json) -> Result<AlertsCall> {
        Ok(match action {
            "ingest_alertmanager" => AlertsCall::IngestAlertmanager(parse_alertmanager(&params)?),
            "ingest" => AlertsCall::Ingest(parse_generic(&params)?),
            "list" => AlertsCall::List(parse(object(params)?)?),
            "get" => AlertsCall::Get {
                fingerprint: parse::<FingerprintArgs>(object(params)?)?.fingerprint,
            },
            "ack" => AlertsCall::Ack(parse(object(params)?)?),
            "silence" => AlertsCall::Silence(parse(object(params)?)?),
            "unsilence" => AlertsCall::Unsilence {
                id: parse::<IdArgs>(object(params)?)?.id,
            },
            "silences" | "triage" | "stats" => {
                parse::<NoArgs>(object(params)?)?;
                match action {
                    "silences" => AlertsCall::Silences {},
                    "triage" => AlertsCall::Triage {},
                    _ => AlertsCall::Stats {},
                }
            }
            other => return Err(no_action(NAME, other, ACTIONS)),
        })
    }

    /// Run the call against the room.
    pub async fn run(self, alerts: &Alerts, cx: ToolCx<'_>) -> Result<Json> {
        match self {
            AlertsCall::IngestAlertmanager(n) | AlertsCall::Ingest(n) => {
                to_json(alerts.ingest(n, cx.actor).await?)
            }
            AlertsCall::List(p) => {
                let status = match p.status.as_deref() {
                    None => None,
                    Some(s) => Some(AlertStatus::parse(s).ok_or_else(|| {
                        Error::invalid("status", "must be firing, resolved or suppressed")
                    })?),
                };
                let since = match p.since.as_deref() {
                    None => None,
                    Some(s) => Some(
                        crate::kernel::clock::parse_ts(s)
                            .ok_or_else(|| Error::invalid("since", "must be an RFC 3339 time"))?,
                    ),
                };
                if let Some(s) = &p.service {
                    crate::kernel::text::check_token("service", s, 64)?;
                }
                alerts
                    .list(ListQuery {
                        status,
                        service: p.service,
                        since,
                        limit: p.limit,
                    })
                    .await
            }
            AlertsCall::Get { fingerprint } => to_json(alerts.get(fingerprint).await?),
            AlertsCall::Ack(p) => {
                let target = match (p.fingerprint, p.incident_id) {
                    (Some(f), None) => AckTarget::Fingerprint(f),
                    (None, Some(i)) => AckTarget::IncidentId(i),
                    _ => {
                        return Err(Error::invalid(
                            "fingerprint",
                            "give exactly one of fingerprint or incident_id",
                        ))
                    }
                };
                alerts.ack(target, cx.actor).await
            }
            AlertsCall::Silence(p) => {
                let until = crate::kernel::clock::parse_ts(&p.until)
                    .ok_or_else(|| Error::invalid("until", "must be an RFC 3339 time"))?;
                to_json(
                    alerts
                        .silence(p.matchers, until, p.reason, cx.actor)
                        .await?,
                )
            }
            AlertsCall::Unsilence { id } => to_json(alerts.unsilence(id).await?),
            AlertsCall::Silences {} => {
                to_json(serde_json::json!({"items": alerts.silences().await?}))
            }
            AlertsCall::Triage {} => to_json(alerts.triage(cx.actor).await?),
            AlertsCall::Stats {} => alerts.stats().await,
        }
    }
}

/// `alerts_tool` over the alerts room.
pub struct AlertsTool {
    alerts: Alerts,
}

impl AlertsTool {
    /// The tool over `alerts`.
    pub fn new(alerts: Alerts) -> AlertsTool {
        AlertsTool { alerts }
    }
}

impl Tool for AlertsTool {
    fn name(&self) -> &'static str {
        NAME
    }
    fn actions(&self) -> &'static [Action] {
        ACTIONS
    }
    fn execute<'a>(&'a self, cx: ToolCx<'a>, action: &'a str, params: Params) -> ToolFuture<'a> {
        Box::pin(async move {
            let call = params.into_typed(|j| AlertsCall::parse(action, j))?;
            call.run(&self.alerts, cx).await
        })
    }
}
