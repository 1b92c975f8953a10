//! The HTTP edge with sofiia as a child process: a flood of idle and slow-header connections
//! under a small open-file limit, SIGTERM with stalled clients, and the memory a body-hold
//! attack took coming back (Linux only: read from /proc). Figures go to stderr
//! (`cargo test --test api edge_process:: -- --nocapture` shows them).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::edge::{busy_connection, Raw};

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start the binary on a free port with `envs`; under `open_files` it runs with that
/// `ulimit -n` (through `sh`, which then execs it: same pid).
fn start(dir: &Path, envs: &[(&str, &str)], open_files: Option<u32>) -> Server {
    let bin = env!("CARGO_BIN_EXE_sofiia");
    let mut cmd = match open_files {
        Some(n) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit -n {n} && exec \"$0\""))
                .arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.current_dir(dir)
        .env("DATA_DIR", dir.join("data"))
        .env("PORT", "0")
        .env("RUST_LOG", "warn")
        .env_remove("CONFIG_DIR")
        .env_remove("SOFIIA_CONSOLE_API_KEY");
    for var in [
        "SOFIIA_MAX_CONNECTIONS",
        "SOFIIA_HEADER_TIMEOUT_MS",
        "SOFIIA_BODY_IDLE_TIMEOUT_MS",
        "SOFIIA_BODY_TIMEOUT_MS",
        "SOFIIA_SHUTDOWN_GRACE_MS",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next().unwrap().unwrap();
    let base = line.rsplit(' ').next().unwrap().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    std::thread::spawn(move || for _ in lines {});
    Server { child, base }
}

/// Make sure this test process may open `n` files (the test holds hundreds of sockets);
/// false when the hard limit does not allow it.
fn allow_open_files(n: u64) -> bool {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit read and write only the struct passed for the call.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                return false;
            }
            let want = n as libc::rlim_t;
            if lim.rlim_cur != libc::RLIM_INFINITY && lim.rlim_cur < want {
                if lim.rlim_max != libc::RLIM_INFINITY && lim.rlim_max < want {
                    return false;
                }
                lim.rlim_cur = want;
                return libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0;
            }
        }
        true
    }
    #[cfg(not(unix))]
    {
        let _ = n;
        true
    }
}

async fn healthz_time(base: &str) -> Duration {
    let started = Instant::now();
    let mut c = Raw::connect(base).await;
    c.send(HEALTHZ).await.unwrap();
    let status = c.answer(Duration::from_secs(5)).await.map(|a| a.status);
    assert_eq!(status, Some(200), "no /healthz answer within 5 s");
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_within_a_second_under_500_idle_and_100_slow_header_connections() {
    if !allow_open_files(4096) {
        eprintln!("skipped: this process may not open 4096 files");
        return;
    }
    // macOS's default `ulimit -n`: the default cap follows it (128). With a cap set above
    // what the descriptors allow, accepts fail (EMFILE) and idle connections make room.
    for envs in [&[][..], &[("SOFIIA_MAX_CONNECTIONS", "1000")][..]] {
        flood(envs).await;
    }
}

async fn flood(envs: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), envs, Some(256));
    let addr = server.base.trim_start_matches("http://").to_string();
    let quiet = healthz_time(&server.base).await;
    // A server that stopped accepting (out of descriptors) leaves connects hanging.
    let connect = || async {
        tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&addr))
            .await
            .expect("the server keeps accepting: connected within 5 s")
            .unwrap()
    };
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(connect().await);
    }
    let mut slow = Vec::new();
    for _ in 0..100 {
        let mut s = connect().await;
        let _ = s
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            .await;
        slow.push(s);
    }
    // The slow ones keep dripping a byte every 300 ms while /healthz is measured.
    let drip = tokio::spawn(async move {
        loop {
            for s in slow.iter_mut() {
                let _ = s.write_all(b"x").await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        worst = worst.max(healthz_time(&server.base).await);
    }
    drip.abort();
    let closed = idle
        .iter()
        .filter(|s| matches!(s.try_read(&mut [0u8; 16]), Ok(0)))
        .count();
    eprintln!(
        "edge_flood: healthz quiet={quiet:?} worst_of_5_under_600_connections={worst:?} \
         idle_closed_by_server={closed}/500 (ulimit -n 256, {envs:?})"
    );
    assert!(worst < Duration::from_secs(1), "healthz took {worst:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_stalled_clients_exits_within_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let grace = Duration::from_millis(1500);
    let mut server = start(dir.path(), &[("SOFIIA_SHUTDOWN_GRACE_MS", "1500")], None);
    // A body that stopped halfway (the body idle timeout, 10 s, is longer than the grace),
    // headers that stopped halfway, a kept-alive connection, a WebSocket that is not read.
    let mut body = busy_connection(&server.base).await;
    let mut slow = Raw::connect(&server.base).await;
    slow.send(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
    let mut kept = Raw::connect(&server.base).await;
    kept.send(HEALTHZ).await.unwrap();
    assert_eq!(
        kept.answer(Duration::from_secs(5)).await.unwrap().status,
        200
    );
    let ws_url = format!("{}/ws/events", server.base.replace("http://", "ws://"));
    let (ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();

    let st = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let started = Instant::now();
    let limit = grace + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < limit,
            "still running {limit:?} after SIGTERM with stalled clients"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = started.elapsed();
    eprintln!(
        "edge_shutdown: exited {took:?} after SIGTERM (grace {grace:?}) with 4 stalled clients"
    );
    assert!(status.success(), "graceful exit code 0, got {status:?}");
    assert!(body.closed_within(Duration::from_secs(1)).await);
    assert!(slow.closed_within(Duration::from_secs(1)).await);
    drop(ws);
}

/// VmRSS of a process, in KiB.
#[cfg(target_os = "linux")]
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_comes_back_after_body_and_websocket_hold_attacks() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[("SOFIIA_BODY_IDLE_TIMEOUT_MS", "1000")], None);
    let pid = server.child.id();
    let client = sofiia::net::client();
    let base = server.base.clone();
    // Warm up: the indexes are built, an incident and an artifact written, a socket served.
    let deadline = Instant::now() + Duration::from_secs(60);
    while client
        .get(format!("{base}/api/runbooks/search?q=disk"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "runbook index not ready in 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = client
        .post(format!("{base}/api/incidents"))
        .json(&serde_json::json!({"service":"edge","severity":"P2","title":"memory"}))
        .send()
        .await
        .unwrap();
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = client
        .post(format!("{base}/api/incidents/{id}/artifacts"))
        .json(&serde_json::json!({"name":"warm.txt","content":"x".repeat(100_000)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let ws_url = format!("{}/ws/events", base.replace("http://", "ws://"));
    drop(tokio_tungstenite::connect_async(&ws_url).await.unwrap());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = rss_kib(pid);

    let peak = Arc::new(AtomicU64::new(baseline));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    // 50 clients each send 5.9 of an announced 6 MB artifact body, then stop sending.
    let head = format!(
        "POST /api/incidents/{id}/artifacts HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         content-type: application/json\r\ncontent-length: 6000000\r\n\r\n\
         {{\"name\":\"big.txt\",\"content\":\""
    );
    let mut payload = head.into_bytes();
    payload.resize(5_900_000, b'A');
    let payload = Arc::new(payload);
    let mut holders = Vec::new();
    for _ in 0..50 {
        let (base, payload) = (base.clone(), payload.clone());
        holders.push(tokio::spawn(async move {
            let mut c = Raw::connect(&base).await;
            c.send(&payload).await.unwrap();
            c.answer(Duration::from_secs(20)).await.map(|a| a.status)
        }));
    }
    let mut answers = Vec::new();
    for h in holders {
        answers.push(h.await.unwrap());
    }
    assert!(
        answers.iter().all(|a| *a == Some(408)),
        "every held body is answered 408 after the idle timeout: {answers:?}"
    );
    // The memory comes back (polled: the allocator is trimmed a moment after).
    let body_peak = peak.load(Ordering::Relaxed);
    let after_body = settled(pid, baseline).await;
    peak.store(after_body, Ordering::Relaxed);

    // Five WebSocket clients announce a 50 MB message and start sending it.
    for _ in 0..5 {
        let mut c = Raw::connect(&base).await;
        c.send(
            b"GET /ws/events HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
        assert_eq!(c.answer(Duration::from_secs(5)).await.unwrap().status, 101);
        let mut frame = vec![0x82u8, 0x80 | 127];
        frame.extend_from_slice(&50_000_000u64.to_be_bytes());
        frame.extend_from_slice(&[1, 2, 3, 4]);
        let _ = c.send(&frame).await;
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..10 {
            if c.send(&chunk).await.is_err() {
                break;
            }
        }
        assert!(
            c.closed_within(Duration::from_secs(5)).await,
            "a socket sending a 50 MB message is closed"
        );
    }
    sampler.abort();
    let ws_peak = peak.load(Ordering::Relaxed);
    let after = settled(pid, baseline).await;
    eprintln!(
        "edge_memory: rss baseline={} MiB; 50 held 6 MB bodies: peak={} MiB after={} MiB; \
         5 unfinished 50 MB WebSocket messages: peak={} MiB after={} MiB",
        baseline / 1024,
        body_peak / 1024,
        after_body / 1024,
        ws_peak / 1024,
        after / 1024
    );
    for (what, rss) in [("body", after_body), ("websocket", after)] {
        assert!(
            rss <= baseline * 12 / 10,
            "after the {what} attack rss {rss} KiB is more than 20% above the baseline {baseline} KiB"
        );
    }
}

/// RSS once it is back within 20% of `baseline`, or after 20 s.
#[cfg(target_os = "linux")]
async fn settled(pid: u32, baseline: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut rss = rss_kib(pid);
    while rss > baseline * 12 / 10 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        rss = rss_kib(pid);
    }
    rss
}
