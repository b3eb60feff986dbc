//! `get_gpu_inventory`: what GPUs the node has and their current state, in units-in-names form.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use super::{Collector, Unavailable};
use crate::gpu::{Architecture, ComputeMode, DataSource, DeviceSnapshot, NodeSnapshot, ReadError};

/// The node's GPU inventory.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct InventoryReport {
    /// Where the data came from: `nvml` on a real node, `mock:<scenario>` or `mock-fixture:<file>` in
    /// demos and tests.
    pub data_source: String,
    /// The Kubernetes node (from the `NODE_NAME` environment variable), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_version: Option<String>,
    /// CUDA driver API version the driver supports, `MAJOR.MINOR`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cuda_driver_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nvml_version: Option<String>,
    /// GPUs NVML enumerates on the node.
    pub device_count: u32,
    pub gpus: Vec<GpuInventory>,
    /// Node-level values that could not be read, by field name.
    pub unavailable: BTreeMap<String, Unavailable>,
    /// Why processes carry no namespace/pod/container (no host PID namespace, unreadable pods,
    /// Kubernetes context off); absent when every process could be attributed or there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_attribution: Option<String>,
}

/// One GPU. Fields NVML could not read are absent and listed in `unavailable` with the reason.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct GpuInventory {
    pub index: u32,
    /// Set when the GPU could not be reached at all (e.g. fallen off the bus): the GPU is still listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// NVML bus id, e.g. `00000000:18:00.0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pci_bus_id: Option<String>,
    /// PCI device and vendor id as NVML packs them, hex (`0x233010DE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pci_device_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<Architecture>,
    /// CUDA compute capability, `MAJOR.MINOR`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_capability: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vbios_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_total_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_used_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_free_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<u32>,
    /// Temperature at which the GPU starts slowing its clocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature_slowdown_c: Option<u32>,
    /// Temperature at which the GPU shuts down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature_shutdown_c: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power_draw_watts: Option<f64>,
    /// The power limit the driver enforces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power_limit_watts: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_sm_mhz: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_memory_mhz: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_sm_max_mhz: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_memory_max_mhz: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utilization_gpu_percent: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utilization_memory_percent: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcie_gen_current: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcie_gen_max: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcie_width_current: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcie_width_max: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistence_mode_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mig_mode_enabled: Option<bool>,
    /// MIG mode after the next GPU reset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mig_mode_pending: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_mode: Option<ComputeMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecc_enabled: Option<bool>,
    /// NVLinks the GPU has; absent on GPUs without NVLink (see `unavailable`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nvlink_links_total: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nvlink_links_active: Option<u32>,
    /// Processes holding compute contexts (host PIDs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes: Option<Vec<GpuProcessInfo>>,
    pub unavailable: BTreeMap<String, Unavailable>,
}

/// A process using the GPU.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct GpuProcessInfo {
    /// Process id in the host's PID namespace.
    pub pid: u32,
    /// Absent when NVML does not report it (e.g. under MIG).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_memory_bytes: Option<u64>,
    /// The pod's namespace, when the process could be tied to a pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The pod UID and container id from the process's cgroup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// Why this process could not be tied to a container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_unknown: Option<String>,
}

/// Builds the inventory from a snapshot (pure).
pub fn build(
    snapshot: &NodeSnapshot,
    source: &DataSource,
    node_name: Option<&str>,
) -> InventoryReport {
    let mut node = Collector::default();
    InventoryReport {
        data_source: source.to_string(),
        node_name: node_name.map(str::to_owned),
        driver_version: node.take("driver_version", &snapshot.driver_version),
        cuda_driver_version: node.take("cuda_driver_version", &snapshot.cuda_driver_version),
        nvml_version: node.take("nvml_version", &snapshot.nvml_version),
        device_count: snapshot.device_count,
        gpus: snapshot.devices.iter().map(gpu).collect(),
        unavailable: node.unavailable,
        process_attribution: None,
    }
}

fn gpu(d: &DeviceSnapshot) -> GpuInventory {
    let mut c = Collector::default();
    let pci = c.take_group(&["pci_bus_id", "pci_device_id"], &d.pci);
    let memory = c.take_group(
        &[
            "memory_total_bytes",
            "memory_used_bytes",
            "memory_free_bytes",
        ],
        &d.memory,
    );
    let utilization = c.take_group(
        &["utilization_gpu_percent", "utilization_memory_percent"],
        &d.utilization,
    );
    let mig = c.take_group(&["mig_mode_enabled", "mig_mode_pending"], &d.mig_mode);
    let links = c.take_group(&["nvlink_links_total", "nvlink_links_active"], &d.nvlinks);
    GpuInventory {
        index: d.index,
        error: unreachable_reason(d),
        name: c.take("name", &d.name),
        uuid: c.take("uuid", &d.uuid),
        serial: c.take("serial", &d.serial),
        pci_bus_id: pci.as_ref().map(|p| p.bus_id.nvml_bus_id()),
        pci_device_id: pci.as_ref().map(|p| format!("0x{:08X}", p.device_id)),
        architecture: c.take("architecture", &d.architecture),
        compute_capability: c
            .take("compute_capability", &d.compute_capability)
            .map(|cc| format!("{}.{}", cc.major, cc.minor)),
        vbios_version: c.take("vbios_version", &d.vbios_version),
        memory_total_bytes: memory.as_ref().map(|m| m.total_bytes),
        memory_used_bytes: memory.as_ref().map(|m| m.used_bytes),
        memory_free_bytes: memory.as_ref().map(|m| m.free_bytes),
        temperature_c: c.take("temperature_c", &d.temperature_c),
        temperature_slowdown_c: c.take("temperature_slowdown_c", &d.temperature_slowdown_c),
        temperature_shutdown_c: c.take("temperature_shutdown_c", &d.temperature_shutdown_c),
        power_draw_watts: c.take("power_draw_watts", &d.power_draw_watts),
        power_limit_watts: c.take("power_limit_watts", &d.power_limit_watts),
        clock_sm_mhz: c.take("clock_sm_mhz", &d.clock_sm_mhz),
        clock_memory_mhz: c.take("clock_memory_mhz", &d.clock_memory_mhz),
        clock_sm_max_mhz: c.take("clock_sm_max_mhz", &d.clock_sm_max_mhz),
        clock_memory_max_mhz: c.take("clock_memory_max_mhz", &d.clock_memory_max_mhz),
        utilization_gpu_percent: utilization.as_ref().map(|u| u.gpu_percent),
        utilization_memory_percent: utilization.as_ref().map(|u| u.memory_percent),
        pcie_gen_current: c.take("pcie_gen_current", &d.pcie_gen_current),
        pcie_gen_max: c.take("pcie_gen_max", &d.pcie_gen_max),
        pcie_width_current: c.take("pcie_width_current", &d.pcie_width_current),
        pcie_width_max: c.take("pcie_width_max", &d.pcie_width_max),
        persistence_mode_enabled: c.take("persistence_mode_enabled", &d.persistence_mode),
        mig_mode_enabled: mig.as_ref().map(|m| m.current),
        mig_mode_pending: mig.as_ref().map(|m| m.pending),
        compute_mode: c.take("compute_mode", &d.compute_mode),
        ecc_enabled: c.take("ecc_enabled", &d.ecc_enabled),
        nvlink_links_total: links.as_ref().map(|l| l.len() as u32),
        nvlink_links_active: links
            .as_ref()
            .map(|l| l.iter().filter(|l| l.active == Ok(true)).count() as u32),
        processes: c.take("processes", &d.processes).map(|ps| {
            ps.into_iter()
                .map(|p| GpuProcessInfo {
                    pid: p.pid,
                    used_memory_bytes: p.used_memory_bytes,
                    namespace: None,
                    pod: None,
                    container: None,
                    pod_uid: None,
                    container_id: None,
                    owner_unknown: None,
                })
                .collect()
        }),
        unavailable: c.unavailable,
    }
}

/// The whole-GPU error when the GPU cannot be reached: a failed handle, or a lost GPU whose identity
/// reads fail.
fn unreachable_reason(d: &DeviceSnapshot) -> Option<String> {
    let describe = |e: &ReadError| format!("GPU {} cannot be reached: {e}", d.index);
    if let Err(e) = &d.handle {
        return Some(describe(e));
    }
    match (&d.name, &d.uuid) {
        (Err(e), Err(_)) if e.is_gpu_lost() => Some(describe(e)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::mock::MockBackend;
    use crate::gpu::{GpuBackend, GpuFilter, NvmlReturn};
    use gpu_fixture::Fixture;

    fn report(yaml_or_builtin: &str) -> InventoryReport {
        let fixture = Fixture::builtin(yaml_or_builtin)
            .or_else(|_| Fixture::from_yaml(yaml_or_builtin))
            .unwrap();
        let source = DataSource::MockScenario("t".into());
        let b = MockBackend::new(fixture, source.clone());
        build(
            &b.snapshot(GpuFilter::All).unwrap(),
            &source,
            Some("node-a"),
        )
    }

    #[test]
    fn healthy_inventory_lists_eight_gpus_in_units() {
        let r = report("healthy");
        assert_eq!(r.data_source, "mock:t");
        assert_eq!(r.node_name.as_deref(), Some("node-a"));
        assert_eq!(r.device_count, 8);
        assert_eq!(r.cuda_driver_version.as_deref(), Some("12.4"));
        let g = &r.gpus[0];
        assert_eq!(g.pci_bus_id.as_deref(), Some("00000000:18:00.0"));
        assert_eq!(g.pci_device_id.as_deref(), Some("0x233010DE"));
        assert_eq!(g.memory_total_bytes, Some(85_520_809_984));
        assert_eq!(g.memory_free_bytes, Some(85_520_809_984 - 555_745_280));
        assert_eq!(g.power_limit_watts, Some(700.0));
        assert_eq!(g.nvlink_links_active, Some(18));
        assert_eq!(g.compute_capability.as_deref(), Some("9.0"));
        assert!(g.unavailable.is_empty(), "{:?}", g.unavailable);
        assert!(g.error.is_none());
    }

    #[test]
    fn not_supported_values_are_absent_with_reason_never_zero() {
        let r = report(
            "extends: healthy\ngpu_overrides: {1: {temperature_c: {error: NOT_SUPPORTED}, memory: {error: NO_PERMISSION}}}",
        );
        let g = &r.gpus[1];
        assert_eq!(g.temperature_c, None);
        assert_eq!(
            g.unavailable["temperature_c"].code,
            NvmlReturn::NotSupported
        );
        assert!(
            g.unavailable["temperature_c"]
                .reason
                .contains("not supported")
        );
        for f in [
            "memory_total_bytes",
            "memory_used_bytes",
            "memory_free_bytes",
        ] {
            assert_eq!(g.unavailable[f].code, NvmlReturn::NoPermission, "{f}");
        }
        let json = serde_json::to_value(g).unwrap();
        assert!(json.get("temperature_c").is_none(), "absent, not null or 0");
        assert_eq!(r.gpus[0].temperature_c, Some(33));
    }

    #[test]
    fn a_lost_gpu_is_still_listed_with_its_error() {
        let r = report("fallen-off-bus");
        assert_eq!(r.gpus.len(), 8);
        let g = &r.gpus[5];
        assert_eq!(g.index, 5);
        let err = g.error.as_deref().unwrap();
        assert!(
            err.contains("GPU 5 cannot be reached") && err.contains("GPU_IS_LOST"),
            "{err}"
        );
        assert_eq!(g.unavailable["uuid"].code, NvmlReturn::GpuIsLost);
        assert!(r.gpus[4].error.is_none());
    }
}
