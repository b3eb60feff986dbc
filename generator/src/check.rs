//! `generator check-config`: judges GpuDiagnosticsConfig documents the way the API server and the
//! operator would, without a cluster — fields the CRD would prune, defaults applied, CEL rules
//! evaluated (kube's `cel` engine), then parsed into the operator's Rust type.
//!
//! Used by the chart tests on every `helm template` output; useful to anyone editing a config.

use kube::core::cel::{Validator, apply_defaults};
use serde::Deserialize;
use serde_json::Value;

/// One document that would not be accepted as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `metadata.name` of the config (or `document N` when it has none).
    pub config: String,
    /// What is wrong.
    pub problem: String,
}

/// The outcome of checking a stream of YAML documents.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// GpuDiagnosticsConfig documents checked (other kinds are skipped).
    pub checked: usize,
    /// Problems found.
    pub findings: Vec<Finding>,
}

/// Errors reading the input (as opposed to findings about a config).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Not YAML.
    #[error("document {index} is not valid YAML: {source}")]
    Yaml {
        /// 1-based document index.
        index: usize,
        /// Parser error.
        source: serde_yaml::Error,
    },
}

/// Checks every GpuDiagnosticsConfig in a multi-document YAML text.
pub fn check_documents(text: &str) -> Result<Report, CheckError> {
    let crd = serde_json::to_value(crds::crd()).expect("the CRD serializes");
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut report = Report::default();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value =
            serde_yaml::Value::deserialize(document).map_err(|source| CheckError::Yaml {
                index: index + 1,
                source,
            })?;
        let object: Value = serde_json::to_value(value).expect("YAML values convert to JSON");
        if object["kind"] != "GpuDiagnosticsConfig" {
            continue;
        }
        report.checked += 1;
        let config = object["metadata"]["name"]
            .as_str()
            .map_or_else(|| format!("document {}", index + 1), str::to_owned);
        let finding = |problem: String| Finding {
            config: config.clone(),
            problem,
        };
        let expected = format!("{}/{}", crds::GROUP, crds::VERSION);
        if object["apiVersion"] != expected.as_str() {
            report.findings.push(finding(format!(
                "apiVersion is {} but the CRD serves {expected}",
                object["apiVersion"]
            )));
        }
        for path in pruned_fields(schema, &object, "") {
            report.findings.push(finding(format!(
                "{path} is not in the CRD schema: the API server would drop it silently"
            )));
        }
        for (path, allowed) in enum_violations(schema, &object, "") {
            report.findings.push(finding(format!(
                "{path}: Unsupported value: the API server accepts only {allowed}"
            )));
        }
        let defaulted = default_like_apiserver(schema, &object);
        if let Err(errors) = Validator::new().validate(schema, &defaulted, None) {
            for error in errors.as_slice() {
                report.findings.push(finding(format!(
                    "CEL rule failed at {}: {}",
                    if error.field_path.is_empty() {
                        "the object"
                    } else {
                        &error.field_path
                    },
                    error.message
                )));
            }
        }
        if let Err(error) = serde_json::from_value::<crds::GpuDiagnosticsConfig>(defaulted) {
            report
                .findings
                .push(finding(format!("the operator cannot read it: {error}")));
        }
    }
    Ok(report)
}

/// Structural defaulting to a fixpoint: a default that was just filled in gets its own defaults,
/// as the API server does.
fn default_like_apiserver(schema: &Value, object: &Value) -> Value {
    let mut current = object.clone();
    loop {
        let next = apply_defaults(schema, &current);
        if next == current {
            return current;
        }
        current = next;
    }
}

/// Values outside their schema `enum`, with the path, the value and the allowed values, the way
/// the API server rejects them (`Unsupported value`).
fn enum_violations(schema: &Value, value: &Value, path: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        found.push((format!("{path} = {value}"), list.join(", ")));
    }
    match value {
        Value::Object(fields) => {
            for (key, child) in fields {
                if path.is_empty() && key == "metadata" {
                    continue;
                }
                let child_schema = schema["properties"]
                    .get(key)
                    .or_else(|| schema.get("additionalProperties"));
                if let Some(child_schema) = child_schema {
                    found.extend(enum_violations(
                        child_schema,
                        child,
                        &format!("{path}.{key}"),
                    ));
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                found.extend(enum_violations(
                    &schema["items"],
                    item,
                    &format!("{path}[{index}]"),
                ));
            }
        }
        _ => {}
    }
    found
}

/// Paths of fields the schema does not declare in objects it closes (what the API server would
/// prune). `metadata` is the API server's own and is not walked.
fn pruned_fields(schema: &Value, value: &Value, path: &str) -> Vec<String> {
    let mut found = Vec::new();
    match value {
        Value::Object(fields) => {
            if schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true) {
                return found;
            }
            for (key, child) in fields {
                let child_path = format!("{path}.{key}");
                if path.is_empty() && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(property) = schema["properties"].get(key) {
                    found.extend(pruned_fields(property, child, &child_path));
                } else if let Some(additional) = schema.get("additionalProperties") {
                    if additional.is_object() {
                        found.extend(pruned_fields(additional, child, &child_path));
                    }
                } else {
                    found.push(child_path);
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                found.extend(pruned_fields(
                    &schema["items"],
                    item,
                    &format!("{path}[{index}]"),
                ));
            }
        }
        _ => {}
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(spec: &str) -> String {
        format!(
            "apiVersion: gpu.k8s-mcp-agent.io/v1alpha1\nkind: GpuDiagnosticsConfig\nmetadata:\n  name: t\nspec:\n{spec}"
        )
    }

    #[test]
    fn an_empty_spec_and_other_kinds_pass() {
        let text = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x}}\n---\n{}",
            config("  {}\n")
        );
        assert_eq!(
            check_documents(&text).unwrap(),
            Report {
                checked: 1,
                findings: vec![]
            }
        );
    }

    #[test]
    fn cel_rules_unknown_fields_and_bad_enums_are_reported() {
        let report = check_documents(&config(
            "  gpu:\n    runtimeClass: {enabled: true}\n    resourceRequest: {enabled: true}\n    \
             colour: blue\n",
        ))
        .unwrap();
        let problems: Vec<&str> = report.findings.iter().map(|f| f.problem.as_str()).collect();
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(".spec.gpu.colour is not in the CRD schema")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("at most one of gpu.runtimeClass.enabled")),
            "{problems:?}"
        );
        let report = check_documents(&config("  gpu: {mode: Bogus}\n")).unwrap();
        assert!(
            report.findings[1]
                .problem
                .starts_with("the operator cannot read it: unknown variant `Bogus`"),
            "{:?}",
            report.findings
        );
    }

    #[test]
    fn a_value_outside_a_crd_enum_names_the_allowed_values() {
        let report =
            check_documents(&config("  gpu: {mode: auto}\n  agent: {logLevel: loud}\n")).unwrap();
        let problems: Vec<&str> = report.findings.iter().map(|f| f.problem.as_str()).collect();
        assert!(
            problems.contains(
                &".spec.gpu.mode = \"auto\": Unsupported value: the API server accepts only \
                  \"Auto\", \"RuntimeClass\", \"DevicePlugin\", \"DRA\""
            ),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(".spec.agent.logLevel = \"loud\": Unsupported value")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_free_form_claim_spec_is_not_pruned() {
        let report = check_documents(&config(
            "  gpu:\n    resourceClaim:\n      spec: {devices: {requests: [{name: gpu}]}}\n",
        ))
        .unwrap();
        assert_eq!(report.findings, vec![]);
    }
}
