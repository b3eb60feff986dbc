//! The default catalog of built-in resources: what the operator, kubectl and helm touch on a cluster.

use std::fmt;
use std::str::FromStr;

use super::{Origin, ResourceType, ServedVersion, StoreKey};
use crate::convert::Codec;

/// A `resource.k8s.io` version a test can make served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DraVersion {
    /// Kubernetes 1.32+ (flat device requests).
    V1beta1,
    /// Kubernetes 1.33+ (requests nested under `exactly`).
    V1beta2,
    /// Kubernetes 1.34+ GA.
    V1,
}

impl DraVersion {
    /// The version string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1beta1 => "v1beta1",
            Self::V1beta2 => "v1beta2",
            Self::V1 => "v1",
        }
    }
}

impl fmt::Display for DraVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DraVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "v1beta1" => Ok(Self::V1beta1),
            "v1beta2" => Ok(Self::V1beta2),
            "v1" => Ok(Self::V1),
            other => Err(format!(
                "unknown resource.k8s.io version {other:?}: expected v1, v1beta2 or v1beta1"
            )),
        }
    }
}

/// Compact description of one built-in resource.
struct BuiltIn {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    status: bool,
    all: bool,
}

const fn b(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    status: bool,
) -> BuiltIn {
    BuiltIn {
        group,
        version,
        plural,
        kind,
        namespaced,
        short_names,
        status,
        all: false,
    }
}

const fn in_all(mut builtin: BuiltIn) -> BuiltIn {
    builtin.all = true;
    builtin
}

const NS: bool = true;
const CLUSTER: bool = false;

const BUILTINS: &[BuiltIn] = &[
    b("", "v1", "namespaces", "Namespace", CLUSTER, &["ns"], true),
    b("", "v1", "nodes", "Node", CLUSTER, &["no"], true),
    in_all(b("", "v1", "pods", "Pod", NS, &["po"], true)),
    b("", "v1", "events", "Event", NS, &["ev"], false),
    b("", "v1", "secrets", "Secret", NS, &[], false),
    b("", "v1", "configmaps", "ConfigMap", NS, &["cm"], false),
    b(
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        NS,
        &["sa"],
        false,
    ),
    in_all(b("", "v1", "services", "Service", NS, &["svc"], true)),
    b("", "v1", "endpoints", "Endpoints", NS, &["ep"], false),
    b(
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        NS,
        &["pvc"],
        true,
    ),
    b(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        CLUSTER,
        &["crd", "crds"],
        true,
    ),
    in_all(b(
        "apps",
        "v1",
        "daemonsets",
        "DaemonSet",
        NS,
        &["ds"],
        true,
    )),
    in_all(b(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        NS,
        &["deploy"],
        true,
    )),
    in_all(b(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        NS,
        &["rs"],
        true,
    )),
    in_all(b(
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        NS,
        &["sts"],
        true,
    )),
    b(
        "apps",
        "v1",
        "controllerrevisions",
        "ControllerRevision",
        NS,
        &[],
        false,
    ),
    b("events.k8s.io", "v1", "events", "Event", NS, &["ev"], false),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        CLUSTER,
        &[],
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        CLUSTER,
        &[],
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        NS,
        &[],
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        NS,
        &[],
        false,
    ),
    b(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        NS,
        &["pdb"],
        true,
    ),
    b(
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        NS,
        &[],
        false,
    ),
    b(
        "node.k8s.io",
        "v1",
        "runtimeclasses",
        "RuntimeClass",
        CLUSTER,
        &[],
        false,
    ),
    b(
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        "PriorityClass",
        CLUSTER,
        &["pc"],
        false,
    ),
];

/// `resource.k8s.io` resources; served only at the versions a test enables.
const DRA: &[BuiltIn] = &[
    b(
        "resource.k8s.io",
        "",
        "deviceclasses",
        "DeviceClass",
        CLUSTER,
        &[],
        false,
    ),
    b(
        "resource.k8s.io",
        "",
        "resourceclaims",
        "ResourceClaim",
        NS,
        &[],
        true,
    ),
    b(
        "resource.k8s.io",
        "",
        "resourceclaimtemplates",
        "ResourceClaimTemplate",
        NS,
        &[],
        false,
    ),
    b(
        "resource.k8s.io",
        "",
        "resourceslices",
        "ResourceSlice",
        CLUSTER,
        &[],
        false,
    ),
];

/// The built-in catalog with `resource.k8s.io` served at `dra_versions`.
pub fn builtin_types(dra_versions: &[DraVersion]) -> Vec<ResourceType> {
    let mut types: Vec<ResourceType> = BUILTINS
        .iter()
        .map(|builtin| {
            let (store, storage_api_version, codec) = if builtin.group == "events.k8s.io" {
                (
                    StoreKey {
                        group: String::new(),
                        resource: "events".into(),
                    },
                    "v1".to_string(),
                    Codec::EventsV1,
                )
            } else {
                let key = StoreKey {
                    group: builtin.group.into(),
                    resource: builtin.plural.into(),
                };
                (
                    key,
                    super::api_version(builtin.group, builtin.version),
                    Codec::Identity,
                )
            };
            resource_type(
                builtin,
                store,
                storage_api_version,
                vec![served(builtin.version, codec)],
            )
        })
        .collect();

    let mut versions: Vec<DraVersion> = dra_versions.to_vec();
    versions.sort_by(|a, b| b.cmp(a));
    versions.dedup();
    if !versions.is_empty() {
        for builtin in DRA {
            let served_versions = versions
                .iter()
                .map(|v| {
                    served(
                        v.as_str(),
                        if *v == DraVersion::V1beta1 {
                            Codec::DraV1beta1
                        } else {
                            Codec::Identity
                        },
                    )
                })
                .collect();
            let store = StoreKey {
                group: builtin.group.into(),
                resource: builtin.plural.into(),
            };
            types.push(resource_type(
                builtin,
                store,
                "resource.k8s.io/v1".into(),
                served_versions,
            ));
        }
    }
    types
}

fn served(version: &str, codec: Codec) -> ServedVersion {
    ServedVersion {
        version: version.to_string(),
        codec,
        schema: None,
        printer_columns: Vec::new(),
    }
}

/// Built-in kinds whose strategy maintains `metadata.generation`.
const WITH_GENERATION: &[&str] = &[
    "Pod",
    "DaemonSet",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "CustomResourceDefinition",
    "PodDisruptionBudget",
    "DeviceClass",
    "ResourceSlice",
];

fn resource_type(
    builtin: &BuiltIn,
    store: StoreKey,
    storage_api_version: String,
    versions: Vec<ServedVersion>,
) -> ResourceType {
    ResourceType {
        group: builtin.group.to_string(),
        plural: builtin.plural.to_string(),
        singular: builtin.kind.to_lowercase(),
        kind: builtin.kind.to_string(),
        list_kind: format!("{}List", builtin.kind),
        namespaced: builtin.namespaced,
        short_names: builtin.short_names.iter().map(|s| s.to_string()).collect(),
        categories: if builtin.all {
            vec!["all".to_string()]
        } else {
            Vec::new()
        },
        versions,
        status_subresource: builtin.status,
        tracks_generation: WITH_GENERATION.contains(&builtin.kind),
        store,
        storage_api_version,
        origin: Origin::BuiltIn,
    }
}
