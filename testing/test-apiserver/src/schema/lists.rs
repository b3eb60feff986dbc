//! List semantics: from a CRD's `x-kubernetes-list-type` markers, or from a table of the built-in
//! types' `patchMergeKey` / list-map keys.

use serde_json::{Map, Value};

/// How a list merges and how its elements are owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    /// Replaced as a whole; owned as one field.
    Atomic,
    /// Scalars merged as a set.
    Set,
    /// Objects merged by these key fields.
    Map(Vec<String>),
}

/// List semantics of one resource: from the CRD schema when there is one, else from a table of the
/// built-in types' `x-kubernetes-list-type` / `patchMergeKey` markers.
#[derive(Debug, Clone, Copy)]
pub struct ListTypes<'a> {
    schema: Option<&'a Value>,
}

impl<'a> ListTypes<'a> {
    /// List semantics from an optional CRD `openAPIV3Schema`.
    pub fn new(schema: Option<&'a Value>) -> Self {
        Self { schema }
    }

    /// The kind of the list at `path` (field names from the root; list elements are not in the path).
    pub fn at(&self, path: &[&str]) -> ListKind {
        if let Some(schema) = self.schema
            && path.first() != Some(&"metadata")
        {
            return schema_at(schema, path)
                .map(list_kind_of_schema)
                .unwrap_or(ListKind::Atomic);
        }
        builtin_list_kind(path)
    }
}

fn schema_at<'s>(schema: &'s Value, path: &[&str]) -> Option<&'s Value> {
    let mut current = schema;
    for field in path {
        // Skip through list items to the element schema.
        while current.get("type").and_then(Value::as_str) == Some("array") {
            current = current.get("items")?;
        }
        current = match current.get("properties").and_then(|p| p.get(*field)) {
            Some(s) => s,
            None => current
                .get("additionalProperties")
                .filter(|a| a.is_object())?,
        };
    }
    Some(current)
}

fn list_kind_of_schema(schema: &Value) -> ListKind {
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("map") => ListKind::Map(
            schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|keys| {
                    keys.iter()
                        .filter_map(|k| k.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        Some("set") => ListKind::Set,
        _ => ListKind::Atomic,
    }
}

fn builtin_list_kind(path: &[&str]) -> ListKind {
    let keys = |k: &[&str]| ListKind::Map(k.iter().map(|s| s.to_string()).collect());
    match path {
        ["metadata", "finalizers"] | ["spec", "finalizers"] => ListKind::Set,
        ["metadata", "ownerReferences"] => keys(&["uid"]),
        ["spec", "ports"] => keys(&["port", "protocol"]),
        [.., "containers" | "initContainers" | "ephemeralContainers"] => keys(&["name"]),
        [
            ..,
            "env" | "volumes" | "imagePullSecrets" | "resourceClaims" | "claims",
        ] => keys(&["name"]),
        [.., "ports"] => keys(&["containerPort", "protocol"]),
        [.., "volumeMounts"] => keys(&["mountPath"]),
        [.., "volumeDevices"] => keys(&["devicePath"]),
        [.., "conditions"] => keys(&["type"]),
        [.., "topologySpreadConstraints"] => keys(&["topologyKey", "whenUnsatisfiable"]),
        [.., "hostAliases"] => keys(&["ip"]),
        _ => ListKind::Atomic,
    }
}

/// The key of a list-map element: the key fields it has, as canonical JSON (`{"name":"a"}`).
pub fn element_key(element: &Value, keys: &[String]) -> Option<String> {
    let object = element.as_object()?;
    let key: Map<String, Value> = keys
        .iter()
        .filter_map(|k| object.get(k).map(|v| (k.clone(), v.clone())))
        .collect();
    if key.is_empty() {
        None
    } else {
        Some(Value::Object(key).to_string())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "mode": {"type": "string", "default": "Auto"},
                        "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"}},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "note": {"type": "string", "nullable": true},
                        "tolerations": {"type": "array", "items": {"type": "object", "properties": {"key": {"type": "string"}}}}
                    }
                },
                "status": {
                    "type": "object",
                    "properties": {
                        "conditions": {
                            "type": "array",
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["type"],
                            "items": {"type": "object", "properties": {"type": {"type": "string"}}}
                        },
                        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}
                    }
                }
            }
        })
    }

    #[test]
    fn list_kinds_come_from_the_crd_schema() {
        let schema = schema();
        let types = ListTypes::new(Some(&schema));
        assert_eq!(
            types.at(&["status", "conditions"]),
            ListKind::Map(vec!["type".into()])
        );
        assert_eq!(types.at(&["status", "tags"]), ListKind::Set);
        assert_eq!(types.at(&["spec", "tolerations"]), ListKind::Atomic);
        assert_eq!(types.at(&["metadata", "finalizers"]), ListKind::Set);
    }

    #[test]
    fn built_in_list_kinds() {
        let types = ListTypes::new(None);
        let containers = ["spec", "template", "spec", "containers"];
        assert_eq!(types.at(&containers), ListKind::Map(vec!["name".into()]));
        assert_eq!(
            types.at(&["spec", "template", "spec", "containers", "ports"]),
            ListKind::Map(vec!["containerPort".into(), "protocol".into()])
        );
        assert_eq!(
            types.at(&["spec", "template", "spec", "tolerations"]),
            ListKind::Atomic
        );
        assert_eq!(
            types.at(&["metadata", "ownerReferences"]),
            ListKind::Map(vec!["uid".into()])
        );
    }

    #[test]
    fn element_keys_are_canonical_json() {
        let keys = vec!["containerPort".to_string(), "protocol".to_string()];
        assert_eq!(
            element_key(
                &json!({"protocol": "TCP", "containerPort": 80, "name": "http"}),
                &keys
            )
            .as_deref(),
            Some(r#"{"containerPort":80,"protocol":"TCP"}"#)
        );
        assert_eq!(element_key(&json!({"name": "x"}), &keys), None);
    }
}
