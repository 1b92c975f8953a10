//! The alerts intake against a real Alertmanager (Debian's `prometheus-alertmanager`, 0.25):
//! the test starts it on a free loopback port with a webhook receiver pointing at its sofiia
//! (authorised with an `alertmanager` agent key, as the README's snippet does), posts alerts
//! to Alertmanager's v2 API and watches the incident open and resolve.
//!
//! Without the binary the test prints a "skipped" line and passes, unless
//! `SOFIIA_REQUIRE_ALERTMANAGER=1` (CI), where it fails.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sofiia::gateway::auth::issue_key;
use sofiia::kernel::clock::SystemClock;

use crate::helpers::*;

const OPERATOR_KEY: &str = "operator-test-key-0123456789";
/// How long Alertmanager may take to start, or to notify.
const WITHIN: Duration = Duration::from_secs(30);

/// `/usr/bin/prometheus-alertmanager` (Debian), else `alertmanager` on `PATH`.
fn alertmanager_binary() -> Option<PathBuf> {
    let debian = PathBuf::from("/usr/bin/prometheus-alertmanager");
    if debian.is_file() {
        return Some(debian);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("alertmanager"))
            .find(|p| p.is_file())
    })
}

/// The binary, or `None` after a "skipped" line; a panic when it is required.
fn alertmanager_or_skip(test: &str) -> Option<PathBuf> {
    let required = std::env::var("SOFIIA_REQUIRE_ALERTMANAGER").as_deref() == Ok("1");
    let found = alertmanager_binary();
    if found.is_none() {
        if required {
            panic!(
                "{test}: SOFIIA_REQUIRE_ALERTMANAGER=1 but no Alertmanager binary (neither \
                 /usr/bin/prometheus-alertmanager nor alertmanager on PATH): apt-get install \
                 --no-install-recommends prometheus-alertmanager"
            );
        }
        let _ = writeln!(
            std::io::stderr(),
            "{test}: skipped: install Debian's prometheus-alertmanager to run the \
             real-Alertmanager test; SOFIIA_REQUIRE_ALERTMANAGER=1 makes this a failure"
        );
    }
    found
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// An Alertmanager child process; killed and reaped when dropped.
struct Am {
    url: String,
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Drop for Am {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Am {
    /// Start it with one webhook receiver (`webhook` with `key` as its bearer credentials),
    /// grouping by alertname with 1s waits; returns once `/-/ready` answers.
    async fn start(bin: &Path, webhook: &str, key: &str) -> Am {
        let dir = tempfile::tempdir().unwrap();
        let cfg = format!(
            "route:\n  receiver: sofiia\n  group_by: ['alertname']\n  group_wait: 1s\n  \
             group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: sofiia\n    \
             webhook_configs:\n      - url: '{webhook}'\n        send_resolved: true\n        \
             http_config:\n          authorization:\n            credentials: '{key}'\n"
        );
        std::fs::write(dir.path().join("alertmanager.yml"), cfg).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("am.log")).unwrap();
        let child = std::process::Command::new(bin)
            .arg(format!(
                "--config.file={}",
                dir.path().join("alertmanager.yml").display()
            ))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .current_dir(dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut am = Am {
            url: format!("http://127.0.0.1:{port}"),
            child,
            dir,
        };
        let client = sofiia::net::client();
        let deadline = Instant::now() + WITHIN;
        loop {
            if let Ok(r) = client.get(format!("{}/-/ready", am.url)).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if let Ok(Some(st)) = am.child.try_wait() {
                panic!("Alertmanager exited ({st}):\n{}", am.log());
            }
            if Instant::now() > deadline {
                panic!("Alertmanager never became ready:\n{}", am.log());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        am
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("am.log")).unwrap_or_default()
    }

    async fn post_alerts(&self, alerts: Value) {
        let r = sofiia::net::client()
            .post(format!("{}/api/v2/alerts", self.url))
            .json(&alerts)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "{}",
            r.text().await.unwrap_or_default()
        );
    }

    async fn fingerprints(&self) -> Vec<String> {
        let r = sofiia::net::client()
            .get(format!("{}/api/v2/alerts", self.url))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        let mut f: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["fingerprint"].as_str().unwrap().to_string())
            .collect();
        f.sort();
        f
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

async fn operator_get(app: &TestApp, path: &str) -> Value {
    let r = app
        .client
        .get(app.url(path))
        .bearer_auth(OPERATOR_KEY)
        .send()
        .await
        .unwrap();
    split(r).await.1
}

#[tokio::test]
async fn real_alertmanager_notifications_open_and_resolve_one_incident() {
    let Some(bin) =
        alertmanager_or_skip("real_alertmanager_notifications_open_and_resolve_one_incident")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = issue_key(&dir.path().join("data"), "alertmanager", None)
        .unwrap()
        .0;
    let app = spawn_configured(dir, std::sync::Arc::new(SystemClock), |s| {
        s.console_api_key = Some(OPERATOR_KEY.into());
    })
    .await;
    let am = Am::start(&bin, &app.url("/api/alerts/alertmanager"), &key).await;

    let now = time::OffsetDateTime::now_utc();
    let first = now - time::Duration::seconds(95) + time::Duration::milliseconds(370);
    let alert =
        |instance: &str, starts: time::OffsetDateTime, ends: Option<time::OffsetDateTime>| {
            let mut a = json!({
                "labels": {"alertname": "GatewayDown", "service": "gateway", "severity": "critical",
                           "instance": instance},
                "annotations": {"summary": format!("gateway {instance} is down")},
                "startsAt": rfc3339(starts),
                "generatorURL": "http://prometheus:9090/graph"
            });
            if let Some(e) = ends {
                a["endsAt"] = json!(rfc3339(e));
            }
            a
        };
    am.post_alerts(json!([
        alert("a:9000", now - time::Duration::seconds(30), None),
        alert("b:9000", first, None),
    ]))
    .await;
    let want_fps = am.fingerprints().await;
    assert_eq!(want_fps.len(), 2);

    // Alertmanager notifies after group_wait (1s): one incident for the group.
    let deadline = Instant::now() + WITHIN;
    let inc = loop {
        let l = operator_get(&app, "/api/incidents").await;
        if let Some(i) = l["items"].as_array().and_then(|a| a.first()) {
            if i["fingerprints"].as_array().map(Vec::len) == Some(2) {
                break i.clone();
            }
        }
        if Instant::now() > deadline {
            panic!(
                "no incident with both fingerprints (last {l}):\n{}",
                am.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let started = first.replace_millisecond(0).unwrap();
    assert_eq!(inc["started_at"], rfc3339(started).as_str(), "{inc}");
    let mut fps: Vec<String> = inc["fingerprints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    fps.sort();
    assert_eq!(fps, want_fps);
    assert_eq!(inc["severity"], "P1");
    assert_eq!(inc["created_by"], "alertmanager");
    let id = inc["id"].as_str().unwrap().to_string();

    // Resolve both: Alertmanager sends the resolved notification; the incident is mitigated.
    let end = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    am.post_alerts(json!([
        alert("a:9000", now - time::Duration::seconds(30), Some(end)),
        alert("b:9000", first, Some(end)),
    ]))
    .await;
    let deadline = Instant::now() + WITHIN;
    loop {
        let d = operator_get(&app, &format!("/api/incidents/{id}")).await;
        if d["incident"]["status"] == "mitigated" {
            let evs = d["events"].as_array().unwrap();
            assert!(evs.iter().any(|e| e["type"] == "alert_resolved"), "{d}");
            break;
        }
        if Instant::now() > deadline {
            panic!("incident not mitigated (last {d}):\n{}", am.log());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let l = operator_get(&app, "/api/incidents").await;
    assert_eq!(
        l["items"].as_array().unwrap().len(),
        1,
        "no second incident: {l}"
    );
    let st = operator_get(&app, "/api/alerts/stats").await;
    assert!(
        st["sources"]["alertmanager"]["notifications"]
            .as_u64()
            .unwrap()
            >= 2,
        "{st}"
    );
    assert_eq!(st["by_status"]["resolved"], 2, "{st}");
}
