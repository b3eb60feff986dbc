//! Per-node problems of the agent, from its pods, their kubelet events and the nodes' reported
//! runtime handlers (pure). Messages hold no timestamps or counters, so a problem that persists
//! does not rewrite the status.

use std::collections::BTreeSet;

use crds::{NodeProblem, NodeProblemReason};
use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod, PodStatus};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::access::{GpuAccess, Issue, IssueReason};
use crate::facts::NodeFacts;

/// At most this many problems are listed (the status must stay small on big clusters).
pub const MAX_NODE_PROBLEMS: usize = 50;
/// A running agent that has not passed `/agent check` for this long is reported.
pub const NOT_READY_GRACE: SignedDuration = SignedDuration::from_mins(2);
const MAX_MESSAGE_LEN: usize = 300;

/// What the problem finder looks at.
pub struct ProblemInput<'a> {
    /// The agent pods.
    pub pods: &'a [Pod],
    /// Warning events in the agent namespace.
    pub events: &'a [Event],
    /// The selected nodes.
    pub nodes: &'a [NodeFacts],
    /// The access method in use.
    pub access: Option<&'a GpuAccess>,
    /// Handler of the RuntimeClass in use.
    pub runtime_handler: Option<&'a str>,
    /// The agent namespace (for commands in fixes).
    pub namespace: &'a str,
    /// Now, for the readiness grace period.
    pub now: Timestamp,
}

/// The problems, sorted by node, at most [`MAX_NODE_PROBLEMS`].
pub fn node_problems(input: &ProblemInput<'_>) -> Vec<NodeProblem> {
    let mut problems: Vec<NodeProblem> = input
        .pods
        .iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .filter_map(|pod| pod_problem(input, pod))
        .collect();

    if let (Some(GpuAccess::RuntimeClass { name }), Some(handler)) =
        (input.access, input.runtime_handler)
    {
        let reported: BTreeSet<String> = problems.iter().map(|p| p.node.clone()).collect();
        for node in input.nodes {
            if node.has_runtime_handler(handler) == Some(false) && !reported.contains(&node.name) {
                let handlers = node.runtime_handlers.clone().unwrap_or_default().join(", ");
                problems.push(NodeProblem {
                    node: node.name.clone(),
                    pod: None,
                    reason: NodeProblemReason::RuntimeHandlerMissing,
                    message: format!(
                        "the node's container runtime reports the handlers [{handlers}] but not \"{handler}\" \
                         (RuntimeClass \"{name}\")"
                    ),
                    fix: runtime_handler_fix(&node.name, handler),
                });
            }
        }
    }

    problems.sort();
    problems.dedup();
    problems.truncate(MAX_NODE_PROBLEMS);
    problems
}

/// The first problem of one agent pod, checked from the earliest stage of its life (scheduling)
/// to the latest (readiness).
fn pod_problem(input: &ProblemInput<'_>, pod: &Pod) -> Option<NodeProblem> {
    let checked = CheckedPod {
        input,
        pod,
        name: pod.metadata.name.clone()?,
        node: pod_node(pod)?,
        status: pod.status.as_ref(),
    };
    checked
        .unschedulable()
        .or_else(|| checked.sandbox_failed())
        .or_else(|| checked.container_waiting())
        .or_else(|| checked.not_ready())
}

/// One agent pod under examination.
struct CheckedPod<'a> {
    input: &'a ProblemInput<'a>,
    pod: &'a Pod,
    name: String,
    node: String,
    status: Option<&'a PodStatus>,
}

impl CheckedPod<'_> {
    fn problem(&self, reason: NodeProblemReason, message: String, fix: String) -> NodeProblem {
        NodeProblem {
            node: self.node.clone(),
            pod: Some(self.name.clone()),
            reason,
            message: truncate(message),
            fix,
        }
    }

    fn container(&self) -> Option<&ContainerStatus> {
        self.status?
            .container_statuses
            .as_ref()?
            .iter()
            .find(|c| c.name == crate::names::CONTAINER_NAME)
    }

    fn unschedulable(&self) -> Option<NodeProblem> {
        let condition = self.status?.conditions.as_ref()?.iter().find(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        })?;
        let fix = match self.input.access {
            Some(GpuAccess::DevicePlugin { resource, .. }) => format!(
                "free a {resource} on the node, or use an access mode that consumes no GPU (RuntimeClass or DRA \
                 admin access)"
            ),
            _ => "see the scheduler's message: add tolerations for the node's taints (spec.tolerations), lower \
                  spec.resources, or check the DRA claim (`kubectl get resourceclaims -n NAMESPACE`)"
                .replace("NAMESPACE", self.input.namespace),
        };
        Some(
            self.problem(
                NodeProblemReason::Unschedulable,
                condition
                    .message
                    .clone()
                    .unwrap_or_else(|| "unschedulable".into()),
                fix,
            ),
        )
    }

    fn sandbox_failed(&self) -> Option<NodeProblem> {
        let phase = self.status.and_then(|s| s.phase.as_deref());
        if phase.is_some_and(|phase| phase != "Pending") {
            return None;
        }
        let event = latest_event(self.input.events, self.pod, "FailedCreatePodSandBox")?;
        let message = event.message.clone().unwrap_or_default();
        let (ns, name) = (self.input.namespace, &self.name);
        Some(match missing_runtime_handler(&message) {
            Some(handler) => self.problem(
                NodeProblemReason::RuntimeHandlerMissing,
                format!("the node's container runtime has no handler \"{handler}\": {message}"),
                runtime_handler_fix(&self.node, &handler),
            ),
            None => self.problem(
                NodeProblemReason::SandboxCreationFailed,
                message,
                format!(
                    "see `kubectl describe pod -n {ns} {name}` and the container runtime's logs on the node"
                ),
            ),
        })
    }

    fn container_waiting(&self) -> Option<NodeProblem> {
        let waiting = self.container()?.state.as_ref()?.waiting.as_ref()?;
        let reason = waiting.reason.as_deref().unwrap_or_default();
        let detail = waiting.message.clone().unwrap_or_else(|| reason.to_owned());
        let (ns, name) = (self.input.namespace, &self.name);
        match reason {
            "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull" => Some(
                self.problem(
                    NodeProblemReason::ImagePullFailed,
                    format!("{reason}: {detail}"),
                    "check spec.image (repository, tag, pullPolicy) and spec.imagePullSecrets"
                        .into(),
                ),
            ),
            "CrashLoopBackOff" => Some(self.problem(
                NodeProblemReason::CrashLooping,
                "the agent container keeps exiting".into(),
                format!("see `kubectl logs -n {ns} {name} --previous`"),
            )),
            "CreateContainerConfigError" | "CreateContainerError" | "RunContainerError" => {
                Some(self.problem(
                    NodeProblemReason::ContainerConfigError,
                    format!("{reason}: {detail}"),
                    format!("see `kubectl describe pod -n {ns} {name}`"),
                ))
            }
            _ => None,
        }
    }

    fn not_ready(&self) -> Option<NodeProblem> {
        let container = self.container().filter(|c| !c.ready)?;
        let started = container
            .state
            .as_ref()?
            .running
            .as_ref()?
            .started_at
            .as_ref()?;
        if self.input.now.duration_since(started.0) < NOT_READY_GRACE {
            return None;
        }
        let (ns, name) = (self.input.namespace, &self.name);
        Some(self.problem(
            NodeProblemReason::NotReady,
            "the agent runs but its readiness check `/agent check` fails".into(),
            format!(
                "run `kubectl exec -n {ns} {name} -- /agent check` to see why (usually NVML cannot see the GPUs: \
                 check the access mode in status.reason)"
            ),
        ))
    }
}

/// The node a DaemonSet pod is bound to, or targets through its node affinity.
fn pod_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(node) = &spec.node_name {
        return Some(node.clone());
    }
    spec.affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms
        .iter()
        .flat_map(|term| term.match_fields.iter().flatten())
        .find(|field| field.key == "metadata.name")
        .and_then(|field| field.values.as_ref()?.first().cloned())
}

/// The most recent event of `reason` about `pod`.
fn latest_event<'a>(events: &'a [Event], pod: &Pod, reason: &str) -> Option<&'a Event> {
    let uid = pod.metadata.uid.as_deref();
    let name = pod.metadata.name.as_deref();
    events
        .iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter(|e| {
            let object = &e.involved_object;
            object.kind.as_deref() == Some("Pod")
                && match (uid, object.uid.as_deref()) {
                    (Some(pod_uid), Some(event_uid)) => pod_uid == event_uid,
                    _ => object.name.as_deref() == name,
                }
        })
        .max_by_key(|e| {
            e.last_timestamp
                .as_ref()
                .map(|t| t.0)
                .or_else(|| e.event_time.as_ref().map(|t| t.0))
        })
}

/// The handler named in a kubelet sandbox error, when the error is "no such handler"
/// (`no runtime for "nvidia" is configured` from containerd, `RuntimeHandler "nvidia" not
/// supported` from CRI-O and older containerd).
pub fn missing_runtime_handler(message: &str) -> Option<String> {
    let patterns = [
        ("no runtime for \"", "\" is configured"),
        ("RuntimeHandler \"", "\" not supported"),
        ("runtime handler \"", "\" not supported"),
    ];
    patterns.iter().find_map(|(before, after)| {
        let start = message.find(before)? + before.len();
        let end = start + message[start..].find(after)?;
        Some(message[start..end].to_owned())
    })
}

/// The DaemonSet controller's complaint while it cannot create agent pods (admission refused
/// them: Pod Security, a missing RuntimeClass, a quota), as an issue for the status.
pub fn pods_rejected(events: &[Event], daemon_set: &serde_json::Value) -> Option<Issue> {
    let name = daemon_set["metadata"]["name"].as_str()?;
    let status = &daemon_set["status"];
    let desired = status["desiredNumberScheduled"].as_i64().unwrap_or(0);
    let current = status["currentNumberScheduled"].as_i64().unwrap_or(0);
    if current >= desired {
        return None;
    }
    let event = events
        .iter()
        .filter(|e| e.reason.as_deref() == Some("FailedCreate"))
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some("DaemonSet")
                && e.involved_object.name.as_deref() == Some(name)
        })
        .max_by_key(|e| {
            e.last_timestamp
                .as_ref()
                .map(|t| t.0)
                .or_else(|| e.event_time.as_ref().map(|t| t.0))
        })?;
    Some(Issue {
        reason: IssueReason::PodsRejected,
        message: truncate(format!(
            "the DaemonSet controller cannot create agent pods ({current} of {desired} exist): {}",
            event.message.as_deref().unwrap_or("FailedCreate")
        )),
    })
}

fn runtime_handler_fix(node: &str, handler: &str) -> String {
    format!(
        "install the NVIDIA container toolkit on {node} and register the \"{handler}\" runtime \
         (`nvidia-ctk runtime configure --runtime=containerd` then restart containerd), or keep the agent off \
         this node with spec.nodeSelector, or use gpu.mode DevicePlugin or DRA"
    )
}

fn truncate(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_LEN {
        let mut cut = MAX_MESSAGE_LEN;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}

#[cfg(test)]
mod tests;
