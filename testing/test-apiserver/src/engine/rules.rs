//! Rules every stored write follows, and what the server does on its own for particular kinds:
//! status subresource separation, server-owned metadata, no-op detection, namespace defaults,
//! Secret `stringData`, and the DRA admin-access gate and namespace label.

use serde_json::{Value, json};

use super::{Target, meta_str, metadata_mut, terminating};
use crate::managed;

/// Status writes change only `status`; main-resource writes keep the stored `status` when it is a subresource.
pub(super) fn separate_status(target: &Target, old: &Value, new: &mut Value) {
    if !target.resource.status_subresource {
        return;
    }
    if target.status {
        let status = new.get("status").cloned();
        let managed = new.pointer("/metadata/managedFields").cloned();
        *new = old.clone();
        match status {
            Some(status) => new["status"] = status,
            None => {
                new.as_object_mut().map(|m| m.remove("status"));
            }
        }
        if let Some(managed) = managed {
            metadata_mut(new).insert("managedFields".into(), managed);
        }
    } else {
        match old.get("status") {
            Some(status) => new["status"] = status.clone(),
            None => {
                new.as_object_mut().map(|m| m.remove("status"));
            }
        }
    }
}

/// Metadata only the server sets survives every write.
pub(super) fn keep_server_metadata(old: &Value, new: &mut Value) {
    let metadata = metadata_mut(new);
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "resourceVersion",
    ] {
        match old.pointer(&format!("/metadata/{field}")) {
            Some(value) => {
                metadata.insert(field.into(), value.clone());
            }
            None => {
                metadata.remove(field);
            }
        }
    }
}

/// The part of an object whose change bumps `metadata.generation`.
pub(super) fn outside_metadata_and_status(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        for key in ["metadata", "status", "apiVersion", "kind"] {
            map.remove(key);
        }
    }
    copy
}

/// Equal apart from resourceVersion and managedFields timestamps.
pub(super) fn same_object(old: &Value, new: &Value) -> bool {
    let strip = |o: &Value| {
        let mut copy = o.clone();
        if let Some(m) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            m.remove("managedFields");
        }
        copy
    };
    strip(old) == strip(new) && managed::Managed::of(old).same_ownership(&managed::Managed::of(new))
}

/// What the server keeps on every Namespace: the name label, the `kubernetes` finalizer, the phase.
pub(super) fn namespace_defaults(namespace: &mut Value) {
    let name = meta_str(namespace, "name").unwrap_or_default().to_string();
    let metadata = metadata_mut(namespace);
    let labels = metadata.entry("labels").or_insert_with(|| json!({}));
    if let Some(labels) = labels.as_object_mut() {
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    if namespace.pointer("/spec/finalizers").is_none() {
        namespace["spec"] = json!({"finalizers": ["kubernetes"]});
    }
    let phase = if terminating(namespace) {
        "Terminating"
    } else {
        "Active"
    };
    namespace["status"] = json!({"phase": phase});
}

/// `stringData` is write-only: the server merges it into `data` (base64) and drops it.
pub(super) fn fold_string_data(secret: &mut Value) {
    use base64::Engine as _;
    let Some(Value::Object(string_data)) =
        secret.as_object_mut().and_then(|s| s.remove("stringData"))
    else {
        return;
    };
    if !secret.get("data").is_some_and(Value::is_object) {
        secret["data"] = json!({});
    }
    for (key, value) in string_data {
        let text = value.as_str().unwrap_or_default();
        secret["data"][key] = json!(base64::engine::general_purpose::STANDARD.encode(text));
    }
}

/// The device requests of a ResourceClaim or ResourceClaimTemplate (stored v1 shape).
fn requests_mut(object: &mut Value) -> Vec<&mut Value> {
    let pointer = match object.get("kind").and_then(Value::as_str) {
        Some("ResourceClaim") => "/spec/devices/requests",
        _ => "/spec/spec/devices/requests",
    };
    object
        .pointer_mut(pointer)
        .and_then(Value::as_array_mut)
        .map(|r| r.iter_mut().collect())
        .unwrap_or_default()
}

/// Whether a stored claim or template already uses `adminAccess` (then updates keep it).
pub(super) fn uses_admin_access(object: &Value) -> bool {
    let mut copy = object.clone();
    requests_mut(&mut copy)
        .iter()
        .any(|r| r.pointer("/exactly/adminAccess").is_some())
}

/// What the apiserver does with the DRA admin-access gate off: drop the field, no error.
pub(super) fn strip_admin_access(object: &mut Value) {
    for request in requests_mut(object) {
        if let Some(exactly) = request.get_mut("exactly").and_then(Value::as_object_mut) {
            exactly.remove("adminAccess");
        }
        if let Some(subrequests) = request
            .get_mut("firstAvailable")
            .and_then(Value::as_array_mut)
        {
            for sub in subrequests.iter_mut().filter_map(Value::as_object_mut) {
                sub.remove("adminAccess");
            }
        }
    }
}

/// The namespace label that admits `adminAccess` requests: `resource.k8s.io/admin-access` on Kubernetes
/// 1.33, `resource.kubernetes.io/admin-access` from 1.34 on (KEP-5018).
pub fn admin_access_label(git_version: &str) -> &'static str {
    let minor = git_version
        .trim_start_matches('v')
        .split('.')
        .nth(1)
        .and_then(|m| m.parse::<u32>().ok())
        .unwrap_or(u32::MAX);
    if minor <= 33 {
        "resource.k8s.io/admin-access"
    } else {
        "resource.kubernetes.io/admin-access"
    }
}

/// The field path (as the client's `version` spells it) of the first device request asking for
/// `adminAccess: true`, if any: what the API server's `AuthorizedForAdmin` check names when the
/// namespace lacks the admin label.
pub(super) fn admin_access_field(object: &Value, version: &str) -> Option<String> {
    let mut copy = object.clone();
    let prefix = match object.get("kind").and_then(Value::as_str) {
        Some("ResourceClaim") => "spec.devices",
        _ => "spec.spec.devices",
    };
    let index = requests_mut(&mut copy)
        .iter()
        .position(|r| r.pointer("/exactly/adminAccess") == Some(&json!(true)))?;
    let nested = !matches!(version, "v1beta1" | "v1alpha3");
    let field = if nested {
        "exactly.adminAccess"
    } else {
        "adminAccess"
    };
    Some(format!("{prefix}.requests[{index}].{field}"))
}
