//! `get_pod_gpu_allocation`'s output: per GPU the containers holding it (device plugin or DRA claim),
//! GPUs held by nobody, and devices that could not be matched (pure).

use schemars::JsonSchema;
use serde::Serialize;

use crate::gpu::{DataSource, NodeSnapshot};
use crate::k8s::allocation::{Attribution, GpuHolder, UnmatchedDevice, attribute};
use crate::k8s::api::Unreadable;
use crate::k8s::devices::NvmlGpu;
use crate::k8s::gather::KubeContext;

/// One GPU NVML sees and who holds it.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct GpuAllocation {
    /// NVML index.
    pub index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "bool")]
    pub mig_mode_enabled: Option<bool>,
    /// Containers holding the GPU (or one of its MIG instances or replicas).
    pub holders: Vec<GpuHolder>,
}

/// `get_pod_gpu_allocation`'s result.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct PodGpuAllocationReport {
    /// `nvml` on a real node, `mock:<scenario>` or `mock-fixture:<file>` in demos and tests.
    pub data_source: String,
    /// The Kubernetes node (`NODE_NAME`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub node_name: Option<String>,
    /// Every GPU NVML sees, in index order; holders limited by the namespace/pod filter.
    pub gpus: Vec<GpuAllocation>,
    /// NVML indices of GPUs no container holds (whatever the filter); absent when the kubelet could
    /// not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<u32>")]
    pub unheld_gpus: Option<Vec<u32>>,
    /// GPU devices containers hold that could not be tied to an NVML GPU, and why.
    pub unmatched: Vec<UnmatchedDevice>,
    /// Sources that could not be read, and why (a missing permission as verb + resource).
    pub unreadable: Vec<Unreadable>,
    pub notes: Vec<String>,
}

/// The matching's view of the snapshot's GPUs.
pub fn nvml_gpus(snapshot: &NodeSnapshot) -> Vec<NvmlGpu> {
    snapshot
        .devices
        .iter()
        .map(|d| NvmlGpu {
            index: d.index,
            uuid: d.uuid.as_ref().ok().cloned(),
            mig_enabled: d.mig_mode.as_ref().is_ok_and(|m| m.current),
        })
        .collect()
}

/// Every GPU allocation of the context, matched to the snapshot's GPUs.
pub fn attribution(snapshot: &NodeSnapshot, ctx: &KubeContext) -> Option<Attribution> {
    let pr = ctx.pod_resources.as_ref()?;
    let slices = ctx.slices.as_deref().unwrap_or_default();
    let allocatable = pr.allocatable.as_deref().ok();
    Some(attribute(
        &pr.pods,
        allocatable,
        slices,
        &nvml_gpus(snapshot),
    ))
}

/// Whether a row passes the namespace/pod filter.
fn selected(filter: (Option<&str>, Option<&str>), namespace: &str, pod: &str) -> bool {
    filter.0.is_none_or(|n| n == namespace) && filter.1.is_none_or(|p| p == pod)
}

/// Builds the report (pure).
pub fn build(
    snapshot: &NodeSnapshot,
    source: &DataSource,
    node_name: Option<&str>,
    ctx: &KubeContext,
    filter: (Option<&str>, Option<&str>),
) -> PodGpuAllocationReport {
    let attribution = attribution(snapshot, ctx);
    let mut notes = Vec::new();
    let gpus = snapshot
        .devices
        .iter()
        .map(|d| GpuAllocation {
            index: d.index,
            uuid: d.uuid.as_ref().ok().cloned(),
            name: d.name.as_ref().ok().cloned(),
            mig_mode_enabled: d.mig_mode.as_ref().ok().map(|m| m.current),
            holders: attribution
                .as_ref()
                .and_then(|a| a.by_gpu.get(&d.index))
                .map(|hs| {
                    hs.iter()
                        .filter(|h| selected(filter, &h.namespace, &h.pod))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect::<Vec<_>>();
    let unheld_gpus = attribution.as_ref().map(|a| {
        snapshot
            .devices
            .iter()
            .map(|d| d.index)
            .filter(|i| !a.by_gpu.contains_key(i))
            .collect()
    });
    let unmatched: Vec<UnmatchedDevice> = attribution
        .as_ref()
        .map(|a| {
            a.unmatched
                .iter()
                .filter(|u| selected(filter, &u.namespace, &u.pod))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if let Some(pr) = ctx.pod_resources.as_ref() {
        if (filter.0.is_some() || filter.1.is_some())
            && !pr
                .pods
                .iter()
                .any(|p| selected(filter, &p.namespace, &p.name))
        {
            notes.push(format!(
                "the kubelet lists no pod matching namespace {} pod {} on this node",
                filter.0.unwrap_or("(any)"),
                filter.1.unwrap_or("(any)")
            ));
        }
        notes.push(
            "Pods that reach GPUs through a RuntimeClass and NVIDIA_VISIBLE_DEVICES (no device plugin, \
             no DRA claim) hold no device the kubelet knows of and are not listed; their processes \
             show in get_gpu_inventory."
                .to_string(),
        );
    }
    PodGpuAllocationReport {
        data_source: source.to_string(),
        node_name: node_name.map(str::to_owned),
        gpus,
        unheld_gpus,
        unmatched,
        unreadable: ctx.unreadable.clone(),
        notes,
    }
}
