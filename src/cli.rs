//! Command line: clap commands mapped to library calls.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use redb::ReadableDatabase;

use crate::config::{Flags, Settings};
use crate::error::Error;
use crate::store;

/// sofiia: the ops control plane of a small AI-agent platform, in one binary.
///
/// With no command it serves the console and API (same as `sofiia serve`).
/// Settings come from flags, then environment variables, then CONFIG_DIR/sofiia.yml,
/// then built-in defaults.
#[derive(Debug, Parser)]
#[command(name = "sofiia", version, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Settings every command understands.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Interface to listen on [env: HOST] [default: 127.0.0.1]
    #[arg(long, global = true)]
    pub host: Option<String>,
    /// HTTP port; 0 picks a free one [env: PORT] [default: 8002]
    #[arg(long, global = true)]
    pub port: Option<u16>,
    /// Folder holding every record [env: DATA_DIR] [default: ./data]
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Folder with sofiia.yml and policy files [env: CONFIG_DIR] [default: ./config if present]
    #[arg(long, global = true)]
    pub config_dir: Option<PathBuf>,
    /// dev, staging or prod [env: ENV] [default: dev]
    #[arg(long, global = true)]
    pub env: Option<String>,
    /// Build id shown by the health endpoints [env: BUILD_ID] [default: local]
    #[arg(long, global = true)]
    pub build_id: Option<String>,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the console and API until SIGINT/SIGTERM (the default command).
    Serve,
    /// Write the incident log as JSON Lines (incidents.jsonl, events.jsonl, artifacts.jsonl
    /// and one folder of artifact files per incident). Works while sofiia is running.
    Export {
        /// Destination folder (created if missing; existing export files are replaced).
        #[arg(long)]
        out: PathBuf,
    },
    /// Import a JSONL folder (the export layout, or the old stack's ops/incidents/).
    /// Every line is checked first; if any is bad nothing is written and each bad line is
    /// listed as file:line. Records that already exist (same id) are skipped. Timestamps in
    /// the future or out of order are warnings (file:line), imported anyway unless --strict.
    /// Progress goes to stderr. sofiia must be stopped.
    Import {
        /// Folder containing incidents.jsonl.
        dir: PathBuf,
        /// Refuse the import (nothing written, exit 1) if any line has a warning.
        #[arg(long)]
        strict: bool,
    },
    /// Take a consistent snapshot of DATA_DIR into a new folder. Works while sofiia is
    /// running and writing (it reads one point in time); also available as
    /// POST /api/admin/backup.
    Backup {
        /// Destination folder (must not exist or be empty).
        dir: PathBuf,
    },
    /// Restore a backup folder into DATA_DIR. sofiia must be stopped. Refuses a non-empty
    /// DATA_DIR unless --force, which moves the old one aside to DATA_DIR.pre-restore-<time>.
    Restore {
        /// Backup folder (as written by `sofiia backup`).
        dir: PathBuf,
        /// Move a non-empty DATA_DIR aside instead of refusing.
        #[arg(long)]
        force: bool,
    },
    /// Call a tool through the gateway (RBAC, limits, audit), as an agent would.
    /// Talks to the running sofiia (with SOFIIA_CONSOLE_API_KEY if set), or runs the call
    /// in-process on DATA_DIR when none is running. Prints the JSON result.
    /// Example: sofiia tool oncall_tool incident_list '{"status":"open"}'
    Tool {
        /// Tool name, e.g. oncall_tool.
        tool: String,
        /// Action, e.g. incident_list.
        action: String,
        /// Params as a JSON object (default {}).
        params: Option<String>,
        /// Act as this agent (its role applies).
        #[arg(long)]
        agent: Option<String>,
    },
    /// Runbook search: re-read the runbook folders, or search them from the shell. Uses the
    /// running sofiia when there is one, else the index in DATA_DIR/index/runbooks.
    Runbooks {
        #[command(subcommand)]
        command: RunbooksCommand,
    },
    /// Governance and housekeeping jobs of CONFIG_DIR/task_registry.yml (the only schedule
    /// there is). Uses the running sofiia when there is one, else runs in-process on DATA_DIR
    /// (the scheduler itself runs only inside `sofiia serve`).
    Job {
        #[command(subcommand)]
        command: JobCommand,
    },
    /// Manage agent API keys (only their sha256 is stored, in DATA_DIR/agent_keys.yml).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

/// `sofiia runbooks …`.
#[derive(Debug, Subcommand)]
pub enum RunbooksCommand {
    /// Pick up added, changed and deleted runbook files now (a running sofiia also does it by
    /// itself every SOFIIA_RUNBOOKS_POLL_MS).
    Reindex {
        /// Index every file again, not only changed ones.
        #[arg(long)]
        full: bool,
    },
    /// Search the runbooks; prints ranked sections with their snippets.
    /// Example: sofiia runbooks search restore from backup
    Search {
        /// Words to search for ("quoted phrases" must match as such).
        #[arg(required = true)]
        query: Vec<String>,
        /// Only runbooks for this service.
        #[arg(long)]
        service: Option<String>,
        /// Only runbooks with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// How many sections (at most 50).
        #[arg(long, default_value_t = 5)]
        limit: usize,
        /// Print the JSON result instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `sofiia job …`.
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Every task: schedule (in words, cron and zone), next fire, status and last run.
    List {
        /// Print the JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a task now and wait for it; exits 1 unless it succeeds. The task's permissions
    /// apply (the shell is the operator; --agent acts as that agent's role).
    /// Example: sofiia job run weekly_incident_digest --dry-run
    Run {
        /// Task id, e.g. weekly_incident_digest.
        id: String,
        /// Compute everything, write nothing; print what would be written.
        #[arg(long)]
        dry_run: bool,
        /// An input as key=value (repeatable), e.g. --input keep_last=3.
        #[arg(long = "input", value_name = "KEY=VALUE")]
        inputs: Vec<String>,
        /// Act as this agent (its role and the task's permissions apply).
        #[arg(long)]
        agent: Option<String>,
        /// Print the run's JSON record instead of a summary.
        #[arg(long)]
        json: bool,
    },
}

/// `sofiia keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Issue a key bound to AGENT and print it once. A running sofiia picks it up within
    /// two seconds.
    Issue {
        /// Agent id the key may act as.
        agent: String,
        /// Bind the key to this role (default: the agent's role in rbac_tools_matrix.yml).
        #[arg(long)]
        role: Option<String>,
    },
    /// List issued keys (agent and date; never the keys).
    List,
}

impl GlobalArgs {
    fn flags(&self) -> Flags {
        Flags {
            host: self.host.clone(),
            port: self.port,
            data_dir: self.data_dir.clone(),
            config_dir: self.config_dir.clone(),
            env: self.env.clone(),
            build_id: self.build_id.clone(),
        }
    }
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    crate::net::init_tls();
    let settings = Settings::load(&cli.global.flags())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings),
        Command::Export { out } => export(&settings, &out),
        Command::Import { dir, strict } => import(&settings, &dir, strict),
        Command::Backup { dir } => backup(&settings, &dir),
        Command::Tool {
            tool,
            action,
            params,
            agent,
        } => tool_call(&settings, tool, action, params, agent),
        Command::Runbooks { command } => runbooks(&settings, command),
        Command::Job { command } => job(&settings, command),
        Command::Keys {
            command: KeysCommand::Issue { agent, role },
        } => {
            if let Some(r) = &role {
                let p = crate::gateway::policy::Policies::load(settings.config_dir.as_deref())?;
                if !p.rbac.roles.contains_key(r) {
                    bail!("--role: '{r}' is not a role in rbac_tools_matrix.yml");
                }
            }
            let (key, path) =
                crate::gateway::auth::issue_key(&settings.data_dir, &agent, role.as_deref())?;
            eprintln!(
                "issued a key for agent '{agent}' (hash stored in {}); it is shown only now:",
                path.display()
            );
            println!("{key}");
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::List,
        } => {
            let keys = crate::gateway::auth::list_keys(&settings.data_dir)?;
            for k in keys {
                println!(
                    "{}\t{}\t{}…",
                    k.agent_id,
                    k.created_at,
                    &k.sha256[..12.min(k.sha256.len())]
                );
            }
            Ok(())
        }
        Command::Restore { dir, force } => {
            let r = store::backup::restore(
                &dir,
                &crate::app::schema(),
                &settings.data_dir,
                &settings.artifacts_dir,
                force,
            )?;
            // Open once so an older schema is migrated now, not at the next start.
            crate::app::open_store(&settings.data_dir)?.shutdown();
            println!("{}", serde_json::to_string_pretty(&r)?);
            Ok(())
        }
    }
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        for (k, v) in &settings.legacy_backends {
            tracing::info!(var = %k, requested = %v, effective = "redb", "legacy_backend_selector");
        }
        let env = settings.env;
        let data_dir = settings.data_dir.clone();
        let open_mode = settings.console_api_key.is_none();
        let app = crate::server::App::build(settings).await?;
        if open_mode {
            tracing::warn!(
                "auth_open: no SOFIIA_CONSOLE_API_KEY set (ENV=dev): requests need no key, a call's \
                 role comes from its agent_id (none = operator); web pages of other sites are still refused; \
                 set SOFIIA_CONSOLE_API_KEY to require keys"
            );
        }
        let addr = app.local_addr();
        tracing::info!(url = %format!("http://{addr}"), env = env.as_str(), data_dir = %data_dir.display(), "sofiia_listening");
        println!("sofiia listening on http://{addr}");
        app.run_until(crate::server::shutdown_signal()).await?;
        Ok(())
    })
}

/// Ask the sofiia that holds DATA_DIR for a backup under DATA_DIR/backups/; returns its folder.
fn remote_backup(settings: &Settings) -> anyhow::Result<PathBuf> {
    let marker = settings.data_dir.join(crate::server::SERVER_FILE);
    let info: crate::server::ServerInfo = serde_json::from_slice(
        &std::fs::read(&marker)
            .with_context(|| format!("DATA_DIR is in use but {} is missing", marker.display()))?,
    )
    .with_context(|| format!("{} is not readable", marker.display()))?;
    let name = format!(
        "cli-{}-{}",
        time::OffsetDateTime::now_utc().unix_timestamp(),
        crate::kernel::clock::random_hex(3)
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let resp: serde_json::Value = rt.block_on(async {
        let mut req = crate::net::client()
            .post(format!("{}/api/admin/backup", info.url))
            .json(&serde_json::json!({ "name": name }));
        // The running server needs the operator key when one is configured.
        if let Some(k) = &settings.console_api_key {
            req = req.bearer_auth(k);
        }
        let r = req
            .send()
            .await
            .with_context(|| format!("sofiia (pid {}) at {} did not answer", info.pid, info.url))?;
        let status = r.status();
        let v: serde_json::Value = r.json().await.unwrap_or_default();
        if !status.is_success() {
            bail!(
                "sofiia at {} refused the backup ({status}): {}",
                info.url,
                v["error"]["message"]
            );
        }
        Ok(v)
    })?;
    let path = resp["path"]
        .as_str()
        .context("backup response has no path")?;
    // The server answers relative to DATA_DIR (an absolute path stays as it is).
    Ok(settings.data_dir.join(path))
}

/// Move a folder, copying when a rename cannot cross file systems.
fn move_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let Some(parent) = to.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    if std::fs::rename(from, to).is_ok() {
        return Ok(());
    }
    copy_tree(from, to)?;
    std::fs::remove_dir_all(from)?;
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else {
            std::fs::copy(e.path(), &dest)?;
        }
    }
    Ok(())
}

/// Run `f` on a consistent snapshot of DATA_DIR and the folder holding its artifact files.
/// With sofiia stopped that is the store itself; while it runs (it holds the file), the
/// server writes a backup and `f` reads that.
fn with_snapshot<T>(
    settings: &Settings,
    f: impl FnOnce(&redb::ReadTransaction, &Path) -> Result<T, Error>,
) -> anyhow::Result<T> {
    let path = settings.data_dir.join(store::DB_FILE);
    if !path.exists() {
        bail!(
            "DATA_DIR: {} has no {}",
            settings.data_dir.display(),
            store::DB_FILE
        );
    }
    match crate::app::open_store(&settings.data_dir) {
        Ok(s) => {
            let r = f(&s.db().begin_read()?, &settings.artifacts_dir)?;
            s.shutdown();
            Ok(r)
        }
        Err(Error::Conflict(_)) => {
            let snap = remote_backup(settings)?;
            let result = (|| -> anyhow::Result<T> {
                let db = store::open_read_only(&snap.join(store::DB_FILE))?;
                Ok(f(&db.begin_read()?, &snap.join(store::backup::ARTIFACTS))?)
            })();
            let _ = std::fs::remove_dir_all(&snap);
            result
        }
        Err(e) => Err(e.into()),
    }
}

fn export(settings: &Settings, out: &Path) -> anyhow::Result<()> {
    let r = with_snapshot(settings, |txn, artifacts| {
        crate::transfer::export(txn, artifacts, out)
    })?;
    println!("{}", serde_json::to_string_pretty(&r)?);
    Ok(())
}

fn backup(settings: &Settings, dir: &Path) -> anyhow::Result<()> {
    if !settings.data_dir.join(store::DB_FILE).exists() {
        bail!(
            "DATA_DIR: {} has no {}; nothing to back up",
            settings.data_dir.display(),
            store::DB_FILE
        );
    }
    match crate::app::open_store(&settings.data_dir) {
        Ok(s) => {
            let r = s.read_blocking(|txn| {
                let files = crate::transfer::artifact_paths(txn)?;
                store::backup::backup_snapshot(
                    txn,
                    s.schema(),
                    &settings.data_dir,
                    &settings.artifacts_dir,
                    &files,
                    dir,
                )
            });
            s.shutdown();
            println!("{}", serde_json::to_string_pretty(&r?)?);
        }
        Err(Error::Conflict(_)) => {
            // The running server takes the snapshot; we move it where it was asked for.
            let manifest_ok = dir
                .read_dir()
                .map(|mut d| d.next().is_none())
                .unwrap_or(true);
            if !manifest_ok {
                bail!(
                    "{} exists and is not empty; choose a new folder",
                    dir.display()
                );
            }
            let snap = remote_backup(settings)?;
            if dir.exists() {
                std::fs::remove_dir(dir)?;
            }
            move_dir(&snap, dir)?;
            let m = store::backup::verify(dir, &crate::app::schema())?;
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "path": dir, "schema_version": m.schema_version, "tables": m.tables,
                    "files": m.files.len(), "taken_by": "running server"
                }))?
            );
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

fn import(settings: &Settings, dir: &Path, strict: bool) -> anyhow::Result<()> {
    use crate::kernel::clock::Clock;
    let opts = store::OpenOptions {
        cache_bytes: Some(crate::transfer::IMPORT_CACHE_BYTES),
        ..Default::default()
    };
    let store = crate::app::open_store_with(&settings.data_dir, opts).map_err(|e| match e {
        Error::Conflict(m) => anyhow::anyhow!("{m}; import needs sofiia stopped"),
        e => e.into(),
    })?;
    let mut line = ProgressLine::new(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let mut on_progress = |p: &crate::transfer::Progress<'_>| line.update(p);
    let opts = crate::transfer::ImportOptions {
        now: crate::kernel::clock::SystemClock.now(),
        strict,
        progress: Some(&mut on_progress),
    };
    let res = crate::transfer::import_with(&store, &settings.artifacts_dir, dir, opts);
    line.clear();
    store.shutdown();
    match res {
        Ok(r) => {
            let w = &r.warnings;
            for l in &w.first {
                eprintln!("warning: {l}");
            }
            if w.total > 0 {
                let shown = if w.total > w.first.len() {
                    format!(" (the first {} shown)", w.first.len())
                } else {
                    String::new()
                };
                eprintln!(
                    "warning: {} line(s) with timestamps in the future or out of order{shown}; \
                     imported anyway (--strict refuses them)",
                    w.total
                );
            }
            eprintln!("import: done in {:.1} s", line.elapsed());
            println!("{}", serde_json::to_string_pretty(&r)?);
            Ok(())
        }
        Err(crate::transfer::ImportError::Lines { errors, total }) => {
            for l in &errors {
                eprintln!("{l}");
            }
            if total > errors.len() {
                eprintln!("… and {} more bad line(s)", total - errors.len());
            }
            bail!(
                "{total} bad line(s) in {}; nothing was imported",
                dir.display()
            )
        }
        Err(e @ crate::transfer::ImportError::Links(_)) => {
            bail!("import of {} refused: {e}", dir.display())
        }
        Err(crate::transfer::ImportError::Other(e)) => {
            Err(e).with_context(|| format!("import of {} failed", dir.display()))
        }
    }
}

/// An import's progress on stderr. On a terminal, one line redrawn in place at most ten
/// times a second; otherwise (a log, a pipe) plain lines: one when a file is through a step,
/// and one every few seconds within a long file, so nothing but text reaches the log.
struct ProgressLine {
    tty: bool,
    started: std::time::Instant,
    last: Option<std::time::Instant>,
    drawn: bool,
}

impl ProgressLine {
    fn new(tty: bool) -> Self {
        ProgressLine {
            tty,
            started: std::time::Instant::now(),
            last: None,
            drawn: false,
        }
    }

    fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn update(&mut self, p: &crate::transfer::Progress<'_>) {
        if let Some(text) = self.render(p, std::time::Instant::now()) {
            eprint!("{text}");
        }
    }

    /// What to print for `p` at `now`, if anything: on a terminal a carriage return and the
    /// line (erased to its end), else a plain line.
    fn render(
        &mut self,
        p: &crate::transfer::Progress<'_>,
        now: std::time::Instant,
    ) -> Option<String> {
        use crate::transfer::Step;
        let every = if self.tty {
            std::time::Duration::from_millis(100)
        } else {
            std::time::Duration::from_secs(5)
        };
        let due = self.last.is_none_or(|t| now.duration_since(t) >= every);
        // Off a terminal, the end of every file is a line of its own.
        let forced = p.finished && !self.tty;
        if !(due || forced) {
            return None;
        }
        self.last = Some(now);
        let pct = p.done_bytes.saturating_mul(100) / p.total_bytes.max(1);
        let (doing, done) = match p.step {
            Step::Check => ("checking", "checked"),
            Step::Copy => ("copying the files of", "copied the files of"),
            Step::Write => ("writing", "wrote"),
        };
        let secs = now.duration_since(self.started).as_secs_f64();
        let (file, lines) = (p.file, p.lines);
        Some(if self.tty {
            self.drawn = true;
            format!("\rimport: {doing} {file}: {lines} lines, {pct}% in {secs:.1} s\x1b[K")
        } else if p.finished {
            format!("import: {done} {file}: {lines} lines, {pct}% in {secs:.1} s\n")
        } else {
            format!("import: {doing} {file}: {lines} lines so far, {pct}% in {secs:.1} s\n")
        })
    }

    /// Take the redrawn line away before anything else is printed.
    fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[K");
            self.drawn = false;
        }
    }
}

/// The sofiia serving this DATA_DIR, if one is running.
fn running_server(settings: &Settings) -> Option<crate::server::ServerInfo> {
    let running = settings.data_dir.join(store::DB_FILE).exists()
        && matches!(
            crate::app::open_store(&settings.data_dir),
            Err(Error::Conflict(_))
        );
    if !running {
        return None;
    }
    let marker = settings.data_dir.join(crate::server::SERVER_FILE);
    serde_json::from_slice(&std::fs::read(marker).ok()?).ok()
}

/// Call the running sofiia's API with the operator key (if set).
fn call_server(
    settings: &Settings,
    info: &crate::server::ServerInfo,
    method: reqwest::Method,
    path_and_query: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let client = crate::net::client();
        // A server that is still opening an index answers 503 with Retry-After: wait and ask
        // again (for at most about 30 s), as an operator would.
        let mut waited = 0u64;
        loop {
            let mut req = client.request(method.clone(), format!("{}{path_and_query}", info.url));
            if let Some(k) = &settings.console_api_key {
                req = req.bearer_auth(k);
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            let r = req
                .send()
                .await
                .with_context(|| format!("sofiia at {} did not answer", info.url))?;
            let status = r.status();
            let retry_after = r
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let v: serde_json::Value = r.json().await.unwrap_or_default();
            match retry_after {
                Some(s) if status == reqwest::StatusCode::SERVICE_UNAVAILABLE && waited < 30 => {
                    let s = s.clamp(1, 5);
                    waited += s;
                    tokio::time::sleep(std::time::Duration::from_secs(s)).await;
                    continue;
                }
                _ => {}
            }
            if !status.is_success() {
                bail!("{status}: {}", v["error"]["message"]);
            }
            return Ok(v);
        }
    })
}

fn runbooks(settings: &Settings, command: RunbooksCommand) -> anyhow::Result<()> {
    let server = running_server(settings);
    let local = || -> anyhow::Result<crate::search::runbooks::Runbooks> {
        let rb = crate::search::runbooks_for(settings);
        rb.seed_starter()?;
        rb.open_or_rebuild()?;
        Ok(rb)
    };
    match command {
        RunbooksCommand::Reindex { full } => {
            let report = match &server {
                Some(info) => call_server(
                    settings,
                    info,
                    reqwest::Method::POST,
                    "/api/runbooks/reindex",
                    Some(serde_json::json!({ "full": full })),
                )?,
                None => serde_json::to_value(local()?.sync(full)?)?,
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        RunbooksCommand::Search {
            query,
            service,
            tag,
            limit,
            json,
        } => {
            let q = query.join(" ");
            let out = match &server {
                Some(info) => {
                    let mut url = reqwest::Url::parse("http://x/api/runbooks/search")?;
                    url.query_pairs_mut()
                        .append_pair("q", &q)
                        .append_pair("limit", &limit.to_string());
                    if let Some(s) = &service {
                        url.query_pairs_mut().append_pair("service", s);
                    }
                    if let Some(t) = &tag {
                        url.query_pairs_mut().append_pair("tag", t);
                    }
                    let pq = format!("{}?{}", url.path(), url.query().unwrap_or(""));
                    call_server(settings, info, reqwest::Method::GET, &pq, None)?
                }
                None => serde_json::to_value(local()?.search(
                    &crate::search::runbooks::SearchParams {
                        q: q.clone(),
                        service,
                        tag,
                        limit,
                    },
                )?)?,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(());
            }
            let items = out["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                println!("no runbook section matches \"{q}\"");
            }
            for (i, h) in items.iter().enumerate() {
                let anchor = h["anchor"].as_str().unwrap_or("");
                println!(
                    "{}. {}{}{}  ({:.2})",
                    i + 1,
                    h["path"].as_str().unwrap_or(""),
                    if anchor.is_empty() { "" } else { "#" },
                    anchor,
                    h["score"].as_f64().unwrap_or(0.0)
                );
                println!("   {}", h["heading_path"].as_str().unwrap_or(""));
                let snippet: String = h["snippet"]
                    .as_array()
                    .map(|parts| {
                        parts
                            .iter()
                            .map(|p| {
                                let t = p["text"].as_str().unwrap_or("");
                                if p["hl"].as_bool().unwrap_or(false) {
                                    format!("[{t}]")
                                } else {
                                    t.to_string()
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let snippet = snippet.split_whitespace().collect::<Vec<_>>().join(" ");
                if !snippet.is_empty() {
                    println!("   {snippet}");
                }
            }
        }
    }
    Ok(())
}

fn tool_call(
    settings: &Settings,
    tool: String,
    action: String,
    params: Option<String>,
    agent: Option<String>,
) -> anyhow::Result<()> {
    let params: serde_json::Value = match params {
        None => serde_json::json!({}),
        Some(p) => serde_json::from_str(&p).context("params must be a JSON object")?,
    };
    let call =
        serde_json::json!({"tool": tool, "action": action, "params": params, "agent_id": agent});
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let marker = settings.data_dir.join(crate::server::SERVER_FILE);
    let running = settings.data_dir.join(store::DB_FILE).exists()
        && matches!(
            crate::app::open_store(&settings.data_dir),
            Err(Error::Conflict(_))
        );
    let out: serde_json::Value = if running {
        let info: crate::server::ServerInfo = serde_json::from_slice(&std::fs::read(&marker)?)?;
        call_server(
            settings,
            &info,
            reqwest::Method::POST,
            "/v1/tools/execute",
            Some(call),
        )?["result"]
            .clone()
    } else {
        let settings = settings.clone();
        rt.block_on(async move {
            let state = crate::app::AppState::open(
                settings,
                std::sync::Arc::new(crate::kernel::clock::SystemClock),
            )?;
            let call: crate::gateway::ToolCall = serde_json::from_value(call)?;
            // No server: bring the index the tool needs up to date here.
            if call.tool == "runbook_tool" {
                let rb = state.search.runbooks.clone();
                tokio::task::spawn_blocking(move || rb.open_or_rebuild()).await??;
            }
            if call.tool == "incident_intelligence_tool" {
                let ix = state.search.incidents.clone();
                tokio::task::spawn_blocking(move || ix.open_and_reconcile()).await??;
            }
            // Shell access to DATA_DIR is the operator's.
            let res = state
                .gateway
                .execute(&crate::gateway::auth::Principal::Operator, call)
                .await;
            let store = state.store.clone();
            tokio::task::spawn_blocking(move || store.shutdown()).await?;
            res.map_err(anyhow::Error::from)
        })?
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// `key=value` pairs of `--input` as the params' `inputs` (values as text; the job's input
/// kinds convert them).
fn job_inputs(pairs: &[String]) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let mut out = serde_json::Map::new();
    for p in pairs {
        let Some((k, v)) = p.split_once('=') else {
            bail!("--input {p}: use KEY=VALUE");
        };
        out.insert(
            k.trim().to_string(),
            serde_json::Value::String(v.to_string()),
        );
    }
    Ok(out)
}

fn job(settings: &Settings, command: JobCommand) -> anyhow::Result<()> {
    let (agent, first) = match &command {
        JobCommand::List { .. } => (None, ("list_tasks", serde_json::json!({}))),
        JobCommand::Run {
            id,
            dry_run,
            inputs,
            agent,
            ..
        } => (
            agent.clone(),
            (
                "start_task",
                serde_json::json!({"task_id": id, "inputs": job_inputs(inputs)?, "dry_run": dry_run}),
            ),
        ),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let server = running_server(settings);
    let local = match &server {
        Some(_) => None,
        None => {
            let settings = settings.clone();
            Some(rt.block_on(async move {
                crate::app::AppState::open(
                    settings,
                    std::sync::Arc::new(crate::kernel::clock::SystemClock),
                )
            })?)
        }
    };
    let exec = |action: &str, params: serde_json::Value| -> anyhow::Result<serde_json::Value> {
        let call = serde_json::json!({"tool": "job_orchestrator_tool", "action": action,
            "params": params, "agent_id": agent});
        match (&server, &local) {
            (Some(info), _) => Ok(call_server(
                settings,
                info,
                reqwest::Method::POST,
                "/v1/tools/execute",
                Some(call),
            )?["result"]
                .clone()),
            (None, Some(state)) => {
                let call: crate::gateway::ToolCall = serde_json::from_value(call)?;
                let gw = state.gateway.clone();
                rt.block_on(async move {
                    gw.execute(&crate::gateway::auth::Principal::Operator, call)
                        .await
                })
                .map_err(anyhow::Error::from)
            }
            (None, None) => bail!("no sofiia to ask"),
        }
    };
    let result = (|| -> anyhow::Result<bool> {
        let out = exec(first.0, first.1)?;
        match command {
            JobCommand::List { json } => {
                if json {
                    println!("{}", serde_json::to_string_pretty(&out)?);
                } else {
                    print_tasks(&out);
                }
                Ok(true)
            }
            JobCommand::Run { json, .. } => {
                let id = out["job_run_id"].as_str().unwrap_or_default().to_string();
                eprintln!("started {id} ({})", out["status"].as_str().unwrap_or("?"));
                let run = loop {
                    let r = exec("get_task", serde_json::json!({"job_run_id": id}))?;
                    let st = r["status"].as_str().unwrap_or("");
                    if !matches!(st, "running" | "queued") {
                        break r;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(200));
                };
                if json {
                    println!("{}", serde_json::to_string_pretty(&run)?);
                } else {
                    print_run(&run);
                }
                Ok(run["status"] == "succeeded")
            }
        }
    })();
    if let Some(state) = local {
        let store = state.store.clone();
        rt.block_on(async move { tokio::task::spawn_blocking(move || store.shutdown()).await })?;
    }
    if !result? {
        std::process::exit(1);
    }
    Ok(())
}

fn print_tasks(out: &serde_json::Value) {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    for t in out["tasks"].as_array().into_iter().flatten() {
        let sched = match t["schedule"].as_object() {
            Some(o) => format!("{} ({} {})", s(&o["words"]), s(&o["cron"]), s(&o["tz"])),
            None => "manual only".into(),
        };
        let next = t["next_fires"][0].as_str().unwrap_or("-");
        let last = t["last_run"]["summary"].as_str().unwrap_or("");
        println!(
            "{:<32} {:<10} next {}  {}{}",
            s(&t["id"]),
            s(&t["status"]),
            next,
            sched,
            if t["enabled"] == false {
                " [disabled]"
            } else {
                ""
            }
        );
        if !last.is_empty() {
            println!("{:<32} last: {last}", "");
        }
    }
}

fn print_run(r: &serde_json::Value) {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    println!(
        "{} {} {} in {} ms{}: {}",
        s(&r["id"]),
        s(&r["job"]),
        s(&r["status"]),
        r["duration_ms"],
        if r["dry_run"] == true {
            " (dry run)"
        } else {
            ""
        },
        s(&r["summary"])
    );
    for a in r["artifacts"].as_array().into_iter().flatten() {
        println!("  wrote {}", a.as_str().unwrap_or(""));
    }
    for w in r["would_write"].as_array().into_iter().flatten() {
        println!(
            "  would write {} ({} bytes, sha256 {})",
            s(&w["path"]),
            w["bytes"],
            s(&w["sha256"])
        );
        for line in s(&w["preview"]).lines().take(12) {
            println!("    | {line}");
        }
    }
    if let Some(e) = r["error"].as_str() {
        println!("  error: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::ProgressLine;
    use crate::transfer::{Progress, Step};
    use std::time::Duration;

    fn at(lines: u64, finished: bool) -> Progress<'static> {
        Progress {
            step: Step::Write,
            file: "events.jsonl",
            lines,
            done_bytes: lines * 10,
            total_bytes: 1000,
            finished,
        }
    }

    #[test]
    fn a_terminal_gets_one_redrawn_line_at_most_ten_times_a_second() {
        let mut p = ProgressLine::new(true);
        let t0 = p.started;
        let first = p.render(&at(10, false), t0).unwrap();
        assert_eq!(
            first,
            "\rimport: writing events.jsonl: 10 lines, 10% in 0.0 s\x1b[K"
        );
        assert_eq!(
            p.render(&at(20, true), t0 + Duration::from_millis(50)),
            None
        );
        let later = p.render(&at(30, false), t0 + Duration::from_millis(150));
        assert!(later
            .unwrap()
            .starts_with("\rimport: writing events.jsonl: 30 lines, 30%"));
    }

    #[test]
    fn a_log_gets_plain_lines_every_few_seconds_and_at_the_end_of_each_file() {
        let mut p = ProgressLine::new(false);
        let t0 = p.started;
        let so_far = p.render(&at(10, false), t0).unwrap();
        assert_eq!(
            so_far,
            "import: writing events.jsonl: 10 lines so far, 10% in 0.0 s\n"
        );
        assert_eq!(p.render(&at(20, false), t0 + Duration::from_secs(1)), None);
        let done = p
            .render(&at(40, true), t0 + Duration::from_secs(2))
            .unwrap();
        assert_eq!(done, "import: wrote events.jsonl: 40 lines, 40% in 2.0 s\n");
        assert!(p
            .render(&at(50, false), t0 + Duration::from_secs(8))
            .is_some());
        for line in [so_far, done] {
            assert!(
                !line.trim_end_matches('\n').chars().any(char::is_control),
                "{line:?}"
            );
        }
    }
}
