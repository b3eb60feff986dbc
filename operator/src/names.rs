//! Names, labels and field managers of everything the operator writes, derived deterministically
//! from the config name so that two configs never collide and a re-run finds its own objects.

use std::collections::BTreeMap;

/// `app.kubernetes.io/name` of the agent (what `kubectl get pods -l` users know).
pub const APP_NAME: &str = "k8s-mcp-agent";
/// Field manager of every server-side apply and the `app.kubernetes.io/managed-by` value.
pub const MANAGER: &str = "k8s-mcp-agent-operator";
/// Standard label: application name.
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
/// Standard label: which config the object belongs to.
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
/// Standard label: who manages the object.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Annotation holding a hash of what the operator last applied, so a removed field is noticed
/// (a subset check of the live object cannot see removals).
pub const APPLIED_HASH_ANNOTATION: &str = "gpu.k8s-mcp-agent.io/applied-hash";
/// Name of the agent container (fixed contract with the agent image and with `kubectl exec`).
pub const CONTAINER_NAME: &str = "agent";
/// Name of the device request inside the generated ResourceClaimTemplate.
pub const CLAIM_REQUEST_NAME: &str = "gpus";

/// Name of every per-config object: DaemonSet, ServiceAccount (default), ClusterRole,
/// ClusterRoleBinding, ResourceClaimTemplate.
pub fn object_name(config: &str) -> String {
    format!("{APP_NAME}-{config}")
}

/// Labels that select the agent pods of one config (the DaemonSet selector; immutable).
pub fn selector_labels(config: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.to_owned(), APP_NAME.to_owned()),
        (LABEL_INSTANCE.to_owned(), config.to_owned()),
    ])
}

/// Labels on every object the operator writes.
pub fn common_labels(config: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(config);
    labels.insert(LABEL_MANAGED_BY.to_owned(), MANAGER.to_owned());
    labels
}

/// Label selector matching the objects the operator wrote for one config.
pub fn instance_selector(config: &str) -> String {
    format!("{LABEL_NAME}={APP_NAME},{LABEL_INSTANCE}={config},{LABEL_MANAGED_BY}={MANAGER}")
}

/// Label selector matching every object the operator wrote (for watches).
pub fn managed_selector() -> String {
    format!("{LABEL_MANAGED_BY}={MANAGER}")
}

/// Label selector of one config's agent pods.
pub fn pod_selector(config: &str) -> String {
    format!("{LABEL_NAME}={APP_NAME},{LABEL_INSTANCE}={config}")
}

/// Field manager for a namespace: per config, so that two configs sharing a namespace each own
/// their labels and owner reference instead of removing each other's.
pub fn namespace_field_manager(config: &str) -> String {
    format!("{MANAGER}/{config}")
}

/// The applied-hash annotation key of a namespace, per config (see [`namespace_field_manager`]).
pub fn namespace_hash_annotation(config: &str) -> String {
    format!("{APPLIED_HASH_ANNOTATION}-{config}")
}

/// The ServiceAccount the agent pods run as.
pub fn service_account_name(config: &str, spec: &crds::ServiceAccountSpec) -> String {
    match (spec.name.is_empty(), spec.create) {
        (false, _) => spec.name.clone(),
        (true, true) => object_name(config),
        (true, false) => "default".to_owned(),
    }
}

/// The config a labelled object belongs to, when the operator wrote it.
pub fn config_of(labels: &BTreeMap<String, String>) -> Option<&str> {
    (labels.get(LABEL_MANAGED_BY).map(String::as_str) == Some(MANAGER))
        .then(|| labels.get(LABEL_INSTANCE).map(String::as_str))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_label_values_for_the_longest_accepted_config_name() {
        let longest = "a".repeat(crds::MAX_CONFIG_NAME_LEN);
        assert_eq!(object_name(&longest).len(), 63);
    }

    #[test]
    fn service_account_name_follows_the_chart_convention() {
        let mut sa = crds::ServiceAccountSpec::default();
        assert_eq!(service_account_name("prod", &sa), "k8s-mcp-agent-prod");
        sa.create = false;
        assert_eq!(service_account_name("prod", &sa), "default");
        sa.name = "mine".into();
        assert_eq!(service_account_name("prod", &sa), "mine");
    }

    #[test]
    fn config_of_only_trusts_objects_we_manage() {
        assert_eq!(config_of(&common_labels("a")), Some("a"));
        assert_eq!(config_of(&selector_labels("a")), None);
    }
}
