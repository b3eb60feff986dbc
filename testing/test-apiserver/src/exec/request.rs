//! The decisions of a `pods/exec` request before and after its upgrade, as plain functions: query
//! parameters, subprotocol choice, pod and container checks, the container's environment, and the
//! `Status` documents the error channel carries.

use serde_json::{Value, json};

use crate::error::{ApiError, StatusReason};

/// Subprotocol with CLOSE frames (`[255, channel]`); API servers serve it from 1.30.
pub const V5: &str = "v5.channel.k8s.io";
/// Subprotocol with a JSON `Status` on channel 3; served by the kubelet the API server proxies to.
pub const V4: &str = "v4.channel.k8s.io";

/// Channel numbers of the remote-command protocol (the first byte of every binary frame).
pub mod channel {
    /// The process's stdin (client to server).
    pub const STDIN: u8 = 0;
    /// The process's stdout.
    pub const STDOUT: u8 = 1;
    /// The process's stderr.
    pub const STDERR: u8 = 2;
    /// The exit `Status` (or a failure) as JSON.
    pub const ERROR: u8 = 3;
    /// Terminal resize events (client to server, tty only).
    pub const RESIZE: u8 = 4;
    /// v5 only: `[CLOSE, channel]` says the sender is done with that channel.
    pub const CLOSE: u8 = 255;
}

/// The negotiated subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `v5.channel.k8s.io`: the client can close stdin with `[255, 0]`.
    V5,
    /// `v4.channel.k8s.io`: stdin ends only with the connection.
    V4,
}

impl Protocol {
    /// The `Sec-WebSocket-Protocol` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V5 => V5,
            Self::V4 => V4,
        }
    }
}

/// The parameters of `GET …/pods/NAME/exec?…`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRequest {
    /// `container`, if given.
    pub container: Option<String>,
    /// Every `command` value, in order.
    pub command: Vec<String>,
    /// `stdin`.
    pub stdin: bool,
    /// `stdout`.
    pub stdout: bool,
    /// `stderr`.
    pub stderr: bool,
    /// `tty`.
    pub tty: bool,
}

impl ExecRequest {
    /// Reads the query string (`command` repeats; booleans are `true` or `1`).
    pub fn parse(query: &str) -> Self {
        let mut request = Self::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let flag = matches!(value.as_ref(), "true" | "1");
            match key.as_ref() {
                "container" if !value.is_empty() => request.container = Some(value.into_owned()),
                "command" => request.command.push(value.into_owned()),
                "stdin" => request.stdin = flag,
                "stdout" => request.stdout = flag,
                "stderr" => request.stderr = flag,
                "tty" => request.tty = flag,
                _ => {}
            }
        }
        // The kubelet drops stderr under a tty: a terminal has one output stream.
        if request.tty {
            request.stderr = false;
        }
        request
    }

    /// 400 for a request no runtime could serve.
    pub fn check(&self) -> Result<(), ApiError> {
        if self.command.is_empty() {
            return Err(ApiError::bad_request(
                "you must specify at least 1 command (the `command` query parameter)",
            ));
        }
        if !(self.stdin || self.stdout || self.stderr) {
            return Err(ApiError::bad_request(
                "you must specify at least 1 of stdin, stdout, stderr",
            ));
        }
        Ok(())
    }

    /// The channel the first, empty frame goes to: it tells the client the session is open.
    pub fn first_channel(&self) -> u8 {
        if self.stdout {
            channel::STDOUT
        } else if self.stderr {
            channel::STDERR
        } else {
            channel::ERROR
        }
    }
}

/// Whether an API server of this `gitVersion` serves v5 (the stream translator, on since 1.30).
pub fn serves_v5(git_version: &str) -> bool {
    let mut parts = git_version.trim_start_matches('v').split('.');
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(1);
    let minor: u32 = parts
        .next()
        .map(|p| {
            p.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|p| p.parse().ok())
        .unwrap_or(u32::MAX);
    major > 1 || minor >= 30
}

/// The subprotocol the server picks from those offered: v5 when it serves it and the client
/// offers it, else v4 (the kubelet's), else none (the handshake fails).
pub fn negotiate<'a>(
    offered: impl IntoIterator<Item = &'a str>,
    v5_served: bool,
) -> Option<Protocol> {
    let offered: Vec<&str> = offered.into_iter().map(str::trim).collect();
    if v5_served && offered.contains(&V5) {
        Some(Protocol::V5)
    } else if offered.contains(&V4) {
        Some(Protocol::V4)
    } else {
        None
    }
}

/// 403 as the real authorizer words it.
pub fn forbidden(user: &str, namespace: &str, pod: &str) -> ApiError {
    let mut error = ApiError::new(
        StatusReason::Forbidden,
        format!(
            "pods \"{pod}\" is forbidden: User \"{user}\" cannot create resource \"pods/exec\" \
             in API group \"\" in the namespace \"{namespace}\""
        ),
    );
    error.details = Some(json!({"name": pod, "kind": "pods"}));
    error
}

/// What the pod says about an exec into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFacts {
    /// The resolved container.
    pub container: String,
    /// `spec.nodeName`.
    pub node: String,
    /// Whether the container is running (else the kubelet answers "container not found").
    pub running: bool,
    /// The container's environment as the kubelet would set it (literal values and the pod fields
    /// the downward API names).
    pub env: Vec<(String, String)>,
}

/// Checks the pod as the API server does before proxying: the container must exist (or be the only
/// one) and the pod must be scheduled.
pub fn pod_facts(pod: &Value, request: &ExecRequest) -> Result<PodFacts, ApiError> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let containers = pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = containers
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let container = match (&request.container, names.as_slice()) {
        (Some(wanted), _) if names.contains(&wanted.as_str()) => wanted.clone(),
        (Some(wanted), _) => {
            return Err(ApiError::bad_request(format!(
                "container {wanted} is not valid for pod {name}"
            )));
        }
        (None, [only]) => (*only).to_string(),
        (None, []) => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            )));
        }
        (None, many) => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                many.join(" ")
            )));
        }
    };
    let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
    if node.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let spec = containers
        .iter()
        .find(|c| c["name"] == container.as_str())
        .cloned()
        .unwrap_or_default();
    Ok(PodFacts {
        running: container_running(pod, &container),
        env: container_env(pod, &spec),
        node: node.to_string(),
        container,
    })
}

/// A container runs when its status says `state.running`; a pod without container statuses counts
/// as running when its phase is `Running` (tests that write only the phase).
fn container_running(pod: &Value, container: &str) -> bool {
    match pod["status"]["containerStatuses"].as_array() {
        Some(statuses) => statuses
            .iter()
            .any(|s| s["name"] == container && s["state"]["running"].is_object()),
        None => pod["status"]["phase"] == "Running",
    }
}

fn container_env(pod: &Value, container: &Value) -> Vec<(String, String)> {
    let Some(env) = container["env"].as_array() else {
        return Vec::new();
    };
    env.iter()
        .filter_map(|var| {
            let name = var["name"].as_str()?.to_string();
            if let Some(value) = var["value"].as_str() {
                return Some((name, value.to_string()));
            }
            let path = var["valueFrom"]["fieldRef"]["fieldPath"].as_str()?;
            let value = match path {
                "spec.nodeName" => pod["spec"]["nodeName"].as_str(),
                "metadata.name" => pod["metadata"]["name"].as_str(),
                "metadata.namespace" => pod["metadata"]["namespace"].as_str(),
                "metadata.uid" => pod["metadata"]["uid"].as_str(),
                "spec.serviceAccountName" => pod["spec"]["serviceAccountName"].as_str(),
                "status.podIP" => pod["status"]["podIP"].as_str(),
                "status.hostIP" => pod["status"]["hostIP"].as_str(),
                _ => None,
            }?;
            Some((name, value.to_string()))
        })
        .collect()
}

/// The kubelet's answer for a container that is not running: a 500 before a v4 upgrade, an
/// `InternalError` status after a v5 one (the API server's translator reports it).
pub fn container_not_found(container: &str) -> String {
    format!("container not found (\"{container}\")")
}

/// `{"status":"Success"}` on channel 3.
pub fn success_status() -> Value {
    json!({"metadata": {}, "status": "Success"})
}

/// The status of a process that exited with `code` (a signal `n` counts as `128 + n`, as container
/// runtimes report it).
pub fn exit_status(argv: &[String], code: i32) -> Value {
    if code == 0 {
        return success_status();
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            argv.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// An `InternalError` status on channel 3 (what the API server's translator sends when the kubelet
/// or the runtime failed).
pub fn internal_status(message: &str) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("Internal error occurred: {message}"),
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: Value) -> Value {
        json!({
            "metadata": {"name": "agent-x", "namespace": "gpu"},
            "spec": {"nodeName": "gpu-a", "containers": [
                {"name": "agent", "env": [
                    {"name": "AGENT_NVML_MODE", "value": "real"},
                    {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
                ]},
                {"name": "sidecar"}
            ]},
            "status": status,
        })
    }

    fn running() -> Value {
        json!({"phase": "Running", "containerStatuses": [{"name": "agent", "state": {"running": {}}}]})
    }

    #[test]
    fn query_parameters() {
        let request = ExecRequest::parse(
            "container=agent&command=%2Fagent&command=serve&stdin=true&stdout=1&stderr=true&tty=false",
        );
        assert_eq!(request.container.as_deref(), Some("agent"));
        assert_eq!(request.command, ["/agent", "serve"]);
        assert!(request.stdin && request.stdout && request.stderr && !request.tty);
        assert_eq!(request.first_channel(), channel::STDOUT);
        request.check().unwrap();
        let tty = ExecRequest::parse("command=sh&stderr=true&tty=true");
        assert!(!tty.stderr);
        assert!(
            tty.check()
                .unwrap_err()
                .message
                .contains("at least 1 of stdin")
        );
        let none = ExecRequest::parse("stdout=true");
        assert_eq!(none.check().unwrap_err().code, 400);
        assert_eq!(
            ExecRequest::parse("command=x&stderr=1").first_channel(),
            channel::STDERR
        );
    }

    #[test]
    fn protocol_choice() {
        let both = [V5, V4];
        assert_eq!(negotiate(both, true), Some(Protocol::V5));
        assert_eq!(negotiate(both, false), Some(Protocol::V4));
        assert_eq!(negotiate([V5], false), None);
        assert_eq!(negotiate(["channel.k8s.io"], true), None);
        assert!(serves_v5("v1.35.0") && serves_v5("v1.30.2") && !serves_v5("v1.29.9"));
        assert!(serves_v5("v1.31.0-gke.1"));
    }

    #[test]
    fn forbidden_reads_like_the_authorizer() {
        let status = forbidden("alice", "gpu", "agent-x").to_status();
        assert_eq!(status["code"], 403);
        assert_eq!(status["reason"], "Forbidden");
        assert_eq!(
            status["message"],
            "pods \"agent-x\" is forbidden: User \"alice\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"gpu\""
        );
    }

    #[test]
    fn pod_checks() {
        let named = ExecRequest::parse("container=agent&command=/agent&stdin=1");
        let facts = pod_facts(&pod(running()), &named).unwrap();
        assert_eq!(
            (facts.container.as_str(), facts.node.as_str()),
            ("agent", "gpu-a")
        );
        assert!(facts.running);
        assert_eq!(
            facts.env,
            [
                ("AGENT_NVML_MODE".to_string(), "real".to_string()),
                ("NODE_NAME".to_string(), "gpu-a".to_string())
            ]
        );
        let pending = json!({"phase": "Pending", "containerStatuses": [{"name": "agent", "state": {"waiting": {"reason": "ContainerCreating"}}}]});
        assert!(!pod_facts(&pod(pending), &named).unwrap().running);
        assert!(
            pod_facts(&pod(json!({"phase": "Running"})), &named)
                .unwrap()
                .running
        );

        let wrong = ExecRequest::parse("container=gpu&command=/agent&stdin=1");
        assert_eq!(
            pod_facts(&pod(running()), &wrong).unwrap_err().message,
            "container gpu is not valid for pod agent-x"
        );
        let unnamed = ExecRequest::parse("command=/agent&stdin=1");
        assert_eq!(
            pod_facts(&pod(running()), &unnamed).unwrap_err().message,
            "a container name must be specified for pod agent-x, choose one of: [agent sidecar]"
        );
        let mut unscheduled = pod(running());
        unscheduled["spec"]["nodeName"] = Value::Null;
        let error = pod_facts(&unscheduled, &named).unwrap_err();
        assert_eq!(
            (error.code, error.message.as_str()),
            (400, "pod agent-x does not have a host assigned")
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(exit_status(&["/agent".into()], 0)["status"], "Success");
        let failed = exit_status(&["/agent".into()], 3);
        assert_eq!(failed["reason"], "NonZeroExitCode");
        assert_eq!(
            failed["details"]["causes"][0],
            json!({"reason": "ExitCode", "message": "3"})
        );
        let internal = internal_status(&container_not_found("agent"));
        assert_eq!(
            internal["message"],
            "Internal error occurred: container not found (\"agent\")"
        );
    }
}
