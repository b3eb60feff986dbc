//! Who holds which GPU: the kubelet's device-plugin and DRA allocations matched to NVML's GPUs
//! (pure), and the owner of a GPU process from its cgroup and the node's pods.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use super::cgroup::CgroupContainer;
use super::devices::{
    MatchedBy, NvmlGpu, SliceDevice, lost_gpu_uuid, match_device_id, match_dra_device,
};
use super::model::PodFacts;
use super::podresources::{PodAllocation, ResourceDevices};

/// How a container got a GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AllocationSource {
    /// A device-plugin resource (`nvidia.com/gpu`, `nvidia.com/mig-…`).
    DevicePlugin,
    /// A DRA ResourceClaim.
    Dra,
}

/// One container holding (part of) a GPU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct GpuHolder {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub source: AllocationSource,
    /// The device-plugin resource name (device-plugin rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub resource_name: Option<String>,
    /// `namespace/name` of the ResourceClaim (DRA rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub claim: Option<String>,
    /// The device as the kubelet names it: a device-plugin id or `driver/pool/device`.
    pub device: String,
    /// The MIG instance's UUID, for MIG devices.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub mig_uuid: Option<String>,
    /// The replica number of a time-sliced or MPS-shared GPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u32")]
    pub replica: Option<u32>,
    pub matched_by: MatchedBy,
}

impl GpuHolder {
    /// `ml/train-7 container trainer`.
    pub fn label(&self) -> String {
        format!(
            "{}/{} container {}",
            self.namespace, self.pod, self.container
        )
    }
}

/// A GPU device a container holds that could not be tied to an NVML GPU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct UnmatchedDevice {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub source: AllocationSource,
    pub device: String,
    pub reason: String,
}

/// Every GPU allocation on the node, matched to NVML's GPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attribution {
    /// Holders by NVML index.
    pub by_gpu: BTreeMap<u32, Vec<GpuHolder>>,
    pub unmatched: Vec<UnmatchedDevice>,
}

impl Attribution {
    /// The holders of GPU `index`, as `ns/pod container c` labels.
    pub fn labels(&self, index: u32) -> Vec<String> {
        self.by_gpu
            .get(&index)
            .map(|hs| hs.iter().map(GpuHolder::label).collect())
            .unwrap_or_default()
    }
}

/// Whether a device-plugin resource is an NVIDIA GPU resource.
pub fn is_gpu_resource(name: &str) -> bool {
    name.starts_with("nvidia.com/")
}

/// Whether a DRA driver publishes NVIDIA GPUs (not compute domains).
pub fn is_gpu_driver(driver: &str) -> bool {
    driver == "gpu.nvidia.com"
}

/// Matches every GPU allocation of `pods` to `gpus` (DRA devices through `slices`). The kubelet's
/// `allocatable` devices, when known, tell which UUID a lost GPU had; otherwise the held ones do.
pub fn attribute(
    pods: &[PodAllocation],
    allocatable: Option<&[ResourceDevices]>,
    slices: &[SliceDevice],
    gpus: &[NvmlGpu],
) -> Attribution {
    let mut out = Attribution::default();
    let held: Vec<&ResourceDevices> = pods
        .iter()
        .flat_map(|p| &p.containers)
        .flat_map(|c| &c.devices)
        .collect();
    let known: Vec<String> = allocatable
        .map(|a| a.iter().collect::<Vec<_>>())
        .unwrap_or(held)
        .into_iter()
        .filter(|d| is_gpu_resource(&d.resource_name))
        .flat_map(|d| &d.device_ids)
        .map(|id| id.split("::").next().unwrap_or(id).to_string())
        .collect();
    let lost = lost_gpu_uuid(&known, gpus);
    for pod in pods {
        for c in &pod.containers {
            let holder = |source, device: String, m: super::devices::MatchedDevice| GpuHolder {
                namespace: pod.namespace.clone(),
                pod: pod.name.clone(),
                container: c.name.clone(),
                source,
                resource_name: None,
                claim: None,
                device,
                mig_uuid: m.mig_uuid,
                replica: m.replica,
                matched_by: m.matched_by,
            };
            let unmatched = |source, device: String, reason| UnmatchedDevice {
                namespace: pod.namespace.clone(),
                pod: pod.name.clone(),
                container: c.name.clone(),
                source,
                device,
                reason,
            };
            for rd in c
                .devices
                .iter()
                .filter(|d| is_gpu_resource(&d.resource_name))
            {
                for id in &rd.device_ids {
                    match match_device_id(id, gpus, lost.as_ref()) {
                        Ok(m) => {
                            let index = m.gpu_index;
                            let mut h = holder(AllocationSource::DevicePlugin, id.clone(), m);
                            h.resource_name = Some(rd.resource_name.clone());
                            out.by_gpu.entry(index).or_default().push(h);
                        }
                        Err(reason) => out.unmatched.push(unmatched(
                            AllocationSource::DevicePlugin,
                            id.clone(),
                            reason,
                        )),
                    }
                }
            }
            for claim in &c.claims {
                for dev in claim.devices.iter().filter(|d| is_gpu_driver(&d.driver)) {
                    let name = format!("{}/{}/{}", dev.driver, dev.pool, dev.device);
                    match match_dra_device(dev, slices, gpus) {
                        Ok(m) => {
                            let index = m.gpu_index;
                            let mut h = holder(AllocationSource::Dra, name, m);
                            h.claim =
                                Some(format!("{}/{}", claim.claim_namespace, claim.claim_name));
                            out.by_gpu.entry(index).or_default().push(h);
                        }
                        Err(reason) => {
                            out.unmatched
                                .push(unmatched(AllocationSource::Dra, name, reason))
                        }
                    }
                }
            }
        }
    }
    out
}

/// The owner of a GPU process, as far as it can be named.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ProcessOwner {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub container: Option<String>,
    pub pod_uid: String,
    pub container_id: String,
}

/// Names the pod and container of a process's cgroup from the node's pods (when they could be read).
pub fn process_owner(cg: &CgroupContainer, pods: Option<&[PodFacts]>) -> ProcessOwner {
    let pod = pods.and_then(|ps| ps.iter().find(|p| p.uid == cg.pod_uid));
    ProcessOwner {
        namespace: pod.map(|p| p.namespace.clone()),
        pod: pod.map(|p| p.name.clone()),
        container: pod.and_then(|p| {
            p.containers
                .iter()
                .find(|(_, id)| *id == cg.container_id)
                .map(|(name, _)| name.clone())
        }),
        pod_uid: cg.pod_uid.clone(),
        container_id: cg.container_id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::devices::DraDevice;
    use crate::k8s::podresources::{ClaimAllocation, ContainerAllocation};

    fn gpus() -> Vec<NvmlGpu> {
        (0..3)
            .map(|i| NvmlGpu {
                index: i,
                uuid: Some(format!("GPU-{i}")),
                mig_enabled: false,
            })
            .collect()
    }

    fn pod(ns: &str, name: &str, c: ContainerAllocation) -> PodAllocation {
        PodAllocation {
            namespace: ns.into(),
            name: name.into(),
            containers: vec![c],
        }
    }

    fn plugin(container: &str, resource: &str, ids: &[&str]) -> ContainerAllocation {
        ContainerAllocation {
            name: container.into(),
            devices: vec![ResourceDevices {
                resource_name: resource.into(),
                device_ids: ids.iter().map(|s| s.to_string()).collect(),
            }],
            claims: vec![],
        }
    }

    #[test]
    fn device_plugin_dra_and_shared_gpus_are_attributed() {
        let slices = vec![SliceDevice {
            driver: "gpu.nvidia.com".into(),
            pool: "n".into(),
            name: "gpu-2".into(),
            attributes: [("uuid".to_string(), "GPU-2".to_string())].into(),
        }];
        let dra = ContainerAllocation {
            name: "server".into(),
            devices: vec![],
            claims: vec![ClaimAllocation {
                claim_name: "llm-gpu".into(),
                claim_namespace: "serve".into(),
                devices: vec![
                    DraDevice {
                        driver: "gpu.nvidia.com".into(),
                        pool: "n".into(),
                        device: "gpu-2".into(),
                    },
                    DraDevice {
                        driver: "compute-domain.nvidia.com".into(),
                        pool: "n".into(),
                        device: "ch-0".into(),
                    },
                ],
            }],
        };
        let pods = vec![
            pod(
                "ml",
                "train-7",
                plugin("trainer", "nvidia.com/gpu", &["GPU-0"]),
            ),
            pod(
                "ml",
                "shared-a",
                plugin("a", "nvidia.com/gpu.shared", &["GPU-1::0"]),
            ),
            pod(
                "ml",
                "shared-b",
                plugin("b", "nvidia.com/gpu.shared", &["GPU-1::1"]),
            ),
            pod(
                "net",
                "sriov",
                plugin("x", "intel.com/sriov", &["0000:3b:00.1"]),
            ),
            pod("ml", "elsewhere", plugin("y", "nvidia.com/gpu", &["GPU-9"])),
            pod("serve", "llm", dra),
        ];
        let a = attribute(&pods, None, &slices, &gpus());
        assert_eq!(a.labels(0), ["ml/train-7 container trainer"]);
        assert_eq!(
            a.labels(1),
            ["ml/shared-a container a", "ml/shared-b container b"]
        );
        assert_eq!(a.by_gpu[&1][1].replica, Some(1));
        let h = &a.by_gpu[&2][0];
        assert_eq!(
            (h.source, h.claim.as_deref()),
            (AllocationSource::Dra, Some("serve/llm-gpu"))
        );
        assert_eq!(h.device, "gpu.nvidia.com/n/gpu-2");
        assert_eq!(a.unmatched.len(), 1, "{:?}", a.unmatched);
        assert_eq!(
            (a.unmatched[0].pod.as_str(), a.unmatched[0].device.as_str()),
            ("elsewhere", "GPU-9")
        );
    }

    #[test]
    fn an_empty_node_holds_nothing() {
        let a = attribute(&[], None, &[], &gpus());
        assert!(a.by_gpu.is_empty() && a.unmatched.is_empty());
    }

    #[test]
    fn process_owners_are_named_from_pods() {
        let cg = CgroupContainer {
            pod_uid: "u1".into(),
            container_id: "abc".into(),
        };
        let pods = vec![PodFacts {
            namespace: "ml".into(),
            name: "train-7".into(),
            uid: "u1".into(),
            containers: vec![("trainer".into(), "abc".into())],
        }];
        let o = process_owner(&cg, Some(&pods));
        assert_eq!(
            (
                o.namespace.as_deref(),
                o.pod.as_deref(),
                o.container.as_deref()
            ),
            (Some("ml"), Some("train-7"), Some("trainer"))
        );
        let o = process_owner(&cg, None);
        assert_eq!((o.pod, o.pod_uid.as_str()), (None, "u1"));
    }
}
