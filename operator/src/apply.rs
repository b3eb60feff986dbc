//! Deciding whether a server-side apply is needed (pure). A reconcile that changes nothing must
//! write nothing, so each desired object is compared with the live one first:
//! - every field the operator sets must already hold its value in the live object (external
//!   drift), allowing for what the API server adds (defaults) and rewrites (quantities);
//! - the live object's applied-hash annotation must match the desired content (fields the
//!   operator stopped setting: a subset check cannot see removals).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::names;

/// `desired` with the applied-hash annotation of its content set.
pub fn stamp(desired: Value) -> Value {
    stamp_as(desired, names::APPLIED_HASH_ANNOTATION)
}

/// `stamp` under another annotation key (objects several configs apply to, like a shared
/// namespace, need one key per config).
pub fn stamp_as(mut desired: Value, key: &str) -> Value {
    let hash = content_hash(&desired);
    if let Some(metadata) = desired.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = metadata
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(annotations) = annotations.as_object_mut() {
            annotations.insert(key.into(), Value::String(hash));
        }
    }
    desired
}

/// Whether `live` already is what applying `stamped` would make it.
pub fn up_to_date(stamped: &Value, live: Option<&Value>) -> bool {
    up_to_date_as(stamped, live, names::APPLIED_HASH_ANNOTATION)
}

/// `up_to_date` for an object stamped with `stamp_as(.., key)`.
pub fn up_to_date_as(stamped: &Value, live: Option<&Value>, key: &str) -> bool {
    let Some(live) = live else {
        return false;
    };
    let hash = &stamped["metadata"]["annotations"][key];
    !hash.is_null() && live["metadata"]["annotations"][key] == *hash && is_subset(stamped, live)
}

/// A stable hash (FNV-1a, 64 bit, hex) of `value` with keys in sorted order.
pub fn content_hash(value: &Value) -> String {
    let mut canonical = String::new();
    write_canonical(value, &mut canonical);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in canonical.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            out.push('{');
            for (i, (key, value)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Whether every field of `desired` holds the same value in `live`. Empty values (`""`, `0`,
/// `false`, `[]`, `{}`, `null`) match an absent field (Go's `omitempty` drops them); quantities
/// under `limits`/`requests` match by amount (`1000m` = `1`).
pub fn is_subset(desired: &Value, live: &Value) -> bool {
    subset(desired, live, false)
}

fn subset(desired: &Value, live: &Value, quantities: bool) -> bool {
    if live.is_null() {
        return is_empty(desired);
    }
    match desired {
        Value::Null => true,
        Value::Object(fields) => {
            let Some(live_fields) = live.as_object() else {
                return false;
            };
            fields.iter().all(|(key, value)| {
                let live_value = live_fields.get(key).unwrap_or(&Value::Null);
                match key.as_str() {
                    "limits" | "requests" => quantity_subset(value, live_value),
                    "ownerReferences" => keyed_subset(value, live_value, "uid"),
                    _ => subset(value, live_value, false),
                }
            })
        }
        Value::Array(items) => {
            let Some(live_items) = live.as_array() else {
                return false;
            };
            items.len() == live_items.len()
                && items
                    .iter()
                    .zip(live_items)
                    .all(|(d, l)| subset(d, l, false))
        }
        Value::String(text) if quantities => live
            .as_str()
            .is_some_and(|l| l == text || crate::quantity::same(text, l)),
        Value::Number(number) => live
            .as_f64()
            .zip(number.as_f64())
            .is_some_and(|(l, d)| l == d),
        scalar => scalar == live,
    }
}

/// Subset for a list merged by key across field managers (each desired item is in the live list).
fn keyed_subset(desired: &Value, live: &Value, key: &str) -> bool {
    match (desired, live) {
        (Value::Array(items), Value::Array(live_items)) => items.iter().all(|item| {
            live_items
                .iter()
                .any(|l| l[key] == item[key] && subset(item, l, false))
        }),
        _ => subset(desired, live, false),
    }
}

fn quantity_subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(fields), Value::Object(live_fields)) => fields
            .iter()
            .all(|(key, value)| subset(value, live_fields.get(key).unwrap_or(&Value::Null), true)),
        _ => subset(desired, live, false),
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.values().all(is_empty),
    }
}

/// Whether the operator wrote `live` for config `config` (its labels say so).
pub fn is_ours(live: &Value, config: &str) -> bool {
    let labels: BTreeMap<String, String> = live["metadata"]["labels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    names::config_of(&labels) == Some(config)
}

/// Whether `live` has an owner reference to the object with `uid`.
pub fn is_owned_by(live: &Value, uid: &str) -> bool {
    live["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
}

/// Whether `live` has an owner reference to any `GpuDiagnosticsConfig` (the operator created it).
pub fn is_owned_by_a_config(live: &Value) -> bool {
    live["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                r["kind"] == "GpuDiagnosticsConfig"
                    && r["apiVersion"]
                        .as_str()
                        .is_some_and(|v| v.starts_with(&format!("{}/", crds::GROUP)))
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_defaults_and_metadata_are_not_drift() {
        let desired = json!({"spec": {"template": {"spec": {"containers": [{"name": "agent", "image": "a:1"}]}}}});
        let live = json!({"metadata": {"uid": "1", "resourceVersion": "9"}, "spec": {"revisionHistoryLimit": 10,
            "template": {"spec": {"dnsPolicy": "ClusterFirst", "containers": [{"name": "agent", "image": "a:1",
            "terminationMessagePath": "/dev/termination-log"}]}}}});
        assert!(is_subset(&desired, &live));
    }

    #[test]
    fn changed_values_and_list_lengths_are_drift() {
        let desired = json!({"spec": {"containers": [{"image": "a:2"}]}});
        assert!(!is_subset(
            &desired,
            &json!({"spec": {"containers": [{"image": "a:1"}]}})
        ));
        assert!(!is_subset(
            &desired,
            &json!({"spec": {"containers": [{"image": "a:2"}, {"image": "b"}]}})
        ));
        assert!(!is_subset(&json!({"a": {"b": 1}}), &json!({"a": "text"})));
        // Owner references are merged by uid across field managers.
        let owners = json!({"metadata": {"ownerReferences": [{"uid": "a"}]}});
        assert!(is_subset(
            &owners,
            &json!({"metadata": {"ownerReferences": [{"uid": "b"}, {"uid": "a"}]}})
        ));
        assert!(!is_subset(
            &owners,
            &json!({"metadata": {"ownerReferences": [{"uid": "b"}]}})
        ));
    }

    #[test]
    fn empty_values_match_absent_fields() {
        assert!(is_subset(
            &json!({"a": "", "b": [], "c": {}, "d": false, "e": 0, "f": null}),
            &json!({})
        ));
        assert!(!is_subset(&json!({"a": "x"}), &json!({})));
    }

    #[test]
    fn quantities_under_limits_and_requests_compare_by_amount() {
        let desired = json!({"resources": {"limits": {"cpu": "1000m", "memory": "1024Mi"}}});
        let live = json!({"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}});
        assert!(is_subset(&desired, &live));
        assert!(!is_subset(
            &json!({"env": [{"value": "1000m"}]}),
            &json!({"env": [{"value": "1"}]})
        ));
        assert!(!is_subset(
            &json!({"limits": {"cpu": "2"}}),
            &json!({"limits": {"cpu": "1"}})
        ));
    }

    #[test]
    fn the_hash_notices_removed_fields_that_the_subset_check_cannot() {
        let before =
            stamp(json!({"metadata": {"name": "x"}, "spec": {"limits": {"nvidia.com/gpu": "1"}}}));
        let unstamped_after = json!({"metadata": {"name": "x"}, "spec": {}});
        let after = stamp(unstamped_after.clone());
        assert!(up_to_date(&before, Some(&before)));
        assert!(is_subset(&unstamped_after, &before));
        assert!(!up_to_date(&after, Some(&before)));
        assert!(!up_to_date(&after, None));
    }

    #[test]
    fn the_hash_ignores_key_order() {
        let a: Value = serde_json::from_str(r#"{"x": 1, "y": {"b": 2, "a": 1}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"y": {"a": 1, "b": 2}, "x": 1}"#).unwrap();
        assert_eq!(content_hash(&a), content_hash(&b));
        assert_ne!(content_hash(&a), content_hash(&json!({"x": 2})));
    }

    #[test]
    fn ownership_is_read_from_labels_and_owner_references() {
        let live = json!({"metadata": {"labels": names::common_labels("a"), "ownerReferences": [{"uid": "u1"}]}});
        assert!(is_ours(&live, "a"));
        assert!(!is_ours(&live, "b"));
        assert!(!is_ours(&json!({"metadata": {}}), "a"));
        assert!(is_owned_by(&live, "u1"));
        assert!(!is_owned_by(&live, "u2"));
        assert!(!is_owned_by_a_config(&live));
        let created = json!({"metadata": {"ownerReferences": [
            {"apiVersion": "gpu.k8s-mcp-agent.io/v1alpha1", "kind": "GpuDiagnosticsConfig", "uid": "u3"}]}});
        assert!(is_owned_by_a_config(&created));
    }
}
