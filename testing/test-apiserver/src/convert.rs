//! Version conversion between the form a client reads or writes and the stored ("hub") form, so one
//! object is visible through every served version as on a real cluster: `resource.k8s.io/v1beta1`
//! flat device requests ↔ the v1 `exactly` nesting, and `events.k8s.io/v1` ↔ core `v1` Events.

use serde_json::{Map, Value, json};

/// How a served version's objects map to the stored form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Same shape; only `apiVersion` differs (built-ins with one version, CRDs with `conversion: None`,
    /// DRA v1 and v1beta2).
    Identity,
    /// `resource.k8s.io/v1beta1`: flat device requests, ResourceSlice devices nested under `basic`.
    DraV1beta1,
    /// `events.k8s.io/v1` Event stored as a core `v1` Event.
    EventsV1,
}

impl Codec {
    /// Converts an object written at the served version to the stored form (`hub_api_version`).
    pub fn to_hub(self, kind: &str, mut object: Value, hub_api_version: &str) -> Value {
        match self {
            Self::Identity => {}
            Self::DraV1beta1 => dra_v1beta1_to_v1(kind, &mut object),
            Self::EventsV1 => rename_fields(&mut object, EVENT_FIELDS, false),
        }
        object["apiVersion"] = json!(hub_api_version);
        object
    }

    /// Converts a stored object to the served version `api_version`.
    pub fn from_hub(self, kind: &str, mut object: Value, api_version: &str) -> Value {
        match self {
            Self::Identity => {}
            Self::DraV1beta1 => dra_v1_to_v1beta1(kind, &mut object),
            Self::EventsV1 => rename_fields(&mut object, EVENT_FIELDS, true),
        }
        object["apiVersion"] = json!(api_version);
        object
    }
}

/// `(events.k8s.io/v1 name, core v1 name)`.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename_fields(object: &mut Value, pairs: &[(&str, &str)], hub_to_served: bool) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    for (served, hub) in pairs {
        let (from, to) = if hub_to_served {
            (hub, served)
        } else {
            (served, hub)
        };
        if let Some(value) = map.remove(*from) {
            map.insert((*to).to_string(), value);
        }
    }
}

/// The JSON pointer to the device requests of a DRA claim kind.
fn requests_pointer(kind: &str) -> Option<&'static str> {
    match kind {
        "ResourceClaim" => Some("/spec/devices/requests"),
        "ResourceClaimTemplate" => Some("/spec/spec/devices/requests"),
        _ => None,
    }
}

fn dra_v1beta1_to_v1(kind: &str, object: &mut Value) {
    if let Some(requests) = requests_pointer(kind)
        .and_then(|p| object.pointer_mut(p))
        .and_then(Value::as_array_mut)
    {
        for request in requests.iter_mut().filter_map(Value::as_object_mut) {
            if !request.contains_key("firstAvailable") {
                nest_all_but_name(request, "exactly");
            }
        }
    }
    if kind == "ResourceSlice"
        && let Some(devices) = object
            .pointer_mut("/spec/devices")
            .and_then(Value::as_array_mut)
    {
        for device in devices.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(Value::Object(basic)) = device.remove("basic") {
                device.extend(basic);
            }
        }
    }
}

fn dra_v1_to_v1beta1(kind: &str, object: &mut Value) {
    if let Some(requests) = requests_pointer(kind)
        .and_then(|p| object.pointer_mut(p))
        .and_then(Value::as_array_mut)
    {
        for request in requests.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(Value::Object(exactly)) = request.remove("exactly") {
                request.extend(exactly);
            }
        }
    }
    if kind == "ResourceSlice"
        && let Some(devices) = object
            .pointer_mut("/spec/devices")
            .and_then(Value::as_array_mut)
    {
        for device in devices.iter_mut().filter_map(Value::as_object_mut) {
            nest_all_but_name(device, "basic");
        }
    }
}

/// Moves every field except `name` into a nested object called `under` (nothing when there is nothing to move).
fn nest_all_but_name(map: &mut Map<String, Value>, under: &str) {
    let name = map.remove("name");
    let nested = std::mem::take(map);
    if let Some(name) = name {
        map.insert("name".to_string(), name);
    }
    if !nested.is_empty() {
        map.insert(under.to_string(), Value::Object(nested));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1beta1_template() -> Value {
        json!({
            "apiVersion": "resource.k8s.io/v1beta1",
            "kind": "ResourceClaimTemplate",
            "metadata": {"name": "t"},
            "spec": {"spec": {"devices": {"requests": [
                {"name": "gpus", "deviceClassName": "gpu.nvidia.com", "allocationMode": "All", "adminAccess": true},
                {"name": "any", "firstAvailable": [{"name": "a", "deviceClassName": "x"}]}
            ]}}}
        })
    }

    #[test]
    fn v1beta1_requests_nest_under_exactly_and_back() {
        let hub = Codec::DraV1beta1.to_hub(
            "ResourceClaimTemplate",
            v1beta1_template(),
            "resource.k8s.io/v1",
        );
        assert_eq!(hub["apiVersion"], "resource.k8s.io/v1");
        assert_eq!(
            hub.pointer("/spec/spec/devices/requests/0").unwrap(),
            &json!({"name": "gpus", "exactly": {"deviceClassName": "gpu.nvidia.com", "allocationMode": "All", "adminAccess": true}})
        );
        assert_eq!(
            hub.pointer("/spec/spec/devices/requests/1").unwrap(),
            &json!({"name": "any", "firstAvailable": [{"name": "a", "deviceClassName": "x"}]})
        );
        let back =
            Codec::DraV1beta1.from_hub("ResourceClaimTemplate", hub, "resource.k8s.io/v1beta1");
        assert_eq!(back, v1beta1_template());
    }

    #[test]
    fn v1beta1_slices_nest_devices_under_basic() {
        let slice = json!({"kind": "ResourceSlice", "spec": {"devices": [
            {"name": "gpu-0", "basic": {"attributes": {"type": {"string": "gpu"}}}}
        ]}});
        let hub = Codec::DraV1beta1.to_hub("ResourceSlice", slice.clone(), "resource.k8s.io/v1");
        assert_eq!(
            hub["spec"]["devices"][0],
            json!({"name": "gpu-0", "attributes": {"type": {"string": "gpu"}}})
        );
        let mut back = Codec::DraV1beta1.from_hub("ResourceSlice", hub, "resource.k8s.io/v1beta1");
        back.as_object_mut().unwrap().remove("apiVersion");
        assert_eq!(back, slice);
    }

    #[test]
    fn events_v1_maps_to_core_fields() {
        let event = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "regarding": {"kind": "Pod", "name": "p"}, "note": "boom", "reason": "Failed",
            "reportingController": "kubelet", "type": "Warning"
        });
        let hub = Codec::EventsV1.to_hub("Event", event.clone(), "v1");
        assert_eq!(hub["involvedObject"]["name"], "p");
        assert_eq!(hub["message"], "boom");
        assert_eq!(hub["reportingComponent"], "kubelet");
        assert!(hub.get("regarding").is_none());
        assert_eq!(
            Codec::EventsV1.from_hub("Event", hub, "events.k8s.io/v1"),
            event
        );
    }
}
