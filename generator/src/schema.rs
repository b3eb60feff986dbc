//! Kubernetes structural schemas (OpenAPI v3 as CRDs write them) → JSON Schema draft-07, the
//! newest draft Helm 3.17 validates `values.schema.json` with (Helm 4 enforces it as well).
//!
//! The API server prunes fields a schema does not declare; Helm cannot prune, so every object
//! that the CRD closes gets `additionalProperties: false` and an unknown key fails `helm install`
//! instead of vanishing. CEL rules (`x-kubernetes-validations`) have no draft-07 equivalent and
//! are left to the API server (and to `generator check-config`).

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

/// The draft-07 meta-schema URI written at the top of `values.schema.json`.
pub const DRAFT_07: &str = "http://json-schema.org/draft-07/schema#";

/// Formats draft-07 defines; OpenAPI's `int32`, `int64`, `double`, `byte` … are dropped (they
/// only restate `type`, and a validator may reject formats it does not know).
const DRAFT_07_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Keywords copied as they are (both dialects mean the same by them).
const SAME_IN_BOTH: &[&str] = &[
    "description",
    "default",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "required",
    "title",
];

/// The schema kube's `#[derive(CustomResource)]` would produce for `T` (inlined, structural,
/// `nullable` for options): the chart's own values go through the same conversion as the CRD.
pub fn structural_schema_for<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::openapi3()
        .with(|settings| {
            settings.inline_subschemas = true;
            settings.meta_schema = None;
        })
        .with_transform(schemars::transform::AddNullable::default())
        .with_transform(kube::core::schema::StructuralSchemaRewriter)
        .with_transform(kube::core::schema::OptionalEnum)
        .with_transform(kube::core::schema::OptionalIntOrString)
        .into_generator();
    let mut schema = serde_json::to_value(generator.into_root_schema_for::<T>())
        .expect("a schemars schema is JSON");
    if let Some(root) = schema.as_object_mut() {
        root.remove("title");
    }
    schema
}

/// Converts one structural schema node (and everything under it) to draft-07.
pub fn to_draft07(node: &Value) -> Value {
    let Some(source) = node.as_object() else {
        return node.clone();
    };
    let mut out = Map::new();
    for key in SAME_IN_BOTH {
        if let Some(value) = source.get(*key) {
            out.insert((*key).to_owned(), value.clone());
        }
    }
    for key in ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"] {
        if let Some(value) = source.get(key) {
            out.insert(key.to_owned(), integral(value));
        }
    }
    if let Some(format) = source.get("format").and_then(Value::as_str)
        && DRAFT_07_FORMATS.contains(&format)
    {
        out.insert("format".into(), json!(format));
    }

    let nullable = source.get("nullable") == Some(&Value::Bool(true));
    let int_or_string = source.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let preserve_unknown =
        source.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));

    if int_or_string {
        let mut choices = vec![json!({"type": "integer"}), json!({"type": "string"})];
        if nullable {
            choices.push(json!({"type": "null"}));
        }
        out.insert("anyOf".into(), Value::Array(choices));
    } else if let Some(kind) = source.get("type") {
        let kind = match (kind, nullable) {
            (Value::String(kind), true) => json!([kind, "null"]),
            (kind, _) => kind.clone(),
        };
        out.insert("type".into(), kind);
    }
    if nullable && let Some(Value::Array(values)) = out.get_mut("enum") {
        values.push(Value::Null);
    }

    if let Some(Value::Object(properties)) = source.get("properties") {
        let converted: Map<String, Value> = properties
            .iter()
            .map(|(name, schema)| (name.clone(), to_draft07(schema)))
            .collect();
        out.insert("properties".into(), Value::Object(converted));
    }
    match source.get("additionalProperties") {
        Some(Value::Object(_)) => {
            let schema = &source["additionalProperties"];
            out.insert("additionalProperties".into(), to_draft07(schema));
        }
        Some(Value::Bool(allowed)) => {
            out.insert("additionalProperties".into(), json!(allowed));
        }
        _ if is_object(source) && !preserve_unknown => {
            // A structural object without preserve-unknown-fields is closed: the API server
            // prunes anything else.
            out.insert("additionalProperties".into(), json!(false));
        }
        _ => {}
    }
    if let Some(items) = source.get("items") {
        out.insert("items".into(), to_draft07(items));
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let (Some(Value::Array(branches)), false) = (source.get(key), int_or_string) {
            let branches = branches.iter().map(to_draft07).collect();
            out.insert(key.to_owned(), Value::Array(branches));
        }
    }
    if let Some(not) = source.get("not") {
        out.insert("not".into(), to_draft07(not));
    }
    Value::Object(out)
}

fn is_object(schema: &Map<String, Value>) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("object")
}

/// `1.0` → `1`: schemars writes ranges as floats; draft-07 validators accept either, people
/// read integers better.
fn integral(value: &Value) -> Value {
    match value.as_f64() {
        Some(number) if number.fract() == 0.0 && number.abs() < 9.0e15 => json!(number as i64),
        _ => value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_objects_refuse_unknown_keys_and_open_ones_keep_them() {
        let converted = to_draft07(&json!({
            "type": "object",
            "properties": {
                "closed": {"type": "object", "properties": {"a": {"type": "string"}}},
                "open": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "map": {"type": "object", "additionalProperties": {"type": "string"}},
            }
        }));
        assert_eq!(converted["additionalProperties"], json!(false));
        assert_eq!(
            converted["properties"]["closed"]["additionalProperties"],
            json!(false)
        );
        assert_eq!(
            converted["properties"]["open"].get("additionalProperties"),
            None
        );
        assert_eq!(
            converted["properties"]["map"]["additionalProperties"],
            json!({"type": "string"})
        );
    }

    #[test]
    fn nullable_becomes_a_null_type_and_int_or_string_two_types() {
        assert_eq!(
            to_draft07(&json!({"type": "boolean", "nullable": true})),
            json!({"type": ["boolean", "null"]})
        );
        assert_eq!(
            to_draft07(&json!({"x-kubernetes-int-or-string": true, "nullable": true})),
            json!({"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]})
        );
        assert_eq!(
            to_draft07(&json!({"type": "string", "enum": ["a"], "nullable": true})),
            json!({"type": ["string", "null"], "enum": ["a", null]})
        );
    }

    #[test]
    fn kubernetes_extensions_and_openapi_formats_are_dropped() {
        let converted = to_draft07(&json!({
            "type": "integer",
            "format": "int32",
            "minimum": 1.0,
            "x-kubernetes-validations": [{"rule": "self > 0"}],
            "description": "kept",
        }));
        assert_eq!(
            converted,
            json!({"type": "integer", "minimum": 1, "description": "kept"})
        );
        assert_eq!(
            to_draft07(&json!({"type": "string", "format": "date-time"}))["format"],
            "date-time"
        );
    }
}
