//! Rendering: the objects one config needs, as the JSON the operator server-side applies (pure).
//! The DaemonSet lives in `render/daemonset.rs`; everything around it is here.

mod daemonset;
mod history;

use std::collections::BTreeMap;

use crds::GpuDiagnosticsConfig;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use serde_json::{Value, json};

use crate::access::{Claim, GpuAccess, Resolution};
use crate::dra::{DeviceRequest, DraVersion};
use crate::names;
use crate::rbac;

pub use daemonset::{image_reference, needs_privileged_namespace};

/// Pod Security Admission labels that let a privileged (or CAP_SYSLOG) pod in.
pub const POD_SECURITY_LABELS: [&str; 3] = [
    "pod-security.kubernetes.io/enforce",
    "pod-security.kubernetes.io/audit",
    "pod-security.kubernetes.io/warn",
];
/// Namespace labels DRA admin access requires (1.33 name, and the 1.34+ name).
pub const DRA_ADMIN_LABELS: [&str; 2] = [
    "resource.k8s.io/admin-access",
    "resource.kubernetes.io/admin-access",
];

/// The objects of one config, in apply order. `None` means "must not exist".
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Desired {
    /// The namespace, when `namespace.create` (applied with a per-config field manager).
    pub namespace: Option<Value>,
    /// The agent's ServiceAccount, when `serviceAccount.create`.
    pub service_account: Option<Value>,
    /// The agent's ClusterRole.
    pub cluster_role: Value,
    /// Binds the ClusterRole to the agent's ServiceAccount.
    pub cluster_role_binding: Value,
    /// The agent DaemonSet, when a GPU access method was resolved.
    pub daemon_set: Option<Value>,
}

/// Failures to render, all due to an object not read from the API server.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    /// Owner references need the config's name and uid.
    #[error(
        "the GpuDiagnosticsConfig has no metadata.{0}: render objects only for configs read from the API server"
    )]
    MissingMetadata(&'static str),
}

/// Whether a config may put its owner reference on the agent namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceOwnership {
    /// The namespace is new, or was created by the operator for some config: the config co-owns
    /// it (deleting one config does not delete another's agent).
    CoOwned,
    /// Somebody else created the namespace: it is labelled, never adopted.
    Foreign,
}

/// Renders everything but the claim template (which needs the DaemonSet's uid, see
/// [`render_claim_template`]).
pub fn render(
    config: &GpuDiagnosticsConfig,
    resolution: &Resolution,
    ownership: NamespaceOwnership,
    operator_version: &str,
) -> Result<Desired, RenderError> {
    let name = config
        .metadata
        .name
        .as_deref()
        .ok_or(RenderError::MissingMetadata("name"))?;
    let owner = config
        .controller_owner_ref(&())
        .ok_or(RenderError::MissingMetadata("uid"))?;
    let spec = &config.spec;
    let namespace = spec.namespace.name.as_str();
    let object_name = names::object_name(name);
    let service_account = names::service_account_name(name, &spec.service_account);
    let namespace_object = self::namespace(config, resolution, ownership)?;

    let service_account_object = spec.service_account.create.then(|| {
        to_json(&ServiceAccount {
            metadata: ObjectMeta {
                name: Some(service_account.clone()),
                namespace: Some(namespace.to_owned()),
                labels: Some(names::common_labels(name)),
                annotations: non_empty(spec.service_account.annotations.clone()),
                owner_references: Some(vec![owner.clone()]),
                ..ObjectMeta::default()
            },
            ..ServiceAccount::default()
        })
    });

    let cluster_role = to_json(&ClusterRole {
        metadata: ObjectMeta {
            name: Some(object_name.clone()),
            labels: Some(names::common_labels(name)),
            owner_references: Some(vec![owner.clone()]),
            ..ObjectMeta::default()
        },
        rules: Some(rbac::policy_rules(rbac::AGENT_RULES)),
        aggregation_rule: None,
    });

    let cluster_role_binding = to_json(&ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(object_name.clone()),
            labels: Some(names::common_labels(name)),
            owner_references: Some(vec![owner.clone()]),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: object_name,
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: service_account.clone(),
            namespace: Some(namespace.to_owned()),
            api_group: None,
        }]),
    });

    let daemon_set = resolution.access.as_ref().map(|access| {
        to_json(&daemonset::daemon_set(
            name,
            spec,
            access,
            &service_account,
            owner.clone(),
            operator_version,
        ))
    });

    Ok(Desired {
        namespace: namespace_object,
        service_account: service_account_object,
        cluster_role,
        cluster_role_binding,
        daemon_set,
    })
}

/// The agent namespace when `namespace.create`: the Pod Security labels the agent pod needs, and
/// the DRA admin-access labels whenever `resolution` attempts admin access.
pub fn namespace(
    config: &GpuDiagnosticsConfig,
    resolution: &Resolution,
    ownership: NamespaceOwnership,
) -> Result<Option<Value>, RenderError> {
    let spec = &config.spec;
    if !spec.namespace.create {
        return Ok(None);
    }
    let owner = config
        .controller_owner_ref(&())
        .ok_or(RenderError::MissingMetadata("uid"))?;
    let mut labels = BTreeMap::from([(
        names::LABEL_MANAGED_BY.to_owned(),
        names::MANAGER.to_owned(),
    )]);
    if needs_privileged_namespace(spec) {
        for key in POD_SECURITY_LABELS {
            labels.insert(key.to_owned(), "privileged".to_owned());
        }
    }
    if resolution.namespace_admin_labels {
        for key in DRA_ADMIN_LABELS {
            labels.insert(key.to_owned(), "true".to_owned());
        }
    }
    let owner_references = (ownership == NamespaceOwnership::CoOwned).then(|| {
        vec![OwnerReference {
            controller: Some(false),
            block_owner_deletion: Some(false),
            ..owner
        }]
    });
    Ok(Some(to_json(&Namespace {
        metadata: ObjectMeta {
            name: Some(spec.namespace.name.clone()),
            labels: Some(labels),
            owner_references,
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    })))
}

/// The generated ResourceClaimTemplate for `access` (none for a user's template or other modes),
/// owned by the DaemonSet so that garbage collection removes the DaemonSet (and its pods) first.
pub fn render_claim_template(
    config_name: &str,
    namespace: &str,
    access: &GpuAccess,
    daemon_set_owner: Option<OwnerReference>,
) -> Option<Value> {
    let GpuAccess::Dra { version, claim } = access else {
        return None;
    };
    let claim_spec = match claim {
        Claim::Generated(request) => crate::dra::claim_spec(*version, request),
        Claim::Inline(spec) => crate::dra::adapt_claim_spec(&Value::Object(spec.clone()), *version),
        Claim::UserTemplate { .. } => return None,
    };
    Some(claim_template(
        config_name,
        namespace,
        *version,
        claim_spec,
        daemon_set_owner,
    ))
}

/// A ResourceClaimTemplate object named for `config_name` at `version`.
pub fn claim_template(
    config_name: &str,
    namespace: &str,
    version: DraVersion,
    claim_spec: Value,
    owner: Option<OwnerReference>,
) -> Value {
    let mut metadata = json!({
        "name": names::object_name(config_name),
        "namespace": namespace,
        "labels": names::common_labels(config_name),
    });
    if let Some(owner) = owner {
        metadata["ownerReferences"] = json!([owner]);
    }
    json!({
        "apiVersion": version.api_version(),
        "kind": "ResourceClaimTemplate",
        "metadata": metadata,
        "spec": {"spec": claim_spec},
    })
}

/// The claim template used to ask the API server (dry run) whether it keeps `adminAccess`.
pub fn admin_access_probe(
    config_name: &str,
    namespace: &str,
    version: DraVersion,
    device_class: &str,
) -> Value {
    let request = DeviceRequest::AdminAll {
        device_class: device_class.to_owned(),
    };
    claim_template(
        config_name,
        namespace,
        version,
        crate::dra::claim_spec(version, &request),
        None,
    )
}

/// The owner reference a claim template gets to its DaemonSet.
pub fn daemon_set_owner(name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "DaemonSet".into(),
        name: name.to_owned(),
        uid: uid.to_owned(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn non_empty(map: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!map.is_empty()).then_some(map)
}

fn to_json<T: serde::Serialize>(object: &T) -> Value {
    // k8s-openapi types serialize infallibly (no maps with non-string keys, no custom errors).
    serde_json::to_value(object).expect("k8s-openapi objects serialize to JSON")
}

#[cfg(test)]
mod tests;
