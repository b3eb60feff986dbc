//! Field ownership (`metadata.managedFields`) and server-side apply: which manager owns which field,
//! conflicts between managers, and removal of fields a manager stopped applying. A good-enough model of
//! structured-merge-diff: a second manager's fields survive, forced applies take ownership, and
//! updates (PUT/PATCH) take the fields they change.

use serde_json::{Map, Value, json};

use crate::fieldset::{FieldSet, Part, Path, Step, display, remove_at, value_at};
use crate::schema::{ListKind, ListTypes, element_key};

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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-01-01T00:00:00Z";

    fn writer(manager: &str) -> Writer<'_> {
        Writer {
            manager,
            api_version: "apps/v1",
            subresource: "",
            part: Part::Main {
                exclude_status: true,
            },
            list_types: ListTypes::new(None),
            now: NOW,
        }
    }

    fn ds(spec: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "a", "namespace": "n"}, "spec": spec})
    }

    fn managers(object: &Value) -> Vec<(String, Vec<String>)> {
        Managed::of(object)
            .0
            .into_iter()
            .map(|e| (e.manager, e.fields.paths().map(|p| display(p)).collect()))
            .collect()
    }

    #[test]
    fn apply_creates_and_owns_what_it_applied() {
        let created = apply(
            None,
            &ds(json!({"minReadySeconds": 5})),
            &writer("op"),
            false,
        )
        .unwrap();
        assert_eq!(created["spec"]["minReadySeconds"], 5);
        assert_eq!(created["metadata"]["name"], "a");
        assert_eq!(
            managers(&created),
            [("op".to_string(), vec![".spec.minReadySeconds".to_string()])]
        );
        assert_eq!(
            created["metadata"]["managedFields"][0]["operation"],
            "Apply"
        );
    }

    #[test]
    fn second_managers_fields_survive_and_dropped_fields_go() {
        let v1 = apply(
            None,
            &ds(json!({"minReadySeconds": 5, "revisionHistoryLimit": 3})),
            &writer("op"),
            false,
        )
        .unwrap();
        let v2 = apply(
            Some(&v1),
            &ds(json!({"paused": true})),
            &writer("other"),
            false,
        )
        .unwrap();
        let v3 = apply(
            Some(&v2),
            &ds(json!({"minReadySeconds": 6})),
            &writer("op"),
            false,
        )
        .unwrap();
        assert_eq!(v3["spec"], json!({"minReadySeconds": 6, "paused": true}));
    }

    #[test]
    fn conflicting_value_is_refused_unless_forced() {
        let v1 = apply(
            None,
            &ds(json!({"minReadySeconds": 5})),
            &writer("op"),
            false,
        )
        .unwrap();
        let conflicts = apply(
            Some(&v1),
            &ds(json!({"minReadySeconds": 7})),
            &writer("other"),
            false,
        )
        .unwrap_err();
        assert_eq!(
            conflicts,
            [Conflict {
                manager: "op".into(),
                api_version: "apps/v1".into(),
                field: ".spec.minReadySeconds".into()
            }]
        );
        let forced = apply(
            Some(&v1),
            &ds(json!({"minReadySeconds": 7})),
            &writer("other"),
            true,
        )
        .unwrap();
        assert_eq!(forced["spec"]["minReadySeconds"], 7);
        assert_eq!(
            managers(&forced),
            [(
                "other".to_string(),
                vec![".spec.minReadySeconds".to_string()]
            )]
        );
    }

    #[test]
    fn shared_field_survives_when_one_owner_drops_it() {
        let v1 = apply(
            None,
            &ds(json!({"minReadySeconds": 5, "paused": false})),
            &writer("op"),
            false,
        )
        .unwrap();
        let v2 = apply(
            Some(&v1),
            &ds(json!({"minReadySeconds": 5})),
            &writer("other"),
            false,
        )
        .unwrap();
        let v3 = apply(
            Some(&v2),
            &ds(json!({"paused": false})),
            &writer("op"),
            false,
        )
        .unwrap();
        assert_eq!(v3["spec"]["minReadySeconds"], 5);
    }

    #[test]
    fn updates_take_ownership_of_changed_fields() {
        let v1 = apply(
            None,
            &ds(json!({"minReadySeconds": 5})),
            &writer("op"),
            false,
        )
        .unwrap();
        let mut v2 = v1.clone();
        v2["spec"]["minReadySeconds"] = json!(9);
        track_update(Some(&v1), &mut v2, &writer("kubectl-edit"));
        assert_eq!(
            managers(&v2),
            [(
                "kubectl-edit".to_string(),
                vec![".spec.minReadySeconds".to_string()]
            )]
        );
        let conflicts = apply(
            Some(&v2),
            &ds(json!({"minReadySeconds": 5})),
            &writer("op"),
            false,
        )
        .unwrap_err();
        assert_eq!(conflicts[0].manager, "kubectl-edit");
    }

    #[test]
    fn unchanged_update_keeps_entries() {
        let v1 = apply(
            None,
            &ds(json!({"minReadySeconds": 5})),
            &writer("op"),
            false,
        )
        .unwrap();
        let mut v2 = v1.clone();
        track_update(Some(&v1), &mut v2, &writer("someone"));
        assert_eq!(v2, v1);
    }

    #[test]
    fn removed_fields_lose_their_owners() {
        let lease = |spec: Value| json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": spec});
        let v1 = apply(
            None,
            &lease(json!({"holderIdentity": "a"})),
            &writer("a"),
            false,
        )
        .unwrap();
        let mut released = lease(json!({}));
        released["metadata"] = v1["metadata"].clone();
        track_update(Some(&v1), &mut released, &writer("a"));
        let v3 = apply(
            Some(&released),
            &lease(json!({"holderIdentity": "b"})),
            &writer("b"),
            false,
        )
        .unwrap();
        assert_eq!(v3["spec"]["holderIdentity"], "b");
    }

    #[test]
    fn list_maps_merge_by_key_across_managers() {
        let containers = |c: Value| ds(json!({"template": {"spec": {"containers": c}}}));
        let v1 = apply(
            None,
            &containers(json!([{"name": "agent", "image": "a:1"}])),
            &writer("op"),
            false,
        )
        .unwrap();
        let v2 = apply(
            Some(&v1),
            &containers(json!([{"name": "sidecar", "image": "s:1"}])),
            &writer("other"),
            false,
        )
        .unwrap();
        let names: Vec<&str> = v2["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["agent", "sidecar"]);
        let v3 = apply(Some(&v2), &containers(json!([])), &writer("op"), false).unwrap();
        assert_eq!(
            v3["spec"]["template"]["spec"]["containers"],
            json!([{"name": "sidecar", "image": "s:1"}])
        );
    }

    #[test]
    fn dropped_labels_are_removed() {
        let mut labelled = ds(json!({}));
        labelled["metadata"]["labels"] = json!({"a": "1", "b": "2"});
        let v1 = apply(None, &labelled, &writer("op"), false).unwrap();
        let mut fewer = ds(json!({}));
        fewer["metadata"]["labels"] = json!({"a": "1"});
        let v2 = apply(Some(&v1), &fewer, &writer("op"), false).unwrap();
        assert_eq!(v2["metadata"]["labels"], json!({"a": "1"}));
        let v3 = apply(Some(&v2), &ds(json!({})), &writer("op"), false).unwrap();
        assert!(v3["metadata"].get("labels").is_none(), "{v3}");
        assert_eq!(v3["metadata"]["name"], "a");
    }
}
