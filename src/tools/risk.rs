//! `risk_tool`: `service_risk`, `history`, `top`, `snapshot`, `daily_digest`,
//! `platform_digest` (SPEC §7), calling the risk room.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::{no_action, object, parse};
use crate::error::Result;
use crate::gateway::{Action, Params, Tool, ToolCx, ToolFuture, TypedCall};
use crate::risk::Risk;

const NAME: &str = "risk_tool";

/// Every action, in the order `GET /v1/tools` lists them. Only `snapshot` stores anything
/// (the digests are returned for the caller to save).
const ACTIONS: &[Action] = &[
    Action::read("service_risk"),
    Action::read("history"),
    Action::read("top"),
    Action::write("snapshot"),
    Action::read("daily_digest"),
    Action::read("platform_digest"),
];

/// Default length of `top`.
pub const DEFAULT_TOP: usize = 10;

/// One `risk_tool` call with its typed params (what agents' JSON is parsed into and what
/// the HTTP handlers build).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum RiskCall {
    /// `service_risk {service}`.
    ServiceRisk {
        /// The service.
        service: String,
    },
    /// `history {service, days}`.
    History {
        /// The service.
        service: String,
        /// Days back (default 7).
        days: Option<u32>,
    },
    /// `top {limit}`.
    Top {
        /// How many (default 10).
        limit: Option<usize>,
    },
    /// `snapshot {dry_run}`.
    Snapshot {
        /// Compute without storing.
        dry_run: bool,
    },
    /// `daily_digest {date}`.
    DailyDigest {
        /// `YYYY-MM-DD` (default today, UTC).
        date: Option<String>,
    },
    /// `platform_digest {week}`.
    PlatformDigest {
        /// `YYYY-Www` (default last week).
        week: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceArgs {
    service: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryArgs {
    service: String,
    days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopArgs {
    limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotArgs {
    #[serde(default)]
    dry_run: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DateArgs {
    date: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WeekArgs {
    week: Option<String>,
}

impl TypedCall for RiskCall {
    const TOOL: &'static str = NAME;
    fn action(&self) -> &'static str {
        match self {
            RiskCall::ServiceRisk { .. } => "service_risk",
            RiskCall::History { .. } => "history",
            RiskCall::Top { .. } => "top",
            RiskCall::Snapshot { .. } => "snapshot",
            RiskCall::DailyDigest { .. } => "daily_digest",
            RiskCall::PlatformDigest { .. } => "platform_digest",
        }
    }
}

impl RiskCall {
    /// Parse an agent's params for `action` (a 422 naming the problem).
    pub fn parse(action: &str, params: Json) -> Result<RiskCall> {
        let p = object(params)?;
        Ok(match action {
            "service_risk" => {
                let a: ServiceArgs = parse(p)?;
                RiskCall::ServiceRisk { service: a.service }
            }
            "history" => {
                let a: HistoryArgs = parse(p)?;
                RiskCall::History {
                    service: a.service,
                    days: a.days,
                }
            }
            "top" => RiskCall::Top {
                limit: parse::<TopArgs>(p)?.limit,
            },
            "snapshot" => RiskCall::Snapshot {
                dry_run: parse::<SnapshotArgs>(p)?.dry_run,
            },
            "daily_digest" => RiskCall::DailyDigest {
                date: parse::<DateArgs>(p)?.date,
            },
            "platform_digest" => RiskCall::PlatformDigest {
                week: parse::<WeekArgs>(p)?.week,
            },
            other => return Err(no_action(NAME, other, ACTIONS)),
        })
    }

    /// Run the call against the room at `cx.now`.
    pub async fn run(self, risk: &Risk, cx: ToolCx<'_>) -> Result<Json> {
        let (now, deadline) = (cx.now, Some(cx.deadline));
        match self {
            RiskCall::ServiceRisk { service } => {
                crate::kernel::text::check_token("service", &service, 64)?;
                risk.service_risk(service, now, deadline).await
            }
            RiskCall::History { service, days } => risk.history(service, days, now).await,
            RiskCall::Top { limit } => risk.top(limit.unwrap_or(DEFAULT_TOP), now, deadline).await,
            RiskCall::Snapshot { dry_run } => risk.snapshot(dry_run, now, deadline).await,
            RiskCall::DailyDigest { date } => risk.daily_digest(date, now, deadline).await,
            RiskCall::PlatformDigest { week } => risk.platform_digest(week, now, deadline).await,
        }
    }
}

/// `risk_tool` over the risk room.
pub struct RiskTool {
    risk: Risk,
}

impl RiskTool {
    /// The tool over `risk`.
    pub fn new(risk: Risk) -> RiskTool {
        RiskTool { risk }
    }
}

impl Tool for RiskTool {
    fn name(&self) -> &'static str {
        NAME
    }
    fn actions(&self) -> &'static [Action] {
        ACTIONS
    }
    fn execute<'a>(&'a self, cx: ToolCx<'a>, action: &'a str, params: Params) -> ToolFuture<'a> {
        Box::pin(async move {
            let call = params.into_typed(|j| RiskCall::parse(action, j))?;
            call.run(&self.risk, cx).await
        })
    }
}
