//! Dynamic Resource Allocation across the `resource.k8s.io` versions clusters serve: which version
//! to write, the request shape of each (nested `exactly` in v1/v1beta2, flat in v1beta1), and
//! reading `adminAccess` back from what the API server stored.
//!
//! Claim objects are plain JSON applied as dynamic objects: no single k8s-openapi feature has typed
//! DRA for every Kubernetes release we support.

use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

/// API group of DRA.
pub const GROUP: &str = "resource.k8s.io";

/// The `resource.k8s.io` versions the operator can write, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DraVersion {
    /// GA since Kubernetes 1.34.
    V1,
    /// Kubernetes 1.33+ (deprecated 1.36).
    V1beta2,
    /// Kubernetes 1.32+ (deprecated 1.34).
    V1beta1,
}

impl DraVersion {
    /// Preference order used by discovery.
    pub const PREFERENCE: [DraVersion; 3] =
        [DraVersion::V1, DraVersion::V1beta2, DraVersion::V1beta1];

    /// The version segment (`v1beta2`).
    pub fn as_str(self) -> &'static str {
        match self {
            DraVersion::V1 => "v1",
            DraVersion::V1beta2 => "v1beta2",
            DraVersion::V1beta1 => "v1beta1",
        }
    }

    /// `resource.k8s.io/<version>`.
    pub fn api_version(self) -> String {
        format!("{GROUP}/{}", self.as_str())
    }

    /// Whether requests nest their device selection under `exactly`.
    pub fn nests_requests(self) -> bool {
        !matches!(self, DraVersion::V1beta1)
    }

    /// The ResourceClaimTemplate resource at this version.
    pub fn resource_claim_templates(self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(GROUP, self.as_str(), "ResourceClaimTemplate"),
            "resourceclaimtemplates",
        )
    }

    /// The DeviceClass resource at this version.
    pub fn device_classes(self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(GROUP, self.as_str(), "DeviceClass"),
            "deviceclasses",
        )
    }
}

/// The best version among those discovery reports as served (`v1alpha3` alone is not enough:
/// Kubernetes 1.31's DRA lacks admin access and is off by default).
pub fn pick_version<'a>(served: impl IntoIterator<Item = &'a str>) -> Option<DraVersion> {
    let served: Vec<&str> = served.into_iter().collect();
    DraVersion::PREFERENCE
        .into_iter()
        .find(|v| served.contains(&v.as_str()))
}

/// What the generated template asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceRequest {
    /// Every device of the class on the node, with admin access: sees all GPUs, consumes none.
    AdminAll {
        /// DeviceClass name.
        device_class: String,
    },
    /// One device of the class: the fallback when admin access is unusable; consumes a GPU.
    One {
        /// DeviceClass name.
        device_class: String,
    },
}

/// The ResourceClaimTemplate's `spec.spec` (a ResourceClaimSpec) for `request` at `version`.
pub fn claim_spec(version: DraVersion, request: &DeviceRequest) -> Value {
    let selection = match request {
        DeviceRequest::AdminAll { device_class } => json!({
            "deviceClassName": device_class,
            "allocationMode": "All",
            "adminAccess": true,
        }),
        DeviceRequest::One { device_class } => json!({
            "deviceClassName": device_class,
            "allocationMode": "ExactCount",
            "count": 1,
        }),
    };
    let request = if version.nests_requests() {
        json!({"name": crate::names::CLAIM_REQUEST_NAME, "exactly": selection})
    } else {
        let mut flat = selection;
        flat["name"] = json!(crate::names::CLAIM_REQUEST_NAME);
        flat
    };
    json!({"devices": {"requests": [request]}})
}

/// A user's inline ResourceClaimSpec (`gpu.resourceClaim.spec`) in the request shape of `version`.
///
/// The original chart documented the flat v1beta1 shape (`{"name", "deviceClassName"}`); clusters
/// serving `resource.k8s.io/v1` reject it, so a flat request is nested under `exactly` for v1/v1beta2
/// and an `exactly` request is flattened for v1beta1. `firstAvailable` requests and everything
/// outside `devices.requests` are kept as written.
pub fn adapt_claim_spec(spec: &Value, version: DraVersion) -> Value {
    let mut spec = spec.clone();
    let Some(requests) = spec
        .get_mut("devices")
        .and_then(|d| d.get_mut("requests"))
        .and_then(Value::as_array_mut)
    else {
        return spec;
    };
    for request in requests.iter_mut() {
        let Some(fields) = request.as_object_mut() else {
            continue;
        };
        if fields.contains_key("firstAvailable") {
            continue;
        }
        if version.nests_requests() {
            if fields.contains_key("exactly") || !fields.contains_key("deviceClassName") {
                continue;
            }
            let selection: serde_json::Map<String, Value> = fields
                .iter()
                .filter(|(k, _)| k.as_str() != "name")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            fields.retain(|k, _| k == "name");
            fields.insert("exactly".into(), Value::Object(selection));
        } else if let Some(Value::Object(exactly)) = fields.remove("exactly") {
            for (k, v) in exactly {
                fields.entry(k).or_insert(v);
            }
        }
    }
    spec
}

/// Whether a ResourceClaimSpec (a template's `spec.spec`, or `gpu.resourceClaim.spec`) requests
/// admin access in any version's shape. Read from the stored object: the API server drops
/// `adminAccess` silently when its feature gate is off.
pub fn requests_admin_access(claim_spec: &Value) -> bool {
    claim_spec["devices"]["requests"]
        .as_array()
        .is_some_and(|requests| {
            requests.iter().any(|request| {
                request["adminAccess"] == json!(true)
                    || request["exactly"]["adminAccess"] == json!(true)
                    || request["firstAvailable"]
                        .as_array()
                        .is_some_and(|subs| subs.iter().any(|s| s["adminAccess"] == json!(true)))
            })
        })
}

/// `requests_admin_access` of a whole ResourceClaimTemplate object.
pub fn template_requests_admin_access(template: &Value) -> bool {
    requests_admin_access(&template["spec"]["spec"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_v1_then_v1beta2_then_v1beta1_and_ignores_alpha() {
        assert_eq!(
            pick_version(["v1beta1", "v1", "v1beta2"]),
            Some(DraVersion::V1)
        );
        assert_eq!(
            pick_version(["v1beta1", "v1beta2", "v1alpha3"]),
            Some(DraVersion::V1beta2)
        );
        assert_eq!(pick_version(["v1beta1"]), Some(DraVersion::V1beta1));
        assert_eq!(pick_version(["v1alpha3"]), None);
        assert_eq!(pick_version([]), None);
    }

    #[test]
    fn the_original_charts_flat_inline_spec_fits_every_version() {
        let flat = json!({"devices": {"requests": [{"name": "gpu", "deviceClassName": "gpu.nvidia.com"}]}});
        let v1 = adapt_claim_spec(&flat, DraVersion::V1);
        assert_eq!(
            v1,
            json!({"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com"}}]}})
        );
        assert_eq!(adapt_claim_spec(&v1, DraVersion::V1beta2), v1);
        assert_eq!(adapt_claim_spec(&v1, DraVersion::V1beta1), flat);
        assert_eq!(adapt_claim_spec(&flat, DraVersion::V1beta1), flat);
        let admin = json!({"devices": {
            "requests": [{"name": "g", "deviceClassName": "c", "allocationMode": "All", "adminAccess": true,
                          "selectors": [{"cel": {"expression": "true"}}]}],
            "constraints": [{"requests": ["g"], "matchAttribute": "x"}]}});
        let nested = adapt_claim_spec(&admin, DraVersion::V1);
        assert_eq!(
            nested["devices"]["requests"][0]["exactly"]["adminAccess"],
            json!(true)
        );
        assert_eq!(
            nested["devices"]["requests"][0]["exactly"]["selectors"],
            admin["devices"]["requests"][0]["selectors"]
        );
        assert_eq!(
            nested["devices"]["constraints"],
            admin["devices"]["constraints"]
        );
        assert!(requests_admin_access(&nested));
        // firstAvailable and shapes we do not know are left alone.
        let first = json!({"devices": {"requests": [{"name": "g", "firstAvailable": [{"name": "a", "deviceClassName": "c"}]}]}});
        assert_eq!(adapt_claim_spec(&first, DraVersion::V1), first);
        assert_eq!(
            adapt_claim_spec(&json!({"devices": {}}), DraVersion::V1),
            json!({"devices": {}})
        );
    }

    #[test]
    fn request_shape_follows_the_version() {
        let admin = DeviceRequest::AdminAll {
            device_class: "gpu.nvidia.com".into(),
        };
        let nested = claim_spec(DraVersion::V1, &admin);
        assert_eq!(
            nested,
            json!({"devices": {"requests": [{"name": "gpus", "exactly": {
                "deviceClassName": "gpu.nvidia.com", "allocationMode": "All", "adminAccess": true}}]}})
        );
        assert_eq!(claim_spec(DraVersion::V1beta2, &admin), nested);
        assert_eq!(
            claim_spec(DraVersion::V1beta1, &admin),
            json!({"devices": {"requests": [{"name": "gpus", "deviceClassName": "gpu.nvidia.com",
                "allocationMode": "All", "adminAccess": true}]}})
        );
        let one = DeviceRequest::One {
            device_class: "gpu.nvidia.com".into(),
        };
        assert_eq!(
            claim_spec(DraVersion::V1beta1, &one),
            json!({"devices": {"requests": [{"name": "gpus", "deviceClassName": "gpu.nvidia.com",
                "allocationMode": "ExactCount", "count": 1}]}})
        );
    }

    #[test]
    fn admin_access_is_read_back_in_every_shape() {
        for version in DraVersion::PREFERENCE {
            let admin = claim_spec(
                version,
                &DeviceRequest::AdminAll {
                    device_class: "c".into(),
                },
            );
            assert!(requests_admin_access(&admin), "{version:?}");
            let one = claim_spec(
                version,
                &DeviceRequest::One {
                    device_class: "c".into(),
                },
            );
            assert!(!requests_admin_access(&one), "{version:?}");
        }
        let first_available = json!({"devices": {"requests": [{"name": "g", "firstAvailable": [
            {"name": "a", "deviceClassName": "c", "adminAccess": true}]}]}});
        assert!(requests_admin_access(&first_available));
        assert!(!requests_admin_access(&json!({})));
    }
}
