//! What a resource's schema says about its fields: list semantics (map keyed by fields, set, atomic)
//! for server-side apply and strategic merge patch, and, for CRDs, structural pruning and defaulting —
//! so a field the CRD does not declare vanishes here just as it does on a real cluster.

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

/// Fields removed by pruning, as dotted paths.
pub type Pruned = Vec<String>;

/// Prunes fields the CRD schema does not declare (and `null`s of non-nullable fields), then fills
/// declared defaults, as the real server does on every write of a custom resource.
pub fn prune_and_default(object: &mut Value, schema: &Value) -> Pruned {
    let mut pruned = Vec::new();
    walk(object, schema, "", &mut pruned, true);
    pruned
}

fn walk(value: &mut Value, schema: &Value, path: &str, pruned: &mut Pruned, root: bool) {
    let preserve = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let embedded = schema.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true));
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let mut keys: Vec<String> = map.keys().cloned().collect();
            keys.sort();
            for key in keys {
                let child_path = format!("{path}.{key}");
                let child_schema = properties
                    .and_then(|p| p.get(&key))
                    .or(additional.filter(|a| a.is_object()));
                let keep_unknown = preserve
                    || additional == Some(&Value::Bool(true))
                    || ((root || embedded)
                        && matches!(key.as_str(), "apiVersion" | "kind" | "metadata"));
                match child_schema {
                    Some(child_schema) => {
                        let child = map.get_mut(&key).expect("key comes from the map");
                        if child.is_null()
                            && child_schema.get("nullable") != Some(&Value::Bool(true))
                        {
                            map.remove(&key);
                            continue;
                        }
                        walk(child, child_schema, &child_path, pruned, false);
                    }
                    None if keep_unknown => {}
                    None => {
                        map.remove(&key);
                        pruned.push(child_path);
                    }
                }
            }
            if let Some(properties) = properties {
                for (key, property) in properties {
                    if let Some(default) = property.get("default")
                        && !map.contains_key(key)
                    {
                        let mut default = default.clone();
                        walk(
                            &mut default,
                            property,
                            &format!("{path}.{key}"),
                            pruned,
                            false,
                        );
                        map.insert(key.clone(), default);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter_mut().enumerate() {
                    walk(
                        item,
                        item_schema,
                        &format!("{path}[{index}]"),
                        pruned,
                        false,
                    );
                }
            }
        }
        _ => {}
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
    fn prunes_undeclared_fields_and_fills_defaults() {
        let mut object = json!({
            "apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"},
            "spec": {
                "nodeSelector": {"gpu": "true"},
                "extra": {"anything": {"goes": 1}},
                "unknown": 1,
                "note": null,
                "tolerations": [{"key": "k", "effect": "NoSchedule"}]
            },
            "status": {"observedGeneration": null, "conditions": []},
            "junk": true
        });
        let pruned = prune_and_default(&mut object, &schema());
        assert_eq!(
            pruned,
            [
                ".junk",
                ".spec.tolerations[0].effect",
                ".spec.unknown",
                ".status.observedGeneration"
            ]
        );
        assert_eq!(object["spec"]["mode"], "Auto");
        assert_eq!(object["spec"]["nodeSelector"]["gpu"], "true");
        assert_eq!(object["spec"]["extra"]["anything"]["goes"], 1);
        assert_eq!(object["spec"]["note"], Value::Null);
        assert!(object["status"].get("observedGeneration").is_none());
        assert_eq!(object["metadata"]["name"], "a");
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
