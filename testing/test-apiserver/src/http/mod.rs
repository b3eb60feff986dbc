//! The HTTP shell: accepts connections, turns each request into a Kubernetes request (route, verb),
//! applies injected faults, hands it to the handlers, logs it, and writes the response or the watch stream.

mod access_review;
mod exec;
mod handlers;
mod params;
pub mod route;
pub mod watch;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, channel::Channel};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::error::ApiError;
use crate::patch::PatchType;
use crate::request::{RequestInfo, Verb};
use crate::request_log::RequestRecord;
use crate::server::Shared;
use params::Params;
use route::Route;

/// Response body: a whole JSON document or a watch stream.
pub type Body = Either<Full<Bytes>, Channel<Bytes, Infallible>>;

/// What a handler produced.
pub enum Outcome {
    /// A complete response.
    Document {
        /// HTTP status.
        status: u16,
        /// JSON body.
        body: Value,
        /// Content-Type.
        content_type: &'static str,
        /// Whether stored state changed.
        changed: bool,
        /// `Warning` headers.
        warnings: Vec<String>,
        /// `Retry-After` seconds.
        retry_after: Option<u32>,
    },
    /// A watch to stream.
    Watch(Box<watch::WatchPlan>),
    /// A `pods/exec` WebSocket upgrade to accept.
    Upgrade(Box<exec::Accepted>),
}

impl Outcome {
    fn json(status: u16, body: Value) -> Self {
        Self::Document {
            status,
            body,
            content_type: "application/json",
            changed: false,
            warnings: Vec::new(),
            retry_after: None,
        }
    }

    fn error(error: &ApiError) -> Self {
        Self::Document {
            status: error.code,
            body: error.to_status(),
            content_type: "application/json",
            changed: false,
            warnings: Vec::new(),
            retry_after: error.retry_after_seconds,
        }
    }
}

/// Requests answered outside the resource handlers (they are not stored resources).
enum ServedHere<'a> {
    /// `pods/NAME/exec`: a WebSocket upgrade.
    Exec(&'a route::ResourcePath),
    /// A SelfSubjectAccessReview.
    AccessReview(&'a route::ResourcePath),
    /// Everything else.
    Elsewhere,
}

/// Serves connections until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => return,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service =
                service_fn(move |request: Request<Incoming>| handle(shared.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

/// Answers one request: the socket server's connections and the in-process service both end here.
pub(crate) async fn handle<B>(
    shared: Arc<Shared>,
    mut request: Request<B>,
) -> Result<Response<Body>, Infallible>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let on_upgrade = hyper::upgrade::on(&mut request);
    let (parts, body) = request.into_parts();
    let at = SystemTime::now();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or_default().to_string();
    let params = Params::parse(&query);
    let route = route::parse(&path);
    let header = |name: http::header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let request_content_type = header(http::header::CONTENT_TYPE);
    let info = request_info(
        route.as_ref(),
        &parts.method,
        &params,
        &request_content_type,
    );

    let verdict = shared.faults.lock().expect("faults lock").decide(&info);
    let injected = verdict.failure.is_some();
    let sequence = shared.log.lock().expect("log lock").push(RequestRecord {
        sequence: 0,
        at,
        method: parts.method.to_string(),
        path: path.clone(),
        query: query.clone(),
        info: info.clone(),
        field_manager: params.get("fieldManager").map(String::from),
        user_agent: header(http::header::USER_AGENT),
        status: 0,
        changed: false,
        injected,
    });
    if let Some(enabled) = verdict.admin_access {
        shared
            .state
            .lock()
            .expect("state lock")
            .settings
            .admin_access = enabled;
    }
    if !verdict.delay.is_zero() {
        tokio::time::sleep(verdict.delay).await;
    }
    let served_here = match &route {
        Some(Route::Resource(path)) if exec::is_exec(path) => ServedHere::Exec(path),
        Some(Route::Resource(path)) if access_review::is_review(&parts.method, path) => {
            ServedHere::AccessReview(path)
        }
        _ => ServedHere::Elsewhere,
    };
    let outcome = match (verdict.failure, served_here) {
        (Some(error), _) => Outcome::error(&error),
        (None, ServedHere::Exec(path)) => {
            exec::prepare(&shared, &parts.method, &parts.headers, path, &query)
                .map(|accepted| Outcome::Upgrade(Box::new(accepted)))
                .unwrap_or_else(|error| Outcome::error(&error))
        }
        (None, ServedHere::AccessReview(path)) => {
            access_review::answer(&shared, &path.version, &request_content_type, &body)
                .unwrap_or_else(|error| Outcome::error(&error))
        }
        (None, ServedHere::Elsewhere) => handlers::dispatch(
            &shared,
            &parts.method,
            &parts.headers,
            route,
            &info,
            &params,
            &body,
        )
        .unwrap_or_else(|error| Outcome::error(&error)),
    };

    let (status, changed, response) = match outcome {
        Outcome::Document {
            status,
            body,
            content_type,
            changed,
            warnings,
            retry_after,
        } => {
            tracing::debug!(method = %parts.method, %path, %query, content_type = %request_content_type, status, "request");
            let mut response =
                Response::new(Either::Left(Full::new(Bytes::from(body.to_string()))));
            *response.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let headers = response.headers_mut();
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(content_type),
            );
            for warning in warnings {
                if let Ok(value) =
                    HeaderValue::from_str(&format!("299 - \"{}\"", warning.replace('"', "\\\"")))
                {
                    headers.append(http::header::WARNING, value);
                }
            }
            if let Some(seconds) = retry_after {
                headers.insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            // hyper keeps a refused upgrade's connection waiting for the upgrade: the client must
            // not send its next request on it.
            if parts.headers.contains_key(http::header::UPGRADE) {
                headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            (status, changed, response)
        }
        Outcome::Watch(plan) => {
            tracing::debug!(method = %parts.method, %path, %query, "watch");
            (200, false, watch::respond(shared.clone(), *plan))
        }
        Outcome::Upgrade(accepted) => {
            tracing::debug!(method = %parts.method, %path, %query, protocol = accepted.session.protocol.as_str(), "exec");
            let response = accepted.response(Either::Left(Full::new(Bytes::new())));
            tokio::spawn(crate::exec::session::serve(on_upgrade, accepted.session));
            (101, false, response)
        }
    };
    shared
        .log
        .lock()
        .expect("log lock")
        .finish(sequence, status, changed);
    Ok(response)
}

/// The answer to OpenAPI v2 requests: not served, so kubectl falls back to its compiled-in types for
/// strategic merge patches (v3 tells it the server validates fields, see `openapi`).
fn openapi_not_served() -> ApiError {
    ApiError::no_route()
}

/// The Kubernetes verb, resource and patch type of a request.
fn request_info(
    route: Option<&Route>,
    method: &Method,
    params: &Params,
    content_type: &str,
) -> RequestInfo {
    let Some(Route::Resource(path)) = route else {
        return RequestInfo::default();
    };
    let collection = path.name.is_none();
    let verb = match (method.as_str(), collection) {
        ("GET", true) if params.flag("watch") => Some(Verb::Watch),
        ("GET", true) => Some(Verb::List),
        ("GET", false) => Some(Verb::Get),
        ("POST", _) => Some(Verb::Create),
        ("PUT", _) => Some(Verb::Update),
        ("PATCH", _) => Some(Verb::Patch),
        ("DELETE", true) => Some(Verb::DeleteCollection),
        ("DELETE", false) => Some(Verb::Delete),
        _ => None,
    };
    RequestInfo {
        verb,
        group: Some(path.group.clone()),
        version: Some(path.version.clone()),
        resource: Some(path.resource.clone()),
        subresource: path.subresource.clone(),
        namespace: path.namespace.clone(),
        name: path.name.clone(),
        patch_type: if verb == Some(Verb::Patch) {
            PatchType::from_content_type(content_type)
        } else {
            None
        },
        dry_run: params.get("dryRun").is_some_and(|d| !d.is_empty()),
    }
}
