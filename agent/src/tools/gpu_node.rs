//! `describe_gpu_node`'s output: the node as Kubernetes sees it beside NVML, with findings for every
//! disagreement (pure).

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::Serialize;

use crate::gpu::{DataSource, NodeSnapshot};
use crate::health::{Finding, Verdict};
use crate::k8s::api::Unreadable;
use crate::k8s::gather::KubeContext;
use crate::k8s::model::{EventFacts, NodeFacts};
use crate::k8s::node::{self, NodeInputs, NvmlView};

/// What NVML sees on the node.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct NvmlSide {
    pub gpu_count: u32,
    /// Product names in index order (`unreadable` where NVML could not read one).
    pub products: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub driver_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub cuda_driver_version: Option<String>,
    /// NVML in the agent's pod sees only the GPU(s) allocated to the agent, so its count is not
    /// compared with the node's.
    pub partial_view: bool,
}

/// A device in one of the node's ResourceSlices.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct SliceDeviceInfo {
    pub driver: String,
    pub pool: String,
    pub device: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub product_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub r#type: Option<String>,
}

/// What the kubelet can allocate (`GetAllocatableResources`), per resource.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct KubeletResource {
    pub resource_name: String,
    pub device_ids: Vec<String>,
}

/// `describe_gpu_node`'s result.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct DescribeNodeReport {
    pub data_source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub node_name: Option<String>,
    /// Worst severity among `findings`.
    pub verdict: Verdict,
    /// One line: the verdict and the disagreements.
    pub summary: String,
    pub nvml: NvmlSide,
    /// The Node object (GFD labels, GPU capacity/allocatable, conditions, taints, cordon); absent
    /// when unreadable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeFacts>,
    /// The kubelet's allocatable GPU devices; absent when unreadable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubelet_allocatable: Option<Vec<KubeletResource>>,
    /// Devices of the ResourceSlices naming this node; absent when unreadable or DRA is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_slices: Option<Vec<SliceDeviceInfo>>,
    /// Recent Warning events of the node and the agent's pod, newest first; absent when unreadable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning_events: Option<Vec<EventFacts>>,
    /// Most severe first.
    pub findings: Vec<Finding>,
    /// Sources that could not be read, and why (a missing permission as verb + resource).
    pub unreadable: Vec<Unreadable>,
}

/// How many Warning events are listed at most.
const MAX_EVENTS: usize = 20;

/// Builds the report (pure). `own_pod` is the agent's pod (namespace, name), when known.
pub fn build(
    snapshot: &NodeSnapshot,
    source: &DataSource,
    node_name: Option<&str>,
    ctx: &KubeContext,
    own_pod: Option<(&str, &str)>,
) -> DescribeNodeReport {
    let products: Vec<String> = snapshot
        .devices
        .iter()
        .map(|d| d.name.clone().unwrap_or_else(|_| "unreadable".into()))
        .collect();
    let holds_own = own_pod.is_some_and(|(ns, name)| {
        ctx.pod_resources.as_ref().is_some_and(|pr| {
            pr.pods.iter().any(|p| {
                p.namespace == ns
                    && p.name == name
                    && p.containers
                        .iter()
                        .any(|c| !c.devices.is_empty() || !c.claims.is_empty())
            })
        })
    });
    let nvml = NvmlView {
        gpu_count: snapshot.device_count,
        names: products.clone(),
        driver_version: snapshot.driver_version.clone().ok(),
        mig_enabled: snapshot
            .devices
            .iter()
            .any(|d| d.mig_mode.as_ref().is_ok_and(|m| m.current)),
        partial: holds_own,
    };
    let stale = stale_pods(ctx);
    let allocatable = ctx
        .pod_resources
        .as_ref()
        .and_then(|pr| pr.allocatable.as_ref().ok());
    let gpu_allocatable: Option<Vec<_>> = allocatable.map(|a| {
        a.iter()
            .filter(|d| d.resource_name.starts_with("nvidia.com/"))
            .cloned()
            .collect()
    });
    let findings = node::findings(&NodeInputs {
        node: ctx.node.as_ref(),
        nvml: nvml.clone(),
        kubelet_allocatable: gpu_allocatable.as_deref(),
        slices: ctx.slices.as_deref(),
        stale_pods: &stale,
    });
    let verdict = Verdict::of(&findings);
    let summary = summary(verdict, &findings, &ctx.unreadable);
    DescribeNodeReport {
        data_source: source.to_string(),
        node_name: node_name.map(str::to_owned),
        verdict,
        summary,
        nvml: NvmlSide {
            gpu_count: snapshot.device_count,
            products,
            driver_version: nvml.driver_version,
            cuda_driver_version: snapshot.cuda_driver_version.clone().ok(),
            partial_view: holds_own,
        },
        node: ctx.node.clone(),
        kubelet_allocatable: gpu_allocatable.map(|a| {
            a.into_iter()
                .map(|d| KubeletResource {
                    resource_name: d.resource_name,
                    device_ids: d.device_ids,
                })
                .collect()
        }),
        resource_slices: ctx.slices.as_ref().map(|s| {
            s.iter()
                .map(|d| SliceDeviceInfo {
                    driver: d.driver.clone(),
                    pool: d.pool.clone(),
                    device: d.name.clone(),
                    uuid: d.attributes.get("uuid").cloned(),
                    product_name: d.attributes.get("productName").cloned(),
                    r#type: d.attributes.get("type").cloned(),
                })
                .collect()
        }),
        warning_events: ctx
            .events
            .as_ref()
            .map(|e| e.iter().take(MAX_EVENTS).cloned().collect()),
        findings,
        unreadable: ctx.unreadable.clone(),
    }
}

/// Pods the kubelet assigns GPUs to that the API server does not list on this node (only when both
/// were read).
fn stale_pods(ctx: &KubeContext) -> Vec<String> {
    let (Some(pr), Some(pods)) = (ctx.pod_resources.as_ref(), ctx.pods.as_ref()) else {
        return Vec::new();
    };
    let live: BTreeSet<(&str, &str)> = pods
        .iter()
        .map(|p| (p.namespace.as_str(), p.name.as_str()))
        .collect();
    pr.pods
        .iter()
        .filter(|p| {
            p.containers.iter().any(|c| {
                c.devices
                    .iter()
                    .any(|d| d.resource_name.starts_with("nvidia.com/") && !d.device_ids.is_empty())
                    || !c.claims.is_empty()
            })
        })
        .filter(|p| !live.contains(&(p.namespace.as_str(), p.name.as_str())))
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect()
}

fn summary(verdict: Verdict, findings: &[Finding], unreadable: &[Unreadable]) -> String {
    let notable: Vec<&str> = findings
        .iter()
        .filter(|f| f.severity > crate::health::Severity::Info)
        .map(|f| f.message.as_str())
        .collect();
    let mut s = if notable.is_empty() {
        format!(
            "{}: Kubernetes and NVML agree on what was read",
            verdict.as_str()
        )
    } else {
        format!("{}: {}", verdict.as_str(), notable.join("; "))
    };
    if !unreadable.is_empty() {
        let what: Vec<&str> = unreadable.iter().map(|u| u.source.as_str()).collect();
        s.push_str(&format!(" (not read: {})", what.join(", ")));
    }
    s
}
