//! Settings, layered as command-line flag > environment > config file > built-in default.
//!
//! The file is `CONFIG_DIR/sofiia.yml` (optional). `CONFIG_DIR` defaults to `./config` when that
//! folder exists. Every bad value is an error that names the variable or the file and field.

pub mod edge;
pub mod policy;

pub use edge::Edge;

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Deployment environment: controls auth strictness and CORS in later rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Env {
    /// A developer's laptop.
    Dev,
    /// A staging node.
    Staging,
    /// Production.
    Prod,
}

impl Env {
    /// Parse `dev|staging|prod` (case-insensitive; `development`/`production` accepted).
    pub fn parse(s: &str) -> Option<Env> {
        match s.trim().to_ascii_lowercase().as_str() {
            "dev" | "development" | "local" => Some(Env::Dev),
            "staging" | "stage" => Some(Env::Staging),
            "prod" | "production" => Some(Env::Prod),
            _ => None,
        }
    }
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Env::Dev => "dev",
            Env::Staging => "staging",
            Env::Prod => "prod",
        }
    }
}

/// Values given on the command line (highest precedence). `None` = not given.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub data_dir: Option<PathBuf>,
    pub config_dir: Option<PathBuf>,
    pub env: Option<String>,
    pub build_id: Option<String>,
}

/// The resolved settings sofiia runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Interface to bind (`HOST`, default `127.0.0.1`: only this machine can connect).
    pub host: String,
    /// HTTP port (`PORT`, default 8002; 0 picks a free port).
    pub port: u16,
    /// Where every record lives (`DATA_DIR`, default `./data`).
    pub data_dir: PathBuf,
    /// Where policy files live (`CONFIG_DIR`, default `./config` when present).
    pub config_dir: Option<PathBuf>,
    /// `ENV`: dev, staging or prod.
    pub env: Env,
    /// `BUILD_ID`: git SHA or build id shown in health endpoints.
    pub build_id: String,
    /// `INCIDENT_ARTIFACTS_DIR`: artifact files (default `DATA_DIR/incidents`).
    pub artifacts_dir: PathBuf,
    /// Backend selectors of the old stack (`ALERT_BACKEND`, …) as given; reported, not used.
    pub legacy_backends: Vec<(String, String)>,
    /// `SOFIIA_CHECKPOINT_MS`: longest time writes stay only in the write-ahead log before a
    /// checkpoint folds them into the redb file (default 500). Durability does not depend on
    /// it; it bounds log replay after a crash.
    pub checkpoint_ms: u64,
    /// `SOFIIA_CONSOLE_API_KEY`: the operator's key (environment only; never in a file).
    pub console_api_key: Option<String>,
    /// `CORS_ORIGINS`: origins whose web pages may call, besides the console's own and
    /// loopback pages (comma-separated; `*` any). Every other origin is refused, in every mode.
    pub cors_origins: Vec<String>,
    /// Runbook folders searched besides `DATA_DIR/runbooks` (`RUNBOOK_DIRS`, comma-separated;
    /// `runbook_dirs` in the file).
    pub runbook_dirs: Vec<PathBuf>,
    /// `SOFIIA_RUNBOOKS_POLL_MS`: how often runbook folders are checked for changed files
    /// (default 2000).
    pub runbooks_poll_ms: u64,
    /// `RUN_TTL_SEC`: finished graph runs are purged after this long (failed ones after four
    /// times it). Default 86400.
    pub run_ttl_sec: u64,
    /// `SOFIIA_GRAPH_WORKERS`: runs executed at the same time (default 4).
    pub graph_workers: usize,
    /// `SOFIIA_JOB_HOLD_MS`: for crash tests, each job run waits this long after its record
    /// is written before it starts working (default 0).
    pub job_hold_ms: u64,
    /// `INCIDENT_MAX_TIME_WINDOW_H`: the longest analysis window incident triage uses; longer
    /// ones are clamped to it (default 24).
    pub incident_max_time_window_h: u64,
    /// `SOFIIA_SOURCE_TIMEOUT_MS`: longest one call to an observability source (Prometheus,
    /// Loki, traces) may take, every attempt included (default 10000). Incident triage gives
    /// each source call at most this, and never more than its run has left.
    pub source_timeout_ms: u64,
    /// `SUPERVISOR_INTERNAL_KEY`: when set, required on `/v1/graphs…` and `/v1/runs…` (the
    /// operator key is accepted too). Environment only.
    pub supervisor_internal_key: Option<String>,
    /// `ALLOWED_HOSTS`: `Host` names accepted besides loopback names and the bound address
    /// (comma-separated; a guard against DNS rebinding). `*` accepts any.
    pub allowed_hosts: Vec<String>,
    /// Limits of the HTTP edge (connections, read timeouts, shutdown grace).
    pub edge: Edge,
}

/// A setting that cannot be used; the message names the variable, flag or file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Shortest operator key accepted, in characters, in every env: a short key is weak anywhere.
pub const MIN_OPERATOR_KEY_CHARS: usize = 16;

/// Refuse an operator key shorter than [`MIN_OPERATOR_KEY_CHARS`].
pub fn check_operator_key(key: &str) -> Result<(), ConfigError> {
    if key.chars().count() < MIN_OPERATOR_KEY_CHARS {
        return Err(ConfigError(format!(
            "SOFIIA_CONSOLE_API_KEY: must be at least {MIN_OPERATOR_KEY_CHARS} characters (try \
             `openssl rand -base64 24`)"
        )));
    }
    Ok(())
}

/// The optional settings file `CONFIG_DIR/sofiia.yml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    host: Option<String>,
    port: Option<u16>,
    data_dir: Option<PathBuf>,
    env: Option<String>,
    build_id: Option<String>,
    incident_artifacts_dir: Option<PathBuf>,
    checkpoint_ms: Option<u64>,
    runbook_dirs: Option<Vec<PathBuf>>,
    runbooks_poll_ms: Option<u64>,
    run_ttl_sec: Option<u64>,
    graph_workers: Option<usize>,
    job_hold_ms: Option<u64>,
    incident_max_time_window_h: Option<u64>,
    source_timeout_ms: Option<u64>,
    allowed_hosts: Option<Vec<String>>,
    max_connections: Option<usize>,
    header_timeout_ms: Option<u64>,
    body_idle_timeout_ms: Option<u64>,
    body_timeout_ms: Option<u64>,
    shutdown_grace_ms: Option<u64>,
    write_timeout_ms: Option<u64>,
    ws_ping_ms: Option<u64>,
}

/// A number from the environment (`VAR: 'v' is not <what>`) or the file (`file: key: n is not
/// between lo and hi`), inside `range`, else `default`.
fn ranged<T>(
    var: &impl Fn(&str) -> Option<String>,
    (name, unit): (&str, Option<&str>),
    (file_name, key, from_file): (&str, &str, Option<T>),
    range: std::ops::RangeInclusive<T>,
    default: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let (lo, hi) = (range.start(), range.end());
    let what = match unit {
        Some(u) => format!("a number of {u} ({lo}-{hi})"),
        None => format!("a number {lo}-{hi}"),
    };
    match (var(name), from_file) {
        (Some(v), _) => v
            .trim()
            .parse::<T>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| ConfigError(format!("{name}: '{v}' is not {what}"))),
        (None, Some(n)) if !range.contains(&n) => Err(ConfigError(format!(
            "{file_name}: {key}: {n} is not between {} and {}",
            range.start(),
            range.end()
        ))),
        (None, Some(n)) => Ok(n),
        (None, None) => Ok(default),
    }
}

/// A comma-separated list, trimmed, empty items dropped.
fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// Name of the settings file inside `CONFIG_DIR`.
pub const SETTINGS_FILE: &str = "sofiia.yml";

/// Variables of the old stack that name a storage backend; sofiia has one (redb).
pub const LEGACY_BACKEND_VARS: [&str; 3] = ["ALERT_BACKEND", "AUDIT_BACKEND", "INCIDENT_BACKEND"];

/// Parse a YAML document into `T` with strict YAML 1.2-style scalars.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, ConfigError> {
    let opts = serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
    };
    serde_saphyr::from_str_with_options(text, opts)
        .map_err(|e| ConfigError(format!("{}: {e}", path.display())))
}

impl Settings {
    /// Resolve settings from flags, the process environment, the file and defaults.
    pub fn load(flags: &Flags) -> Result<Settings, ConfigError> {
        Self::load_with(flags, &|k| std::env::var(k).ok())
    }

    /// Resolve settings with an injected environment (tests).
    pub fn load_with(
        flags: &Flags,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let var = |k: &str| env(k).filter(|v| !v.trim().is_empty());

        let config_dir = match (&flags.config_dir, var("CONFIG_DIR")) {
            (Some(d), _) => Some(d.clone()),
            (None, Some(d)) => Some(PathBuf::from(d)),
            (None, None) => {
                let d = PathBuf::from("config");
                d.is_dir().then_some(d)
            }
        };
        if let Some(d) = &config_dir {
            if !d.is_dir() {
                return Err(ConfigError(format!(
                    "CONFIG_DIR: {} is not a directory",
                    d.display()
                )));
            }
        }
        let file: FileSettings = match &config_dir {
            Some(d) => {
                let path = d.join(SETTINGS_FILE);
                match std::fs::read_to_string(&path) {
                    Ok(text) if text.trim().is_empty() => FileSettings::default(),
                    Ok(text) => {
                        parse_yaml::<Option<FileSettings>>(&path, &text)?.unwrap_or_default()
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileSettings::default(),
                    Err(e) => {
                        return Err(ConfigError(format!("{}: {e}", path.display())));
                    }
                }
            }
            None => FileSettings::default(),
        };
        let file_name = config_dir
            .as_ref()
            .map(|d| d.join(SETTINGS_FILE).display().to_string())
            .unwrap_or_default();

        let host = flags
            .host
            .clone()
            .or_else(|| var("HOST"))
            .or(file.host)
            .unwrap_or_else(|| "127.0.0.1".into());
        if host.parse::<std::net::IpAddr>().is_err() && host != "localhost" {
            return Err(ConfigError(format!(
                "HOST: '{host}' is not an IP address (try 127.0.0.1 or 0.0.0.0)"
            )));
        }

        let port = match (flags.port, var("PORT")) {
            (Some(p), _) => p,
            (None, Some(p)) => p
                .trim()
                .parse::<u16>()
                .map_err(|_| ConfigError(format!("PORT: '{p}' is not a port number (0-65535)")))?,
            (None, None) => file.port.unwrap_or(8002),
        };

        let data_dir = flags
            .data_dir
            .clone()
            .or_else(|| var("DATA_DIR").map(PathBuf::from))
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("data"));
        if data_dir.exists() && !data_dir.is_dir() {
            return Err(ConfigError(format!(
                "DATA_DIR: {} exists and is not a directory",
                data_dir.display()
            )));
        }

        let (env_src, env_raw) = match (&flags.env, var("ENV"), &file.env) {
            (Some(e), _, _) => ("--env", e.clone()),
            (None, Some(e), _) => ("ENV", e),
            (None, None, Some(e)) => (file_name.as_str(), e.clone()),
            (None, None, None) => ("", "dev".to_string()),
        };
        let env_val = Env::parse(&env_raw).ok_or_else(|| {
            let field = if env_src == file_name {
                format!("{env_src}: env")
            } else {
                env_src.to_string()
            };
            ConfigError(format!(
                "{field}: '{env_raw}' is not one of dev, staging, prod"
            ))
        })?;

        let build_id = flags
            .build_id
            .clone()
            .or_else(|| var("BUILD_ID"))
            .or(file.build_id)
            .unwrap_or_else(|| "local".into());

        let artifacts_dir = var("INCIDENT_ARTIFACTS_DIR")
            .map(PathBuf::from)
            .or(file.incident_artifacts_dir)
            .unwrap_or_else(|| data_dir.join("incidents"));

        let checkpoint_ms = ranged(
            &var,
            ("SOFIIA_CHECKPOINT_MS", Some("milliseconds")),
            (&file_name, "checkpoint_ms", file.checkpoint_ms),
            1..=3_600_000,
            500,
        )?;

        let runbook_dirs = match var("RUNBOOK_DIRS") {
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect(),
            None => file.runbook_dirs.unwrap_or_default(),
        };
        let runbooks_poll_ms = ranged(
            &var,
            ("SOFIIA_RUNBOOKS_POLL_MS", Some("milliseconds")),
            (&file_name, "runbooks_poll_ms", file.runbooks_poll_ms),
            100..=3_600_000,
            2000,
        )?;
        let run_ttl_sec = ranged(
            &var,
            ("RUN_TTL_SEC", Some("seconds")),
            (&file_name, "run_ttl_sec", file.run_ttl_sec),
            60..=31_536_000,
            86_400,
        )?;
        let incident_max_time_window_h = ranged(
            &var,
            ("INCIDENT_MAX_TIME_WINDOW_H", Some("hours")),
            (
                &file_name,
                "incident_max_time_window_h",
                file.incident_max_time_window_h,
            ),
            1..=720,
            24,
        )?;
        let source_timeout_ms = ranged(
            &var,
            ("SOFIIA_SOURCE_TIMEOUT_MS", Some("milliseconds")),
            (&file_name, "source_timeout_ms", file.source_timeout_ms),
            100..=600_000,
            10_000,
        )?;
        let graph_workers = ranged(
            &var,
            ("SOFIIA_GRAPH_WORKERS", None),
            (&file_name, "graph_workers", file.graph_workers),
            1..=64,
            4,
        )?;
        let job_hold_ms = ranged(
            &var,
            ("SOFIIA_JOB_HOLD_MS", Some("milliseconds")),
            (&file_name, "job_hold_ms", file.job_hold_ms),
            0..=600_000,
            0,
        )?;

        let defaults = Edge::default();
        let edge = Edge {
            max_connections: ranged(
                &var,
                ("SOFIIA_MAX_CONNECTIONS", None),
                (&file_name, "max_connections", file.max_connections),
                8..=100_000,
                defaults.max_connections,
            )?,
            header_timeout_ms: ranged(
                &var,
                ("SOFIIA_HEADER_TIMEOUT_MS", Some("milliseconds")),
                (&file_name, "header_timeout_ms", file.header_timeout_ms),
                100..=600_000,
                defaults.header_timeout_ms,
            )?,
            body_idle_timeout_ms: ranged(
                &var,
                ("SOFIIA_BODY_IDLE_TIMEOUT_MS", Some("milliseconds")),
                (
                    &file_name,
                    "body_idle_timeout_ms",
                    file.body_idle_timeout_ms,
                ),
                100..=600_000,
                defaults.body_idle_timeout_ms,
            )?,
            body_timeout_ms: ranged(
                &var,
                ("SOFIIA_BODY_TIMEOUT_MS", Some("milliseconds")),
                (&file_name, "body_timeout_ms", file.body_timeout_ms),
                100..=3_600_000,
                defaults.body_timeout_ms,
            )?,
            write_timeout_ms: ranged(
                &var,
                ("SOFIIA_WRITE_TIMEOUT_MS", Some("milliseconds")),
                (&file_name, "write_timeout_ms", file.write_timeout_ms),
                100..=3_600_000,
                defaults.write_timeout_ms,
            )?,
            ws_ping_ms: ranged(
                &var,
                ("SOFIIA_WS_PING_MS", Some("milliseconds")),
                (&file_name, "ws_ping_ms", file.ws_ping_ms),
                100..=600_000,
                defaults.ws_ping_ms,
            )?,
            shutdown_grace_ms: ranged(
                &var,
                ("SOFIIA_SHUTDOWN_GRACE_MS", Some("milliseconds")),
                (&file_name, "shutdown_grace_ms", file.shutdown_grace_ms),
                0..=600_000,
                defaults.shutdown_grace_ms,
            )?,
        };
        let allowed_hosts = match var("ALLOWED_HOSTS") {
            Some(v) => split_list(&v),
            None => file.allowed_hosts.unwrap_or_default(),
        }
        .into_iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();

        let console_api_key = var("SOFIIA_CONSOLE_API_KEY").map(|k| k.trim().to_string());
        if let Some(k) = &console_api_key {
            check_operator_key(k)?;
        }

        let mut legacy_backends = Vec::new();
        for k in LEGACY_BACKEND_VARS {
            if let Some(v) = var(k) {
                legacy_backends.push((k.to_string(), v));
            }
        }

        Ok(Settings {
            host,
            port,
            data_dir,
            config_dir,
            env: env_val,
            build_id,
            artifacts_dir,
            legacy_backends,
            checkpoint_ms,
            console_api_key,
            cors_origins: var("CORS_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(|o| o.trim().trim_end_matches('/').to_string())
                        .filter(|o| !o.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            runbook_dirs,
            runbooks_poll_ms,
            run_ttl_sec,
            graph_workers,
            job_hold_ms,
            incident_max_time_window_h,
            source_timeout_ms,
            supervisor_internal_key: var("SUPERVISOR_INTERNAL_KEY")
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty()),
            allowed_hosts,
            edge,
        })
    }

    /// The built-in defaults for `data_dir`, on 127.0.0.1 with a free port and no config
    /// folder (tests and benchmarks start from this and change what they need).
    pub fn ephemeral(data_dir: &Path, build_id: &str) -> Settings {
        Settings {
            host: "127.0.0.1".into(),
            port: 0,
            data_dir: data_dir.to_path_buf(),
            config_dir: None,
            env: Env::Dev,
            build_id: build_id.into(),
            artifacts_dir: data_dir.join("incidents"),
            legacy_backends: vec![],
            checkpoint_ms: 500,
            console_api_key: None,
            cors_origins: vec![],
            runbook_dirs: vec![],
            runbooks_poll_ms: 2000,
            run_ttl_sec: 86_400,
            graph_workers: 4,
            job_hold_ms: 0,
            incident_max_time_window_h: 24,
            source_timeout_ms: 10_000,
            supervisor_internal_key: None,
            allowed_hosts: vec![],
            edge: Edge::default(),
        }
    }

    /// Every runbook folder: `DATA_DIR/runbooks` first, then the configured ones.
    pub fn runbook_roots(&self) -> Vec<PathBuf> {
        let mut v = vec![self.data_dir.join("runbooks")];
        for d in &self.runbook_dirs {
            if !v.contains(d) {
                v.push(d.clone());
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(flags: &Flags, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load_with(flags, &move |k| m.get(k).cloned())
    }

    #[test]
    fn precedence_flag_env_file_default() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(SETTINGS_FILE),
            "port: 9000\nenv: staging\nbuild_id: file\n",
        )
        .unwrap();
        let cd = dir.path().to_str().unwrap();
        let s = load(&Flags::default(), &[("CONFIG_DIR", cd)]).unwrap();
        assert_eq!(
            (s.port, s.env, s.build_id.as_str()),
            (9000, Env::Staging, "file")
        );
        let s = load(
            &Flags::default(),
            &[("CONFIG_DIR", cd), ("PORT", "9100"), ("ENV", "prod")],
        )
        .unwrap();
        assert_eq!((s.port, s.env), (9100, Env::Prod));
        let flags = Flags {
            port: Some(9200),
            env: Some("dev".into()),
            ..Default::default()
        };
        let s = load(&flags, &[("CONFIG_DIR", cd), ("PORT", "9100")]).unwrap();
        assert_eq!((s.port, s.env), (9200, Env::Dev));
        let s = load(
            &Flags {
                config_dir: Some("/nonexistent-sofiia".into()),
                ..Default::default()
            },
            &[],
        );
        assert!(s.unwrap_err().0.contains("CONFIG_DIR"));
    }

    #[test]
    fn bad_values_name_their_source() {
        let e = load(&Flags::default(), &[("PORT", "eighty")]).unwrap_err();
        assert!(e.0.starts_with("PORT:"), "{e}");
        let e = load(&Flags::default(), &[("ENV", "moon")]).unwrap_err();
        assert!(e.0.starts_with("ENV:"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SETTINGS_FILE), "port: 1\nprot: 2\n").unwrap();
        let e = load(
            &Flags::default(),
            &[("CONFIG_DIR", dir.path().to_str().unwrap())],
        )
        .unwrap_err();
        assert!(e.0.contains("sofiia.yml") && e.0.contains("prot"), "{e}");
        std::fs::write(dir.path().join(SETTINGS_FILE), "env: moon\n").unwrap();
        let e = load(
            &Flags::default(),
            &[("CONFIG_DIR", dir.path().to_str().unwrap())],
        )
        .unwrap_err();
        assert!(e.0.contains("sofiia.yml: env"), "{e}");
    }

    #[test]
    fn a_short_operator_key_is_refused_in_every_env() {
        for env in ["dev", "staging", "prod"] {
            let e = load(
                &Flags::default(),
                &[("ENV", env), ("SOFIIA_CONSOLE_API_KEY", "abcde")],
            )
            .unwrap_err();
            assert_eq!(
                e.0,
                "SOFIIA_CONSOLE_API_KEY: must be at least 16 characters (try `openssl rand -base64 24`)"
            );
            // Padding does not count.
            let e = load(
                &Flags::default(),
                &[
                    ("ENV", env),
                    ("SOFIIA_CONSOLE_API_KEY", "  0123456789abcde  "),
                ],
            )
            .unwrap_err();
            assert!(e.0.starts_with("SOFIIA_CONSOLE_API_KEY:"), "{e}");
            let s = load(
                &Flags::default(),
                &[("ENV", env), ("SOFIIA_CONSOLE_API_KEY", "0123456789abcdef")],
            )
            .unwrap();
            assert_eq!(s.console_api_key.as_deref(), Some("0123456789abcdef"));
        }
    }

    #[test]
    fn the_source_timeout_comes_from_env_or_file_within_its_range() {
        assert_eq!(
            load(&Flags::default(), &[]).unwrap().source_timeout_ms,
            10_000
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(SETTINGS_FILE),
            "source_timeout_ms: 2500
",
        )
        .unwrap();
        let cd = dir.path().to_str().unwrap();
        let s = load(&Flags::default(), &[("CONFIG_DIR", cd)]).unwrap();
        assert_eq!(s.source_timeout_ms, 2500);
        let s = load(
            &Flags::default(),
            &[("CONFIG_DIR", cd), ("SOFIIA_SOURCE_TIMEOUT_MS", "4000")],
        )
        .unwrap();
        assert_eq!(s.source_timeout_ms, 4000);
        let e = load(&Flags::default(), &[("SOFIIA_SOURCE_TIMEOUT_MS", "50")]).unwrap_err();
        assert!(e.0.starts_with("SOFIIA_SOURCE_TIMEOUT_MS:"), "{e}");
        std::fs::write(
            dir.path().join(SETTINGS_FILE),
            "source_timeout_ms: 0
",
        )
        .unwrap();
        let e = load(&Flags::default(), &[("CONFIG_DIR", cd)]).unwrap_err();
        assert!(e.0.contains("source_timeout_ms"), "{e}");
    }

    #[test]
    fn artifacts_dir_follows_data_dir() {
        // A path that does not exist yet (created at start), whatever this machine's /tmp holds.
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let s = load(&Flags::default(), &[("DATA_DIR", data.to_str().unwrap())]).unwrap();
        assert_eq!(s.artifacts_dir, data.join("incidents"));
        let s = load(&Flags::default(), &[("INCIDENT_BACKEND", "postgres")]).unwrap();
        assert_eq!(
            s.legacy_backends,
            vec![("INCIDENT_BACKEND".to_string(), "postgres".to_string())]
        );
    }
}
