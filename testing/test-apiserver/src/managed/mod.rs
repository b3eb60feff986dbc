//! Field ownership (`metadata.managedFields`) and server-side apply: which manager owns which field,
//! conflicts between managers, and removal of fields a manager stopped applying. A good-enough model of
//! structured-merge-diff: a second manager's fields survive, forced applies take ownership, and
//! updates (PUT/PATCH) take the fields they change.

use serde_json::{Value, json};

mod apply;

pub use apply::{Conflict, apply};

use crate::fieldset::{FieldSet, Part, Step, value_at};
use crate::schema::ListTypes;

/// `Apply` or `Update`, as in `managedFields[].operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Create, update or non-apply patch.
    Update,
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Field manager name.
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// apiVersion the manager wrote with.
    pub api_version: String,
    /// Last time the entry changed.
    pub time: String,
    /// `""` or `"status"`.
    pub subresource: String,
    /// Owned fields.
    pub fields: FieldSet,
}

impl Entry {
    fn same_owner(&self, manager: &str, operation: Operation, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }
}

/// All entries of an object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Managed(pub Vec<Entry>);

impl Managed {
    /// Reads `metadata.managedFields`.
    pub fn of(object: &Value) -> Self {
        let entries = object
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array);
        Self(
            entries
                .into_iter()
                .flatten()
                .filter_map(|entry| {
                    Some(Entry {
                        manager: entry.get("manager")?.as_str()?.to_string(),
                        operation: match entry.get("operation").and_then(Value::as_str) {
                            Some("Apply") => Operation::Apply,
                            _ => Operation::Update,
                        },
                        api_version: entry
                            .get("apiVersion")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .into(),
                        time: entry
                            .get("time")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .into(),
                        subresource: entry
                            .get("subresource")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .into(),
                        fields: FieldSet::from_fields_v1(
                            entry.get("fieldsV1").unwrap_or(&Value::Null),
                        ),
                    })
                })
                .collect(),
        )
    }

    /// Writes `metadata.managedFields` (removing it when no entry is left).
    pub fn write(mut self, object: &mut Value) {
        self.0.retain(|e| !e.fields.is_empty());
        let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        if self.0.is_empty() {
            metadata.remove("managedFields");
            return;
        }
        let entries = self
            .0
            .iter()
            .map(|e| {
                let mut entry = json!({
                    "manager": e.manager,
                    "operation": match e.operation { Operation::Apply => "Apply", Operation::Update => "Update" },
                    "apiVersion": e.api_version,
                    "time": e.time,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": e.fields.to_fields_v1(),
                });
                if !e.subresource.is_empty() {
                    entry["subresource"] = json!(e.subresource);
                }
                entry
            })
            .collect();
        metadata.insert("managedFields".into(), Value::Array(entries));
    }

    /// The same entries ignoring timestamps (to tell a no-op write).
    pub fn same_ownership(&self, other: &Managed) -> bool {
        let key = |m: &Managed| {
            let mut v: Vec<(String, bool, String, String, Value)> =
                m.0.iter()
                    .filter(|e| !e.fields.is_empty())
                    .map(|e| {
                        (
                            e.manager.clone(),
                            e.operation == Operation::Apply,
                            e.subresource.clone(),
                            e.api_version.clone(),
                            e.fields.to_fields_v1(),
                        )
                    })
                    .collect();
            v.sort_by(|a, b| (&a.0, a.1, &a.2).cmp(&(&b.0, b.1, &b.2)));
            v
        };
        key(self) == key(other)
    }

    fn entry_mut(
        &mut self,
        manager: &str,
        operation: Operation,
        subresource: &str,
        api_version: &str,
        now: &str,
    ) -> &mut Entry {
        let index = match self
            .0
            .iter()
            .position(|e| e.same_owner(manager, operation, subresource))
        {
            Some(index) => index,
            None => {
                self.0.push(Entry {
                    manager: manager.into(),
                    operation,
                    api_version: api_version.into(),
                    time: now.into(),
                    subresource: subresource.into(),
                    fields: FieldSet::default(),
                });
                self.0.len() - 1
            }
        };
        &mut self.0[index]
    }
}

/// Who writes, through which endpoint, and how lists behave.
#[derive(Debug, Clone, Copy)]
pub struct Writer<'a> {
    /// Field manager.
    pub manager: &'a str,
    /// apiVersion of the request.
    pub api_version: &'a str,
    /// `""` or `"status"`.
    pub subresource: &'a str,
    /// Which part of the object the endpoint writes.
    pub part: Part,
    /// List semantics of the resource.
    pub list_types: ListTypes<'a>,
    /// RFC 3339 time of the write.
    pub now: &'a str,
}

/// Records an Update-operation write: the writer takes ownership of every field it added or changed,
/// other managers lose those fields, and removed fields lose all owners.
pub fn track_update(old: Option<&Value>, new: &mut Value, writer: &Writer<'_>) {
    let mut managed = old.map(Managed::of).unwrap_or_default();
    let all = Part::Main {
        exclude_status: false,
    };
    let old_set = old
        .map(|o| FieldSet::of_object(o, writer.list_types, all))
        .unwrap_or_default();
    let new_set = FieldSet::of_object(new, writer.list_types, all);
    let mut changed = FieldSet::default();
    for path in new_set.paths() {
        let is_element = matches!(path.last(), Some(Step::Key(_) | Step::Value(_)));
        let differs = match old {
            None => true,
            Some(_) if is_element => !old_set.contains(path),
            Some(old) => value_at(old, path) != value_at(new, path),
        };
        if differs {
            changed.insert(path.clone());
        }
    }
    let removed = old_set.difference(&new_set);
    for entry in &mut managed.0 {
        entry.fields.subtract(&removed);
        if !entry.same_owner(writer.manager, Operation::Update, writer.subresource) {
            entry.fields.subtract(&changed);
        }
    }
    if !changed.is_empty() {
        let entry = managed.entry_mut(
            writer.manager,
            Operation::Update,
            writer.subresource,
            writer.api_version,
            writer.now,
        );
        entry.fields.extend(&changed);
        entry.time = writer.now.into();
        entry.api_version = writer.api_version.into();
    }
    managed.write(new);
}

#[cfg(test)]
mod tests;
