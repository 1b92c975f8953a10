//! observability_tool against a real Prometheus (Debian's `prometheus` package, 2.42) that
//! scrapes a target the test controls, through sofiia's HTTP tool endpoint as an agent calls it.
//!
//! The harness is reusable from other test modules (`crate::realprom::…`):
//!
//! ```ignore
//! let Some(bin) = prometheus_or_skip("my_test") else { return };
//! let target = Target::start("router", 20.0, 0.02, 0.2).await;   // 20 req/s, 2% 5xx, 200 ms
//! let prom = Prom::start(&bin, &[&target], Some("legacy")).await; // + a job on a closed port
//! let app = spawn_with_prometheus(prom.url()).await;              // sofiia, env prod → prom
//! ```
//!
//! Without the binary the tests print a "skipped" line and pass, unless
//! `SOFIIA_REQUIRE_PROMETHEUS=1` (CI), where they fail.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use sofiia::kernel::clock::SystemClock;

use crate::helpers::*;
use crate::observability::tool as observability;

// ---------------------------------------------------------------------------------------------
// Finding Prometheus, and the skip rule.

/// `/usr/bin/prometheus`, else `prometheus` on `PATH`.
pub fn prometheus_binary() -> Option<PathBuf> {
    let debian = PathBuf::from("/usr/bin/prometheus");
    if debian.is_file() {
        return Some(debian);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("prometheus"))
            .find(|p| p.is_file())
    })
}

/// The Prometheus binary, or `None` after printing a "skipped" line (straight to stderr, so
/// it shows without `--nocapture`). With `SOFIIA_REQUIRE_PROMETHEUS=1` a missing binary fails
/// the test instead.
pub fn prometheus_or_skip(test: &str) -> Option<PathBuf> {
    let required = std::env::var("SOFIIA_REQUIRE_PROMETHEUS").as_deref() == Ok("1");
    let found = skip_rule(test, prometheus_binary(), required);
    if found.is_none() {
        let _ = writeln!(
            std::io::stderr(),
            "{test}: skipped: install Debian's prometheus (apt-get install --no-install-recommends \
             prometheus) to run the real-Prometheus tests; SOFIIA_REQUIRE_PROMETHEUS=1 makes this a failure"
        );
    }
    found
}

/// The binary if found; none (skip) if not, unless it is required (then a panic).
fn skip_rule(test: &str, found: Option<PathBuf>, required: bool) -> Option<PathBuf> {
    if found.is_none() && required {
        panic!(
            "{test}: SOFIIA_REQUIRE_PROMETHEUS=1 but no Prometheus binary (neither /usr/bin/prometheus \
             nor prometheus on PATH): apt-get install --no-install-recommends prometheus"
        );
    }
    found
}

// ---------------------------------------------------------------------------------------------
// The scraped target.

/// Upper bounds of `http_request_duration_seconds_bucket` (plus `+Inf`).
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Counter state: totals so far plus the rates in force since `since`. Values are computed
/// from elapsed time × rates and folded in whenever they are read or the rates change, so
/// counters only ever go up.
struct Counters {
    since: Instant,
    rps: f64,
    error_ratio: f64,
    latency_s: f64,
    ok: f64,
    errors: f64,
    /// Cumulative per bucket of [`BUCKETS`] (`+Inf` is the total).
    buckets: [f64; BUCKETS.len()],
    sum_s: f64,
}

impl Counters {
    fn roll(&mut self) {
        let now = Instant::now();
        let n = self.rps * now.duration_since(self.since).as_secs_f64();
        self.since = now;
        self.errors += n * self.error_ratio;
        self.ok += n * (1.0 - self.error_ratio);
        for (b, le) in self.buckets.iter_mut().zip(BUCKETS) {
            if self.latency_s <= le {
                *b += n;
            }
        }
        self.sum_s += n * self.latency_s;
    }
}

/// An HTTP server on 127.0.0.1 serving `/metrics` (Prometheus text format) for one service:
/// `http_requests_total{service, code="200"|"500"}` growing at a settable rate and error
/// ratio, and `http_request_duration_seconds` (a histogram) where every request takes the
/// settable latency. Stops when dropped.
pub struct Target {
    service: String,
    addr: SocketAddr,
    counters: Arc<Mutex<Counters>>,
    task: tokio::task::JoinHandle<()>,
}

impl Target {
    /// Start serving `service` at `requests_per_s` requests a second, `error_ratio` of them
    /// 500s, each taking `latency_s` seconds. `service` should be a plain name (letters,
    /// digits, `-`, `_`): it is a label value, a job name and sofiia's `service`.
    pub async fn start(
        service: &str,
        requests_per_s: f64,
        error_ratio: f64,
        latency_s: f64,
    ) -> Target {
        assert!(
            !service.is_empty()
                && service
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "Target service names are plain: {service:?}"
        );
        let counters = Arc::new(Mutex::new(Counters {
            since: Instant::now(),
            rps: requests_per_s,
            error_ratio,
            latency_s,
            ok: 0.0,
            errors: 0.0,
            buckets: [0.0; BUCKETS.len()],
            sum_s: 0.0,
        }));
        let svc = service.to_string();
        let c = counters.clone();
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let text = exposition(&svc, &c);
                async move {
                    (
                        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                        text,
                    )
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        Target {
            service: service.to_string(),
            addr,
            counters,
            task,
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// `127.0.0.1:port`, as a scrape target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Change the request rate and error ratio from now on (counters keep growing from where
    /// they are).
    pub fn set_rates(&self, requests_per_s: f64, error_ratio: f64) {
        let mut c = self.counters.lock().unwrap();
        c.roll();
        c.rps = requests_per_s;
        c.error_ratio = error_ratio;
    }

    /// Change the latency of requests from now on.
    pub fn set_latency(&self, latency_s: f64) {
        let mut c = self.counters.lock().unwrap();
        c.roll();
        c.latency_s = latency_s;
    }

    /// What `histogram_quantile(0.95, …) * 1000` answers once the rate window only holds
    /// requests at the current latency: Prometheus interpolates linearly inside the bucket
    /// that holds them (`lower + 0.95 × (upper − lower)`).
    pub fn expected_p95_ms(&self) -> f64 {
        let l = self.counters.lock().unwrap().latency_s;
        expected_quantile_ms(l, 0.95)
    }
}

/// The `q` quantile Prometheus reports (in ms) for a histogram over [`BUCKETS`] where every
/// observation is `latency_s`.
pub fn expected_quantile_ms(latency_s: f64, q: f64) -> f64 {
    let i = BUCKETS.iter().position(|le| latency_s <= *le);
    match i {
        // Above the last finite bound: Prometheus answers that bound.
        None => BUCKETS[BUCKETS.len() - 1] * 1000.0,
        Some(i) => {
            let lower = if i == 0 { 0.0 } else { BUCKETS[i - 1] };
            (lower + q * (BUCKETS[i] - lower)) * 1000.0
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn exposition(service: &str, counters: &Mutex<Counters>) -> String {
    let mut c = counters.lock().unwrap();
    c.roll();
    let total = c.ok + c.errors;
    let mut s = String::new();
    s.push_str("# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n");
    s.push_str(&format!(
        "http_requests_total{{service=\"{service}\",code=\"200\"}} {}\n",
        c.ok
    ));
    s.push_str(&format!(
        "http_requests_total{{service=\"{service}\",code=\"500\"}} {}\n",
        c.errors
    ));
    s.push_str(
        "# HELP http_request_duration_seconds Request latency.\n\
         # TYPE http_request_duration_seconds histogram\n",
    );
    for (le, n) in BUCKETS.iter().zip(c.buckets) {
        s.push_str(&format!(
            "http_request_duration_seconds_bucket{{service=\"{service}\",le=\"{le}\"}} {n}\n"
        ));
    }
    s.push_str(&format!(
        "http_request_duration_seconds_bucket{{service=\"{service}\",le=\"+Inf\"}} {total}\n"
    ));
    s.push_str(&format!(
        "http_request_duration_seconds_sum{{service=\"{service}\"}} {}\n",
        c.sum_s
    ));
    s.push_str(&format!(
        "http_request_duration_seconds_count{{service=\"{service}\"}} {total}\n"
    ));
    s
}

// ---------------------------------------------------------------------------------------------
// Prometheus itself.

/// The alert rules every [`Prom`] loads: `HighErrorRate` fires (no `for`) for any service whose
/// 5xx share over the last minute is above 5%; labels `service` and `severity: page`.
pub const ALERT_RULES: &str = r#"groups:
  - name: sofiia-realprom
    interval: 1s
    rules:
      - alert: HighErrorRate
        expr: 'sum by (service) (rate(http_requests_total{code=~"5.."}[1m])) / sum by (service) (rate(http_requests_total[1m])) > 0.05'
        for: 0s
        labels:
          severity: page
        annotations:
          summary: '{{ $labels.service }}: 5xx above 5%'
"#;

/// How long [`Prom::start`] waits for Prometheus to be ready and to have scraped every target
/// twice (its scrape manager only picks targets up a few seconds after start).
pub const READY_WITHIN: Duration = Duration::from_secs(90);

/// A Prometheus child process on a free loopback port with its TSDB in a temporary dir,
/// scraping every second. Killed (and reaped) when dropped.
pub struct Prom {
    url: String,
    child: std::process::Child,
    dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl Drop for Prom {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Prom {
    /// Start Prometheus with one scrape job per target (named after its service) and, when
    /// `dead_job` is given, a job of that name pointing at a closed port (`up` is 0 there);
    /// scrape and evaluation interval 1s, [`ALERT_RULES`] loaded. Returns once `/-/ready`
    /// answers and `rate()` has a sample for every target (and `up` exists for the dead job);
    /// panics with the tail of Prometheus's log if that takes longer than [`READY_WITHIN`].
    pub async fn start(bin: &Path, targets: &[&Target], dead_job: Option<&str>) -> Prom {
        let mut dir = tempfile::tempdir().unwrap();
        let mut cfg = String::from(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - rules.yml\nscrape_configs:\n",
        );
        for t in targets {
            cfg.push_str(&format!(
                "  - job_name: '{}'\n    static_configs:\n      - targets: ['{}']\n",
                t.service(),
                t.addr()
            ));
        }
        if let Some(job) = dead_job {
            cfg.push_str(&format!(
                "  - job_name: '{job}'\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
                free_port()
            ));
        }
        std::fs::write(dir.path().join("prometheus.yml"), cfg).unwrap();
        std::fs::write(dir.path().join("rules.yml"), ALERT_RULES).unwrap();

        // The port is free when picked but could be taken before Prometheus binds it: if
        // Prometheus exits before it is ready, try another port.
        let mut attempt = 0;
        let mut prom = loop {
            attempt += 1;
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
            let child = std::process::Command::new(bin)
                .arg(format!(
                    "--config.file={}",
                    dir.path().join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("tsdb").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .current_dir(dir.path())
                .stdin(std::process::Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let mut prom = Prom {
                url: format!("http://127.0.0.1:{port}"),
                child,
                dir,
                client: sofiia::net::client(),
            };
            match prom.wait_ready().await {
                Ok(()) => break prom,
                Err(exited) if exited && attempt < 3 => {
                    // Take the folder back (the failed child is reaped by Drop).
                    let d = std::mem::replace(&mut prom.dir, tempfile::tempdir().unwrap());
                    drop(prom);
                    let _ = std::fs::remove_dir_all(d.path().join("tsdb"));
                    dir = d;
                }
                Err(_) => panic!(
                    "Prometheus ({}) never became ready at {}:\n{}",
                    bin.display(),
                    prom.url,
                    prom.log_tail()
                ),
            }
        };
        let deadline = Instant::now() + READY_WITHIN;
        let mut wanted: Vec<String> = targets
            .iter()
            .map(|t| format!("rate(http_requests_total{{job=\"{}\"}}[1m])", t.service()))
            .collect();
        if let Some(job) = dead_job {
            wanted.push(format!("up{{job=\"{job}\"}}"));
        }
        for q in wanted {
            loop {
                let v = prom.query(&q).await;
                if v["data"]["result"]
                    .as_array()
                    .is_some_and(|r| !r.is_empty())
                {
                    break;
                }
                if Instant::now() > deadline {
                    panic!(
                        "Prometheus at {} has no sample for {q} after {READY_WITHIN:?} (last answer {v}):\n{}",
                        prom.url,
                        prom.log_tail()
                    );
                }
                if let Ok(Some(st)) = prom.child.try_wait() {
                    panic!("Prometheus exited ({st}):\n{}", prom.log_tail());
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        prom
    }

    /// Wait for `/-/ready`; `Err(true)` if the process exited first, `Err(false)` on timeout.
    async fn wait_ready(&mut self) -> Result<(), bool> {
        let deadline = Instant::now() + READY_WITHIN;
        let ready = format!("{}/-/ready", self.url);
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Err(true);
            }
            if let Ok(r) = self.client.get(&ready).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(false);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// An instant query straight to Prometheus (not through sofiia): its JSON envelope.
    pub async fn query(&self, expr: &str) -> Value {
        let mut u = reqwest::Url::parse(&format!("{}/api/v1/query", self.url)).unwrap();
        u.query_pairs_mut().append_pair("query", expr);
        match self.client.get(u).send().await {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }

    /// The last 40 lines of Prometheus's log (stdout and stderr).
    pub fn log_tail(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Wait (at most `within`) until Prometheus holds a sample of `series` newer than `t`
    /// (unix seconds) — e.g. after changing a target's rates.
    pub async fn wait_for_sample_after(&self, series: &str, t: f64, within: Duration) {
        let deadline = Instant::now() + within;
        let q = format!("max(timestamp({series}))");
        loop {
            let v = self.query(&q).await;
            let ts = v["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|s| s.parse::<f64>().ok());
            if ts.is_some_and(|ts| ts > t) {
                return;
            }
            if Instant::now() > deadline {
                panic!("no sample of {series} after {t} within {within:?} (last answer {v})");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// sofiia pointed at it.

/// Write a sofiia config dir at `root/config` and return its path: the repo's `config/` files,
/// plus `observability_sources.yml` with `envs: {prod: {prometheus: {url}}}` and a network
/// allowlist with the loopback hosts. Put it in the TempDir handed to `spawn_configured` (as
/// the other tests do) so it lives as long as the server:
///
/// ```ignore
/// let dir = tempfile::tempdir().unwrap();
/// let config = config_with_prometheus(dir.path(), prom.url());
/// // adjust files in `config` here (slo_policy.yml, logs…) if needed
/// let app = spawn_configured(dir, Arc::new(SystemClock), move |s| s.config_dir = Some(config)).await;
/// ```
pub fn config_with_prometheus(root: &Path, prometheus_url: &str) -> PathBuf {
    let config = root.join("config");
    std::fs::create_dir_all(&config).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for e in std::fs::read_dir(&repo).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yml") {
            std::fs::copy(&p, config.join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(
        config.join("observability_sources.yml"),
        format!("envs:\n  prod:\n    prometheus: {{url: \"{prometheus_url}\"}}\n"),
    )
    .unwrap();
    std::fs::write(
        config.join("network_allowlist.yml"),
        "hosts:\n  - localhost\n  - 127.0.0.1\n  - \"::1\"\n",
    )
    .unwrap();
    config
}

/// sofiia on a fresh data dir with [`config_with_prometheus`] as its config dir.
pub async fn spawn_with_prometheus(prometheus_url: &str) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_prometheus(dir.path(), prometheus_url);
    spawn_configured(dir, Arc::new(SystemClock), move |s| {
        s.config_dir = Some(config)
    })
    .await
}

/// The value of an instant-vector answer's first sample.
#[track_caller]
fn sample(result: &Value) -> f64 {
    match result["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
    {
        Some(v) => v,
        None => panic!("no sample in {result}"),
    }
}

#[track_caller]
fn near(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} ± {tol}"
    );
}

fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn rfc3339(unix: f64) -> String {
    // To the millisecond, as sofiia keeps times (and without f64 noise in the nanoseconds).
    let ms = (unix * 1000.0).round() as i128;
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).unwrap();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Tests.

/// The default error-ratio query of `config/slo_policy.yml` for `service`.
fn error_ratio_query(service: &str) -> String {
    format!(
        "sum(rate(http_requests_total{{service=\"{service}\",code=~\"5..\"}}[5m])) / \
         sum(rate(http_requests_total{{service=\"{service}\"}}[5m]))"
    )
}

#[test]
fn realprom_skip_rule() {
    let bin = PathBuf::from("/usr/bin/prometheus");
    assert_eq!(skip_rule("t", Some(bin.clone()), true), Some(bin.clone()));
    assert_eq!(skip_rule("t", Some(bin.clone()), false), Some(bin));
    assert_eq!(skip_rule("t", None, false), None);
    let required = std::panic::catch_unwind(|| skip_rule("t", None, true)).unwrap_err();
    let msg = required.downcast_ref::<String>().unwrap();
    assert!(msg.contains("SOFIIA_REQUIRE_PROMETHEUS=1"), "{msg}");
}

#[tokio::test]
async fn realprom_metrics_queries_errors_and_up() {
    let Some(bin) = prometheus_or_skip("realprom_metrics_queries_errors_and_up") else {
        return;
    };
    let checkout = Target::start("checkout", 40.0, 0.1, 0.2).await;
    let prom = Prom::start(&bin, &[&checkout], Some("legacy")).await;
    let app = spawn_with_prometheus(prom.url()).await;

    // Instant query: the 5xx share is the 10% the target serves.
    let (s, v) = observability(
        &app,
        json!({"action": "metrics_query", "query": error_ratio_query("checkout")}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["resultType"], "vector", "{v}");
    near(sample(&v["result"]), 0.1, 0.005, "instant error ratio");

    // `time` reaches Prometheus as the same instant: `time()` evaluated there is it.
    let at = (now_unix() - 3600.0).floor() + 0.25;
    let (s, v) = observability(
        &app,
        json!({"action": "metrics_query", "query": "time()", "time": rfc3339(at)}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["resultType"], "scalar", "{v}");
    let t: f64 = v["result"]["result"][1].as_str().unwrap().parse().unwrap();
    near(t, at, 1e-6, "time() at `time`");
    // And the error ratio at an explicit `time` (now) is the same 10%.
    let (s, v) = observability(
        &app,
        json!({"action": "metrics_query", "query": error_ratio_query("checkout"),
               "time": rfc3339(now_unix())}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    near(sample(&v["result"]), 0.1, 0.005, "error ratio at `time`");

    // Range query over the last minute: a matrix, one series, its latest point at 10%.
    let now = now_unix();
    let (s, v) = observability(
        &app,
        json!({"action": "metrics_query", "query": error_ratio_query("checkout"),
               "start": rfc3339(now - 60.0), "end": rfc3339(now), "step": 5}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let r = &v["result"];
    assert_eq!(r["resultType"], "matrix", "{r}");
    let series = r["result"].as_array().unwrap();
    assert_eq!(series.len(), 1, "{r}");
    let values = series[0]["values"].as_array().unwrap();
    assert!(!values.is_empty(), "{r}");
    let last: f64 = values.last().unwrap()[1].as_str().unwrap().parse().unwrap();
    near(last, 0.1, 0.005, "range query's last point");

    // Per-code series keep their labels; irate (the last two samples) because a 5m rate()
    // over the few seconds this Prometheus has seen is scaled down by its extrapolation.
    let (s, v) = observability(
        &app,
        json!({"action": "metrics_query",
               "query": "sum by (code) (irate(http_requests_total{service=\"checkout\"}[1m]))"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let by_code: std::collections::BTreeMap<String, f64> = v["result"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["metric"]["code"].as_str().unwrap().to_string(),
                x["value"][1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    near(by_code["200"], 36.0, 2.0, "200s per second");
    near(by_code["500"], 4.0, 0.3, "500s per second");

    // A PromQL syntax error: Prometheus's 400 bad_data comes back as sofiia's 422 with
    // Prometheus's own message.
    let got = observability(
        &app,
        json!({"action": "metrics_query", "query": "sum(rate(http_requests_total[5m])"}),
    )
    .await;
    assert_error(&got, 422, "invalid_field");
    let msg = got.1["error"]["message"].as_str().unwrap();
    assert!(msg.contains("bad_data"), "{msg}");
    assert!(msg.contains("parse error"), "{msg}");
    assert!(msg.contains("unclosed left parenthesis"), "{msg}");

    // An execution error (Prometheus answers 422 "execution"): also the caller's query.
    let got = observability(
        &app,
        json!({"action": "metrics_query",
               "query": "http_requests_total + on(service) http_requests_total"}),
    )
    .await;
    assert_error(&got, 422, "invalid_field");
    let msg = got.1["error"]["message"].as_str().unwrap();
    assert!(msg.contains("execution"), "{msg}");

    // up: 1 for the live job, 0 for the one on a closed port.
    for (job, want) in [("checkout", "1"), ("legacy", "0")] {
        let (s, v) = observability(
            &app,
            json!({"action": "metrics_query", "query": format!("up{{job=\"{job}\"}}")}),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            v["result"]["result"][0]["value"][1], want,
            "up{{job={job}}}: {v}"
        );
    }

    // Changing the target's rates keeps its counters monotonic (no resets Prometheus would
    // see), and the new traffic is what the last-minute rate now shows.
    checkout.set_rates(10.0, 0.5);
    checkout.set_latency(0.6);
    let changed = now_unix();
    prom.wait_for_sample_after(
        "http_requests_total{job=\"checkout\"}",
        changed + 2.0,
        Duration::from_secs(30),
    )
    .await;
    let (s, v) = observability(
        &app,
        json!({"action": "metrics_query",
               "query": "sum(resets(http_requests_total{service=\"checkout\"}[5m]))"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(sample(&v["result"]), 0.0, "{v}");
    let (s, v) = observability(
        &app,
        json!({"action": "metrics_query",
               "query": "sum(irate(http_requests_total{service=\"checkout\",code=\"500\"}[10s])) / sum(irate(http_requests_total{service=\"checkout\"}[10s]))"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    near(
        sample(&v["result"]),
        0.5,
        0.01,
        "error ratio after set_rates",
    );
    let (s, v) = observability(
        &app,
        json!({"action": "metrics_query",
               "query": "histogram_quantile(0.95, sum by (le) (irate(http_request_duration_seconds_bucket{service=\"checkout\"}[10s]))) * 1000"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    near(
        sample(&v["result"]),
        checkout.expected_p95_ms(),
        0.5,
        "p95 after set_latency",
    );
    near(
        checkout.expected_p95_ms(),
        975.0,
        1e-9,
        "0.6 s lands in (0.5, 1]",
    );
}

#[tokio::test]
async fn realprom_slo_status_and_alerts() {
    let Some(bin) = prometheus_or_skip("realprom_slo_status_and_alerts") else {
        return;
    };
    // One service per scenario (rate windows are 5 minutes: no waiting for them to turn over).
    // Default objective: availability 0.995 (budget 0.005), p95 500 ms.
    let payments = Target::start("payments", 50.0, 0.1, 0.2).await; // burn 20: fast_burn
    let search = Target::start("search", 50.0, 0.01, 0.04).await; // burn 2: burning
    let catalog = Target::start("catalog", 50.0, 0.002, 0.08).await; // burn 0.4: ok
    let ledger = Target::start("ledger", 50.0, 0.0, 0.8).await; // no errors, p95 975 ms: slow
    let prom = Prom::start(&bin, &[&payments, &search, &catalog, &ledger], None).await;
    let app = spawn_with_prometheus(prom.url()).await;

    for (t, ratio, status) in [
        (&payments, 0.1, "fast_burn"),
        (&search, 0.01, "burning"),
        (&catalog, 0.002, "ok"),
        (&ledger, 0.0, "slow"),
    ] {
        let svc = t.service();
        let (s, v) = observability(&app, json!({"action": "slo_status", "service": svc})).await;
        assert_eq!(s, 200, "{svc}: {v}");
        let r = &v["result"];
        assert_eq!(r["service"], svc, "{r}");
        assert_eq!(r["env"], "prod", "{r}");
        assert_eq!(r["status"], status, "{svc}: {r}");
        assert_eq!(r["objective"]["availability"], 0.995, "{r}");
        assert_eq!(r["error_budget"], 0.005, "{r}");
        let err = r["error_rate"]
            .as_f64()
            .unwrap_or_else(|| panic!("{svc}: {r}"));
        near(
            err,
            ratio,
            ratio * 0.05 + 1e-4,
            &format!("{svc} error_rate"),
        );
        let burn = r["burn_rate"]
            .as_f64()
            .unwrap_or_else(|| panic!("{svc}: {r}"));
        near(
            burn,
            ratio / (1.0 - 0.995),
            ratio / 0.005 * 0.05 + 0.01,
            &format!("{svc} burn_rate"),
        );
        let p95 = r["latency_p95_ms"]
            .as_f64()
            .unwrap_or_else(|| panic!("{svc}: {r}"));
        near(
            p95,
            t.expected_p95_ms(),
            0.5,
            &format!("{svc} latency_p95_ms"),
        );
        assert_eq!(r["latency_over_target"], t.expected_p95_ms() > 500.0, "{r}");
    }
    // The interpolation the expectations rely on, spelled out for two of them.
    near(payments.expected_p95_ms(), 242.5, 1e-9, "payments p95");
    near(ledger.expected_p95_ms(), 975.0, 1e-9, "ledger p95");

    // A service Prometheus has never seen: no data, not zeros.
    let (s, v) = observability(&app, json!({"action": "slo_status", "service": "nowhere"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["status"], "no_data", "{v}");
    assert_eq!(v["result"]["error_rate"], Value::Null, "{v}");
    assert_eq!(v["result"]["latency_p95_ms"], Value::Null, "{v}");

    // HighErrorRate fires for payments (10% > 5%) and for nothing else.
    let deadline = Instant::now() + Duration::from_secs(60);
    let alerts = loop {
        let (s, v) = observability(&app, json!({"action": "alerts"})).await;
        assert_eq!(s, 200, "{v}");
        let alerts = v["result"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if alerts.iter().any(|a| a["state"] == "firing") {
            break alerts;
        }
        assert!(
            Instant::now() < deadline,
            "HighErrorRate never fired: {v}\n{}",
            prom.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a["labels"]["alertname"], "HighErrorRate", "{a}");
    assert_eq!(a["labels"]["service"], "payments", "{a}");
    assert_eq!(a["labels"]["severity"], "page", "{a}");
    assert_eq!(a["state"], "firing", "{a}");
    assert_eq!(a["annotations"]["summary"], "payments: 5xx above 5%", "{a}");
    let value: f64 = a["value"].as_str().unwrap().parse().unwrap();
    near(value, 0.1, 0.005, "alert value");
}
