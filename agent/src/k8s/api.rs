//! The Kubernetes API reads the agent makes: its node, the pods on the node, Warning events, and the
//! node's DRA ResourceSlices. Each read fails on its own into an [`Unreadable`] that names the
//! missing permission as verb + resource; the rest of the answer still comes from NVML.

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::{Api, Client, Config};
use schemars::JsonSchema;
use serde::Serialize;

use super::devices::SliceDevice;
use super::model::{EventFacts, NodeFacts, PodFacts, node_facts, pod_facts, slice_devices};

/// Something the agent could not read, and why (a permission is named as verb + resource).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Unreadable {
    /// What was not read: `node`, `pods`, `events`, `resourceslices`, `pod-resources`, `processes`.
    pub source: String,
    pub reason: String,
    /// The missing RBAC permission (`list pods`), when the API server refused the read.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub missing_permission: Option<String>,
}

impl Unreadable {
    /// A read that failed for a reason other than a permission.
    pub fn new(source: &str, reason: impl Into<String>) -> Unreadable {
        Unreadable {
            source: source.to_string(),
            reason: reason.into(),
            missing_permission: None,
        }
    }
}

/// The agent's Kubernetes client, bound to its node.
#[derive(Clone)]
pub struct KubeReader {
    client: Client,
    node: String,
}

/// The served `resource.k8s.io` versions, newest first.
const DRA_VERSIONS: [&str; 3] = ["v1", "v1beta2", "v1beta1"];

impl KubeReader {
    /// A client from the pod's ServiceAccount (in-cluster config), or from `$KUBECONFIG` when that
    /// is set (running the agent off-cluster, and the tests).
    pub async fn connect(node: Option<&str>) -> Result<KubeReader, Unreadable> {
        let Some(node) = node.filter(|n| !n.is_empty()) else {
            return Err(Unreadable::new(
                "kubernetes",
                "NODE_NAME is not set, so the agent does not know its node (the operator's DaemonSet \
                 sets it from the downward API)",
            ));
        };
        let config = if std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty()) {
            Config::infer().await.map_err(|e| {
                Unreadable::new("kubernetes", format!("cannot load $KUBECONFIG: {e}"))
            })?
        } else {
            Config::incluster().map_err(|e| {
                Unreadable::new(
                    "kubernetes",
                    format!(
                        "not running in a Kubernetes pod with a ServiceAccount token ({e}); answering \
                         from NVML only"
                    ),
                )
            })?
        };
        let client = Client::try_from(config)
            .map_err(|e| Unreadable::new("kubernetes", format!("cannot build a client: {e}")))?;
        Ok(KubeReader {
            client,
            node: node.to_string(),
        })
    }

    /// The node the agent runs on.
    pub async fn node(&self) -> Result<NodeFacts, Unreadable> {
        let node: Node = Api::<Node>::all(self.client.clone())
            .get(&self.node)
            .await
            .map_err(|e| unreadable("node", "get", "nodes", e))?;
        Ok(node_facts(&node))
    }

    /// The pods scheduled to the node (`spec.nodeName` field selector).
    pub async fn pods(&self) -> Result<Vec<PodFacts>, Unreadable> {
        let lp = ListParams::default().fields(&format!("spec.nodeName={}", self.node));
        let pods = Api::<Pod>::all(self.client.clone())
            .list(&lp)
            .await
            .map_err(|e| unreadable("pods", "list", "pods", e))?;
        Ok(pods.items.iter().map(pod_facts).collect())
    }

    /// Warning events about the node, and about the pod `pod` (namespace, name) when given.
    pub async fn warning_events(
        &self,
        pod: Option<(&str, &str)>,
    ) -> Result<Vec<EventFacts>, Unreadable> {
        let mut out = Vec::new();
        let lp = ListParams::default().fields(&format!(
            "type=Warning,involvedObject.kind=Node,involvedObject.name={}",
            self.node
        ));
        let events = Api::<Event>::all(self.client.clone())
            .list(&lp)
            .await
            .map_err(|e| unreadable("events", "list", "events", e))?;
        out.extend(
            events
                .items
                .iter()
                .filter_map(|e| EventFacts::warning(e, "Node", &self.node)),
        );
        if let Some((ns, name)) = pod {
            let lp = ListParams::default().fields(&format!(
                "type=Warning,involvedObject.kind=Pod,involvedObject.name={name}"
            ));
            let events = Api::<Event>::namespaced(self.client.clone(), ns)
                .list(&lp)
                .await
                .map_err(|e| unreadable("events", "list", "events", e))?;
            out.extend(
                events
                    .items
                    .iter()
                    .filter_map(|e| EventFacts::warning(e, "Pod", name)),
            );
        }
        out.sort_by(|a, b| b.last_seen.cmp(&a.last_seen));
        Ok(out)
    }

    /// The devices of the ResourceSlices naming this node, through the newest served
    /// `resource.k8s.io` version; `Ok(None)` when the cluster serves no DRA API.
    pub async fn resource_slices(&self) -> Result<Option<Vec<SliceDevice>>, Unreadable> {
        for version in DRA_VERSIONS {
            let ar = ApiResource {
                group: "resource.k8s.io".into(),
                version: version.into(),
                api_version: format!("resource.k8s.io/{version}"),
                kind: "ResourceSlice".into(),
                plural: "resourceslices".into(),
            };
            let api = Api::<DynamicObject>::all_with(self.client.clone(), &ar);
            let lp = ListParams::default().fields(&format!("spec.nodeName={}", self.node));
            match api.list(&lp).await {
                Ok(list) => {
                    let mut devices = Vec::new();
                    for item in &list.items {
                        devices.extend(slice_devices(&item.data));
                    }
                    return Ok(Some(devices));
                }
                Err(kube::Error::Api(s)) if s.code == 404 => continue,
                Err(e) => {
                    return Err(unreadable(
                        "resourceslices",
                        "list",
                        "resourceslices.resource.k8s.io",
                        e,
                    ));
                }
            }
        }
        Ok(None)
    }
}

/// The `Unreadable` of a failed API call; a 403 names the permission the ClusterRole lacks.
fn unreadable(source: &str, verb: &str, resource: &str, e: kube::Error) -> Unreadable {
    match &e {
        kube::Error::Api(s) if s.code == 403 => Unreadable {
            source: source.to_string(),
            reason: format!(
                "forbidden: the agent's ServiceAccount may not {verb} {resource} ({}); the operator's \
                 agent ClusterRole grants it",
                s.message
            ),
            missing_permission: Some(format!("{verb} {resource}")),
        },
        _ => Unreadable::new(source, format!("{verb} {resource} failed: {e}")),
    }
}
