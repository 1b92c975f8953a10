//! `cargo bench --bench throughput`: durable write throughput, list latency and start-up time,
//! each printed next to a ceiling measured in the same run on the same disk.
//!
//! Ceilings: the disk's raw write+fsync rate, redb's durable single-insert commit rate (the
//! storage limit for one writer), and a no-op JSON endpoint of the same server under 32
//! clients (the HTTP limit of this machine). Set `BENCH_SECS` to change phase length (3 s).

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::{Database, TableDefinition};
use serde_json::json;
use sofiia::config::Settings;
use sofiia::server::App;

#[path = "common/populate.rs"]
mod populate;

fn secs() -> Duration {
    Duration::from_secs_f64(
        std::env::var("BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3.0),
    )
}

fn settings(dir: &Path) -> Settings {
    Settings::ephemeral(dir, "bench")
}

fn raw_fsync_rate(dir: &Path) -> f64 {
    let mut f = std::fs::File::create(dir.join("fsync.bin")).unwrap();
    let buf = [7u8; 512];
    let (start, mut n) = (Instant::now(), 0u64);
    while start.elapsed() < secs() {
        f.write_all(&buf).unwrap();
        f.sync_data().unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn redb_commit_rate(dir: &Path) -> f64 {
    const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");
    let db = Database::create(dir.join("ceiling.redb")).unwrap();
    let value = vec![42u8; 600]; // about one incident record
    let (start, mut n) = (Instant::now(), 0u64);
    while start.elapsed() < secs() {
        let txn = db.begin_write().unwrap();
        txn.open_table(T)
            .unwrap()
            .insert(n, value.as_slice())
            .unwrap();
        txn.commit().unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Run `clients` loops of `req` for the phase length; return requests per second.
async fn hammer<F, Fut>(clients: usize, req: F) -> f64
where
    F: Fn(reqwest::Client, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    sofiia::net::init_tls();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, stop, count, req) = (client.clone(), stop.clone(), count.clone(), req.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = c as u64 * 1_000_000_000;
            while !stop.load(Ordering::Relaxed) {
                req(client.clone(), i).await;
                count.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    tokio::time::sleep(secs()).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

async fn create_rate(base: &str, clients: usize) -> f64 {
    let url = format!("{base}/api/incidents");
    hammer(clients, move |c, i| {
        let url = url.clone();
        async move {
            let r = c
                .post(url)
                .json(&json!({"service":"bench","severity":"P2","env":"prod","title":format!("bench {i}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            // Read the body: an unread response cannot give its connection back to the pool.
            r.bytes().await.unwrap();
        }
    })
    .await
}

/// Creates through the incident room directly, no HTTP: separates storage from HTTP cost.
async fn direct_create_rate(state: &sofiia::app::AppState, tasks: usize) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut hs = Vec::new();
    for t in 0..tasks {
        let (inc, stop, count) = (state.incidents.clone(), stop.clone(), count.clone());
        hs.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let input: sofiia::incidents::model::NewIncident = serde_json::from_value(
                    json!({"service":"direct","severity":"P2","title":format!("direct {t} {i}")}),
                )
                .unwrap();
                inc.create(input, "bench").await.unwrap();
                count.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    tokio::time::sleep(secs()).await;
    stop.store(true, Ordering::Relaxed);
    for h in hs {
        h.await.unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// Write `n` incidents straight into the store in large batches (setup, not measured).
fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn latency(client: &reqwest::Client, url: &str, n: usize) -> (f64, f64) {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = client.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        v.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (pct(&v, 0.5), pct(&v, 0.99))
}

/// Spawn the release binary on `data` and time until `/healthz` answers 200.
fn time_to_healthy(data: &Path) -> (f64, u64) {
    let start = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sofiia"))
        .env("DATA_DIR", data)
        .env("PORT", "0")
        .env("RUST_LOG", "warn")
        .env_remove("CONFIG_DIR")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_string();
    let addr = base.trim_start_matches("http://").to_string();
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut resp = String::new();
            let _ = std::io::Read::read_to_string(&mut s, &mut resp);
            if resp.starts_with("HTTP/1.1 200") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let rss_kb = rss_kb(child.id());
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    (ms, rss_kb)
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.to_string())
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let tmp =
        tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| ".".into())).unwrap();
    println!(
        "sofiia throughput bench: {} cores, data on {}, {:.0} s per phase",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        tmp.path().display(),
        secs().as_secs_f64()
    );

    // The machine's speed drifts (shared host): every figure is the median of ROUNDS
    // measurements taken in interleaved rounds, so a ratio compares like with like.
    let rounds = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3usize);
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (mut fsync, mut redb, mut noop, mut d1, mut d32, mut c1, mut c32, mut per_commit) = (
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
    );
    rt.block_on(async {
        let data = tmp.path().join("server");
        let app = App::build(settings(&data)).await.unwrap();
        let base = format!("http://{}", app.local_addr());
        let state = app.state().clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = stop_rx.await;
        }));
        for round in 0..rounds {
            let dir = tmp.path().join(format!("ceiling-{round}"));
            std::fs::create_dir_all(&dir).unwrap();
            fsync.push(raw_fsync_rate(&dir));
            redb.push(redb_commit_rate(&dir));
            let health = format!("{base}/api/health");
            noop.push(
                hammer(32, move |c, _| {
                    let u = health.clone();
                    async move {
                        let r = c.get(u).send().await.unwrap();
                        assert_eq!(r.status(), 200);
                        r.bytes().await.unwrap();
                    }
                })
                .await,
            );
            d1.push(direct_create_rate(&state, 1).await);
            d32.push(direct_create_rate(&state, 32).await);
            c1.push(create_rate(&base, 1).await);
            let before = state.store.writer_stats();
            c32.push(create_rate(&base, 32).await);
            let after = state.store.writer_stats();
            per_commit.push(
                (after.jobs - before.jobs) as f64 / (after.commits - before.commits).max(1) as f64,
            );
            eprintln!("round {} of {rounds} done", round + 1);
        }
        let _ = stop_tx.send(());
        server.await.unwrap().unwrap();
    });
    let (fsync, redb, noop) = (median(fsync), median(redb), median(noop));
    let (d1, d32, c1, c32, per_commit) = (
        median(d1),
        median(d32),
        median(c1),
        median(c32),
        median(per_commit),
    );
    println!(
        "{:<52} {:>10.0} /s",
        "ceiling: raw write+fsync (512 B)", fsync
    );
    println!(
        "{:<52} {:>10.0} /s",
        "ceiling: redb durable single-insert commits", redb
    );
    println!(
        "{:<52} {:>10.0} /s",
        "ceiling: no-op JSON endpoint, 32 clients", noop
    );
    println!(
        "{:<52} {:>10.0} /s",
        "durable creates in-process (no HTTP), 1 task", d1
    );
    println!(
        "{:<52} {:>10.0} /s",
        "durable creates in-process (no HTTP), 32 tasks", d32
    );
    println!(
        "{:<52} {:>10.0} /s   {:.2}x redb single commit (target >= 0.5)",
        "durable creates over HTTP, 1 client",
        c1,
        c1 / redb
    );
    println!(
        "{:<52} {:>10.0} /s   {:.2}x no-op endpoint (target >= 0.5); {:.1} writes per commit",
        "durable creates over HTTP, 32 clients",
        c32,
        c32 / noop,
        per_commit
    );
    println!(
        "{:<52} {:>10.2}x",
        "group-commit gain (32 clients / 1 client)",
        c32 / c1
    );

    // 100k incidents: list latency and start-up time.
    let big = tmp.path().join("big");
    let n = std::env::var("BENCH_INCIDENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000usize);
    rt.block_on(async {
        let app = App::build(settings(&big)).await.unwrap();
        let t = Instant::now();
        populate::populate(
            &app.state().store,
            time::OffsetDateTime::now_utc() - time::Duration::days(200),
            n,
        )
        .await;
        let load_s = t.elapsed().as_secs_f64();
        println!(
            "{:<52} {:>10.0} /s   ({n} incidents + events, batches of 5000)",
            "bulk load rate (setup)",
            n as f64 / load_s
        );
        let base = format!("http://{}", app.local_addr());
        let index = app.state().search.incidents.clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = stop_rx.await;
        }));
        // The similarity index catches up with the bulk load in the background; measure
        // latencies once it has (an operator's server is in that state almost always).
        let t = Instant::now();
        while !index.ready() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        println!(
            "{:<52} {:>10.2} s    ({} incidents indexed in the background)",
            "incident index catch-up after the bulk load",
            t.elapsed().as_secs_f64(),
            index.len()
        );
        let client = sofiia::net::client();
        let page2 = {
            let v: serde_json::Value = client
                .get(format!("{base}/api/incidents?limit=50"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["next_cursor"].as_str().unwrap().to_string()
        };
        let shapes = [
            ("no filter, limit 50", "limit=50".to_string()),
            ("status=open", "status=open&limit=50".to_string()),
            (
                "service=svc7&severity=P1",
                "service=svc7&severity=P1&limit=50".to_string(),
            ),
            (
                "status=open&env=prod&severity=P0,P1",
                "status=open&env=prod&severity=P0,P1&limit=50".to_string(),
            ),
            ("page 2 via cursor", format!("limit=50&cursor={page2}")),
        ];
        let mut worst = 0.0f64;
        for (name, q) in shapes {
            let url = format!("{base}/api/incidents?{q}");
            latency(&client, &url, 50).await; // warm
            let (p50, p99) = latency(&client, &url, 1000).await;
            worst = worst.max(p99);
            println!(
                "{:<52} p50 {:>6.2} ms  p99 {:>6.2} ms",
                format!("list @{}k: {name}", n / 1000),
                p50,
                p99
            );
        }
        // What the console's overview, events tab and text filter cost at this size.
        let console = [
            (
                "overview stats (60% of incidents active)",
                "/api/incidents/stats",
            ),
            ("latest 15 events", "/api/events/recent?limit=15"),
            (
                "text filter, common words",
                "/api/incidents?q=rolled%20back&limit=50",
            ),
            (
                "text filter, 1 hit (whole 20k scan budget)",
                "/api/incidents?q=incident%2099000%20&limit=50",
            ),
        ];
        for (name, path) in console {
            let url = format!("{base}{path}");
            latency(&client, &url, 5).await; // warm
            let (p50, p99) = latency(&client, &url, 200).await;
            println!(
                "{:<52} p50 {:>6.2} ms  p99 {:>6.2} ms",
                format!("console @{}k: {name}", n / 1000),
                p50,
                p99
            );
        }
        let (p50, p99) = latency(&client, &format!("{base}/api/health"), 1000).await;
        println!(
            "{:<52} p50 {:>6.2} ms  p99 {:>6.2} ms",
            "baseline: no-op endpoint, same client", p50, p99
        );
        println!(
            "{:<52} {:>10.2} ms (target < 10)",
            format!("list @{}k: worst p99", n / 1000),
            worst
        );
        let _ = stop_tx.send(());
        server.await.unwrap().unwrap();
    });

    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    time_to_healthy(&empty); // create the file once
    let med = |mut v: Vec<(f64, u64)>| {
        v.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        v[v.len() / 2]
    };
    let (e_ms, e_rss) = med((0..5).map(|_| time_to_healthy(&empty)).collect());
    let (b_ms, b_rss) = med((0..5).map(|_| time_to_healthy(&big)).collect());
    println!(
        "{:<52} {:>10.1} ms (rss {} KiB)",
        "start to healthy /healthz: empty store (median of 5)", e_ms, e_rss
    );
    println!(
        "{:<52} {:>10.1} ms (rss {} KiB; target < 200 ms)",
        format!("start to healthy /healthz: {}k incidents", n / 1000),
        b_ms,
        b_rss
    );
}
