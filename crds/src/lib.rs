//! The `GpuDiagnosticsConfig` API (group `gpu.k8s-mcp-agent.io`, version `v1alpha1`): the one place
//! its shape, defaults and validation rules are written down.
//!
//! The operator reads these types, and the generator derives from them the committed CRD
//! YAML and the Helm chart's `values.yaml` / `values.schema.json`; the spec's serde form is exactly
//! the chart's configuration keys (`gpu`, `namespace`, `image`, ...). No I/O lives here.

#![warn(missing_docs)]

mod rules;
mod spec;
mod status;

pub use rules::CEL_RULES;
pub use spec::*;
pub use status::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSON, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;

/// API group of every kind this project defines.
pub const GROUP: &str = "gpu.k8s-mcp-agent.io";
/// The served (and stored) version of `GpuDiagnosticsConfig`.
pub const VERSION: &str = "v1alpha1";
/// `metadata.name` of the CustomResourceDefinition, for `kubectl get crd` and start-up checks.
pub const CRD_NAME: &str = "gpudiagnosticsconfigs.gpu.k8s-mcp-agent.io";
/// Longest accepted config name: object names are `k8s-mcp-agent-<name>` and must stay valid label
/// values (63 characters).
pub const MAX_CONFIG_NAME_LEN: usize = 49;

/// The CustomResourceDefinition to install: the derived one, adjusted so that `spec` itself may be
/// omitted (it defaults to `{}` and every field below it has its own default), with doc-comment
/// line wraps removed from descriptions (`kubectl explain` re-wraps them).
pub fn crd() -> CustomResourceDefinition {
    let mut crd = GpuDiagnosticsConfig::crd();
    for version in &mut crd.spec.versions {
        if let Some(root) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            unwrap_descriptions(root);
        }
        let Some(root) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        if let Some(required) = root.required.as_mut() {
            required.retain(|field| field != "spec");
            if required.is_empty() {
                root.required = None;
            }
        }
        if let Some(spec) = root
            .properties
            .as_mut()
            .and_then(|props| props.get_mut("spec"))
        {
            set_empty_object_default(spec);
        }
    }
    crd
}

fn set_empty_object_default(schema: &mut JSONSchemaProps) {
    schema.default = Some(JSON(serde_json::json!({})));
}

/// Joins lines a doc comment wrapped (single newlines) while keeping paragraph breaks.
fn unwrap_descriptions(schema: &mut JSONSchemaProps) {
    if let Some(description) = schema.description.as_mut() {
        *description = description
            .split("\n\n")
            .map(|paragraph| {
                paragraph
                    .split('\n')
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n\n");
    }
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        unwrap_descriptions(child);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = schema.items.as_mut() {
        unwrap_descriptions(items);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(additional)) = schema.additional_properties.as_mut() {
        unwrap_descriptions(additional);
    }
}
