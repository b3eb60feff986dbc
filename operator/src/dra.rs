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
