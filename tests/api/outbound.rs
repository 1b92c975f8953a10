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
