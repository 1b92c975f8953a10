//! sofiia as a child process: crash safety, graceful shutdown, start-up errors.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::json;

struct Server {
    child: Child,
    base: String,
}

fn start(dir: &Path) -> Server {
    start_with(dir, "500")
}

fn start_with(dir: &Path, checkpoint_ms: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sofiia"))
        .current_dir(dir)
        .env("SOFIIA_CHECKPOINT_MS", checkpoint_ms)
        .env("DATA_DIR", dir.join("data"))
        .env("PORT", "0")
        .env("RUST_LOG", "warn")
        .env_remove("CONFIG_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = lines.next().unwrap().unwrap();
    let base = line.rsplit(' ').next().unwrap().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, base }
}

/// Hammer creates from several clients; record every id acknowledged with a 201.
async fn load(base: String, acked: Arc<Mutex<Vec<String>>>, clients: usize) {
    let client = sofiia::net::client();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, base, acked) = (client.clone(), base.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let r = client
                    .post(format!("{base}/api/incidents"))
                    .json(&json!({"service":"crash","severity":"P2","title":format!("c{c} {i}")}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 201 => match r.json::<serde_json::Value>().await {
                        Ok(v) => acked
                            .lock()
                            .unwrap()
                            .push(v["id"].as_str().unwrap().to_string()),
                        Err(_) => return,
                    },
                    _ => return,
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Wait until at least `n` writes are acknowledged (a minute at most, then fail).
async fn acknowledged(acked: &Arc<Mutex<Vec<String>>>, n: usize) {
    for _ in 0..6000 {
        if acked.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!(
        "only {} writes acknowledged in a minute",
        acked.lock().unwrap().len()
    );
}

async fn assert_all_present(base: &str, ids: &[String]) {
    let client = sofiia::net::client();
    for id in ids {
        let r = client
            .get(format!("{base}/api/incidents/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "acknowledged incident {id} lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_everything_still_in_the_log_loses_nothing() {
    // A checkpoint interval longer than the test: every acknowledged write exists only in
    // the write-ahead log (and redb's non-durable commits) when the process dies.
    crash_and_recover("600000").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_frequent_checkpoints_loses_nothing() {
    crash_and_recover("5").await;
}

async fn crash_and_recover(checkpoint_ms: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_with(dir.path(), checkpoint_ms);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let loader = tokio::spawn(load(server.base.clone(), acked.clone(), 16));
    // Kill once a good number of writes is acknowledged (a count, not a time: the machine may
    // be busy with other tests), while the loaders keep writing.
    acknowledged(&acked, 60).await;
    server.child.kill().unwrap(); // SIGKILL on unix
    server.child.wait().unwrap();
    let _ = loader.await;
    let ids = acked.lock().unwrap().clone();
    assert!(ids.len() > 50, "load made progress: {}", ids.len());
    if checkpoint_ms == "600000" {
        let log = std::fs::metadata(dir.path().join("data").join("sofiia.wal"))
            .unwrap()
            .len();
        assert!(
            log > 1000,
            "the writes are in the log, not yet checkpointed ({log} bytes)"
        );
    }

    let mut server = start(dir.path());
    assert_all_present(&server.base, &ids).await;

    // SIGTERM in the middle of writes: in-flight requests finish, exit code 0, nothing lost.
    let acked2 = Arc::new(Mutex::new(Vec::new()));
    let loader = tokio::spawn(load(server.base.clone(), acked2.clone(), 8));
    acknowledged(&acked2, 10).await;
    let st = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "graceful exit code 0, got {status:?}");
    let _ = loader.await;
    let ids2 = acked2.lock().unwrap().clone();
    assert!(!ids2.is_empty());
    let mut server = start(dir.path());
    assert_all_present(&server.base, &ids).await;
    assert_all_present(&server.base, &ids2).await;
    let _ = server.child.kill();
    let _ = server.child.wait();
}

#[test]
fn bad_settings_fail_at_start_naming_the_variable_or_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = |envs: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sofiia"));
        c.current_dir(dir.path())
            .env_remove("CONFIG_DIR")
            .env("DATA_DIR", dir.path().join("d"));
        for (k, v) in envs {
            c.env(k, v);
        }
        c.arg("serve").output().unwrap()
    };
    let o = run(&[("PORT", "eighty")]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("PORT"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run(&[("ENV", "moon")]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("ENV: 'moon'"));
    let cfg = dir.path().join("cfg");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("sofiia.yml"), "port: 8002\nprot: 1\n").unwrap();
    let o = run(&[("CONFIG_DIR", cfg.to_str().unwrap())]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("sofiia.yml") && err.contains("prot"),
        "{err}"
    );
    // staging without an operator key refuses too.
    let o = run(&[("ENV", "staging")]);
    assert!(
        !o.status.success()
            && String::from_utf8_lossy(&o.stderr).contains("SOFIIA_CONSOLE_API_KEY")
    );
    // prod without an operator key refuses to start, and says how to fix it.
    let o = run(&[("ENV", "prod")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("SOFIIA_CONSOLE_API_KEY"),
        "{err}"
    );
    // A data dir that is a file.
    std::fs::write(dir.path().join("afile"), "x").unwrap();
    let o = run(&[("DATA_DIR", dir.path().join("afile").to_str().unwrap())]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("DATA_DIR"));
}

/// A short operator key is refused at start in every env, with the fix in the message; the
/// same rule holds for settings built in code.
#[tokio::test]
async fn a_short_operator_key_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let want =
        "SOFIIA_CONSOLE_API_KEY: must be at least 16 characters (try `openssl rand -base64 24`)";
    for env in ["prod", "dev"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sofiia"))
            .current_dir(dir.path())
            .env_remove("CONFIG_DIR")
            .env("DATA_DIR", dir.path().join(format!("d-{env}")))
            .env("PORT", "0")
            .env("ENV", env)
            .env("SOFIIA_CONSOLE_API_KEY", "abcde")
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // It must exit on its own; one that serves is stopped and the test fails.
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if started.elapsed() > std::time::Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ENV={env}: sofiia started with a 5-character operator key");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(!status.success() && err.contains(want), "ENV={env}: {err}");
    }
    let mut settings = sofiia::config::Settings::ephemeral(&dir.path().join("d-code"), "test");
    settings.console_api_key = Some("abcde".into());
    let e = sofiia::app::AppState::open(settings, Arc::new(sofiia::kernel::clock::SystemClock))
        .err()
        .expect("a short key in code-built settings is refused");
    assert_eq!(e.to_string(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_payloads_never_reach_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sofiia"))
        .current_dir(dir.path())
        .env("DATA_DIR", dir.path().join("data"))
        .env("PORT", "0")
        .env("RUST_LOG", "debug")
        .env_remove("CONFIG_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = lines
        .next()
        .unwrap()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let marker = "MARKER-c0ffee-in-a-payload";
    let r = sofiia::net::client()
        .post(format!("{base}/v1/tools/oncall_tool"))
        .json(&json!({"action":"incident_create","service":"gw","severity":"P2","title":marker,"agent_id":"sofiia"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    child.wait().unwrap();
    let log = log.join().unwrap();
    assert!(
        log.contains("gateway_call") && log.contains("gateway_ok"),
        "{log}"
    );
    assert!(!log.contains(marker), "payload leaked into the log");
    assert!(
        log.contains("auth_open"),
        "open dev mode is announced at start"
    );
}

#[test]
fn keys_and_tool_commands_work_from_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let sofiia = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sofiia"))
            .current_dir(dir.path())
            .env("DATA_DIR", dir.path().join("data"))
            .env("RUST_LOG", "warn")
            .env_remove("CONFIG_DIR")
            .env_remove("SOFIIA_CONSOLE_API_KEY")
            .args(args)
            .output()
            .unwrap()
    };
    let o = sofiia(&["keys", "issue", "helion"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let key = String::from_utf8(o.stdout).unwrap().trim().to_string();
    assert!(key.starts_with("sk_") && key.len() > 40, "{key}");
    let o = sofiia(&["keys", "list"]);
    let listed = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        listed.starts_with("helion\t") && !listed.contains(&key),
        "{listed}"
    );
    let o = sofiia(&["keys", "issue", "x", "--role", "no_such_role"]);
    assert!(!o.status.success());

    // In-process tool calls (no server running): the operator, or an agent's role if given.
    let o = sofiia(&[
        "tool",
        "oncall_tool",
        "incident_create",
        r#"{"service":"gw","severity":"P2","title":"from the shell"}"#,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let created: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(created["title"], "from the shell");
    let o = sofiia(&[
        "tool",
        "oncall_tool",
        "incident_create",
        r#"{"service":"gw","severity":"P2","title":"x"}"#,
        "--agent",
        "monitor",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("may not call"));
    let o = sofiia(&[
        "tool",
        "oncall_tool",
        "incident_list",
        "{}",
        "--agent",
        "monitor",
    ]);
    assert!(o.status.success());
    let page: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let o = sofiia(&["tool", "oncall_tool", "incident_list", "not json"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("JSON"));
}

#[test]
fn runbook_and_backup_commands_work_offline_and_against_a_keyed_server() {
    let dir = tempfile::tempdir().unwrap();
    let key = "test-operator-key-0123456789";
    let sofiia = |args: &[&str], with_key: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sofiia"));
        c.current_dir(dir.path())
            .env("DATA_DIR", dir.path().join("data"))
            .env("RUST_LOG", "warn")
            .env_remove("CONFIG_DIR")
            .env_remove("SOFIIA_CONSOLE_API_KEY")
            .args(args);
        if with_key {
            c.env("SOFIIA_CONSOLE_API_KEY", key);
        }
        c.output().unwrap()
    };
    // No server: the CLI seeds the starter runbooks, builds the index and searches it.
    let o = sofiia(&["runbooks", "search", "rotate", "agent", "key"], false);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.starts_with("1. key-rotation.md#"), "{out}");
    let o = sofiia(&["runbooks", "reindex", "--full"], false);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(r["files"].as_u64().unwrap() >= 8, "{r}");

    // A server with an operator key: the commands go through it, with the key.
    let mut child = Command::new(env!("CARGO_BIN_EXE_sofiia"))
        .current_dir(dir.path())
        .env("DATA_DIR", dir.path().join("data"))
        .env("PORT", "0")
        .env("RUST_LOG", "warn")
        .env("SOFIIA_CONSOLE_API_KEY", key)
        .env_remove("CONFIG_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let _ = lines.next().unwrap().unwrap();
    std::thread::spawn(move || for _ in lines {});

    // Straight after the start: the server may still be opening its index (503 with
    // Retry-After), and the CLI waits for it instead of failing.
    let o = sofiia(&["runbooks", "search", "--json", "disk", "full"], true);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["items"][0]["path"], "disk-full.md", "{r}");
    // Without the key the server refuses, and the CLI says so.
    let o = sofiia(&["runbooks", "reindex"], false);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("401"));
    let backup = dir.path().join("bk");
    let o = sofiia(&["backup", backup.to_str().unwrap()], true);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(backup.join("backup.json").exists());

    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(child.wait().unwrap().success());
}
