//! The operator's HTTP endpoint: `/metrics` (OpenMetrics text), `/healthz` (the process serves
//! requests) and `/readyz` (the controller's caches are synced, or this replica stands by for
//! the Lease).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::metrics::Metrics;

/// What `/readyz` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Starting up; the text says what it waits for.
    Starting(String),
    /// Another replica holds the Lease; this one is healthy and ready to take over.
    Standby,
    /// Leading, with synced caches.
    Ready,
    /// Shutting down.
    Stopping,
}

/// State shared between the controller and the HTTP endpoint.
pub struct Health {
    readiness: RwLock<Readiness>,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
}

impl Health {
    /// A fresh state: starting.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            readiness: RwLock::new(Readiness::Starting("starting".into())),
            metrics,
        }
    }

    /// Sets what `/readyz` reports.
    pub fn set(&self, readiness: Readiness) {
        if let Ok(mut current) = self.readiness.write() {
            *current = readiness;
        }
    }

    /// What `/readyz` reports.
    pub fn readiness(&self) -> Readiness {
        self.readiness
            .read()
            .map(|r| r.clone())
            .unwrap_or_else(|_| Readiness::Starting("readiness lock poisoned".into()))
    }
}

/// Binds `addr` (fails fast on a bad or busy address).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves requests on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    health: Arc<Health>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let health = health.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let health = health.clone();
                        async move { Ok::<_, Infallible>(route(&health, &request)) }
                    });
                    if let Err(error) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                        tracing::debug!(%error, "metrics connection ended with an error");
                    }
                });
            }
        }
    }
}

fn route(health: &Health, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET is served\n".into(),
        );
    }
    match request.uri().path() {
        "/metrics" => {
            let mut response = text(StatusCode::OK, health.metrics.encode());
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => match health.readiness() {
            Readiness::Ready => text(StatusCode::OK, "ok\n".into()),
            Readiness::Standby => text(
                StatusCode::OK,
                "ok: standing by for the leader Lease\n".into(),
            ),
            Readiness::Starting(what) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {what}\n"),
            ),
            Readiness::Stopping => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: shutting down\n".into(),
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}
