//! Request bodies with read timeouts, and the per-connection service that hands requests to
//! the router: it marks the connection busy while a request is in flight and answers 408
//! when the client sent its body too slowly.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::service::TowerToHyperService;
use tokio::time::{Instant, Sleep};

use super::conns::{Busy, Conn};
use super::trim::Trimmer;
use crate::error::Error;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a client may take to send a request body.
#[derive(Debug, Clone, Copy)]
pub(super) struct BodyLimits {
    /// Longest pause between two pieces of the body.
    pub idle: Duration,
    /// Longest time for the whole body, from the end of the headers.
    pub total: Duration,
}

/// The request body stopped arriving in time. Extractors find it in their rejection's chain
/// of causes and answer 408 `request_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTimeout {
    /// True when the body paused too long, false when it took too long in total.
    pub idle: bool,
    /// The limit that was exceeded, in milliseconds.
    pub limit_ms: u64,
}

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.idle {
            write!(
                f,
                "the request body stopped arriving for {} ms (SOFIIA_BODY_IDLE_TIMEOUT_MS)",
                self.limit_ms
            )
        } else {
            write!(
                f,
                "the request body took longer than {} ms to arrive (SOFIIA_BODY_TIMEOUT_MS)",
                self.limit_ms
            )
        }
    }
}

impl std::error::Error for BodyTimeout {}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A request body that fails with [`BodyTimeout`] when it pauses longer than the idle limit or
/// drags on past the total limit. The timer exists only while somebody waits for the body.
struct TimedBody {
    inner: Incoming,
    limits: BodyLimits,
    deadline: Instant,
    timer: Option<Pin<Box<Sleep>>>,
    /// A piece arrived since the timer was last set: the idle time starts again.
    rearm: bool,
    exchange: Arc<Exchange>,
}

/// What the service learns about a request's body while the handler reads it.
#[derive(Default)]
struct Exchange {
    timed_out: OnceLock<BodyTimeout>,
    received: AtomicU64,
}

impl TimedBody {
    /// When the body fails if nothing more arrives: after the idle limit, or at the total
    /// deadline if that comes first.
    fn next_deadline(&self) -> Instant {
        (Instant::now() + self.limits.idle).min(self.deadline)
    }
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(t) = this.exchange.timed_out.get() {
            return Poll::Ready(Some(Err(Box::new(*t))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.rearm = true;
                if let Some(data) = frame.data_ref() {
                    let n = u64::try_from(data.len()).unwrap_or(u64::MAX);
                    this.exchange.received.fetch_add(n, Ordering::Relaxed);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let at = this.next_deadline();
                match &mut this.timer {
                    None => this.timer = Some(Box::pin(tokio::time::sleep_until(at))),
                    Some(t) if this.rearm => t.as_mut().reset(at),
                    Some(_) => {}
                }
                this.rearm = false;
                let Some(timer) = this.timer.as_mut() else {
                    return Poll::Pending;
                };
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        // The reason is the limit whose end the timer was set for.
                        let why = if timer.deadline() < this.deadline {
                            BodyTimeout {
                                idle: true,
                                limit_ms: millis(this.limits.idle),
                            }
                        } else {
                            BodyTimeout {
                                idle: false,
                                limit_ms: millis(this.limits.total),
                            }
                        };
                        let _ = this.exchange.timed_out.set(why);
                        Poll::Ready(Some(Err(Box::new(why))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request from its headers until its response is written (or it is dropped).
struct InFlight {
    _busy: Busy,
    exchange: Arc<Exchange>,
    trimmer: Arc<Trimmer>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let received = self.exchange.received.load(Ordering::Relaxed);
        self.trimmer.dropped(received);
    }
}

/// A response body that keeps its request counted as in flight until hyper has written it.
pub(super) struct HeldBody {
    inner: Body,
    _request: InFlight,
}

impl http_body::Body for HeldBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The hyper service of one connection: every request goes to `router` with a timed body.
#[derive(Clone)]
pub(super) struct ConnService {
    router: TowerToHyperService<axum::Router>,
    conn: Arc<Conn>,
    limits: BodyLimits,
    trimmer: Arc<Trimmer>,
}

impl ConnService {
    pub(super) fn new(
        router: axum::Router,
        conn: Arc<Conn>,
        limits: BodyLimits,
        trimmer: Arc<Trimmer>,
    ) -> Self {
        ConnService {
            router: TowerToHyperService::new(router),
            conn,
            limits,
            trimmer,
        }
    }
}

type ServiceFuture = Pin<Box<dyn Future<Output = Result<Response<HeldBody>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<HeldBody>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn call(&self, req: Request<Incoming>) -> ServiceFuture {
        let exchange = Arc::new(Exchange::default());
        let request = InFlight {
            _busy: self.conn.begin(),
            exchange: exchange.clone(),
            trimmer: self.trimmer.clone(),
        };
        let limits = self.limits;
        let req = req.map(|inner| TimedBody {
            inner,
            limits,
            deadline: Instant::now() + limits.total,
            timer: None,
            rearm: false,
            exchange: exchange.clone(),
        });
        let answer = hyper::service::Service::call(&self.router, req);
        let conn = self.conn.clone();
        Box::pin(async move {
            let res = match answer.await {
                Ok(res) => res,
                Err(never) => match never {},
            };
            let res = match exchange.timed_out.get() {
                Some(why) => too_slow(res, why),
                None => res,
            };
            if res.status() == StatusCode::SWITCHING_PROTOCOLS {
                conn.mark_upgraded();
            }
            Ok(res.map(|inner| HeldBody {
                inner,
                _request: request,
            }))
        })
    }
}

/// The answer to a request whose body timed out, whatever the handler made of the failed
/// read: 408 in the envelope (keeping the request id), and the connection closes, since the
/// rest of the body may still be on its way.
fn too_slow(res: Response<Body>, why: &BodyTimeout) -> Response<Body> {
    let mut out = if res.status() == StatusCode::REQUEST_TIMEOUT {
        res
    } else {
        let id = res.headers().get("x-request-id").cloned();
        let mut out = Error::RequestTimeout(why.to_string()).into_response();
        if let Some(id) = id {
            out.headers_mut().insert("x-request-id", id);
        }
        out
    };
    out.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    out
}
