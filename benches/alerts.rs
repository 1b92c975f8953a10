//! `cargo bench --bench alerts`: an alert storm. 10,000 alerts in 200 Alertmanager webhook
//! posts from 8 clients (100 groups of 50 alerts, each group notified twice, so half the
//! alerts are repeats): intake rate, time until every incident exists, incidents created,
//! `/api/incidents` p99 during the storm and the process's RSS, next to the same server's
//! no-op endpoint (`/api/health`) under the same 8 clients in the same run.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sofiia::config::Settings;
use sofiia::server::App;

const GROUPS: usize = 100;
const PER_GROUP: usize = 50;
const CLIENTS: usize = 8;

fn body(group: usize) -> Value {
    let alerts: Vec<Value> = (0..PER_GROUP)
        .map(|k| {
            json!({
                "status": "firing",
                "labels": {"alertname": format!("Storm{group}"), "service": format!("svc{}", group % 20),
                           "severity": "critical", "instance": format!("node{k}")},
                "annotations": {"summary": format!("storm {group}/{k}")},
                "startsAt": "2026-12-04T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": format!("{:016x}", group * 1000 + k),
            })
        })
        .collect();
    json!({
        "version": "4", "receiver": "sofiia", "status": "firing",
        "groupKey": format!("{{}}:{{alertname=\"Storm{group}\"}}"),
        "truncatedAlerts": 0,
        "groupLabels": {"alertname": format!("Storm{group}")},
        "commonLabels": {"alertname": format!("Storm{group}")},
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    })
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// `n` requests from `CLIENTS` clients; returns requests per second.
async fn drive(n: usize, make: Arc<dyn Fn(usize) -> reqwest::RequestBuilder + Send + Sync>) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (next, make) = (next.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let r = make(i).send().await.unwrap();
                assert!(r.status().is_success(), "{}", r.status());
                r.bytes().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let settings = Settings::ephemeral(&tmp.path().join("data"), "bench");
        let app = App::build(settings).await.unwrap();
        let base = format!("http://{}", app.local_addr());
        let state = app.state().clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = stop_rx.await;
        }));
        let client = sofiia::net::client();
        let rss0 = rss_kb();

        // Baseline: the no-op endpoint, same clients, same number of requests.
        let c = client.clone();
        let b = base.clone();
        let noop = drive(
            GROUPS * 2,
            Arc::new(move |_| c.get(format!("{b}/api/health"))),
        )
        .await;

        // Readers during the storm.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (c, b, stop) = (client.clone(), base.clone(), stop.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let r = c
                        .get(format!("{b}/api/incidents?limit=50"))
                        .send()
                        .await
                        .unwrap();
                    r.bytes().await.unwrap();
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                lat
            })
        };
        let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
            (0..GROUPS * 2)
                .map(|i| serde_json::to_vec(&body(i % GROUPS)).unwrap())
                .collect(),
        );
        let (c, b) = (client.clone(), base.clone());
        let t = Instant::now();
        let posts = drive(
            GROUPS * 2,
            Arc::new(move |i| {
                c.post(format!("{b}/api/alerts/alertmanager"))
                    .header("content-type", "application/json")
                    .body(bodies[i].clone())
            }),
        )
        .await;
        let intake_s = t.elapsed().as_secs_f64();
        // Until every group's incident exists.
        let count = || {
            let store = state.store.clone();
            async move {
                store
                    .read(|txn| {
                        use redb::ReadableTableMetadata;
                        Ok(txn
                            .open_table(sofiia::incidents::tables::INCIDENTS)?
                            .len()?)
                    })
                    .await
                    .unwrap()
            }
        };
        while count().await < GROUPS as u64 && t.elapsed() < Duration::from_secs(300) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let all_s = t.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let mut lat = reader.await.unwrap();
        let made = count().await;
        let alerts = (GROUPS * 2 * PER_GROUP) as f64;
        println!(
            "{:<48} {:>9.0} alerts/s  ({:.0} posts/s; per alert {:.3}x the no-op endpoint's {:.0} req/s)",
            "intake, 10,000 alerts in 200 posts, 8 clients",
            alerts / intake_s,
            posts,
            alerts / intake_s / noop,
            noop
        );
        println!(
            "{:<48} {:>9.2} s        (all {} posts answered in {:.2} s)",
            "until every incident exists",
            all_s,
            GROUPS * 2,
            intake_s
        );
        println!(
            "{:<48} {:>9}          (100 groups; half the alerts were repeats)",
            "incidents created", made
        );
        println!(
            "{:<48} {:>9.1} ms p50 {:>6.1} ms p99  ({} requests)",
            "/api/incidents during the storm",
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99),
            lat.len()
        );
        println!(
            "{:<48} {:>9.0} MB       (before the storm: {:.0} MB)",
            "RSS after the storm",
            rss_kb() as f64 / 1024.0,
            rss0 as f64 / 1024.0
        );
        let _ = stop_tx.send(());
        let _ = server.await;
    });
}
