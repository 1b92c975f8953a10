//! The wiring: [`AppState`] opens the store with every room's tables ([`schema`]), builds the
//! rooms, registers their tools with the gateway ([`tools`]) and the graphs with the runner.
//! Adding a room is its folder plus a line here. Serving lives in [`crate::server`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::gateway::Registry;
use crate::incidents::Incidents;
use crate::kernel::clock::Clock;
use crate::store::backup::BackupReport;
use crate::store::{Schema, Store};

/// Shared handles of every room (cheap to clone).
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What [`AppState`] holds.
pub struct Inner {
    pub settings: Settings,
    pub store: Store,
    pub incidents: Incidents,
    pub gateway: crate::gateway::Gateway,
    /// The only way out to other systems (allowlist, timeouts, retries, circuit breakers).
    pub outbound: Arc<crate::net::Outbound>,
    /// Live events for `/ws/events`.
    pub bus: crate::kernel::events::Bus,
    /// Runbook search and incident similarity (tantivy).
    pub search: crate::search::Search,
    /// The graph runner (supervisor runs).
    pub runner: crate::graphs::Runner,
    /// Flips to true when sofiia is stopping (open WebSockets close on it).
    pub closing: tokio::sync::watch::Sender<bool>,
    pub clock: Arc<dyn Clock>,
    pub started: Instant,
    /// Snapshots into `DATA_DIR/backups/` (the API's, and the `backup` job's).
    pub backups: crate::transfer::backups::Backups,
    /// The governance jobs and their scheduler.
    pub jobs: crate::jobs::Jobs,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Open the store and build every room.
    pub fn open(settings: Settings, clock: Arc<dyn Clock>) -> Result<AppState> {
        // Only a developer's own machine may run without keys.
        let prod = settings.env != crate::config::Env::Dev;
        // Settings built in code (embedders, tests) get the same rule as the environment.
        if let Some(k) = &settings.console_api_key {
            crate::config::check_operator_key(k).map_err(config_error)?;
        }
        if prod && settings.console_api_key.is_none() {
            return Err(Error::Validation {
                code: "config",
                message: format!(
                    "SOFIIA_CONSOLE_API_KEY: ENV={} requires an operator key; for example \
                     export SOFIIA_CONSOLE_API_KEY={}",
                    settings.env.as_str(),
                    // A key to paste must be as strong as any other; without the OS source,
                    // point to a tool that has one.
                    crate::kernel::clock::random_key_hex(24)
                        .unwrap_or_else(|_| "$(openssl rand -base64 24)".into())
                ),
            });
        }
        let policies = crate::gateway::policy::Policies::load(settings.config_dir.as_deref())
            .map_err(config_error)?;
        let outbound = Arc::new(
            crate::net::Outbound::new(
                settings.config_dir.as_deref(),
                crate::net::Options::default(),
            )
            .map_err(config_error)?,
        );
        let opts = crate::store::OpenOptions {
            checkpoints: crate::store::writer::Checkpoints {
                interval: std::time::Duration::from_millis(settings.checkpoint_ms),
                ..Default::default()
            },
            cache_bytes: None,
        };
        let store = Store::open_with(&settings.data_dir, schema(), opts)?;
        std::fs::create_dir_all(&settings.artifacts_dir).map_err(|e| {
            Error::Io(format!(
                "INCIDENT_ARTIFACTS_DIR: cannot create {}: {e}",
                settings.artifacts_dir.display()
            ))
        })?;
        let bus = crate::kernel::events::Bus::new(clock.clone());
        let incidents =
            Incidents::new(store.clone(), clock.clone(), settings.artifacts_dir.clone())
                .with_bus(bus.clone());
        let keys = crate::gateway::auth::Keys::load(
            &settings.data_dir,
            settings.console_api_key.as_deref(),
            prod,
        )?;
        let audit = crate::audit::Audit::open(store.clone(), &settings.data_dir)?;
        let search = crate::search::Search::new(&settings, store.clone());
        match search.runbooks.seed_starter() {
            Ok(0) => {}
            Ok(n) => tracing::info!(runbooks = n, "starter_runbooks_written"),
            Err(e) => tracing::warn!(error = %e, "starter_runbooks_not_written"),
        }
        let sources = crate::observability::Sources::load(settings.config_dir.as_deref())
            .map_err(config_error)?;
        let observability = crate::observability::Observability::new(
            sources,
            crate::observability::SloPolicy::load(settings.config_dir.as_deref())
                .map_err(config_error)?,
            outbound.clone(),
            std::time::Duration::from_millis(settings.source_timeout_ms),
        );
        let intelligence =
            crate::intel::policy::IntelligencePolicy::load(settings.config_dir.as_deref())
                .map_err(config_error)?;
        let role_names: Vec<String> = policies.rbac.roles.keys().cloned().collect();
        let backups = crate::transfer::backups::Backups::new(
            store.clone(),
            settings.data_dir.clone(),
            settings.artifacts_dir.clone(),
        );
        let job_slot: crate::tools::jobs::JobSlot = Default::default();
        let sweep_slot: crate::tools::housekeeping::SweepSlot = Default::default();
        let risk = crate::risk::Risk::new(
            incidents.clone(),
            observability.clone(),
            crate::risk::policy::RiskPolicies::load(settings.config_dir.as_deref())
                .map_err(config_error)?,
        );
        let backlog = crate::backlog::Backlog::new(
            incidents.clone(),
            crate::backlog::policy::BacklogPolicy::load(settings.config_dir.as_deref())
                .map_err(config_error)?,
        );
        let alerts = crate::alerts::Alerts::new(
            store.clone(),
            incidents.clone(),
            clock.clone(),
            bus.clone(),
            crate::alerts::routing::Routing::load(settings.config_dir.as_deref())
                .map_err(config_error)?,
        );
        let registry = tools(Rooms {
            incidents: &incidents,
            search: &search,
            observability,
            intelligence,
            risk,
            backlog,
            alerts,
            reports_dir: settings.data_dir.join("reports"),
            audit: audit.clone(),
            audit_retention_days: (
                policies.redactor.audit_retention_days,
                policies.redactor.audit_denied_retention_days,
            ),
            backups: backups.clone(),
            jobs: job_slot.clone(),
            runs: sweep_slot.clone(),
        })?;
        let gateway = crate::gateway::Gateway::new(
            policies,
            keys,
            settings.env,
            audit,
            registry,
            clock.clone(),
        )?;
        let runner = crate::graphs::Runner::new(
            store.clone(),
            gateway.clone(),
            clock.clone(),
            bus.clone(),
            crate::graphs::RunnerOptions {
                workers: settings.graph_workers,
                ttl: std::time::Duration::from_secs(settings.run_ttl_sec),
                failed_ttl: std::time::Duration::from_secs(settings.run_ttl_sec * 4),
                ..Default::default()
            },
        );
        let cost = crate::graphs::triage::CostWeights::load(settings.config_dir.as_deref())
            .map_err(config_error)?;
        runner.register(Arc::new(crate::graphs::triage::IncidentTriage::new(
            clock.clone(),
            settings.incident_max_time_window_h,
            gateway.redactor().clone(),
            cost,
            std::time::Duration::from_millis(settings.source_timeout_ms),
        )));
        runner.register(Arc::new(crate::graphs::postmortem::PostmortemDraft::new(
            settings.incident_max_time_window_h,
        )));
        let _ = sweep_slot.set(Arc::new(runner.downgrade()));
        let builtin = crate::jobs::builtin::all();
        let specs: Vec<(&str, &[crate::jobs::InputSpec])> =
            builtin.iter().map(|j| (j.name(), j.inputs())).collect();
        let task_registry =
            crate::jobs::TaskRegistry::load(settings.config_dir.as_deref(), &specs, &role_names)
                .map_err(config_error)?;
        let jobs = crate::jobs::Jobs::new(
            task_registry,
            builtin,
            crate::jobs::JobsEnv {
                store: store.clone(),
                gateway: gateway.clone(),
                clock: clock.clone(),
                data_dir: settings.data_dir.clone(),
                bus: bus.clone(),
            },
            crate::jobs::JobsOptions {
                hold: std::time::Duration::from_millis(settings.job_hold_ms),
            },
        )?;
        let _ = job_slot.set(Arc::new(jobs.downgrade()));
        Ok(AppState(Arc::new(Inner {
            settings,
            store,
            incidents,
            gateway,
            outbound,
            bus,
            search,
            runner,
            closing: tokio::sync::watch::channel(false).0,
            clock,
            started: Instant::now(),
            backups,
            jobs,
        })))
    }

    /// Consistent snapshot into `DATA_DIR/backups/<name>` while serving; one backup at a time
    /// (see [`crate::transfer::backups::Backups::snapshot`]).
    pub async fn backup_to(&self, name: &str) -> Result<BackupReport> {
        self.backups.snapshot(name).await
    }
}

/// Every room's tables and migration steps, in the order their versions were introduced.
pub fn schema() -> Arc<Schema> {
    Arc::new(
        Schema::new()
            .room(
                crate::incidents::tables::ALL,
                crate::incidents::tables::MIGRATIONS,
            )
            .room(crate::audit::TABLES, &[])
            .room(
                crate::graphs::tables::ALL,
                crate::graphs::tables::MIGRATIONS,
            )
            .room(crate::jobs::tables::ALL, crate::jobs::tables::MIGRATIONS)
            .room(crate::risk::tables::ALL, crate::risk::tables::MIGRATIONS)
            .room(
                crate::backlog::tables::ALL,
                crate::backlog::tables::MIGRATIONS,
            )
            .room(
                crate::alerts::tables::ALL,
                crate::alerts::tables::MIGRATIONS,
            ),
    )
}

/// Open `DATA_DIR`'s store with every room's tables (the CLI's offline commands and tests).
pub fn open_store(data_dir: &std::path::Path) -> Result<Store> {
    Store::open(data_dir, schema())
}

/// [`open_store`] with explicit options (the import's smaller cache).
pub fn open_store_with(
    data_dir: &std::path::Path,
    opts: crate::store::OpenOptions,
) -> Result<Store> {
    Store::open_with(data_dir, schema(), opts)
}

/// The room handles the tools are built over.
pub struct Rooms<'a> {
    pub incidents: &'a Incidents,
    pub search: &'a crate::search::Search,
    pub observability: crate::observability::Observability,
    pub intelligence: crate::intel::policy::IntelligencePolicy,
    /// Service risk scores, history and digests.
    pub risk: crate::risk::Risk,
    /// The platform backlog.
    pub backlog: crate::backlog::Backlog,
    /// Alerts, silences and their triage.
    pub alerts: crate::alerts::Alerts,
    /// Where reports (digests) are written.
    pub reports_dir: PathBuf,
    pub audit: crate::audit::Audit,
    /// `data_governance.yml`: days kept for allowed and for denied calls.
    pub audit_retention_days: (u32, u32),
    pub backups: crate::transfer::backups::Backups,
    /// Bound to the jobs room once it is built (it needs the gateway).
    pub jobs: crate::tools::jobs::JobSlot,
    /// Bound to the graph runner once it is built.
    pub runs: crate::tools::housekeeping::SweepSlot,
}

/// Every tool of this build: one line per tool.
pub fn tools(rooms: Rooms<'_>) -> Result<Registry> {
    use crate::tools::*;
    let mut r = Registry::default();
    r.register(Arc::new(oncall::OncallTool::new(rooms.incidents.clone())))?
        .register(Arc::new(runbook::RunbookTool::new(
            rooms.search.runbooks.clone(),
        )))?
        .register(Arc::new(intelligence::IntelligenceTool::new(
            rooms.incidents.clone(),
            rooms.search.incidents.clone(),
            rooms.intelligence,
            rooms.reports_dir.clone(),
        )))?
        .register(Arc::new(observability::ObservabilityTool::new(
            rooms.observability,
        )))?
        .register(Arc::new(reports::ReportsTool::new(
            rooms.reports_dir.clone(),
        )))?
        .register(Arc::new(jobs::JobsTool::new(rooms.jobs)))?
        .register(Arc::new(housekeeping::HousekeepingTool::new(
            rooms.audit,
            rooms.audit_retention_days.0,
            rooms.audit_retention_days.1,
            rooms.backups,
            rooms.runs,
        )))?
        .register(Arc::new(risk::RiskTool::new(rooms.risk)))?
        .register(Arc::new(backlog::BacklogTool::new(rooms.backlog)))?
        .register(Arc::new(alerts::AlertsTool::new(rooms.alerts)))?;
    Ok(r)
}

fn config_error(e: crate::config::ConfigError) -> Error {
    Error::Validation {
        code: "config",
        message: e.0,
    }
}
