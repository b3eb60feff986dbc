//! Writing the values tree out: `values.yaml` with each key's doc comment above it, and the
//! Markdown table of every key for the READMEs.

use serde_json::Value as Json;
use serde_yaml::{Mapping, Value as Yaml};

use crate::model::{Node, leaves};

/// Longest line of a `values.yaml` comment.
const COMMENT_WIDTH: usize = 100;

/// The body of `values.yaml` for `nodes` (no header), top-level keys separated by blank lines.
pub fn values_yaml(nodes: &[Node]) -> String {
    let mut out = String::new();
    for node in nodes {
        out.push('\n');
        write_node(&mut out, node, 0);
    }
    out
}

fn write_node(out: &mut String, node: &Node, indent: usize) {
    let pad = " ".repeat(indent);
    match node {
        Node::Section {
            key,
            description,
            children,
        } => {
            write_comment(out, description, indent);
            out.push_str(&format!("{pad}{key}:\n"));
            for child in children {
                write_node(out, child, indent + 2);
            }
        }
        Node::Leaf {
            key,
            description,
            schema,
            default,
        } => {
            let mut text = description.clone();
            if let Some(choices) = enum_choices(schema) {
                text.push_str(&format!(" One of: {choices}."));
            }
            write_comment(out, &text, indent);
            match default {
                Some(value) => out.push_str(&indent_lines(&yaml_entry(key, value), &pad)),
                None => out.push_str(&format!("{pad}# {key}: {}\n", example(schema))),
            }
        }
    }
}

/// `key: value` as YAML (a block for maps and lists).
fn yaml_entry(key: &str, value: &Yaml) -> String {
    let mut mapping = Mapping::new();
    mapping.insert(Yaml::String(key.to_owned()), value.clone());
    serde_yaml::to_string(&Yaml::Mapping(mapping)).expect("plain YAML values serialize")
}

fn indent_lines(text: &str, pad: &str) -> String {
    text.lines().map(|line| format!("{pad}{line}\n")).collect()
}

/// Word-wraps `text` into `# ` comment lines; paragraphs are separated by a bare `#`.
fn write_comment(out: &mut String, text: &str, indent: usize) {
    let pad = " ".repeat(indent);
    let width = COMMENT_WIDTH.saturating_sub(indent + 2).max(40);
    for (index, paragraph) in text.split("\n\n").enumerate() {
        if index > 0 {
            out.push_str(&format!("{pad}#\n"));
        }
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                out.push_str(&format!("{pad}# {line}\n"));
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            out.push_str(&format!("{pad}# {line}\n"));
        }
    }
}

/// A value to show, commented out, for a key that is unset by default.
fn example(schema: &Json) -> &'static str {
    match schema["type"].as_str() {
        Some("boolean") => "true",
        Some("integer") => "1",
        Some("array") => "[]",
        Some("object") => "{}",
        _ => "\"\"",
    }
}

/// "`A`, `B`" for an enum schema.
fn enum_choices(schema: &Json) -> Option<String> {
    let values = schema["enum"].as_array()?;
    Some(
        values
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| {
                format!(
                    "`{}`",
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// The Markdown table of every key: path, type, default, description.
pub fn values_table(nodes: &[Node]) -> String {
    let mut out = String::from("| Key | Type | Default | Description |\n|---|---|---|---|\n");
    for (path, node) in leaves(nodes) {
        let Node::Leaf {
            description,
            schema,
            default,
            ..
        } = node
        else {
            continue;
        };
        let default = match default {
            Some(value) => format!("`{}`", compact_json(value)),
            None => "unset".to_owned(),
        };
        let mut text = description.replace("\n\n", " ").replace('\n', " ");
        if let Some(choices) = enum_choices(schema) {
            text.push_str(&format!(" One of: {choices}."));
        }
        out.push_str(&format!(
            "| `{path}` | {} | {default} | {} |\n",
            type_name(schema),
            text.replace('|', "\\|")
        ));
    }
    out
}

fn compact_json(value: &Yaml) -> String {
    let json: Json = serde_json::to_value(value).expect("YAML defaults are JSON-compatible");
    serde_json::to_string(&json).expect("JSON serializes")
}

fn type_name(schema: &Json) -> &'static str {
    if schema["x-kubernetes-int-or-string"] == Json::Bool(true) {
        return "int or string";
    }
    match schema["type"].as_str() {
        Some("boolean") => "bool",
        Some("integer") => "int",
        Some("number") => "number",
        Some("string") => "string",
        Some("array") => "list",
        Some("object") if schema.get("additionalProperties").is_some() => "map",
        Some("object") => "object",
        _ => "any",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn leaf(key: &str, description: &str, schema: Json, default: Option<&str>) -> Node {
        Node::Leaf {
            key: key.into(),
            description: description.into(),
            schema,
            default: default.map(|d| serde_yaml::from_str(d).unwrap()),
        }
    }

    fn sample() -> Vec<Node> {
        vec![
            Node::Section {
                key: "gpu".into(),
                description: "How the agent gets its GPUs.".into(),
                children: vec![
                    leaf(
                        "enabled",
                        "`true` picks it | unset lets Auto decide.",
                        json!({"type": "boolean"}),
                        None,
                    ),
                    leaf(
                        "mode",
                        "The mode.",
                        json!({"type": "string", "enum": ["Auto", "DRA"]}),
                        Some("Auto"),
                    ),
                ],
            },
            leaf(
                "nodeSelector",
                "Nodes.",
                json!({"type": "object", "additionalProperties": {"type": "string"}}),
                Some("{nvidia.com/gpu.present: 'true'}"),
            ),
        ]
    }

    #[test]
    fn values_yaml_documents_every_key_and_parses_back_to_the_defaults() {
        let text = values_yaml(&sample());
        assert_eq!(
            text,
            "\n# How the agent gets its GPUs.\ngpu:\n  # `true` picks it | unset lets Auto decide.\n  \
             # enabled: true\n  # The mode. One of: `Auto`, `DRA`.\n  mode: Auto\n\n# Nodes.\n\
             nodeSelector:\n  nvidia.com/gpu.present: 'true'\n"
        );
        let parsed: Yaml = serde_yaml::from_str(&text).unwrap();
        assert_eq!(parsed, crate::model::defaults(&sample()));
    }

    #[test]
    fn comments_wrap_at_the_width_and_keep_paragraphs() {
        let mut out = String::new();
        let long = format!("{}\n\nSecond.", "word ".repeat(40));
        write_comment(&mut out, &long, 4);
        assert!(out.lines().all(|l| l.len() <= COMMENT_WIDTH), "{out}");
        assert!(out.contains("\n    #\n    # Second.\n"), "{out}");
    }

    #[test]
    fn the_table_lists_leaves_with_types_defaults_and_escaped_pipes() {
        let table = values_table(&sample());
        assert!(table.contains(
            "| `gpu.enabled` | bool | unset | `true` picks it \\| unset lets Auto decide. |"
        ));
        assert!(
            table.contains(
                "| `gpu.mode` | string | `\"Auto\"` | The mode. One of: `Auto`, `DRA`. |"
            )
        );
        assert!(table.contains(
            "| `nodeSelector` | map | `{\"nvidia.com/gpu.present\":\"true\"}` | Nodes. |"
        ));
    }
}
