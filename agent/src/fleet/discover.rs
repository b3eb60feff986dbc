//! Pure decisions over what the API server said: which nodes have GPUs, which agent pod serves each
//! node, and where a fleet call goes (or why a node cannot be reached).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Node, Pod};
use operator::names::CONTAINER_NAME;

use super::errors::NodeError;
use super::model::{
    AgentPod, ClusterView, ConfigFacts, GpuNode, NodeFacts, PodFacts, PodRef, Target,
};

/// The label GPU feature discovery puts on GPU nodes.
pub const GPU_PRESENT_LABEL: &str = "nvidia.com/gpu.present";
/// The label naming the GPU model.
pub const GPU_PRODUCT_LABEL: &str = "nvidia.com/gpu.product";
/// The device plugin's extended resource.
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

/// A Node reduced to its GPU facts.
pub fn node_facts(node: &Node) -> NodeFacts {
    let status = node.status.as_ref();
    let quantity = |map: Option<
        &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >| {
        map.and_then(|m| m.get(GPU_RESOURCE))
            .and_then(|q| q.0.trim().parse::<u64>().ok())
    };
    let spec = node.spec.as_ref();
    NodeFacts {
        name: node.metadata.name.clone().unwrap_or_default(),
        labels: node.metadata.labels.clone().unwrap_or_default(),
        gpu_capacity: quantity(status.and_then(|s| s.capacity.as_ref())),
        gpu_allocatable: quantity(status.and_then(|s| s.allocatable.as_ref())),
        ready: status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status == "True"),
        unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
        taints: spec
            .and_then(|s| s.taints.as_ref())
            .map(|taints| {
                taints
                    .iter()
                    .map(|t| match &t.value {
                        Some(v) if !v.is_empty() => format!("{}={}:{}", t.key, v, t.effect),
                        _ => format!("{}:{}", t.key, t.effect),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// An agent pod reduced to where it runs and whether it can answer.
pub fn pod_facts(pod: &Pod, instance_label: &str) -> PodFacts {
    let status = pod.status.as_ref();
    let ready_condition = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    let ready = ready_condition.is_some_and(|c| c.status == "True");
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let running = !terminating
        && status
            .and_then(|s| s.container_statuses.as_ref())
            .into_iter()
            .flatten()
            .any(|c| {
                c.name == CONTAINER_NAME && c.state.as_ref().is_some_and(|s| s.running.is_some())
            });
    let not_ready_reason = (!ready || terminating).then(|| {
        if terminating {
            return "terminating (being deleted or replaced)".to_owned();
        }
        let waiting = status
            .and_then(|s| s.container_statuses.as_ref())
            .into_iter()
            .flatten()
            .find_map(|c| c.state.as_ref()?.waiting.as_ref())
            .map(|w| join_reason(w.reason.as_deref(), w.message.as_deref()));
        let condition = ready_condition
            .map(|c| join_reason(c.reason.as_deref(), c.message.as_deref()))
            .filter(|s| !s.is_empty());
        let phase = status.and_then(|s| s.phase.clone());
        waiting
            .filter(|s| !s.is_empty())
            .or(condition)
            .or_else(|| phase.map(|p| format!("phase {p}")))
            .unwrap_or_else(|| "the kubelet has not reported it ready".to_owned())
    });
    PodFacts {
        name: pod.metadata.name.clone().unwrap_or_default(),
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        config: pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(instance_label).cloned()),
        ready: ready && !terminating,
        running,
        not_ready_reason,
        terminating,
        created: pod
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default(),
    }
}

fn join_reason(reason: Option<&str>, message: Option<&str>) -> String {
    match (reason, message) {
        (Some(r), Some(m)) if !m.is_empty() => format!("{r}: {m}"),
        (Some(r), _) => r.to_owned(),
        (None, Some(m)) => m.to_owned(),
        (None, None) => String::new(),
    }
}

/// Why a node counts as a GPU node; empty when it does not.
fn gpu_evidence(node: &NodeFacts, view: &ClusterView) -> Vec<String> {
    let mut why = Vec::new();
    if node.labels.get(GPU_PRESENT_LABEL).map(String::as_str) == Some("true") {
        why.push("label".to_owned());
    }
    if node.gpu_capacity.is_some_and(|n| n > 0) {
        why.push("capacity".to_owned());
    }
    if view.dra_nodes.contains(&node.name) {
        why.push("dra".to_owned());
    }
    if view
        .pods
        .iter()
        .any(|p| p.node.as_deref() == Some(&node.name))
    {
        why.push("agent-pod".to_owned());
    }
    why
}

/// The pod that serves `node`: ready first, then running, not terminating, newest.
pub fn pick_pod<'a>(view: &'a ClusterView, node: &str) -> Option<&'a PodFacts> {
    view.pods
        .iter()
        .filter(|p| p.node.as_deref() == Some(node))
        .max_by(|a, b| {
            (a.ready, a.running, !a.terminating, &a.created, &a.name).cmp(&(
                b.ready,
                b.running,
                !b.terminating,
                &b.created,
                &b.name,
            ))
        })
}

fn config_of<'a>(view: &'a ClusterView, pod: Option<&PodFacts>) -> Option<&'a ConfigFacts> {
    let name = pod?.config.as_deref()?;
    view.configs.iter().find(|c| c.name == name)
}

/// Every node with GPUs or an agent pod, sorted by name, optionally limited to `only`.
pub fn gpu_nodes(view: &ClusterView, only: Option<&BTreeSet<String>>) -> Vec<GpuNode> {
    let mut out: Vec<GpuNode> = view
        .nodes
        .iter()
        .filter(|n| only.is_none_or(|o| o.contains(&n.name)))
        .filter_map(|n| {
            let evidence = gpu_evidence(n, view);
            if evidence.is_empty() {
                return None;
            }
            let pod = pick_pod(view, &n.name);
            let config = config_of(view, pod);
            let problem = view
                .configs
                .iter()
                .find_map(|c| c.node_problems.get(&n.name))
                .cloned();
            Some(GpuNode {
                node: n.name.clone(),
                gpu_evidence: evidence,
                gpu_capacity: n.gpu_capacity,
                gpu_allocatable: n.gpu_allocatable,
                gpu_product: n.labels.get(GPU_PRODUCT_LABEL).cloned(),
                ready: n.ready,
                unschedulable: n.unschedulable,
                gpu_taints: n
                    .taints
                    .iter()
                    .filter(|t| {
                        let t = t.to_ascii_lowercase();
                        t.contains("gpu") || t.contains("nvidia")
                    })
                    .cloned()
                    .collect(),
                agent_pod: pod.map(|p| AgentPod {
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                    ready: p.ready,
                    reason: p.not_ready_reason.clone(),
                }),
                config: pod.and_then(|p| p.config.clone()),
                access_mode: config.and_then(|c| c.access_mode.clone()),
                node_problem: problem,
            })
        })
        .collect();
    out.sort_by(|a, b| a.node.cmp(&b.node));
    out
}

/// Where a fleet call goes: the requested nodes (or every GPU node), each with its agent pod or the
/// reason it cannot be reached. `only` is the set a label selector matched.
pub fn select_targets(
    view: &ClusterView,
    requested: Option<&[String]>,
    only: Option<&BTreeSet<String>>,
) -> Vec<Target> {
    let names: Vec<String> = match requested {
        Some(list) => {
            let mut seen = BTreeSet::new();
            list.iter()
                .filter(|n| seen.insert(n.as_str()))
                .filter(|n| only.is_none_or(|o| o.contains(*n)))
                .cloned()
                .collect()
        }
        None => gpu_nodes(view, only).into_iter().map(|n| n.node).collect(),
    };
    names
        .into_iter()
        .map(|node| {
            let reach = reach(view, &node);
            Target { node, reach }
        })
        .collect()
}

fn reach(view: &ClusterView, node: &str) -> Result<PodRef, NodeError> {
    if !view.nodes.iter().any(|n| n.name == node) {
        return Err(NodeError::UnknownNode {
            node: node.to_owned(),
        });
    }
    let Some(pod) = pick_pod(view, node) else {
        let problem = view
            .configs
            .iter()
            .find_map(|c| c.node_problems.get(node))
            .map(|p| format!(" ({}: {}; fix: {})", p.reason, p.message, p.fix))
            .unwrap_or_default();
        return Err(NodeError::NoAgentPod {
            node: node.to_owned(),
            namespaces: if view.namespaces.is_empty() {
                "none: no GpuDiagnosticsConfig found; pass --namespace".to_owned()
            } else {
                view.namespaces.join(", ")
            },
            problem,
        });
    };
    // A running container answers exec even when not Ready: the node agent says why itself.
    if !pod.ready && !pod.running {
        return Err(NodeError::PodNotReady {
            namespace: pod.namespace.clone(),
            pod: pod.name.clone(),
            reason: pod
                .not_ready_reason
                .clone()
                .unwrap_or_else(|| "not ready".to_owned()),
        });
    }
    Ok(PodRef {
        namespace: pod.namespace.clone(),
        name: pod.name.clone(),
        uid: pod.uid.clone(),
    })
}

#[cfg(test)]
mod tests;
