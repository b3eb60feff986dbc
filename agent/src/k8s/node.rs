//! `describe_gpu_node`'s judgement: the node as Kubernetes sees it against what NVML sees, one
//! finding per disagreement (pure).

use std::collections::BTreeSet;

use crate::health::{Finding, Rule, Severity};

use super::devices::{DeviceId, SliceDevice, parse_device_id};
use super::model::NodeFacts;
use super::podresources::ResourceDevices;

/// What NVML sees, reduced to what the comparison needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NvmlView {
    pub gpu_count: u32,
    /// Product names, by index.
    pub names: Vec<String>,
    pub driver_version: Option<String>,
    /// Some GPU has MIG mode enabled (the `nvidia.com/gpu` count then counts instances, not GPUs).
    pub mig_enabled: bool,
    /// NVML in this pod sees only the GPUs allocated to the agent (device-plugin or one-device DRA
    /// access), not the node's.
    pub partial: bool,
}

/// Everything the node checks compare; `None` where a source could not be read.
#[derive(Clone, Debug, Default)]
pub struct NodeInputs<'a> {
    pub node: Option<&'a NodeFacts>,
    pub nvml: NvmlView,
    /// `GetAllocatableResources` of the kubelet.
    pub kubelet_allocatable: Option<&'a [ResourceDevices]>,
    /// The node's ResourceSlice devices (`Some(empty)`: the API is served, nothing is published).
    pub slices: Option<&'a [SliceDevice]>,
    /// `namespace/name` of pods the kubelet still assigns GPUs to that the API server does not have.
    pub stale_pods: &'a [String],
}

/// Whole GPUs the kubelet can allocate (replica suffixes and MIG instances set aside).
pub fn kubelet_gpu_count(devices: &[ResourceDevices]) -> usize {
    let ids: BTreeSet<String> = devices
        .iter()
        .filter(|d| d.resource_name.starts_with("nvidia.com/"))
        .flat_map(|d| d.device_ids.iter())
        .filter_map(|id| match parse_device_id(id) {
            DeviceId::Gpu { uuid, .. } => Some(uuid),
            DeviceId::Index { index, .. } => Some(index.to_string()),
            _ => None,
        })
        .collect();
    ids.len()
}

/// Whole-GPU devices in the ResourceSlices (`type: gpu`, or a GPU UUID without a parent).
pub fn slice_gpu_count(slices: &[SliceDevice]) -> usize {
    slices
        .iter()
        .filter(|d| d.driver == "gpu.nvidia.com")
        .filter(|d| match d.attributes.get("type") {
            Some(t) => t == "gpu",
            None => {
                d.attributes
                    .get("uuid")
                    .is_some_and(|u| u.starts_with("GPU-"))
                    && !d.attributes.contains_key("parentUUID")
            }
        })
        .count()
}

/// The findings about the node, most severe first.
pub fn findings(inputs: &NodeInputs) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(f) = count_finding(inputs) {
        out.push(f);
    }
    if let Some(node) = inputs.node {
        out.extend(label_findings(node, &inputs.nvml));
        out.extend(node_state_findings(node));
    }
    for pod in inputs.stale_pods {
        out.push(
            Finding::new(
                Rule::K8sStaleAllocation,
                Severity::Warn,
                format!("the kubelet still assigns GPUs to pod {pod}, which the API server no longer has"),
            )
            .with("pod", pod.as_str())
            .action(
                "The GPU stays unavailable to new pods until the kubelet releases it: check the \
                 kubelet log for the pod's teardown; restarting the kubelet clears stale assignments.",
            ),
        );
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

fn quantity(node: &NodeFacts, allocatable: bool) -> Option<u64> {
    let map = if allocatable {
        &node.gpu_allocatable
    } else {
        &node.gpu_capacity
    };
    map.get("nvidia.com/gpu").and_then(|q| q.parse().ok())
}

fn count_finding(inputs: &NodeInputs) -> Option<Finding> {
    if inputs.nvml.mig_enabled {
        return Some(Finding::new(
            Rule::K8sGpuCount,
            Severity::Info,
            "MIG mode is enabled, so nvidia.com/gpu counts MIG instances, not GPUs: GPU counts not compared",
        ));
    }
    let replicas: u64 = inputs
        .node
        .and_then(|n| n.gpu_labels.get("replicas"))
        .and_then(|r| r.parse().ok())
        .filter(|r| *r > 0)
        .unwrap_or(1);
    let mut counts: Vec<(&str, u64)> = Vec::new();
    if !inputs.nvml.partial {
        counts.push(("nvml_gpus", inputs.nvml.gpu_count.into()));
    }
    if let Some(node) = inputs.node {
        if let Some(c) = quantity(node, false) {
            counts.push(("node_capacity_gpus", c / replicas));
        }
        if let Some(a) = quantity(node, true) {
            counts.push(("node_allocatable_gpus", a / replicas));
        }
    }
    if let Some(k) = inputs.kubelet_allocatable {
        let n = kubelet_gpu_count(k) as u64;
        if n > 0 || !k.is_empty() {
            counts.push(("kubelet_allocatable_gpus", n));
        }
    }
    if let Some(s) = inputs.slices {
        let n = slice_gpu_count(s) as u64;
        if n > 0 {
            counts.push(("resourceslice_gpus", n));
        }
    }
    let distinct: BTreeSet<u64> = counts.iter().map(|(_, n)| *n).collect();
    if distinct.len() <= 1 {
        return None;
    }
    let listed = counts
        .iter()
        .map(|(k, n)| format!("{} {n}", k.trim_end_matches("_gpus").replace('_', " ")))
        .collect::<Vec<_>>()
        .join(", ");
    let nvml = (!inputs.nvml.partial).then_some(u64::from(inputs.nvml.gpu_count));
    let k8s_max = counts
        .iter()
        .filter(|(k, _)| *k != "nvml_gpus")
        .map(|(_, n)| *n)
        .max();
    let severity = match (nvml, k8s_max) {
        // Kubernetes schedules onto GPUs the driver no longer shows.
        (Some(n), Some(k)) if n < k => Severity::Fail,
        _ => Severity::Warn,
    };
    let mut f = Finding::new(
        Rule::K8sGpuCount,
        severity,
        format!("Kubernetes and NVML disagree on this node's GPU count: {listed}"),
    )
    .action(
        "Allocatable below capacity or NVML: the device plugin marked GPUs unhealthy or has not \
         registered them (check its logs and get_gpu_health). NVML below Kubernetes: a GPU fell off \
         the bus (analyze_xid_errors, Xid 79) and pods may be scheduled onto it: cordon and drain the \
         node, then reset or reboot.",
    );
    for (k, n) in &counts {
        f = f.with(k, *n);
    }
    Some(f)
}

/// GFD writes the product with dashes for spaces and may append `-SHARED` or a MIG profile.
fn product_matches(label: &str, nvml_name: &str) -> bool {
    let want = nvml_name.trim().replace(' ', "-");
    label.eq_ignore_ascii_case(&want)
        || label
            .to_ascii_lowercase()
            .starts_with(&format!("{}-", want.to_ascii_lowercase()))
}

fn label_findings(node: &NodeFacts, nvml: &NvmlView) -> Vec<Finding> {
    let mut out = Vec::new();
    if let (Some(label), Some(name)) = (node.gpu_labels.get("product"), nvml.names.first())
        && !nvml.names.iter().any(|n| product_matches(label, n))
    {
        out.push(
            Finding::new(
                Rule::K8sProductLabel,
                Severity::Warn,
                format!("the GPU feature-discovery label says {label:?}, NVML says {name:?}"),
            )
            .with("label_product", label.as_str())
            .with("nvml_product", name.as_str())
            .action(
                "The node's labels are stale or the node was re-imaged with other GPUs: restart GPU \
                 feature discovery on the node so schedulers select on true labels.",
            ),
        );
    }
    let label_driver = node.gpu_labels.get("driver_version").cloned().or_else(|| {
        let g = |k: &str| node.gpu_labels.get(k);
        match (g("driver_major"), g("driver_minor"), g("driver_rev")) {
            (Some(a), Some(b), Some(c)) if !c.is_empty() => Some(format!("{a}.{b}.{c}")),
            (Some(a), Some(b), _) => Some(format!("{a}.{b}")),
            _ => None,
        }
    });
    if let (Some(label), Some(driver)) = (label_driver, nvml.driver_version.as_ref())
        && !driver.starts_with(&label)
    {
        out.push(
            Finding::new(
                Rule::K8sDriverLabel,
                Severity::Warn,
                format!(
                    "the GPU feature-discovery driver label says {label}, NVML runs driver {driver}"
                ),
            )
            .with("label_driver_version", label.as_str())
            .with("nvml_driver_version", driver.as_str())
            .action(
                "The driver changed after GFD labelled the node (upgrade without a reboot, or a \
                 pending one): restart GFD, and reboot if the driver upgrade is not complete.",
            ),
        );
    }
    out
}

fn node_state_findings(node: &NodeFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    match node.conditions.iter().find(|c| c.type_ == "Ready") {
        Some(c) if c.status == "True" => {}
        ready => {
            let status = ready.map_or("absent", |c| c.status.as_str());
            let mut f = Finding::new(
                Rule::K8sNodeNotReady,
                Severity::Fail,
                format!("the node's Ready condition is {status}"),
            )
            .with("ready", status)
            .action("New pods are not scheduled here and running ones may be evicted: check the kubelet (`journalctl -u kubelet`) and the node's conditions.");
            if let Some(c) = ready {
                if !c.reason.is_empty() {
                    f = f.with("reason", c.reason.as_str());
                }
                if !c.message.is_empty() {
                    f = f.with("message", c.message.as_str());
                }
            }
            out.push(f);
        }
    }
    if node.unschedulable {
        out.push(
            Finding::new(
                Rule::K8sNodeCordoned,
                Severity::Warn,
                "the node is cordoned: no new pods are scheduled on it",
            )
            .with("unschedulable", true)
            .action("If the GPU repair is done, `kubectl uncordon` the node."),
        );
    }
    for t in node
        .taints
        .iter()
        .filter(|t| t.key.starts_with("nvidia.com/"))
    {
        // `nvidia.com/gpu:NoSchedule` is how GPU pools keep other pods off: worth knowing only.
        let routine = t.key == "nvidia.com/gpu" && t.effect == "NoSchedule";
        let severity = if routine {
            Severity::Info
        } else {
            Severity::Warn
        };
        let text = if t.value.is_empty() {
            format!("{}:{}", t.key, t.effect)
        } else {
            format!("{}={}:{}", t.key, t.value, t.effect)
        };
        let mut f = Finding::new(
            Rule::K8sGpuTaint,
            severity,
            format!("the node carries the GPU taint {text}"),
        )
        .with("taint", text.as_str());
        if !routine {
            f = f.action("A GPU health check tainted the node: find which GPU with get_gpu_health, repair it, then remove the taint.");
        }
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::model::{NodeCondition, NodeTaint};

    fn node(capacity: &str, allocatable: &str) -> NodeFacts {
        NodeFacts {
            name: "gpu-1".into(),
            gpu_labels: [
                ("product".to_string(), "NVIDIA-H100-80GB-HBM3".to_string()),
                ("driver_version".to_string(), "550.54.15".to_string()),
            ]
            .into(),
            gpu_capacity: [("nvidia.com/gpu".to_string(), capacity.to_string())].into(),
            gpu_allocatable: [("nvidia.com/gpu".to_string(), allocatable.to_string())].into(),
            conditions: vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: String::new(),
                message: String::new(),
            }],
            taints: vec![],
            unschedulable: false,
        }
    }

    fn nvml(count: u32) -> NvmlView {
        NvmlView {
            gpu_count: count,
            names: vec!["NVIDIA H100 80GB HBM3".into(); count as usize],
            driver_version: Some("550.54.15".into()),
            ..NvmlView::default()
        }
    }

    fn checks(fs: &[Finding]) -> Vec<(Rule, Severity)> {
        fs.iter().map(|f| (f.check, f.severity)).collect()
    }

    #[test]
    fn agreeing_sources_give_no_finding() {
        let n = node("8", "8");
        let fs = findings(&NodeInputs {
            node: Some(&n),
            nvml: nvml(8),
            ..NodeInputs::default()
        });
        assert!(fs.is_empty(), "{fs:?}");
    }

    #[test]
    fn count_disagreements() {
        let n = node("8", "7");
        let fs = findings(&NodeInputs {
            node: Some(&n),
            nvml: nvml(8),
            ..NodeInputs::default()
        });
        assert_eq!(checks(&fs), [(Rule::K8sGpuCount, Severity::Warn)]);
        assert!(
            fs[0]
                .message
                .contains("nvml 8, node capacity 8, node allocatable 7"),
            "{}",
            fs[0].message
        );
        // NVML lost a GPU Kubernetes still offers.
        let n = node("8", "8");
        let fs = findings(&NodeInputs {
            node: Some(&n),
            nvml: nvml(7),
            ..NodeInputs::default()
        });
        assert_eq!(checks(&fs), [(Rule::K8sGpuCount, Severity::Fail)]);
        // A partial NVML view (device-plugin access) is not compared.
        let mut partial = nvml(1);
        partial.partial = true;
        let fs = findings(&NodeInputs {
            node: Some(&n),
            nvml: partial,
            ..NodeInputs::default()
        });
        assert!(fs.is_empty(), "{fs:?}");
        // The kubelet and the ResourceSlices count too.
        let kubelet = [ResourceDevices {
            resource_name: "nvidia.com/gpu".into(),
            device_ids: vec!["GPU-a::0".into(), "GPU-a::1".into(), "GPU-b".into()],
        }];
        assert_eq!(kubelet_gpu_count(&kubelet), 2);
        let fs = findings(&NodeInputs {
            node: None,
            nvml: nvml(3),
            kubelet_allocatable: Some(&kubelet),
            ..NodeInputs::default()
        });
        assert_eq!(fs[0].evidence["kubelet_allocatable_gpus"], 2u64.into());
    }

    #[test]
    fn labels_state_taints_and_stale_pods() {
        let mut n = node("8", "8");
        n.gpu_labels
            .insert("product".into(), "NVIDIA-A100-SXM4-80GB".into());
        n.gpu_labels
            .insert("driver_version".into(), "535.104.05".into());
        n.conditions[0].status = "False".into();
        n.unschedulable = true;
        n.taints = vec![
            NodeTaint {
                key: "nvidia.com/gpu".into(),
                value: String::new(),
                effect: "NoSchedule".into(),
            },
            NodeTaint {
                key: "nvidia.com/gpu.health".into(),
                value: "xid-79".into(),
                effect: "NoExecute".into(),
            },
        ];
        let stale = ["ml/gone".to_string()];
        let fs = findings(&NodeInputs {
            node: Some(&n),
            nvml: nvml(8),
            stale_pods: &stale,
            ..NodeInputs::default()
        });
        let got = checks(&fs);
        for want in [
            (Rule::K8sNodeNotReady, Severity::Fail),
            (Rule::K8sProductLabel, Severity::Warn),
            (Rule::K8sDriverLabel, Severity::Warn),
            (Rule::K8sNodeCordoned, Severity::Warn),
            (Rule::K8sGpuTaint, Severity::Warn),
            (Rule::K8sGpuTaint, Severity::Info),
            (Rule::K8sStaleAllocation, Severity::Warn),
        ] {
            assert!(got.contains(&want), "{want:?} missing from {got:?}");
        }
        assert_eq!(fs[0].severity, Severity::Fail);
    }

    #[test]
    fn gfd_product_forms() {
        assert!(product_matches(
            "NVIDIA-H100-80GB-HBM3",
            "NVIDIA H100 80GB HBM3"
        ));
        assert!(product_matches(
            "NVIDIA-H100-80GB-HBM3-SHARED",
            "NVIDIA H100 80GB HBM3"
        ));
        assert!(product_matches(
            "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb",
            "NVIDIA A100-SXM4-40GB"
        ));
        assert!(!product_matches(
            "NVIDIA-A100-SXM4-80GB",
            "NVIDIA H100 80GB HBM3"
        ));
    }
}
