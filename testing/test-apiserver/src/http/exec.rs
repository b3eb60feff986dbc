//! `GET …/pods/NAME/exec`: the checks the API server and the kubelet make before the WebSocket
//! upgrade (RBAC, pod, container, node, parameters, subprotocol), in the order they make them, and
//! the upgrade response. The session itself is `crate::exec::session`.

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::route::ResourcePath;
use crate::error::ApiError;
use crate::exec::ExecAction;
use crate::exec::request::{self, ExecRequest, Protocol};
use crate::exec::rules::ExecTarget;
use crate::exec::session::{Plan, Session};
use crate::server::Shared;

/// Whether a path is a pod's `exec` subresource.
pub fn is_exec(path: &ResourcePath) -> bool {
    path.group.is_empty()
        && path.resource == "pods"
        && path.subresource.as_deref() == Some("exec")
        && path.name.is_some()
}

/// An accepted exec request: the response headers of the upgrade and the session to run after it.
pub struct Accepted {
    /// `Sec-WebSocket-Accept`.
    accept: String,
    /// What runs once upgraded.
    pub session: Session,
}

impl Accepted {
    /// The `101 Switching Protocols` response.
    pub fn response<B>(&self, body: B) -> Response<B> {
        let mut response = Response::new(body);
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(
            http::header::CONNECTION,
            HeaderValue::from_static("Upgrade"),
        );
        if let Ok(accept) = HeaderValue::from_str(&self.accept) {
            headers.insert(http::header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        headers.insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(self.session.protocol.as_str()),
        );
        response
    }
}

/// Decides an exec request: an upgrade to accept, or the error the real server answers with.
pub fn prepare(
    shared: &Shared,
    method: &Method,
    headers: &HeaderMap,
    path: &ResourcePath,
    query: &str,
) -> Result<Accepted, ApiError> {
    let namespace = path.namespace.as_deref().unwrap_or("default");
    let name = path.name.as_deref().unwrap_or_default();
    let rules = shared.exec.lock().expect("exec rules lock").clone();
    if rules.forbids(namespace, name) {
        return Err(request::forbidden(&rules.user, namespace, name));
    }
    let pod = {
        let state = shared.state.lock().expect("state lock");
        let target = state.target("", "v1", "pods", Some(namespace), Some(name), false)?;
        state.get(&target)?
    };
    let exec = ExecRequest::parse(query);
    exec.check()?;
    let facts = request::pod_facts(&pod, &exec)?;
    let key = websocket_key(method, headers)?;
    let offered = header_list(headers, http::header::SEC_WEBSOCKET_PROTOCOL);
    let protocol = request::negotiate(
        offered.iter().map(String::as_str),
        request::serves_v5(&shared.git_version()),
    )
    .ok_or_else(|| {
        ApiError::bad_request(format!(
            "requested protocol(s) are not supported: {offered:?}; supports [{} {}]",
            request::V5,
            request::V4
        ))
    })?;
    let plan = if !facts.running {
        let message = request::container_not_found(&facts.container);
        if protocol == Protocol::V4 {
            return Err(ApiError::internal(message));
        }
        Plan::Fail(format!("unable to upgrade connection: {message}"))
    } else {
        plan(&rules, namespace, name, &facts, &exec)
    };
    Ok(Accepted {
        accept: derive_accept_key(key.as_bytes()),
        session: Session {
            protocol,
            request: exec,
            plan,
        },
    })
}

fn plan(
    rules: &crate::exec::ExecRules,
    namespace: &str,
    pod: &str,
    facts: &request::PodFacts,
    exec: &ExecRequest,
) -> Plan {
    let target = ExecTarget {
        namespace,
        pod,
        node: Some(&facts.node),
        container: Some(&facts.container),
        command: exec.command.first().map(String::as_str),
    };
    match rules.decide(&target) {
        Some(ExecAction::Run(command)) => {
            let mut argv = command.argv.clone();
            argv.extend(exec.command.iter().skip(1).cloned());
            let mut env = facts.env.clone();
            env.extend(command.env.iter().map(|(k, v)| (k.clone(), v.clone())));
            Plan::Run { argv, env }
        }
        Some(ExecAction::Hang {}) => Plan::Hang,
        Some(ExecAction::Forbid {}) | None => Plan::Fail(format!(
            "error executing command in container: the test API server has no exec rule for \
             container {} of pod {namespace}/{pod} on node {} running {:?}; add a `run` rule \
             (--exec-config FILE, Config::exec_rule or TestApiServer::set_exec_rules)",
            facts.container, facts.node, exec.command
        )),
    }
}

/// The client's `Sec-WebSocket-Key`, or 400 for anything but a WebSocket upgrade.
fn websocket_key(method: &Method, headers: &HeaderMap) -> Result<String, ApiError> {
    let upgrade = header_list(headers, http::header::UPGRADE);
    if *method != Method::GET || !upgrade.iter().any(|u| u.eq_ignore_ascii_case("websocket")) {
        let asked = if upgrade.is_empty() {
            "no upgrade".to_string()
        } else {
            upgrade.join(", ")
        };
        return Err(ApiError::bad_request(format!(
            "Upgrade request required: the test API server serves pods/exec over WebSocket only \
             (GET with Upgrade: websocket and subprotocol {} or {}); this request asked for {asked} \
             with {method} (SPDY is not served)",
            request::V5,
            request::V4
        )));
    }
    headers
        .get(http::header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .ok_or_else(|| ApiError::bad_request("WebSocket upgrade without Sec-WebSocket-Key"))
}

/// Every comma-separated value of a header that may repeat.
fn header_list(headers: &HeaderMap, name: http::header::HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}
