//! Reading the world for one config: the cluster's GPU access facts and the objects the operator
//! already wrote, in one pass (no writes). Nodes, RuntimeClasses, DeviceClasses and the operator's
//! own cluster-wide objects and DaemonSet come from the watches' caches (`cache.rs`); the rest, and
//! whatever a cache cannot tell, is read with GETs and LISTs.

use crds::GpuDiagnosticsConfigSpec;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod, ServiceAccount};
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde_json::Value;

use crate::cache::{self, Caches};
use crate::dra::{self, DraVersion};
use crate::error::Result;
use crate::facts::{AdminAccess, ClusterFacts, DraFacts, UserTemplate};
use crate::kube_api::{KubeApi, resource_of};
use crate::names;

/// The objects of one config as they are now, plus what the agent pods report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// The agent namespace.
    pub namespace: Option<Value>,
    /// ServiceAccounts the operator wrote for this config (normally one).
    pub service_accounts: Vec<Value>,
    /// The agent's ClusterRole.
    pub cluster_role: Option<Value>,
    /// The agent's ClusterRoleBinding.
    pub cluster_role_binding: Option<Value>,
    /// The agent DaemonSet.
    pub daemon_set: Option<Value>,
    /// The generated ResourceClaimTemplate at the served DRA version.
    pub claim_template: Option<Value>,
    /// The agent pods.
    pub pods: Vec<Pod>,
    /// Warning events in the agent namespace.
    pub events: Vec<Event>,
}

/// Reads the cluster's facts and the config's objects. `facts.admin_access` is left `Unknown`:
/// the caller decides it from `claim_template` and its probe cache.
pub async fn observe(
    api: &KubeApi,
    caches: &Caches,
    config: &str,
    spec: &GpuDiagnosticsConfigSpec,
) -> Result<(ClusterFacts, Observed)> {
    let namespace = spec.namespace.name.as_str();
    let object_name = names::object_name(config);

    let runtime_class_handler = cache::get(
        &caches.runtime_classes,
        api,
        &resource_of::<RuntimeClass>(),
        None,
        &spec.gpu.runtime_class.name,
    )
    .await?
    .map(|rc| rc["handler"].as_str().unwrap_or_default().to_owned());

    let served = api.served_versions(dra::GROUP).await?.unwrap_or_default();
    let version = dra::pick_version(served.iter().map(String::as_str));
    let dra_unsupported_versions = served
        .iter()
        .filter(|v| {
            !DraVersion::PREFERENCE
                .iter()
                .any(|p| p.as_str() == v.as_str())
        })
        .cloned()
        .collect();

    let nodes = caches
        .nodes
        .select(&spec.node_selector, &spec.gpu.resource_request.resource)
        .await?;

    let mut observed = Observed {
        namespace: api
            .get(&resource_of::<Namespace>(), None, namespace)
            .await?,
        cluster_role: cache::get(
            &caches.cluster_roles,
            api,
            &resource_of::<ClusterRole>(),
            None,
            &object_name,
        )
        .await?,
        cluster_role_binding: cache::get(
            &caches.cluster_role_bindings,
            api,
            &resource_of::<ClusterRoleBinding>(),
            None,
            &object_name,
        )
        .await?,
        ..Observed::default()
    };
    let dra = match version {
        Some(version) => {
            Some(observe_dra(api, caches, spec, version, &object_name, &mut observed).await?)
        }
        None => None,
    };
    if observed.namespace.is_some() {
        observe_namespace(api, caches, config, namespace, &object_name, &mut observed).await?;
    }

    let facts = ClusterFacts {
        runtime_class_handler,
        dra,
        dra_unsupported_versions,
        nodes,
        admin_access: AdminAccess::Unknown,
    };
    Ok((facts, observed))
}

/// The DRA facts at the served `version`: the DeviceClass, the user's claim template (missing when
/// the namespace is), and the operator's own template into `observed`.
async fn observe_dra(
    api: &KubeApi,
    caches: &Caches,
    spec: &GpuDiagnosticsConfigSpec,
    version: DraVersion,
    object_name: &str,
    observed: &mut Observed,
) -> Result<DraFacts> {
    let namespace = spec.namespace.name.as_str();
    let device_class_exists = cache::get(
        &caches.device_classes,
        api,
        &version.device_classes(),
        None,
        &spec.gpu.resource_claim.device_class_name,
    )
    .await?
    .is_some();
    let template_name = &spec.gpu.resource_claim.template_name;
    let mut user_template = None;
    if observed.namespace.is_some() {
        observed.claim_template = cache::get(
            &caches.claim_templates,
            api,
            &version.resource_claim_templates(),
            Some(namespace),
            object_name,
        )
        .await?;
        if !template_name.is_empty() {
            let found = api
                .get(
                    &version.resource_claim_templates(),
                    Some(namespace),
                    template_name,
                )
                .await?;
            user_template = Some(match found {
                Some(t) => UserTemplate::Found {
                    admin_access: dra::template_requests_admin_access(&t),
                },
                None => UserTemplate::Missing,
            });
        }
    } else if !template_name.is_empty() {
        user_template = Some(UserTemplate::Missing);
    }
    Ok(DraFacts {
        version,
        device_class_exists,
        user_template,
    })
}

/// The config's objects inside the agent namespace (which exists): ServiceAccounts, the DaemonSet,
/// the agent pods and the namespace's Warning events.
async fn observe_namespace(
    api: &KubeApi,
    caches: &Caches,
    config: &str,
    namespace: &str,
    object_name: &str,
    observed: &mut Observed,
) -> Result<()> {
    observed.service_accounts = api
        .list(
            &resource_of::<ServiceAccount>(),
            Some(namespace),
            Some(&names::instance_selector(config)),
            None,
        )
        .await?;
    observed.daemon_set = cache::get(
        &caches.daemon_sets,
        api,
        &resource_of::<DaemonSet>(),
        Some(namespace),
        object_name,
    )
    .await?;
    observed.pods = api
        .list_typed::<Pod>(Some(namespace), Some(&names::pod_selector(config)), None)
        .await?;
    observed.events = api
        .list_typed::<Event>(Some(namespace), None, Some("type=Warning"))
        .await?
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .collect();
    Ok(())
}
