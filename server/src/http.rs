//! The HTTP listener, with the limits a server facing a network needs: headers at most
//! [`MAX_HEADER_BYTES`] (hyper checks between reads, so a head can pass it by one read's
//! worth) and [`MAX_HEADERS`] (431 beyond), read within [`HEADER_READ_TIMEOUT`]
//! (a slow client is cut off, not waited for), URIs at most [`MAX_URI_BYTES`] (414), and at
//! most `server.max_concurrent_requests` requests in progress (503 with `Retry-After` beyond:
//! load is shed, not queued without bound). Plain TCP or TLS ([`crate::tls`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{watch, Semaphore};

use crate::api_error::ApiError;
use crate::app_state::AppState;

pub const MAX_HEADER_BYTES: usize = 64 * 1024;
pub const MAX_HEADERS: usize = 100;
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Serves `app` on `listener` until `stop` changes, then lets the requests in flight finish.
/// Every request passes [`edge`] first.
pub async fn serve<L>(mut listener: L, app: Router, state: Arc<AppState>, mut stop: watch::Receiver<bool>)
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => break,
        };
        let (app, state) = (app.clone(), state.clone());
        let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let (app, state) = (app.clone(), state.clone());
            async move { Ok::<_, Infallible>(edge(&state, peer, req.map(axum::body::Body::new), app).await) }
        });
        let conn = graceful.watch(http1.serve_connection(TokioIo::new(io), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
}

/// How many requests may be in progress at once (`server.max_concurrent_requests`).
pub struct Concurrency {
    permits: Arc<Semaphore>,
    max: usize,
}

impl Concurrency {
    pub fn new(max: usize) -> Concurrency {
        Concurrency { permits: Arc::new(Semaphore::new(max)), max }
    }
}

/// What every request passes before the router, in this order (a function [`serve`] calls,
/// not middleware: a layer costs a boxed future, a service clone and a second route future
/// around the handler per request, BENCHMARKS.md, issue 20):
/// 1. 414 for an over-long URI; 503 when `max_concurrent_requests` are in progress (`/health`
///    and `/subscribe`, held open by design, do not count);
/// 2. CORS: a preflight from an allowed origin is answered here, and every answer to an
///    allowed origin says so (errors of step 3 too);
/// 3. auth ([`crate::auth::guard`]): 401, 403 or 429 instead of the route.
async fn edge(state: &AppState, peer: SocketAddr, mut req: Request, mut app: Router) -> Response {
    // The URI's length, counted without writing it out on this hot path.
    let uri = req.uri();
    let length = uri.scheme_str().map_or(0, |s| s.len() + 3)
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path().len()
        + uri.query().map_or(0, |q| q.len() + 1);
    if length > MAX_URI_BYTES {
        return ApiError::UriTooLong(MAX_URI_BYTES).into_response();
    }
    let path = uri.path();
    let _permit = if path == "/health" || path.starts_with("/subscribe/") {
        None
    } else {
        match state.concurrency.permits.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => return ApiError::Overloaded(state.concurrency.max).into_response(),
        }
    };
    let origin = crate::auth::cors_origin(state, &req);
    let resp = match (&origin, req.method()) {
        (Some(_), &axum::http::Method::OPTIONS) => crate::auth::preflight(),
        _ => match crate::auth::guard(state, peer, &mut req) {
            Ok(()) if state.roles.ingest && req.method() == axum::http::Method::POST => {
                let (parts, body) = req.into_parts();
                match crate::ingest::direct_model(state, parts.uri.path()) {
                    Some(model) => crate::ingest::ingest_direct(state, &model, &parts, body).await,
                    None => route(&mut app, Request::from_parts(parts, body)).await,
                }
            }
            Ok(()) => route(&mut app, req).await,
            Err(e) => e.into_response(),
        },
    };
    match origin {
        Some(origin) => crate::auth::allow_origin(resp, origin),
        None => resp,
    }
}

/// The router's answer. A `POST` into a model ([`crate::ingest::direct_model`]) on a server
/// with the ingest role is answered without it (its match, extractors and boxed handler
/// future; BENCHMARKS.md, issue 20); anything else, a percent-encoded or nested path among
/// them, goes through it.
async fn route(app: &mut Router, req: Request) -> Response {
    match tower_service::Service::call(app, req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}
