//! What a write request must satisfy before anything is stored: type meta matching the endpoint,
//! names and namespaces, optimistic concurrency, and the conflict report of server-side apply.

use serde_json::{Value, json};

use super::{Target, meta_str, metadata_mut};
use crate::error::{ApiError, StatusReason};
use crate::managed;

/// Fills the namespace of a namespaced object from the path, or refuses a mismatch.
pub(super) fn place_namespace(target: &Target, object: &mut Value) -> Result<String, ApiError> {
    let metadata = metadata_mut(object);
    if !target.resource.namespaced {
        metadata.remove("namespace");
        return Ok(String::new());
    }
    let from_path = target.namespace.clone().unwrap_or_default();
    match metadata
        .get("namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        Some(ns) if ns != from_path => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => {
            metadata.insert("namespace".into(), json!(from_path));
            Ok(from_path)
        }
    }
}

/// Fills `apiVersion`/`kind` or refuses ones that do not match the endpoint.
pub(super) fn check_type_meta(target: &Target, object: &mut Value) -> Result<(), ApiError> {
    if !object.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON or YAML object",
        ));
    }
    let api_version = target.api_version();
    match object.get("apiVersion").and_then(Value::as_str) {
        Some(v) if !v.is_empty() && v != api_version => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
        _ => object["apiVersion"] = json!(api_version),
    }
    match object.get("kind").and_then(Value::as_str) {
        Some(k) if !k.is_empty() && k != target.resource.kind => {
            Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                target.resource.kind
            )))
        }
        _ => {
            object["kind"] = json!(target.resource.kind);
            Ok(())
        }
    }
}

/// The object's name must match the URL; a missing one is filled from it.
pub(super) fn check_name(target: &Target, object: &mut Value) -> Result<(), ApiError> {
    let url_name = target.name.clone().unwrap_or_default();
    match meta_str(object, "name") {
        Some(name) if !name.is_empty() && name != url_name => Err(ApiError::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({url_name})"
        ))),
        _ => {
            metadata_mut(object).insert("name".into(), json!(url_name));
            if target.resource.namespaced {
                let namespace = target.namespace.clone().unwrap_or_default();
                match meta_str(object, "namespace") {
                    Some(ns) if !ns.is_empty() && ns != namespace => {
                        return Err(ApiError::bad_request(
                            "the namespace of the provided object does not match the namespace sent on the request",
                        ));
                    }
                    _ => {
                        metadata_mut(object).insert("namespace".into(), json!(namespace));
                    }
                }
            }
            Ok(())
        }
    }
}

/// A non-empty `metadata.resourceVersion` in the request must equal the stored one (optimistic concurrency).
pub(super) fn check_resource_version(
    target: &Target,
    old: &Value,
    new: &Value,
) -> Result<(), ApiError> {
    match meta_str(new, "resourceVersion").filter(|rv| !rv.is_empty()) {
        Some(rv) if Some(rv) != meta_str(old, "resourceVersion") => Err(ApiError::stale(
            &target.resource.group,
            &target.resource.plural,
            meta_str(old, "name").unwrap_or_default(),
        )),
        _ => Ok(()),
    }
}

/// RFC 1123 subdomain check of object names; the problem, if any.
pub(super) fn invalid_name(name: &str) -> Option<&'static str> {
    let ok = name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    (!ok).then_some(
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', \
         and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation \
         is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    )
}

/// The 409 of a server-side apply conflict, worded and detailed like the real server's.
pub(super) fn conflict_error(target: &Target, conflicts: &[managed::Conflict]) -> ApiError {
    let message = match conflicts {
        [one] => format!(
            "Apply failed with 1 conflict: conflict with \"{}\" using {}: {}",
            one.manager, one.api_version, one.field
        ),
        many => {
            let lines: Vec<String> = many
                .iter()
                .map(|c| {
                    format!(
                        "conflict with \"{}\" using {}: {}",
                        c.manager, c.api_version, c.field
                    )
                })
                .collect();
            format!(
                "Apply failed with {} conflicts: {}",
                many.len(),
                lines.join("\n")
            )
        }
    };
    let mut error = ApiError::new(StatusReason::Conflict, message);
    error.details = Some(json!({
        "name": target.name.clone().unwrap_or_default(),
        "group": target.resource.group,
        "kind": target.resource.plural,
        "causes": conflicts.iter().map(|c| json!({
            "reason": "FieldManagerConflict",
            "message": format!("conflict with \"{}\" using {}", c.manager, c.api_version),
            "field": c.field,
        })).collect::<Vec<_>>(),
    }));
    error
}
