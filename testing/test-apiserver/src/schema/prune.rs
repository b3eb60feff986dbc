//! Structural pruning and defaulting of custom resources, as the real server does on every write.

use serde_json::Value;

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
}
