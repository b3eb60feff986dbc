//! `get_gpu_inventory`: what GPUs the node has and their current state, in units-in-names form.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use super::{Collector, Unavailable};
use crate::gpu::{
    Architecture, ComputeCapability, ComputeMode, DataSource, DeviceSnapshot, GpuProcess,
    MemoryInfo, MigMode, NodeSnapshot, NvLinkSnapshot, PciInfo, ReadError, ReadingKind,
    Utilization, kind,
};

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

/// Writes [`GpuInventory`] and `gpu` from the table of GPU values: each value fills its output keys,
/// in the table's order.
macro_rules! gpu_inventory {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident: $kind:ident, unit $unit:literal, nvml $call:expr, fixture $key:literal,
            output [$($(#[doc = $odoc:literal])* $okey:ident: $oty:ty),* $(,)?];
    )*) => {
        /// One GPU. Fields NVML could not read are absent and listed in `unavailable` with the reason.
        #[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
        pub struct GpuInventory {
            pub index: u32,
            /// Set when the GPU could not be reached at all (e.g. fallen off the bus): the GPU is still listed.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub error: Option<String>,
            $($(
                $(#[doc = $odoc])*
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $okey: Option<$oty>,
            )*)*
            pub unavailable: BTreeMap<String, Unavailable>,
        }

        fn gpu(d: &DeviceSnapshot) -> GpuInventory {
            let mut c = Collector::default();
            $(
                let ($($okey,)*) = outputs!(c, d.$name, $kind, [$($okey),*]);
            )*
            GpuInventory {
                index: d.index,
                error: unreachable_reason(d),
                $($($okey,)*)*
                unavailable: c.unavailable,
            }
        }
    };
}

/// One value's output fields: none, one ([`OutputValue`]) or several ([`OutputGroup`]).
macro_rules! outputs {
    ($c:ident, $reading:expr, $kind:ident, []) => {
        ()
    };
    ($c:ident, $reading:expr, $kind:ident, [$key:ident]) => {
        ($c.take(stringify!($key), &$reading)
            .map(<kind::$kind as OutputValue>::output),)
    };
    ($c:ident, $reading:expr, $kind:ident, [$($key:ident),+]) => {
        $c.take_group(&[$(stringify!($key)),+], &$reading)
            .as_ref()
            .map_or_else(Default::default, <kind::$kind as OutputGroup>::outputs)
    };
}

gpu_fixture::gpu_values!(gpu_inventory);

/// A kind of value shown as one output field.
trait OutputValue: ReadingKind {
    type Output;
    fn output(reading: Self::Reading) -> Self::Output;
}

/// Kinds shown as they are read.
macro_rules! shown_as_read {
    ($($kind:ident),*) => {$(
        impl OutputValue for kind::$kind {
            type Output = Self::Reading;
            fn output(reading: Self::Reading) -> Self::Reading {
                reading
            }
        }
    )*};
}
shown_as_read!(Text, Count, Flag, Watts, Arch, Compute);

impl OutputValue for kind::Capability {
    type Output = String;
    fn output(cc: ComputeCapability) -> String {
        format!("{}.{}", cc.major, cc.minor)
    }
}

impl OutputValue for kind::Processes {
    type Output = Vec<GpuProcessInfo>;
    fn output(processes: Vec<GpuProcess>) -> Vec<GpuProcessInfo> {
        processes
            .into_iter()
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
    }
}

/// A kind of value shown as several output fields (a tuple of options, in output order; all `None`
/// when the value is unavailable).
trait OutputGroup: ReadingKind {
    type Outputs: Default;
    fn outputs(reading: &Self::Reading) -> Self::Outputs;
}

impl OutputGroup for kind::Pci {
    type Outputs = (Option<String>, Option<String>);
    fn outputs(p: &PciInfo) -> Self::Outputs {
        (
            Some(p.bus_id.nvml_bus_id()),
            Some(format!("0x{:08X}", p.device_id)),
        )
    }
}

impl OutputGroup for kind::Memory {
    type Outputs = (Option<u64>, Option<u64>, Option<u64>);
    fn outputs(m: &MemoryInfo) -> Self::Outputs {
        (Some(m.total_bytes), Some(m.used_bytes), Some(m.free_bytes))
    }
}

impl OutputGroup for kind::Utilization {
    type Outputs = (Option<u32>, Option<u32>);
    fn outputs(u: &Utilization) -> Self::Outputs {
        (Some(u.gpu_percent), Some(u.memory_percent))
    }
}

impl OutputGroup for kind::Mig {
    type Outputs = (Option<bool>, Option<bool>);
    fn outputs(m: &MigMode) -> Self::Outputs {
        (Some(m.current), Some(m.pending))
    }
}

impl OutputGroup for kind::NvLinks {
    type Outputs = (Option<u32>, Option<u32>);
    fn outputs(links: &Vec<NvLinkSnapshot>) -> Self::Outputs {
        let active = links.iter().filter(|l| l.active == Ok(true)).count();
        (Some(links.len() as u32), Some(active as u32))
    }
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
    fn every_output_key_of_a_value_the_gpu_lacks_is_unavailable_with_its_reason() {
        let r = report("node: {}\ngpus: [{}]");
        let g = &r.gpus[0];
        let json = serde_json::to_value(g).unwrap();
        for value in gpu_fixture::GPU_VALUES {
            for key in value.output_keys {
                assert_eq!(g.unavailable[*key].code, NvmlReturn::NotSupported, "{key}");
                assert!(json.get(*key).is_none(), "{key} is absent, not null or 0");
            }
        }
        let keys: usize = gpu_fixture::GPU_VALUES
            .iter()
            .map(|v| v.output_keys.len())
            .sum();
        assert_eq!(g.unavailable.len(), keys);
        assert_eq!(keys, 34);
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
