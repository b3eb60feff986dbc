//! JSON Schemas for tool inputs and outputs, shaped for the widest range of MCP hosts: self-contained
//! (no `$ref`), no `"$schema"` line (2020-12 is the MCP default dialect), no `type: [T, "null"]`
//! unions (some hosts reject them), no non-standard `format`s, and closed input objects.

use std::sync::Arc;

use rmcp::model::JsonObject;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::Value;

/// The input schema of a tool taking `T` as its arguments object.
pub fn input_schema<T: JsonSchema>() -> Arc<JsonObject> {
    let mut settings = SchemaSettings::draft2020_12().for_deserialize();
    settings.inline_subschemas = true;
    finish(
        settings.into_generator().into_root_schema_for::<T>().into(),
        true,
    )
}

/// The output schema of a tool returning `T` as its `structuredContent`.
pub fn output_schema<T: JsonSchema>() -> Arc<JsonObject> {
    let mut settings = SchemaSettings::draft2020_12().for_serialize();
    settings.inline_subschemas = true;
    finish(
        settings.into_generator().into_root_schema_for::<T>().into(),
        false,
    )
}

fn finish(schema: Value, closed: bool) -> Arc<JsonObject> {
    let mut schema = schema;
    if let Value::Object(root) = &mut schema {
        root.remove("$schema");
        root.remove("title");
        // The root's doc comment describes the Rust type, not anything a host should show.
        root.remove("description");
    }
    simplify(&mut schema, closed);
    match schema {
        Value::Object(obj) => Arc::new(obj),
        // Every tool type is a struct; anything else is a programming error caught by the schema tests.
        other => Arc::new(JsonObject::from_iter([("type".to_string(), other)])),
    }
}

/// Standard `format` values worth keeping; schemars' numeric formats (`uint32`, `double`, …) are not.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "uri",
    "uuid",
    "email",
];

fn simplify(v: &mut Value, closed: bool) {
    match v {
        Value::Object(obj) => {
            // `type: ["integer", "null"]` → `type: "integer"`.
            if let Some(Value::Array(types)) = obj.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    obj.insert("type".into(), only);
                }
            }
            // `anyOf: [{…}, {"type": "null"}]` → the non-null branch, merged in place.
            for key in ["anyOf", "oneOf"] {
                if let Some(Value::Array(branches)) = obj.get_mut(key) {
                    branches.retain(|b| b.get("type") != Some(&Value::String("null".into())));
                    if branches.len() == 1 {
                        let Some(Value::Object(branch)) = branches.pop() else {
                            continue;
                        };
                        obj.remove(key);
                        for (k, val) in branch {
                            obj.entry(k).or_insert(val);
                        }
                    }
                }
            }
            // Doc comments wrap lines; a description is one paragraph.
            if let Some(Value::String(d)) = obj.get_mut("description") {
                *d = unwrap_lines(d);
            }
            if let Some(Value::Array(values)) = obj.get_mut("enum") {
                values.retain(|e| !e.is_null());
            }
            if obj.get("default").is_some_and(Value::is_null) {
                obj.remove("default");
            }
            if let Some(Value::String(f)) = obj.get("format")
                && !STANDARD_FORMATS.contains(&f.as_str())
            {
                obj.remove("format");
            }
            if closed
                && obj.get("type") == Some(&Value::String("object".into()))
                && !obj.contains_key("additionalProperties")
            {
                obj.insert("additionalProperties".into(), Value::Bool(false));
            }
            for (_, child) in obj.iter_mut() {
                simplify(child, closed);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| simplify(i, closed)),
        _ => {}
    }
}

/// Joins lines wrapped inside a paragraph; keeps blank-line paragraph breaks.
fn unwrap_lines(text: &str) -> String {
    text.split("\n\n")
        .map(|para| {
            para.split('\n')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Args {
        /// Which GPU.
        gpu_index: Option<u32>,
        nested: Option<Inner>,
    }

    #[derive(Deserialize, Serialize, JsonSchema)]
    #[allow(dead_code)]
    struct Inner {
        a: u64,
    }

    #[derive(Serialize, JsonSchema)]
    #[allow(dead_code)]
    struct Out {
        #[serde(skip_serializing_if = "Option::is_none")]
        watts: Option<f64>,
        inner: Vec<Inner>,
    }

    fn text(s: &JsonObject) -> String {
        serde_json::to_string(s).unwrap()
    }

    #[test]
    fn inputs_have_no_null_unions_refs_or_schema_line_and_are_closed() {
        let s = input_schema::<Args>();
        let t = text(&s);
        assert!(!t.contains("null"), "{t}");
        assert!(!t.contains("$ref") && !t.contains("$defs"), "{t}");
        assert!(!t.contains("$schema") && !t.contains("uint32"), "{t}");
        assert_eq!(s["type"], "object");
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["properties"]["gpu_index"]["type"], "integer");
        assert_eq!(s["properties"]["gpu_index"]["description"], "Which GPU.");
        assert_eq!(s["properties"]["nested"]["additionalProperties"], false);
        assert!(
            s.get("required")
                .is_none_or(|r| r.as_array().unwrap().is_empty())
        );
    }

    #[test]
    fn outputs_keep_optional_fields_optional() {
        let s = output_schema::<Out>();
        let t = text(&s);
        assert!(!t.contains("null") && !t.contains("$ref"), "{t}");
        assert_eq!(s["properties"]["watts"]["type"], "number");
        let required: Vec<&str> = s["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(required, vec!["inner"]);
    }
}
