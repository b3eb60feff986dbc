//! PATCH bodies other than server-side apply: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and an
//! approximation of strategic merge patch (merge-key lists, `$patch`, `$deleteFromPrimitiveList`,
//! `$retainKeys`) good enough for kubectl's client-side apply and kube-lease-manager.

use serde_json::{Map, Value};

use crate::error::{ApiError, StatusReason};
use crate::schema::{ListKind, ListTypes, element_key};

/// The patch flavours, by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/json-patch+json`.
    Json,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// The patch type of a `Content-Type` header value.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        match media {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/json-patch+json" => Some(Self::Json),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }

    /// Lower-case name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Merge => "merge",
            Self::Strategic => "strategic",
            Self::Json => "json",
            Self::Apply => "apply",
        }
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// RFC 6902 JSON patch.
pub fn json(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let operations: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| {
        ApiError::bad_request(format!(
            "the body of the request was not a valid JSON patch: {e}"
        ))
    })?;
    json_patch::patch(target, &operations).map_err(|e| {
        ApiError::new(
            StatusReason::Invalid,
            format!("the server rejected our request due to an error in our request: {e}"),
        )
    })
}

/// Strategic merge patch, with list semantics from the built-in table.
pub fn strategic(target: &mut Value, patch: &Value, list_types: ListTypes<'_>) {
    let mut names = Vec::new();
    strategic_value(target, patch, &mut names, list_types);
}

fn strategic_value<'p>(
    target: &mut Value,
    patch: &'p Value,
    names: &mut Vec<&'p str>,
    list_types: ListTypes<'_>,
) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = strip_directives(patch);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target_map = target.as_object_mut().expect("made an object above");
    for (key, value) in patch_map {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Value::Array(remove)) =
                (target_map.get_mut(field), value)
            {
                items.retain(|item| !remove.contains(item));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() {
            target_map.remove(key);
            continue;
        }
        names.push(key.as_str());
        match (target_map.get_mut(key), value) {
            (Some(existing @ Value::Object(_)), Value::Object(_)) => {
                strategic_value(existing, value, names, list_types)
            }
            (Some(Value::Array(existing)), Value::Array(items)) => {
                strategic_list(existing, items, names, list_types)
            }
            _ => {
                target_map.insert(key.clone(), strip_directives(value));
            }
        }
        names.pop();
    }
    if let Some(Value::Array(retain)) = patch_map.get("$retainKeys") {
        target_map.retain(|k, _| retain.iter().any(|r| r.as_str() == Some(k)));
    }
}

fn strategic_list<'p>(
    target: &mut Vec<Value>,
    items: &'p [Value],
    names: &mut Vec<&'p str>,
    list_types: ListTypes<'_>,
) {
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *target = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .map(strip_directives)
            .collect();
        return;
    }
    match list_types.at(names) {
        ListKind::Map(keys) => {
            for item in items {
                let Some(key) = element_key(item, &keys) else {
                    continue;
                };
                let position = target
                    .iter()
                    .position(|t| element_key(t, &keys).as_deref() == Some(key.as_str()));
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (position, delete) {
                    (Some(index), true) => {
                        target.remove(index);
                    }
                    (None, true) => {}
                    (Some(index), false) => {
                        strategic_value(&mut target[index], item, names, list_types)
                    }
                    (None, false) => target.push(strip_directives(item)),
                }
            }
        }
        ListKind::Set => {
            for item in items {
                if !target.contains(item) {
                    target.push(item.clone());
                }
            }
        }
        ListKind::Atomic => *target = items.iter().map(strip_directives).collect(),
    }
}

fn strip_directives(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, v)| !k.starts_with('$') && !v.is_null())
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml"),
            Some(PatchType::Apply)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
    }

    #[test]
    fn merge_patch_replaces_lists_and_deletes_nulls() {
        let mut target = json!({"spec": {"a": 1, "b": 2, "list": [1, 2]}});
        merge(&mut target, &json!({"spec": {"a": null, "list": [3]}}));
        assert_eq!(target, json!({"spec": {"b": 2, "list": [3]}}));
    }

    #[test]
    fn json_patch_and_its_errors() {
        let mut target = json!({"metadata": {"labels": {"a": "1"}}});
        json(
            &mut target,
            &json!([{"op": "add", "path": "/metadata/labels/b", "value": "2"}]),
        )
        .unwrap();
        assert_eq!(target["metadata"]["labels"]["b"], "2");
        let error = json(
            &mut target,
            &json!([{"op": "test", "path": "/metadata/labels/a", "value": "9"}]),
        )
        .unwrap_err();
        assert_eq!(error.code, 422);
        assert_eq!(
            json(&mut target, &json!({"op": "add"})).unwrap_err().code,
            400
        );
    }

    #[test]
    fn strategic_merges_containers_by_name() {
        let mut target = json!({"spec": {"template": {"spec": {
            "containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}],
            "tolerations": [{"key": "x"}]
        }}}});
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "a", "image": "a:2"}, {"name": "b", "$patch": "delete"}, {"name": "c", "image": "c:1"}],
            "tolerations": [{"key": "y"}]
        }}}});
        strategic(&mut target, &patch, ListTypes::new(None));
        assert_eq!(
            target,
            json!({"spec": {"template": {"spec": {
                "containers": [{"name": "a", "image": "a:2"}, {"name": "c", "image": "c:1"}],
                "tolerations": [{"key": "y"}]
            }}}})
        );
    }

    #[test]
    fn strategic_null_removes_and_finalizers_merge_as_a_set() {
        let mut target = json!({"metadata": {"finalizers": ["a"]}, "spec": {"holderIdentity": "x", "renewTime": "t"}});
        let patch = json!({
            "metadata": {"finalizers": ["b"], "$deleteFromPrimitiveList/finalizers": ["a"]},
            "spec": {"holderIdentity": null}
        });
        strategic(&mut target, &patch, ListTypes::new(None));
        assert_eq!(
            target,
            json!({"metadata": {"finalizers": ["b"]}, "spec": {"renewTime": "t"}})
        );
    }

    #[test]
    fn strategic_retain_keys_and_replace() {
        let mut target =
            json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}});
        strategic(
            &mut target,
            &json!({"strategy": {"$retainKeys": ["type"], "type": "OnDelete"}}),
            ListTypes::new(None),
        );
        assert_eq!(target, json!({"strategy": {"type": "OnDelete"}}));
        strategic(
            &mut target,
            &json!({"strategy": {"$patch": "replace", "type": "X"}}),
            ListTypes::new(None),
        );
        assert_eq!(target, json!({"strategy": {"type": "X"}}));
    }
}
