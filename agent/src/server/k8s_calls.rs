//! The Kubernetes-aware tools' bodies (`get_pod_gpu_allocation`, `describe_gpu_node`) and the pod
//! attribution the GPU tools add to their answers: the I/O shell around `k8s` and `tools::*`.

use super::GpuDiagServer;
use super::tools::{GpuWorkloads, PodAllocationArgs, ToolError};
use crate::gpu::{GpuFilter, NodeSnapshot};
use crate::k8s::allocation::{Attribution, process_owner};
use crate::k8s::api::Unreadable;
use crate::k8s::cgroup;
use crate::k8s::gather::{self, KubeContext, Wanted};
use crate::tools::gpu_node::{self, DescribeNodeReport};
use crate::tools::inventory::InventoryReport;
use crate::tools::pod_gpus::{self, PodGpuAllocationReport};

impl GpuDiagServer {
    /// Reads the Kubernetes context `wanted` (never fails: what could not be read is listed).
    pub(super) async fn kube_context(&self, wanted: Wanted) -> KubeContext {
        gather::gather(
            &self.inner.opts.kube,
            self.inner.opts.node_name.as_deref(),
            wanted,
        )
        .await
    }

    /// `get_pod_gpu_allocation`: who holds each GPU (also `agent pods`).
    pub async fn pod_gpu_allocation(
        &self,
        args: PodAllocationArgs,
    ) -> Result<PodGpuAllocationReport, ToolError> {
        let snapshot = self.backend(|b| b.snapshot(GpuFilter::All)).await??;
        let ctx = self.kube_context(Wanted::default()).await;
        Ok(pod_gpus::build(
            &snapshot,
            &self.inner.backend.source(),
            self.inner.opts.node_name.as_deref(),
            &ctx,
            (args.namespace.as_deref(), args.pod.as_deref()),
        ))
    }

    pub(super) async fn describe_gpu_node(&self) -> Result<DescribeNodeReport, ToolError> {
        let snapshot = self.backend(|b| b.snapshot(GpuFilter::All)).await??;
        let ctx = self
            .kube_context(Wanted {
                node: true,
                pods: true,
                events: true,
                slices: true,
            })
            .await;
        let own = self.inner.opts.kube.own_pod.as_ref();
        Ok(gpu_node::build(
            &snapshot,
            &self.inner.backend.source(),
            self.inner.opts.node_name.as_deref(),
            &ctx,
            own.map(|(ns, n)| (ns.as_str(), n.as_str())),
        ))
    }

    /// Names the pods holding each of `gpus` ("Xid 79 on GPU 3 → ml/train-7 container trainer");
    /// `what` says what hit each GPU.
    pub(super) async fn workloads_of(
        &self,
        snapshot: &NodeSnapshot,
        gpus: Vec<(u32, String)>,
    ) -> (Vec<GpuWorkloads>, Vec<Unreadable>) {
        if gpus.is_empty() {
            return (Vec::new(), Vec::new());
        }
        let ctx = self.kube_context(Wanted::default()).await;
        let Some(attribution) = pod_gpus::attribution(snapshot, &ctx) else {
            return (Vec::new(), ctx.unreadable);
        };
        (workloads(&attribution, gpus), ctx.unreadable)
    }

    /// Adds namespace/pod/container to the inventory's processes where the host PID namespace and
    /// the node's pods allow it; otherwise says why not.
    pub(super) async fn attribute_processes(&self, report: &mut InventoryReport) {
        let opts = &self.inner.opts.kube;
        if !opts.enabled {
            report.process_attribution = Some(gather::DISABLED.to_string());
            return;
        }
        let has_processes = report
            .gpus
            .iter()
            .any(|g| g.processes.as_ref().is_some_and(|p| !p.is_empty()));
        if !has_processes {
            return;
        }
        if let Some(problem) = cgroup::host_pid_problem(&opts.proc_root) {
            report.process_attribution = Some(problem);
            return;
        }
        let ctx = self
            .kube_context(Wanted {
                pods: true,
                ..Wanted::default()
            })
            .await;
        let mut notes: Vec<String> = ctx
            .unreadable
            .iter()
            .filter(|u| u.source == "pods" || u.source == "kubernetes")
            .map(|u| format!("pod names unknown ({}): {}", u.source, u.reason))
            .collect();
        for gpu in &mut report.gpus {
            for p in gpu.processes.iter_mut().flatten() {
                match cgroup::container_of(&opts.proc_root, p.pid) {
                    Ok(cg) => {
                        let o = process_owner(&cg, ctx.pods.as_deref());
                        p.namespace = o.namespace;
                        p.pod = o.pod;
                        p.container = o.container;
                        p.pod_uid = Some(o.pod_uid);
                        p.container_id = Some(o.container_id);
                    }
                    Err(why) => p.owner_unknown = Some(why),
                }
            }
        }
        notes.dedup();
        if !notes.is_empty() {
            report.process_attribution = Some(notes.join("; "));
        }
    }
}

/// The holders of each GPU, one line each (pure).
pub(super) fn workloads(attribution: &Attribution, gpus: Vec<(u32, String)>) -> Vec<GpuWorkloads> {
    gpus.into_iter()
        .map(|(index, what)| {
            let holders = attribution.labels(index);
            let summary = if holders.is_empty() {
                format!("{what} on GPU {index} → no pod holds it")
            } else {
                format!("{what} on GPU {index} → {}", holders.join(", "))
            };
            GpuWorkloads {
                gpu_index: index,
                holders,
                summary,
            }
        })
        .collect()
}
