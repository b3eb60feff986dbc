//! Server-side apply: conflicts with other managers, merging the applied configuration (list-maps by
//! key, sets by value, atomic lists whole) and removing fields the manager stopped applying.

use serde_json::{Map, Value, json};

use super::{Entry, Managed, Operation, Writer};
use crate::fieldset::{FieldSet, Part, Path, Step, display, remove_at, value_at};
use crate::schema::{ListKind, ListTypes, element_key};

/// One field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The owning manager.
    pub manager: String,
    /// The apiVersion it wrote with.
    pub api_version: String,
    /// The field, as printed by the real server.
    pub field: String,
}

/// Server-side apply of `applied` onto `live` (or onto nothing: create). Returns the merged object with
/// updated `managedFields`, or the conflicts when not forced.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    writer: &Writer<'_>,
    force: bool,
) -> Result<Value, Vec<Conflict>> {
    let mut managed = live.map(Managed::of).unwrap_or_default();
    let applied_set = FieldSet::of_object(applied, writer.list_types, writer.part);
    let is_mine = |e: &Entry| e.same_owner(writer.manager, Operation::Apply, writer.subresource);

    let mut conflicts = Vec::new();
    let mut taken: Vec<(usize, Path)> = Vec::new();
    if let Some(live) = live {
        for (index, entry) in managed.0.iter().enumerate().filter(|(_, e)| !is_mine(e)) {
            for path in applied_set.paths().filter(|p| entry.fields.contains(p)) {
                if matches!(path.last(), Some(Step::Key(_) | Step::Value(_))) {
                    continue;
                }
                if value_at(live, path) != value_at(applied, path) {
                    conflicts.push(Conflict {
                        manager: entry.manager.clone(),
                        api_version: entry.api_version.clone(),
                        field: display(path),
                    });
                    taken.push((index, path.clone()));
                }
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    for (index, path) in &taken {
        managed.0[*index].fields.remove(path);
    }

    let mut merged = live.cloned().unwrap_or_else(|| json!({}));
    merge_top_level(&mut merged, applied, writer);

    let previous = managed
        .0
        .iter()
        .find(|e| is_mine(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut no_longer_applied: Vec<Path> =
        previous.difference(&applied_set).paths().cloned().collect();
    no_longer_applied.sort_by_key(Vec::len);
    let others: Vec<&FieldSet> = managed
        .0
        .iter()
        .filter(|e| !is_mine(e))
        .map(|e| &e.fields)
        .collect();
    let owned_by_others = |path: &Path| others.iter().any(|set| set.covers(path));
    for path in &no_longer_applied {
        if owned_by_others(path) {
            continue;
        }
        remove_at(&mut merged, path);
        // Drop containers the removal left empty, unless someone owns them.
        for depth in (1..path.len()).rev() {
            let parent = &path[..depth];
            let empty = match value_at(&merged, parent) {
                Some(Value::Object(map)) => map.is_empty(),
                Some(Value::Array(items)) => items.is_empty(),
                _ => false,
            };
            let parent = parent.to_vec();
            if !empty
                || owned_by_others(&parent)
                || applied_set.covers(&parent)
                || parent.len() < 2 && parent[0] == Step::Field("metadata".into())
            {
                break;
            }
            remove_at(&mut merged, &parent);
        }
    }

    let entry = managed.entry_mut(
        writer.manager,
        Operation::Apply,
        writer.subresource,
        writer.api_version,
        writer.now,
    );
    if entry.fields != applied_set {
        entry.time = writer.now.into();
    }
    entry.fields = applied_set;
    entry.api_version = writer.api_version.into();
    managed.write(&mut merged);
    Ok(merged)
}

fn merge_top_level(merged: &mut Value, applied: &Value, writer: &Writer<'_>) {
    let (Some(target), Some(source)) = (merged.as_object_mut(), applied.as_object()) else {
        return;
    };
    for (key, value) in source {
        match (writer.part, key.as_str()) {
            (_, "apiVersion" | "kind") => {
                target.insert(key.clone(), value.clone());
            }
            (_, "metadata") => {
                let metadata = target.entry("metadata").or_insert_with(|| json!({}));
                for field in ["name", "namespace", "generateName"] {
                    if let Some(v) = value.get(field)
                        && metadata.get(field).is_none()
                    {
                        metadata[field] = v.clone();
                    }
                }
                for field in ["labels", "annotations", "ownerReferences", "finalizers"] {
                    if let Some(v) = value.get(field).filter(|v| !v.is_null()) {
                        let mut names = vec!["metadata", field];
                        merge_field(
                            metadata.as_object_mut().expect("metadata is an object"),
                            field,
                            v,
                            &mut names,
                            writer.list_types,
                        );
                    }
                }
            }
            (Part::Status, "status")
            | (
                Part::Main {
                    exclude_status: false,
                },
                _,
            ) => {
                let mut names = vec![key.as_str()];
                merge_field(target, key, value, &mut names, writer.list_types);
            }
            (
                Part::Main {
                    exclude_status: true,
                },
                k,
            ) if k != "status" => {
                let mut names = vec![key.as_str()];
                merge_field(target, key, value, &mut names, writer.list_types);
            }
            _ => {}
        }
    }
}

fn merge_field<'n>(
    target: &mut Map<String, Value>,
    key: &str,
    value: &'n Value,
    names: &mut Vec<&'n str>,
    list_types: ListTypes<'_>,
) {
    if value.is_null() {
        return;
    }
    match target.get_mut(key) {
        Some(existing) => merge_value(existing, value, names, list_types),
        None => {
            target.insert(key.to_string(), without_nulls(value));
        }
    }
}

fn merge_value<'n>(
    live: &mut Value,
    applied: &'n Value,
    names: &mut Vec<&'n str>,
    list_types: ListTypes<'_>,
) {
    match (live, applied) {
        (Value::Object(target), Value::Object(source)) => {
            for (key, value) in source {
                names.push(key.as_str());
                merge_field(target, key, value, names, list_types);
                names.pop();
            }
        }
        (Value::Array(target), Value::Array(source)) => match list_types.at(names) {
            ListKind::Map(keys) => {
                for item in source {
                    let Some(key) = element_key(item, &keys) else {
                        *target = source.iter().map(without_nulls).collect();
                        return;
                    };
                    match target
                        .iter_mut()
                        .find(|t| element_key(t, &keys).as_deref() == Some(key.as_str()))
                    {
                        Some(existing) => merge_value(existing, item, names, list_types),
                        None => target.push(without_nulls(item)),
                    }
                }
            }
            ListKind::Set => {
                for item in source {
                    if !target.contains(item) {
                        target.push(item.clone());
                    }
                }
            }
            ListKind::Atomic => *target = source.iter().map(without_nulls).collect(),
        },
        (live, applied) => *live = without_nulls(applied),
    }
}

fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}
