//! Why a node did not answer, and why the fleet cannot talk to the API server at all: each in words
//! a user can act on (what failed, why, what to run).

use std::time::Duration;

pub use operator::rbac::{FLEET_EXEC_ROLE, FLEET_ROLE};

/// The command an admin runs to let `$USER` exec into the agent pods of `namespace`.
pub fn exec_grant(namespace: &str) -> String {
    format!(
        "kubectl create rolebinding {FLEET_EXEC_ROLE}-$USER -n {namespace} \
         --clusterrole={FLEET_EXEC_ROLE} --user=$USER"
    )
}

/// Why one node has no answer (its verdict is UNKNOWN).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum NodeError {
    #[error(
        "no node named {node:?} in the cluster: list_gpu_nodes shows the GPU nodes and their names"
    )]
    UnknownNode { node: String },
    #[error(
        "no agent pod on node {node}: no GpuDiagnosticsConfig's DaemonSet runs a pod there \
         (looked in namespace {namespaces}){problem}. Check the config's nodeSelector and tolerations \
         (`kubectl get gpudiagnosticsconfig -o wide`)"
    )]
    NoAgentPod {
        node: String,
        namespaces: String,
        /// The operator's `nodeProblems` entry, as ": reason: message; fix: ...".
        problem: String,
    },
    #[error(
        "agent pod {namespace}/{pod} is not ready: {reason}. See `kubectl describe pod -n {namespace} {pod}`"
    )]
    PodNotReady {
        namespace: String,
        pod: String,
        reason: String,
    },
    #[error(
        "exec forbidden: the API server refused `create pods/exec` on pod {pod} in namespace \
         {namespace} (HTTP 403). Ask a cluster admin to grant it (the chart's ClusterRole \
         {FLEET_EXEC_ROLE}, bound in that namespace): {}",
        exec_grant(.namespace)
    )]
    ExecForbidden { namespace: String, pod: String },
    #[error(
        "agent pod {namespace}/{pod} is gone (HTTP 404): it was replaced or deleted; the next call \
         finds its successor"
    )]
    PodGone { namespace: String, pod: String },
    #[error(
        "timed out after {} s: the node agent did not answer within --node-timeout (the node may be \
         overloaded or its GPU driver hung; get_gpu_health with this node retries it alone)",
        .0.as_secs_f64()
    )]
    Timeout(Duration),
    #[error("exec into agent pod {namespace}/{pod} failed: {message}")]
    Exec {
        namespace: String,
        pod: String,
        message: String,
    },
    #[error("the node agent's MCP session failed: {0}")]
    Session(String),
    #[error("the node agent reported an error: {0}")]
    Agent(String),
}

/// Why the fleet cannot answer at all: the API server is unreachable or refuses the basic reads.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error(
        "no Kubernetes configuration: {detail}. The fleet reads the kubeconfig the way kubectl does \
         (--kubeconfig, else $KUBECONFIG, else ~/.kube/config, else the in-cluster service account); \
         check that `kubectl{context_flag} get nodes` works, or pass --kubeconfig PATH / --context NAME"
    )]
    Config {
        detail: String,
        context_flag: String,
    },
    #[error(
        "cannot reach the Kubernetes API server ({source_desc}): {detail}. Check that \
         `kubectl{context_flag} get nodes` works with the same kubeconfig"
    )]
    Unreachable {
        source_desc: String,
        detail: String,
        context_flag: String,
    },
    #[error(
        "the API server refused to {action} ({source_desc}): {detail}. A cluster admin can grant the \
         fleet's read permissions: kubectl create clusterrolebinding {FLEET_ROLE}-$USER \
         --clusterrole={FLEET_ROLE} --user=$USER"
    )]
    Forbidden {
        action: String,
        source_desc: String,
        detail: String,
    },
    #[error("invalid {what}: {detail}")]
    BadInput { what: String, detail: String },
}

/// `" --context NAME"` for the commands the errors suggest, or nothing.
pub fn context_flag(context: Option<&str>) -> String {
    context
        .map(|c| format!(" --context {c}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_errors_name_what_to_do() {
        let cases: &[(NodeError, &[&str])] = &[
            (
                NodeError::ExecForbidden {
                    namespace: "gpu-diagnostics".into(),
                    pod: "agent-x".into(),
                },
                &[
                    "`create pods/exec`",
                    "namespace gpu-diagnostics",
                    "kubectl create rolebinding k8s-mcp-agent-fleet-exec-$USER -n gpu-diagnostics",
                    "--clusterrole=k8s-mcp-agent-fleet-exec",
                ],
            ),
            (
                NodeError::Timeout(Duration::from_secs(20)),
                &["timed out after 20 s", "--node-timeout"],
            ),
            (
                NodeError::PodNotReady {
                    namespace: "ns".into(),
                    pod: "p".into(),
                    reason: "CrashLoopBackOff".into(),
                },
                &[
                    "not ready: CrashLoopBackOff",
                    "kubectl describe pod -n ns p",
                ],
            ),
            (
                NodeError::NoAgentPod {
                    node: "n1".into(),
                    namespaces: "gpu".into(),
                    problem: String::new(),
                },
                &["no agent pod on node n1", "namespace gpu", "nodeSelector"],
            ),
        ];
        for (error, needles) in cases {
            let text = error.to_string();
            for needle in *needles {
                assert!(text.contains(needle), "{text:?} lacks {needle:?}");
            }
        }
    }

    #[test]
    fn api_errors_name_the_context_to_check() {
        let e = ApiError::Unreachable {
            source_desc: "kubeconfig /tmp/kc, context prod".into(),
            detail: "connection refused".into(),
            context_flag: context_flag(Some("prod")),
        };
        let text = e.to_string();
        assert!(text.contains("kubeconfig /tmp/kc, context prod"), "{text}");
        assert!(text.contains("kubectl --context prod get nodes"), "{text}");
    }
}
