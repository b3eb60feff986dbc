//! Reads the Kubernetes context a tool asks for, once, into plain data: every source is optional and
//! one that fails becomes an [`Unreadable`] entry instead of an error.

use std::future::Future;

use super::KubeOptions;
use super::api::{KubeReader, Unreadable};
use super::devices::SliceDevice;
use super::model::{EventFacts, NodeFacts, PodFacts};
use super::podresources::{self, PodResources};

/// Which API reads a tool needs (the kubelet's pod-resources are always read).
#[derive(Clone, Copy, Debug, Default)]
pub struct Wanted {
    pub node: bool,
    pub pods: bool,
    pub events: bool,
    /// Read the node's ResourceSlices even if no container holds a DRA device.
    pub slices: bool,
}

/// What could be read; `None` where a source was not wanted or failed (see `unreadable`).
#[derive(Clone, Debug, Default)]
pub struct KubeContext {
    pub pod_resources: Option<PodResources>,
    pub node: Option<NodeFacts>,
    pub pods: Option<Vec<PodFacts>>,
    pub events: Option<Vec<EventFacts>>,
    pub slices: Option<Vec<SliceDevice>>,
    pub unreadable: Vec<Unreadable>,
}

/// Why nothing of Kubernetes is read when the context is turned off.
pub const DISABLED: &str = "Kubernetes context is turned off (--kubernetes-context=false, CRD \
                            agent.kubernetesContext: false); answering from NVML only";

/// Reads the pod-resources API and the wanted API objects.
pub async fn gather(opts: &KubeOptions, node_name: Option<&str>, wanted: Wanted) -> KubeContext {
    let mut ctx = KubeContext::default();
    if !opts.enabled {
        ctx.unreadable.push(Unreadable::new("kubernetes", DISABLED));
        return ctx;
    }
    match podresources::read(&opts.pod_resources_socket, opts.timeout).await {
        Ok(pr) => {
            if let Err(why) = &pr.allocatable {
                ctx.unreadable
                    .push(Unreadable::new("pod-resources-allocatable", why.clone()));
            }
            ctx.pod_resources = Some(pr);
        }
        Err(e) => ctx
            .unreadable
            .push(Unreadable::new("pod-resources", e.to_string())),
    }
    let holds_dra = ctx.pod_resources.as_ref().is_some_and(|pr| {
        pr.pods
            .iter()
            .flat_map(|p| &p.containers)
            .any(|c| !c.claims.is_empty())
    });
    let need_api = wanted.node || wanted.pods || wanted.events || wanted.slices || holds_dra;
    if !need_api {
        return ctx;
    }
    let reader = match KubeReader::connect(node_name).await {
        Ok(r) => r,
        Err(u) => {
            ctx.unreadable.push(u);
            return ctx;
        }
    };
    let t = opts.timeout;
    if wanted.node {
        ctx.node = bounded(t, "node", reader.node())
            .await
            .map_err(|u| ctx.unreadable.push(u))
            .ok();
    }
    if wanted.pods {
        ctx.pods = bounded(t, "pods", reader.pods())
            .await
            .map_err(|u| ctx.unreadable.push(u))
            .ok();
    }
    if wanted.events {
        let own = opts
            .own_pod
            .as_ref()
            .map(|(ns, n)| (ns.as_str(), n.as_str()));
        ctx.events = bounded(t, "events", reader.warning_events(own))
            .await
            .map_err(|u| ctx.unreadable.push(u))
            .ok();
    }
    if wanted.slices || holds_dra {
        match bounded(t, "resourceslices", reader.resource_slices()).await {
            Ok(Some(s)) => ctx.slices = Some(s),
            Ok(None) => ctx.unreadable.push(Unreadable::new(
                "resourceslices",
                "the API server serves no resource.k8s.io version (DRA is off in this cluster)",
            )),
            Err(u) => ctx.unreadable.push(u),
        }
    }
    ctx
}

async fn bounded<T>(
    timeout: std::time::Duration,
    source: &str,
    f: impl Future<Output = Result<T, Unreadable>>,
) -> Result<T, Unreadable> {
    match tokio::time::timeout(timeout, f).await {
        Ok(r) => r,
        Err(_) => Err(Unreadable::new(
            source,
            format!("the API server did not answer within {timeout:?}"),
        )),
    }
}
