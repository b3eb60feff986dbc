//! Field sets: which fields of an object a field manager owns, in the `FieldsV1` wire form of
//! `metadata.managedFields` (`f:spec`, `k:{"name":"a"}`, `v:"x"`, `.`), plus path navigation.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::schema::{ListKind, ListTypes, element_key};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    /// An object field.
    Field(String),
    /// A list-map element, by its key fields as canonical JSON.
    Key(String),
    /// A set element, as canonical JSON.
    Value(String),
    /// A list element by position (rare; only round-tripped).
    Index(usize),
}

/// A path from the object root.
pub type Path = Vec<Step>;

/// Which part of an object a write covers: the main resource (optionally without `status`) or `/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Everything a main-resource write may own; `status` excluded when it is a separate subresource.
    Main {
        /// Whether `status` belongs to the status subresource.
        exclude_status: bool,
    },
    /// Only `status`.
    Status,
}

/// A set of owned field paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet(BTreeSet<Path>);

impl FieldSet {
    /// Every field path present in `object` that a manager can own for `part`.
    pub fn of_object(object: &Value, list_types: ListTypes<'_>, part: Part) -> Self {
        let mut set = BTreeSet::new();
        let Some(map) = object.as_object() else {
            return Self(set);
        };
        for (key, value) in map {
            let wanted = match (part, key.as_str()) {
                (_, "apiVersion" | "kind") => false,
                (Part::Status, k) => k == "status",
                (
                    Part::Main {
                        exclude_status: true,
                    },
                    "status",
                ) => false,
                _ => true,
            };
            if !wanted {
                continue;
            }
            if key == "metadata" {
                for field in ["labels", "annotations", "ownerReferences", "finalizers"] {
                    if let Some(value) = value.get(field) {
                        let mut path = vec![Step::Field(key.clone()), Step::Field(field.into())];
                        let mut names = vec![key.as_str(), field];
                        collect(value, &mut path, &mut names, list_types, &mut set);
                    }
                }
                continue;
            }
            let mut path = vec![Step::Field(key.clone())];
            let mut names = vec![key.as_str()];
            collect(value, &mut path, &mut names, list_types, &mut set);
        }
        Self(set)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The paths, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.0.iter()
    }

    /// Whether `path` itself is in the set.
    pub fn contains(&self, path: &Path) -> bool {
        self.0.contains(path)
    }

    /// Whether `path` or anything below it is in the set.
    pub fn covers(&self, path: &Path) -> bool {
        self.0
            .range(path.clone()..)
            .next()
            .is_some_and(|p| p.starts_with(path))
    }

    /// Adds a path.
    pub fn insert(&mut self, path: Path) {
        self.0.insert(path);
    }

    /// Removes a path.
    pub fn remove(&mut self, path: &Path) {
        self.0.remove(path);
    }

    /// Paths in `self` but not in `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        Self(self.0.difference(&other.0).cloned().collect())
    }

    /// Adds every path of `other`.
    pub fn extend(&mut self, other: &FieldSet) {
        self.0.extend(other.0.iter().cloned());
    }

    /// Removes every path of `other`.
    pub fn subtract(&mut self, other: &FieldSet) {
        self.0.retain(|p| !other.0.contains(p));
    }

    /// The `FieldsV1` JSON form.
    pub fn to_fields_v1(&self) -> Value {
        #[derive(Default)]
        struct Node {
            member: bool,
            children: BTreeMap<String, Node>,
        }
        fn render(node: &Node) -> Value {
            let mut map = Map::new();
            if node.member && !node.children.is_empty() {
                map.insert(".".into(), json!({}));
            }
            for (key, child) in &node.children {
                map.insert(key.clone(), render(child));
            }
            Value::Object(map)
        }
        let mut root = Node::default();
        for path in &self.0 {
            let mut node = &mut root;
            for step in path {
                node = node.children.entry(encode_step(step)).or_default();
            }
            node.member = true;
        }
        render(&root)
    }

    /// Parses the `FieldsV1` JSON form; unknown keys are skipped.
    pub fn from_fields_v1(fields: &Value) -> Self {
        fn walk(node: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
            let Some(map) = node.as_object() else {
                return;
            };
            if (map.is_empty() || map.contains_key(".")) && !path.is_empty() {
                out.insert(path.clone());
            }
            for (key, child) in map {
                if let Some(step) = decode_step(key) {
                    path.push(step);
                    walk(child, path, out);
                    path.pop();
                }
            }
        }
        let mut out = BTreeSet::new();
        walk(fields, &mut Vec::new(), &mut out);
        Self(out)
    }
}

fn collect<'v>(
    value: &'v Value,
    path: &mut Path,
    names: &mut Vec<&'v str>,
    list_types: ListTypes<'_>,
    out: &mut BTreeSet<Path>,
) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                path.push(Step::Field(key.clone()));
                names.push(key.as_str());
                collect(child, path, names, list_types, out);
                names.pop();
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => match list_types.at(names) {
            ListKind::Map(keys) => {
                let element_keys: Option<Vec<String>> =
                    items.iter().map(|item| element_key(item, &keys)).collect();
                let Some(element_keys) = element_keys else {
                    out.insert(path.clone());
                    return;
                };
                for (item, key) in items.iter().zip(element_keys) {
                    path.push(Step::Key(key));
                    out.insert(path.clone());
                    if let Value::Object(fields) = item {
                        for (field, child) in fields {
                            path.push(Step::Field(field.clone()));
                            names.push(field.as_str());
                            collect(child, path, names, list_types, out);
                            names.pop();
                            path.pop();
                        }
                    }
                    path.pop();
                }
            }
            ListKind::Set => {
                for item in items {
                    path.push(Step::Value(item.to_string()));
                    out.insert(path.clone());
                    path.pop();
                }
            }
            ListKind::Atomic => {
                out.insert(path.clone());
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

fn encode_step(step: &Step) -> String {
    match step {
        Step::Field(name) => format!("f:{name}"),
        Step::Key(key) => format!("k:{key}"),
        Step::Value(value) => format!("v:{value}"),
        Step::Index(index) => format!("i:{index}"),
    }
}

fn decode_step(key: &str) -> Option<Step> {
    let (prefix, rest) = key.split_once(':')?;
    match prefix {
        "f" => Some(Step::Field(rest.to_string())),
        "k" => Some(Step::Key(canonical(rest)?)),
        "v" => Some(Step::Value(canonical(rest)?)),
        "i" => rest.parse().ok().map(Step::Index),
        _ => None,
    }
}

/// Re-serialises JSON so keys written by other clients compare equal to ours.
fn canonical(text: &str) -> Option<String> {
    serde_json::from_str::<Value>(text)
        .ok()
        .map(|v| v.to_string())
}

/// The value at `path`, if present.
pub fn value_at<'a>(object: &'a Value, path: &[Step]) -> Option<&'a Value> {
    let mut current = object;
    for step in path {
        current = match step {
            Step::Field(name) => current.get(name)?,
            Step::Index(index) => current.get(index)?,
            Step::Key(key) => {
                let key: Value = serde_json::from_str(key).ok()?;
                current
                    .as_array()?
                    .iter()
                    .find(|item| matches_key(item, &key))?
            }
            Step::Value(value) => {
                let value: Value = serde_json::from_str(value).ok()?;
                current.as_array()?.iter().find(|item| **item == value)?
            }
        };
    }
    Some(current)
}

fn matches_key(item: &Value, key: &Value) -> bool {
    key.as_object()
        .is_some_and(|key| key.iter().all(|(k, v)| item.get(k) == Some(v)))
}

/// Removes the value at `path`; returns whether something was removed.
pub fn remove_at(object: &mut Value, path: &[Step]) -> bool {
    let Some((last, parent_path)) = path.split_last() else {
        return false;
    };
    let Some(parent) = value_at_mut(object, parent_path) else {
        return false;
    };
    match (last, parent) {
        (Step::Field(name), Value::Object(map)) => map.remove(name).is_some(),
        (Step::Index(index), Value::Array(items)) if *index < items.len() => {
            items.remove(*index);
            true
        }
        (Step::Key(key), Value::Array(items)) => {
            let Ok(key) = serde_json::from_str::<Value>(key) else {
                return false;
            };
            let before = items.len();
            items.retain(|item| !matches_key(item, &key));
            items.len() != before
        }
        (Step::Value(value), Value::Array(items)) => {
            let Ok(value) = serde_json::from_str::<Value>(value) else {
                return false;
            };
            let before = items.len();
            items.retain(|item| *item != value);
            items.len() != before
        }
        _ => false,
    }
}

/// Mutable access to the value at `path`.
pub fn value_at_mut<'a>(object: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    let mut current = object;
    for step in path {
        current = match step {
            Step::Field(name) => current.get_mut(name)?,
            Step::Index(index) => current.get_mut(index)?,
            Step::Key(key) => {
                let key: Value = serde_json::from_str(key).ok()?;
                current
                    .as_array_mut()?
                    .iter_mut()
                    .find(|item| matches_key(item, &key))?
            }
            Step::Value(value) => {
                let value: Value = serde_json::from_str(value).ok()?;
                current
                    .as_array_mut()?
                    .iter_mut()
                    .find(|item| **item == value)?
            }
        };
    }
    Some(current)
}

/// A path as the real server prints it in conflict messages: `.spec.containers[name="agent"].image`.
pub fn display(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Field(name) => {
                out.push('.');
                out.push_str(name);
            }
            Step::Key(key) => {
                let parts: Vec<String> = serde_json::from_str::<Map<String, Value>>(key)
                    .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                    .unwrap_or_else(|_| vec![key.clone()]);
                out.push_str(&format!("[{}]", parts.join(",")));
            }
            Step::Value(value) => out.push_str(&format!("[={value}]")),
            Step::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daemonset() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "gpu", "labels": {"app": "agent"}, "finalizers": ["a/b"]},
            "spec": {"template": {"spec": {
                "containers": [{"name": "agent", "image": "img:1", "args": ["serve"]}],
                "tolerations": [{"operator": "Exists"}]
            }}},
            "status": {"numberReady": 1}
        })
    }

    fn paths(set: &FieldSet) -> Vec<String> {
        set.paths().map(|p| display(p)).collect()
    }

    #[test]
    fn owned_paths_of_a_daemonset() {
        let set = FieldSet::of_object(
            &daemonset(),
            ListTypes::new(None),
            Part::Main {
                exclude_status: true,
            },
        );
        assert_eq!(
            paths(&set),
            [
                ".metadata.finalizers[=\"a/b\"]",
                ".metadata.labels.app",
                ".spec.template.spec.containers[name=\"agent\"]",
                ".spec.template.spec.containers[name=\"agent\"].args",
                ".spec.template.spec.containers[name=\"agent\"].image",
                ".spec.template.spec.containers[name=\"agent\"].name",
                ".spec.template.spec.tolerations",
            ]
        );
        let status = FieldSet::of_object(&daemonset(), ListTypes::new(None), Part::Status);
        assert_eq!(paths(&status), [".status.numberReady"]);
    }

    #[test]
    fn fields_v1_round_trip() {
        let set = FieldSet::of_object(
            &daemonset(),
            ListTypes::new(None),
            Part::Main {
                exclude_status: false,
            },
        );
        let wire = set.to_fields_v1();
        assert_eq!(wire["f:metadata"]["f:labels"]["f:app"], json!({}));
        let element =
            &wire["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"agent\"}"];
        assert_eq!(element["."], json!({}));
        assert_eq!(element["f:image"], json!({}));
        assert_eq!(FieldSet::from_fields_v1(&wire), set);
    }

    #[test]
    fn navigation_through_keys_and_values() {
        let mut object = daemonset();
        let image = vec![
            Step::Field("spec".into()),
            Step::Field("template".into()),
            Step::Field("spec".into()),
            Step::Field("containers".into()),
            Step::Key(r#"{"name":"agent"}"#.into()),
            Step::Field("image".into()),
        ];
        assert_eq!(value_at(&object, &image), Some(&json!("img:1")));
        assert!(remove_at(&mut object, &image));
        assert_eq!(value_at(&object, &image), None);
        let finalizer = vec![
            Step::Field("metadata".into()),
            Step::Field("finalizers".into()),
            Step::Value("\"a/b\"".into()),
        ];
        assert!(remove_at(&mut object, &finalizer));
        assert_eq!(object["metadata"]["finalizers"], json!([]));
    }

    #[test]
    fn covers_descendants() {
        let set = FieldSet::of_object(
            &daemonset(),
            ListTypes::new(None),
            Part::Main {
                exclude_status: true,
            },
        );
        assert!(set.covers(&vec![Step::Field("spec".into())]));
        assert!(!set.covers(&vec![Step::Field("status".into())]));
        assert!(!set.contains(&vec![Step::Field("spec".into())]));
    }
}
