//! The agent's flight-recorder wiring: a memory-backed, size-limited emptyDir mounted at the history
//! directory (the root filesystem stays read-only; the history survives container restarts), and
//! the `AGENT_*` variables `/agent idle` and `kubectl exec … /agent` sessions read.

use crds::{GpuDiagnosticsConfigSpec, HISTORY_DIR, HISTORY_MAX_BYTES, HISTORY_VOLUME_SIZE};
use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, EnvVar, Volume, VolumeMount};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The history volume's name in the pod.
const VOLUME: &str = "history";

/// What the pod gains when the recorder is on: the volume, its mount and the variables.
pub(super) struct HistoryWiring {
    pub volume: Volume,
    pub mount: VolumeMount,
    pub env: Vec<EnvVar>,
}

/// The wiring for `spec.agent.history`, or `None` when it is disabled.
pub(super) fn wiring(spec: &GpuDiagnosticsConfigSpec) -> Option<HistoryWiring> {
    let history = &spec.agent.history;
    if !history.enabled {
        return None;
    }
    let var = |name: &str, value: String| EnvVar {
        name: name.into(),
        value: Some(value),
        value_from: None,
    };
    Some(HistoryWiring {
        volume: Volume {
            name: VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".into()),
                size_limit: Some(Quantity(HISTORY_VOLUME_SIZE.into())),
            }),
            ..Volume::default()
        },
        mount: VolumeMount {
            name: VOLUME.into(),
            mount_path: HISTORY_DIR.into(),
            ..VolumeMount::default()
        },
        env: vec![
            var("AGENT_HISTORY_DIR", HISTORY_DIR.into()),
            var("AGENT_SAMPLE_INTERVAL", history.sample_interval.clone()),
            var("AGENT_HISTORY_RETENTION", history.retention.clone()),
            var("AGENT_HISTORY_MAX_BYTES", HISTORY_MAX_BYTES.to_string()),
        ],
    })
}
