//! Entry points for the fuzz targets (`fuzz/`), the tests that replay their corpora on stable
//! Rust, and the property tests: arbitrary bytes become a `GpuDiagnosticsConfig` spec and
//! [`ClusterFacts`], which go through the pure core (resolve → render → status) exactly as a
//! reconcile sends them. Panics only when an invariant breaks.

use crds::{GpuDiagnosticsConfig, GpuDiagnosticsConfigSpec, GpuDiagnosticsConfigStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::access::{Resolution, resolve_access};
use crate::dra::DraVersion;
use crate::facts::{AdminAccess, ClusterFacts, DraFacts, NodeFacts, UserTemplate};
use crate::render::{Desired, NamespaceOwnership, render};
use crate::status::{StatusInput, compute};
use crate::{apply, status};

/// How many leading input bytes describe the cluster ([`facts_from_bytes`]); the rest is the spec.
pub const FACT_BYTES: usize = 4;

/// Cluster facts from four bytes, so a fuzzer (or a property test) reaches every combination:
/// byte 0 = RuntimeClass (exists, handler), DRA version and DeviceClass, user template;
/// byte 1 = admin-access probe result; byte 2 = number of nodes (0..=4); byte 3 = per node, one bit
/// for GPUs allocatable and one for runtime handlers reported (with or without `nvidia`).
pub fn facts_from_bytes(bytes: [u8; FACT_BYTES]) -> ClusterFacts {
    let [b0, b1, b2, b3] = bytes;
    let dra_version = match (b0 >> 2) & 3 {
        1 => Some(DraVersion::V1),
        2 => Some(DraVersion::V1beta2),
        3 => Some(DraVersion::V1beta1),
        _ => None,
    };
    let user_template = match (b0 >> 5) & 3 {
        1 => Some(UserTemplate::Missing),
        2 => Some(UserTemplate::Found {
            admin_access: false,
        }),
        3 => Some(UserTemplate::Found { admin_access: true }),
        _ => None,
    };
    let nodes = (0..usize::from(b2 % 5))
        .map(|i| NodeFacts {
            name: format!("gpu-node-{i}"),
            gpu_allocatable: u64::from((b3 >> i) & 1) * 8,
            runtime_handlers: match (b3 >> (4 + i % 4)) & 1 {
                0 => None,
                _ if i % 2 == 0 => Some(vec!["runc".into(), "nvidia".into()]),
                _ => Some(vec!["runc".into()]),
            },
        })
        .collect();
    ClusterFacts {
        runtime_class_handler: (b0 & 1 == 1)
            .then(|| if b0 & 2 == 0 { "nvidia" } else { "nvidia-cdi" }.to_owned()),
        dra: dra_version.map(|version| DraFacts {
            version,
            device_class_exists: b0 & 0x80 != 0,
            user_template,
        }),
        dra_unsupported_versions: if b1 & 4 != 0 {
            vec!["v1alpha3".into()]
        } else {
            vec![]
        },
        nodes,
        admin_access: match b1 % 3 {
            0 => AdminAccess::Unknown,
            1 => AdminAccess::Usable,
            _ => AdminAccess::Unusable("the API server dropped adminAccess".into()),
        },
    }
}

/// A config named `fuzz` (with a uid, as read from the API server) holding `spec`.
pub fn config(spec: GpuDiagnosticsConfigSpec) -> GpuDiagnosticsConfig {
    let mut config = GpuDiagnosticsConfig::new("fuzz", spec);
    config.metadata.uid = Some("00000000-fuzz".into());
    config.metadata.generation = Some(3);
    config
}

/// The decision a reconcile makes from `spec` and `facts`: the resolution (re-resolved once the
/// admin-access probe has an answer, as the controller does) and the rendered objects.
pub fn decide(config: &GpuDiagnosticsConfig, facts: &ClusterFacts) -> (Resolution, Desired) {
    let mut resolution = resolve_access(&config.spec, facts);
    if resolution.needs_admin_probe && facts.admin_access == AdminAccess::Unknown {
        let probed = ClusterFacts {
            admin_access: AdminAccess::Usable,
            ..facts.clone()
        };
        resolution = resolve_access(&config.spec, &probed);
    }
    let desired = render(config, &resolution, NamespaceOwnership::CoOwned, "0.1.0")
        .expect("the config has a name and uid");
    (resolution, desired)
}

/// The status a reconcile would write for `resolution` and `desired` at `now` (seconds).
pub fn status_at(
    previous: Option<&GpuDiagnosticsConfigStatus>,
    resolution: &Resolution,
    desired: &Desired,
    facts: &ClusterFacts,
    now_s: i64,
) -> GpuDiagnosticsConfigStatus {
    let now = Time(Timestamp::from_second(now_s).expect("a valid timestamp"));
    compute(
        previous,
        StatusInput {
            generation: Some(3),
            resolution,
            issues: vec![],
            daemon_set: desired.daemon_set.as_ref(),
            selected_nodes: facts.nodes.len(),
            node_problems: vec![],
            dra: None,
        },
        &now,
    )
}

/// Fuzz entry: [`FACT_BYTES`] of facts, then a spec as JSON (its wire form). A spec that parses goes
/// through resolve → render → status; rendering must be deterministic, every rendered object must
/// count as up to date against itself (a reconcile over unchanged facts writes nothing), and a
/// second status computation over the same input must change nothing.
pub fn config_pipeline(data: &[u8]) {
    let mut fact_bytes = [0u8; FACT_BYTES];
    let split = data.len().min(FACT_BYTES);
    fact_bytes[..split].copy_from_slice(&data[..split]);
    let Ok(text) = std::str::from_utf8(&data[split..]) else {
        return;
    };
    let Ok(spec) = serde_json::from_str::<GpuDiagnosticsConfigSpec>(text) else {
        return;
    };
    let facts = facts_from_bytes(fact_bytes);
    let config = config(spec);
    let (resolution, desired) = decide(&config, &facts);
    assert!(!resolution.message.is_empty(), "{resolution:?}");
    let (again, desired_again) = decide(&config, &facts);
    assert_eq!(resolution, again, "resolve_access is not deterministic");
    assert_eq!(desired, desired_again, "render is not deterministic");
    for object in rendered_objects(&desired) {
        let stamped = apply::stamp(object.clone());
        assert!(
            apply::up_to_date(&stamped, Some(&stamped)),
            "an object equal to the live one would be applied again: {stamped}"
        );
    }
    let first = status_at(None, &resolution, &desired, &facts, 1_800_000_000);
    let second = status_at(Some(&first), &resolution, &desired, &facts, 1_800_000_600);
    assert_eq!(first, second, "a second status over the same input differs");
    for condition in [status::GPU_ACCESS_RESOLVED, status::READY, status::DEGRADED] {
        assert!(
            first.conditions.iter().any(|c| c.type_ == condition),
            "no {condition} condition: {first:?}"
        );
    }
}

/// Every object of `desired`.
pub fn rendered_objects(desired: &Desired) -> Vec<&serde_json::Value> {
    [
        desired.namespace.as_ref(),
        desired.service_account.as_ref(),
        Some(&desired.cluster_role),
        Some(&desired.cluster_role_binding),
        desired.daemon_set.as_ref(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
