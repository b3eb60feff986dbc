//! The chart's values as a tree of documented keys: built once from the defaults (in declaration
//! order) and the structural schema (descriptions, types), then written out as `values.yaml`
//! and as the README table.

use serde_json::Value as Json;
use serde_yaml::{Mapping, Value as Yaml};

/// One key of the values.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A key whose children are documented one by one (`gpu`, `operator.metrics`, …).
    Section {
        /// The key.
        key: String,
        /// Its doc comment.
        description: String,
        /// Its keys, in declaration order.
        children: Vec<Node>,
    },
    /// A key whose value is written as a whole (scalars, lists, maps, Kubernetes types).
    Leaf {
        /// The key.
        key: String,
        /// Its doc comment.
        description: String,
        /// Its schema (structural form).
        schema: Json,
        /// Its default; `None` for a key that is unset by default (optional flags).
        default: Option<Yaml>,
    },
}

impl Node {
    /// The key of this node.
    pub fn key(&self) -> &str {
        match self {
            Node::Section { key, .. } | Node::Leaf { key, .. } => key,
        }
    }
}

/// Errors building the tree: the defaults and the schema disagree (a bug in the types).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    /// A default names a key the schema does not have.
    #[error("default key {0} has no schema: the Rust type and its schema disagree")]
    NoSchema(String),
    /// The defaults are not a mapping of string keys.
    #[error("defaults at {0} are not a mapping of string keys")]
    NotAMapping(String),
}

/// Builds the documented keys of an object from its default value (key order kept) and its
/// structural schema. Keys the schema declares but the defaults leave unset come first, in
/// schema order: they are the optional flags (`enabled`) the Rust types declare first.
pub fn build(path: &str, defaults: &Yaml, schema: &Json) -> Result<Vec<Node>, ModelError> {
    let Yaml::Mapping(defaults) = defaults else {
        return Err(ModelError::NotAMapping(display_path(path)));
    };
    let empty = serde_json::Map::new();
    let properties = schema["properties"].as_object().unwrap_or(&empty);
    let mut nodes = Vec::new();
    for (key, property) in properties {
        if !defaults.contains_key(key.as_str()) {
            nodes.push(Node::Leaf {
                key: key.clone(),
                description: description(property),
                schema: property.clone(),
                default: None,
            });
        }
    }
    for (key, value) in defaults {
        let Yaml::String(key) = key else {
            return Err(ModelError::NotAMapping(display_path(path)));
        };
        let child_path = join(path, key);
        let property = properties
            .get(key)
            .ok_or_else(|| ModelError::NoSchema(child_path.clone()))?;
        nodes.push(if is_section(property, value) {
            Node::Section {
                key: key.clone(),
                description: description(property),
                children: build(&child_path, value, property)?,
            }
        } else {
            Node::Leaf {
                key: key.clone(),
                description: description(property),
                schema: property.clone(),
                default: Some(value.clone()),
            }
        });
    }
    Ok(nodes)
}

/// A section is an object of ours: every property carries a default or is optional. Kubernetes
/// types (securityContext, resources, …) carry no defaults below their root and stay leaves.
fn is_section(schema: &Json, default: &Yaml) -> bool {
    let Some(properties) = schema["properties"].as_object() else {
        return false;
    };
    matches!(default, Yaml::Mapping(m) if !m.is_empty())
        && properties
            .values()
            .all(|p| p.get("default").is_some() || p["nullable"] == Json::Bool(true))
}

fn description(schema: &Json) -> String {
    schema["description"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// `parent.key`, or `key` at the top.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        "the top level".into()
    } else {
        path.to_owned()
    }
}

/// Every leaf with its dotted path, in document order.
pub fn leaves(nodes: &[Node]) -> Vec<(String, &Node)> {
    fn walk<'a>(prefix: &str, nodes: &'a [Node], out: &mut Vec<(String, &'a Node)>) {
        for node in nodes {
            let path = join(prefix, node.key());
            match node {
                Node::Section { children, .. } => walk(&path, children, out),
                Node::Leaf { .. } => out.push((path, node)),
            }
        }
    }
    let mut out = Vec::new();
    walk("", nodes, &mut out);
    out
}

/// The default values of a tree, as Helm will see them after reading `values.yaml`.
pub fn defaults(nodes: &[Node]) -> Yaml {
    let mut mapping = Mapping::new();
    for node in nodes {
        match node {
            Node::Section { key, children, .. } => {
                mapping.insert(Yaml::String(key.clone()), defaults(children));
            }
            Node::Leaf {
                key,
                default: Some(value),
                ..
            } => {
                mapping.insert(Yaml::String(key.clone()), value.clone());
            }
            Node::Leaf { default: None, .. } => {}
        }
    }
    Yaml::Mapping(mapping)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn yaml(text: &str) -> Yaml {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn our_objects_are_sections_and_kubernetes_types_are_leaves() {
        let schema = json!({"properties": {
            "gpu": {"description": "GPU.", "properties": {
                "enabled": {"type": "boolean", "nullable": true, "description": "Flag."},
                "mode": {"type": "string", "default": "Auto", "description": "Mode."},
            }},
            "securityContext": {"description": "SC.", "properties": {
                "runAsUser": {"type": "integer"},
            }},
        }});
        let nodes = build(
            "",
            &yaml("gpu: {mode: Auto}\nsecurityContext: {runAsUser: 0}"),
            &schema,
        )
        .unwrap();
        let paths: Vec<String> = leaves(&nodes).into_iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["gpu.enabled", "gpu.mode", "securityContext"]);
        assert_eq!(
            defaults(&nodes),
            yaml("gpu: {mode: Auto}\nsecurityContext: {runAsUser: 0}")
        );
    }

    #[test]
    fn a_default_without_schema_is_a_bug_named_by_path() {
        let schema = json!({"properties": {
            "gpu": {"properties": {"other": {"default": 1}}}
        }});
        let error = build("", &yaml("gpu: {mode: Auto}"), &schema).unwrap_err();
        assert_eq!(error, ModelError::NoSchema("gpu.mode".into()));
        let error = build("", &yaml("nope: 1"), &json!({"properties": {}})).unwrap_err();
        assert_eq!(error, ModelError::NoSchema("nope".into()));
    }
}
