//! Validation of custom resources against the CRD's OpenAPI schema, with the real server's messages.

use serde_json::Value;

/// A field that violates the CRD schema: `(path like spec.mode, message like the real server's)`.
pub type Violation = (String, String);

/// Checks `type`, `enum`, `required`, numeric bounds, string lengths and item counts of a custom
/// resource against its CRD schema (CEL rules and `pattern` are not evaluated).
pub fn validate(object: &Value, schema: &Value) -> Vec<Violation> {
    let mut violations = Vec::new();
    check(object, schema, "", &mut violations, true);
    violations
}

/// [`validate`] for an update, with validation ratcheting (`CRDValidationRatcheting`, on by default
/// since Kubernetes 1.30): a violation at a field whose value the update did not change is let through,
/// so a status write or a label change does not fail on a spec a tightened schema no longer accepts.
pub fn validate_update(object: &Value, old: &Value, schema: &Value) -> Vec<Violation> {
    validate(object, schema)
        .into_iter()
        .filter(|(path, _)| {
            let pointer = pointer_of(path);
            let (new, old) = (object.pointer(&pointer), old.pointer(&pointer));
            new.is_none() || new != old
        })
        .collect()
}

/// `spec.items[0].name` → `/spec/items/0/name`.
fn pointer_of(path: &str) -> String {
    let mut pointer = String::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut pieces = part.split('[');
        if let Some(key) = pieces.next().filter(|k| !k.is_empty()) {
            pointer.push('/');
            pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
        }
        for index in pieces {
            pointer.push('/');
            pointer.push_str(index.trim_end_matches(']'));
        }
    }
    pointer
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn check(value: &Value, schema: &Value, path: &str, violations: &mut Vec<Violation>, root: bool) {
    if value.is_null() {
        return;
    }
    let shown = || {
        if let Value::String(s) = value {
            format!("\"{s}\"")
        } else {
            value.to_string()
        }
    };
    let int_or_string = schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    if let Some(wanted) = schema.get("type").and_then(Value::as_str) {
        let actual = type_name(value);
        let fits = actual == wanted
            || (wanted == "number" && actual == "integer")
            || (int_or_string && matches!(actual, "integer" | "string"));
        if !fits {
            violations.push((path.to_string(), format!("Invalid value: \"{actual}\": {path} in body must be of type {wanted}: \"{actual}\"")));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed
            .iter()
            .map(|v| {
                if let Value::String(s) = v {
                    format!("\"{s}\"")
                } else {
                    v.to_string()
                }
            })
            .collect();
        violations.push((
            path.to_string(),
            format!(
                "Unsupported value: {}: supported values: {}",
                shown(),
                list.join(", ")
            ),
        ));
    }
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    if let Some(number) = value.as_f64() {
        if let Some(minimum) = bound("minimum").filter(|m| number < *m) {
            violations.push((path.to_string(), format!("Invalid value: {}: {path} in body should be greater than or equal to {minimum}", shown())));
        }
        if let Some(maximum) = bound("maximum").filter(|m| number > *m) {
            violations.push((
                path.to_string(),
                format!(
                    "Invalid value: {}: {path} in body should be less than or equal to {maximum}",
                    shown()
                ),
            ));
        }
    }
    let length = match value {
        Value::String(s) => Some(("chars", s.chars().count() as f64, "minLength", "maxLength")),
        Value::Array(items) => Some(("items", items.len() as f64, "minItems", "maxItems")),
        _ => None,
    };
    if let Some((unit, count, min_key, max_key)) = length {
        if let Some(min) = bound(min_key).filter(|m| count < *m) {
            violations.push((
                path.to_string(),
                format!(
                    "Invalid value: {}: {path} in body should have at least {min} {unit}",
                    shown()
                ),
            ));
        }
        if let Some(max) = bound(max_key).filter(|m| count > *m) {
            violations.push((
                path.to_string(),
                format!("Too long: may not be more than {max} {unit}"),
            ));
        }
    }
    let child = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::Object(map) => {
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !map.contains_key(required) {
                    violations.push((child(required), "Required value".to_string()));
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for key in keys {
                if root && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(child_schema) = properties.and_then(|p| p.get(key)).or(additional) {
                    check(&map[key], child_schema, &child(key), violations, false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    check(
                        item,
                        item_schema,
                        &format!("{path}[{index}]"),
                        violations,
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

    #[test]
    fn updates_ratchet_unchanged_violations() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "mode": {"type": "string", "enum": ["Auto", "RuntimeClass"]},
            "items": {"type": "array", "items": {"type": "integer"}}}}}});
        let old = json!({"spec": {"mode": "Quantum", "items": [1, "x"]}});
        assert_eq!(validate(&old, &schema).len(), 2);
        let status_only =
            json!({"spec": {"mode": "Quantum", "items": [1, "x"]}, "status": {"ok": true}});
        assert_eq!(
            validate_update(&status_only, &old, &schema),
            Vec::<Violation>::new()
        );
        let changed = json!({"spec": {"mode": "Warp", "items": [1, "x"]}});
        let violations = validate_update(&changed, &old, &schema);
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].0, "spec.mode");
        assert_eq!(pointer_of("spec.items[1]"), "/spec/items/1");
    }

    #[test]
    fn validation_reads_like_the_real_server() {
        let schema = json!({"type": "object", "required": ["spec"], "properties": {
            "spec": {"type": "object", "required": ["mode"], "properties": {
                "mode": {"type": "string", "enum": ["Auto", "RuntimeClass"]},
                "replicas": {"type": "integer", "minimum": 0, "maximum": 3},
                "port": {"x-kubernetes-int-or-string": true},
                "ratio": {"type": "number"},
                "name": {"type": "string", "maxLength": 3},
                "items": {"type": "array", "items": {"type": "string"}}
            }}
        }});
        let ok = json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"},
            "spec": {"mode": "Auto", "replicas": 2, "port": "http", "ratio": 1, "name": "abc", "items": ["a"]}});
        assert_eq!(validate(&ok, &schema), Vec::<Violation>::new());
        let bad = json!({"spec": {"mode": "Foo", "replicas": 9, "port": true, "name": "abcd", "items": [1]}});
        let found = validate(&bad, &schema);
        let expected: Vec<Violation> = vec![
            ("spec.items[0]".into(), "Invalid value: \"integer\": spec.items[0] in body must be of type string: \"integer\"".into()),
            ("spec.mode".into(), "Unsupported value: \"Foo\": supported values: \"Auto\", \"RuntimeClass\"".into()),
            ("spec.name".into(), "Too long: may not be more than 3 chars".into()),
            ("spec.replicas".into(), "Invalid value: 9: spec.replicas in body should be less than or equal to 3".into()),
        ];
        assert_eq!(found, expected);
        assert_eq!(
            validate(&json!({}), &schema),
            vec![("spec".to_string(), "Required value".to_string())]
        );
        assert_eq!(
            validate(&json!({"spec": {}}), &schema),
            vec![("spec.mode".to_string(), "Required value".to_string())]
        );
    }
}
