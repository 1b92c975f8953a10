//! The shared outbound client against a local test server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::{get, post};
use sofiia::net::{Allowlist, Options, Outbound, OutboundError};

/// A server whose `/flaky` fails `fail_first` times, `/down` always fails; counts hits.
async fn server(fail_first: usize) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let healthy = Arc::new(AtomicUsize::new(0));
    let (h1, h2, h3) = (hits.clone(), hits.clone(), healthy.clone());
    let app = axum::Router::new()
        .route(
            "/flaky",
            get(move || {
                let n = h1.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < fail_first {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        )
        .route("/flaky", post(|| async { StatusCode::SERVICE_UNAVAILABLE }))
        .route(
            "/down",
            get(move || {
                h2.fetch_add(1, Ordering::SeqCst);
                let up = h3.load(Ordering::SeqCst) == 1;
                async move {
                    if up {
                        StatusCode::OK
                    } else {
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), hits, healthy)
}

fn client(opts: Options) -> Outbound {
    Outbound::with_allowlist(
        Allowlist {
            hosts: vec!["127.0.0.1".into()],
        },
        opts,
    )
    .unwrap()
}

#[tokio::test]
async fn only_allowlisted_hosts_are_called() {
    let c = client(Options::default());
    let e = c
        .send(reqwest::Method::GET, "http://example.com/x", None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, OutboundError::NotAllowed(ref h) if h == "example.com"),
        "{e}"
    );
    let e = c
        .send(reqwest::Method::GET, "http://localhost:1/x", None)
        .await
        .unwrap_err();
    assert!(matches!(e, OutboundError::NotAllowed(_)), "{e}");
    let e = c
        .send(reqwest::Method::GET, "file:///etc/passwd", None)
        .await
        .unwrap_err();
    assert!(matches!(e, OutboundError::BadUrl(_)), "{e}");
}

#[tokio::test]
async fn idempotent_requests_are_retried_others_are_not() {
    let (base, hits, _) = server(2).await;
    let c = client(Options {
        backoff: Duration::from_millis(5),
        ..Options::default()
    });
    let r = c
        .send(reqwest::Method::GET, &format!("{base}/flaky"), None)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(hits.load(Ordering::SeqCst), 3, "two failures, then success");
    let e = c
        .send(
            reqwest::Method::POST,
            &format!("{base}/flaky"),
            Some(serde_json::json!({})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, OutboundError::Status { status: 503, .. }),
        "{e}"
    );
}

#[tokio::test]
async fn the_circuit_opens_on_failures_and_recovers() {
    let (base, hits, healthy) = server(0).await;
    let c = client(Options {
        attempts: 1,
        failure_threshold: 2,
        open_for: Duration::from_millis(200),
        ..Options::default()
    });
    let url = format!("{base}/down");
    for _ in 0..2 {
        let e = c.send(reqwest::Method::GET, &url, None).await.unwrap_err();
        assert!(
            matches!(e, OutboundError::Status { status: 500, .. }),
            "{e}"
        );
    }
    // Open: refused at once, the server is not called.
    let e = c.send(reqwest::Method::GET, &url, None).await.unwrap_err();
    assert!(matches!(e, OutboundError::CircuitOpen { .. }), "{e}");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // After the cool-down one trial goes through; it fails, so the circuit opens again at once.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let e = c.send(reqwest::Method::GET, &url, None).await.unwrap_err();
    assert!(
        matches!(e, OutboundError::Status { status: 500, .. }),
        "{e}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    let e = c.send(reqwest::Method::GET, &url, None).await.unwrap_err();
    assert!(matches!(e, OutboundError::CircuitOpen { .. }), "{e}");
    // Next trial: the host is healthy again, so it closes.
    tokio::time::sleep(Duration::from_millis(250)).await;
    healthy.store(1, Ordering::SeqCst);
    assert_eq!(
        c.send(reqwest::Method::GET, &url, None)
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(!c.is_open("127.0.0.1"));
    assert_eq!(
        c.send(reqwest::Method::GET, &url, None)
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn a_dead_port_is_a_clear_connect_error() {
    let c = client(Options {
        attempts: 1,
        ..Options::default()
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let e = c
        .send(
            reqwest::Method::GET,
            &format!("http://127.0.0.1:{port}/"),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, OutboundError::Connect { .. }), "{e}");
}

/// A trial call after the cool-down that is cancelled (its future dropped) must not leave the
/// host refused: the next call is admitted.
#[tokio::test]
async fn a_cancelled_trial_call_does_not_keep_the_circuit_open() {
    let c = Arc::new(client(Options {
        attempts: 1,
        failure_threshold: 1,
        open_for: Duration::from_millis(100),
        ..Options::default()
    }));
    // Open the circuit of 127.0.0.1 with a connect error on a dead port.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let e = c
        .send(
            reqwest::Method::GET,
            &format!("http://127.0.0.1:{dead_port}/"),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, OutboundError::Connect { .. }), "{e}");
    assert!(c.is_open("127.0.0.1"));
    // Wait out the cool-down.
    let start = std::time::Instant::now();
    while c.is_open("127.0.0.1") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "cool-down never ended"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The trial goes to a listener that accepts and never answers; cancel it once accepted.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang_url = format!("http://{}/", hang.local_addr().unwrap());
    let (accepted_tx, accepted_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (sock, _) = hang.accept().await.unwrap();
        let _ = accepted_tx.send(());
        // Hold the connection open, silent.
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(sock);
    });
    let trial = {
        let c = c.clone();
        tokio::spawn(async move { c.send(reqwest::Method::GET, &hang_url, None).await })
    };
    tokio::time::timeout(Duration::from_secs(10), accepted_rx)
        .await
        .expect("the trial reached the listener")
        .unwrap();
    // While the trial runs, other calls wait.
    let (base, hits, _) = server(0).await;
    let e = c
        .send(reqwest::Method::GET, &format!("{base}/flaky"), None)
        .await
        .unwrap_err();
    assert!(matches!(e, OutboundError::CircuitOpen { .. }), "{e}");
    trial.abort();
    assert!(trial.await.unwrap_err().is_cancelled());

    // The trial was cancelled: the next call is admitted (and, answered, closes the circuit).
    let r = c
        .send(reqwest::Method::GET, &format!("{base}/flaky"), None)
        .await
        .expect("admitted after the cancelled trial");
    assert_eq!(r.status(), 200);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert!(!c.is_open("127.0.0.1"));
}

/// A listener that accepts and never answers; counts the connections it holds.
async fn hanging() -> (String, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    let n = Arc::new(AtomicUsize::new(0));
    let seen = n.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            held.push(s);
        }
    });
    (url, n)
}

/// The call budget covers every attempt: a host that hangs is tried once for the budget, not
/// three times for the per-attempt timeout, and the hang counts as a failure of the host.
#[tokio::test]
async fn a_hanging_host_costs_one_call_budget_not_three_attempt_timeouts() {
    let (url, accepted) = hanging().await;
    let c = client(Options {
        total_timeout: Duration::from_secs(20),
        call_budget: Duration::from_secs(1),
        failure_threshold: 1,
        ..Options::default()
    });
    let started = std::time::Instant::now();
    let e = c.send(reqwest::Method::GET, &url, None).await.unwrap_err();
    assert!(matches!(e, OutboundError::Timeout { .. }), "{e}");
    assert!(
        e.to_string().contains("timed out (no answer in 1 s)"),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert!(c.is_open("127.0.0.1"), "a hang is a failure of the host");

    // A caller's deadline replaces the default budget (here far longer than the deadline).
    let (url, accepted) = hanging().await;
    let c = client(Options {
        total_timeout: Duration::from_secs(60),
        call_budget: Duration::from_secs(60),
        ..Options::default()
    });
    let started = std::time::Instant::now();
    let deadline = started + Duration::from_millis(300);
    let e = c
        .send_until(reqwest::Method::GET, &url, None, Some(deadline))
        .await
        .unwrap_err();
    assert!(matches!(e, OutboundError::Timeout { .. }), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    // A deadline already past calls nobody.
    let e = c
        .send_until(
            reqwest::Method::GET,
            &url,
            None,
            Some(std::time::Instant::now()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, OutboundError::Timeout { after_ms: 0, .. }),
        "{e}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}
