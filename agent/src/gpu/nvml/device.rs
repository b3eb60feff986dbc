//! Reads one GPU through NVML into a [`DeviceSnapshot`]: one NVML call per value, each failing on its own,
//! in the snapshot's units (bytes, °C, W, MHz, ns).

use nvml_wrapper::enum_wrappers::device::{
    Clock, ComputeMode as NvmlComputeMode, EccCounter, MemoryError, PerformancePolicy,
    RetirementCause, TemperatureSensor, TemperatureThreshold,
};
use nvml_wrapper::enum_wrappers::nv_link::ErrorCounter;
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};
use nvml_wrapper_sys::bindings::{NVML_NVLINK_MAX_LINKS, field_id};

use crate::gpu::*;

use super::error::read_error;
use super::raw;

/// Reads GPU `index`; a GPU whose handle cannot be had is still returned, every value carrying why.
pub fn read_device(nvml: &Nvml, index: u32) -> DeviceSnapshot {
    let device = match nvml.device_by_index(index) {
        Ok(device) => device,
        Err(e) => {
            let e = read_error(e);
            return DeviceSnapshot::unreachable(index, Err(e.clone()), e);
        }
    };
    let [
        remapped_rows_correctable,
        remapped_rows_uncorrectable,
        remap_pending,
        remap_failure,
        recovery_action,
    ] = raw::field_values(
        &device,
        [
            field_id::NVML_FI_DEV_REMAPPED_COR,
            field_id::NVML_FI_DEV_REMAPPED_UNC,
            field_id::NVML_FI_DEV_REMAPPED_PENDING,
            field_id::NVML_FI_DEV_REMAPPED_FAILURE,
            field_id::NVML_FI_DEV_GET_GPU_RECOVERY_ACTION,
        ],
    );
    let d = &device;
    DeviceSnapshot {
        index,
        handle: Ok(()),
        name: r(d.name()),
        uuid: r(d.uuid()),
        serial: r(d.serial()),
        pci: pci(d),
        architecture: r(raw::architecture(d)).map(architecture),
        compute_capability: r(d.cuda_compute_capability()).and_then(|cc| {
            match (u32::try_from(cc.major), u32::try_from(cc.minor)) {
                (Ok(major), Ok(minor)) => Ok(ComputeCapability { major, minor }),
                _ => Err(ReadError::with_detail(
                    NvmlReturn::Unknown,
                    format!("NVML returned compute capability {}.{}", cc.major, cc.minor),
                )),
            }
        }),
        vbios_version: r(d.vbios_version()),
        memory: r(d.memory_info()).map(|m| MemoryInfo {
            total_bytes: m.total,
            used_bytes: m.used,
            free_bytes: m.free,
        }),
        temperature_c: r(d.temperature(TemperatureSensor::Gpu)),
        temperature_slowdown_c: r(d.temperature_threshold(TemperatureThreshold::Slowdown)),
        temperature_shutdown_c: r(d.temperature_threshold(TemperatureThreshold::Shutdown)),
        power_draw_watts: r(d.power_usage()).map(watts),
        power_limit_watts: r(d.enforced_power_limit()).map(watts),
        clock_sm_mhz: r(d.clock_info(Clock::SM)),
        clock_memory_mhz: r(d.clock_info(Clock::Memory)),
        clock_sm_max_mhz: r(d.max_clock_info(Clock::SM)),
        clock_memory_max_mhz: r(d.max_clock_info(Clock::Memory)),
        utilization: r(d.utilization_rates()).map(|u| Utilization {
            gpu_percent: u.gpu,
            memory_percent: u.memory,
        }),
        pcie_gen_current: r(d.current_pcie_link_gen()),
        pcie_gen_max: r(d.max_pcie_link_gen()),
        pcie_width_current: r(d.current_pcie_link_width()),
        pcie_width_max: r(d.max_pcie_link_width()),
        pcie_replay_counter: r(d.pcie_replay_counter()).map(u64::from),
        persistence_mode: r(d.is_in_persistent_mode()),
        mig_mode: r(d.mig_mode()).map(|m| MigMode {
            current: m.current != 0,
            pending: m.pending != 0,
        }),
        compute_mode: r(d.compute_mode()).map(compute_mode),
        processes: r(d.running_compute_processes()).map(|ps| {
            ps.into_iter()
                .map(|p| GpuProcess {
                    pid: p.pid,
                    used_memory_bytes: match p.used_gpu_memory {
                        UsedGpuMemory::Used(bytes) => Some(bytes),
                        UsedGpuMemory::Unavailable => None,
                    },
                })
                .collect()
        }),
        ecc_enabled: r(d.is_ecc_enabled()).map(|s| s.currently_enabled),
        ecc_volatile_corrected: r(d.total_ecc_errors(MemoryError::Corrected, EccCounter::Volatile)),
        ecc_volatile_uncorrected: r(
            d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile)
        ),
        ecc_aggregate_corrected: r(
            d.total_ecc_errors(MemoryError::Corrected, EccCounter::Aggregate)
        ),
        ecc_aggregate_uncorrected: r(
            d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Aggregate)
        ),
        retired_pages_sbe: retired_pages(d, RetirementCause::MultipleSingleBitEccErrors),
        retired_pages_dbe: retired_pages(d, RetirementCause::DoubleBitEccError),
        retired_pages_pending: r(d.are_pages_pending_retired()),
        remapped_rows_correctable: remapped_rows_correctable.and_then(to_u32),
        remapped_rows_uncorrectable: remapped_rows_uncorrectable.and_then(to_u32),
        remap_pending: remap_pending.map(|v| v != 0),
        remap_failure: remap_failure.map(|v| v != 0),
        clock_event_reasons: r(raw::clock_event_reasons(d)),
        violation_thermal_ns: r(d.violation_status(PerformancePolicy::Thermal))
            .map(|v| v.violation_time),
        violation_power_ns: r(d.violation_status(PerformancePolicy::Power))
            .map(|v| v.violation_time),
        inforom_valid: match d.validate_info_rom() {
            Ok(()) => Ok(true),
            Err(NvmlError::CorruptedInfoROM) => Ok(false),
            Err(e) => Err(read_error(e)),
        },
        nvlinks: nvlinks(d),
        recovery_action: recovery_action.and_then(to_u32),
    }
}

/// Reads only what attributes kernel-log lines to a GPU.
pub fn read_identity(nvml: &Nvml, index: u32) -> DeviceIdentity {
    match nvml.device_by_index(index) {
        Ok(device) => DeviceIdentity {
            index,
            uuid: r(device.uuid()),
            pci: pci(&device),
        },
        Err(e) => {
            let e = read_error(e);
            DeviceIdentity {
                index,
                uuid: Err(e.clone()),
                pci: Err(e),
            }
        }
    }
}

fn r<T>(result: Result<T, NvmlError>) -> Reading<T> {
    result.map_err(read_error)
}

/// NVML's milliwatts → watts, exact to the milliwatt.
pub fn watts(milliwatts: u32) -> f64 {
    f64::from(milliwatts) / 1000.0
}

fn to_u32(value: u64) -> Reading<u32> {
    u32::try_from(value).map_err(|_| {
        ReadError::with_detail(
            NvmlReturn::Unknown,
            format!("NVML returned {value}, out of range"),
        )
    })
}

fn pci(device: &Device) -> Reading<PciInfo> {
    let info = r(device.pci_info())?;
    let bus_id = info
        .bus_id
        .parse::<PciAddress>()
        .map_err(|e| ReadError::with_detail(NvmlReturn::Unknown, format!("NVML returned {e}")))?;
    Ok(PciInfo {
        bus_id,
        device_id: info.pci_device_id,
        // Always present with the `_v3` call the wrapper makes.
        subsystem_id: info.pci_sub_system_id.unwrap_or_default(),
    })
}

fn retired_pages(device: &Device, cause: RetirementCause) -> Reading<u32> {
    let pages = r(device.retired_pages(cause))?;
    to_u32(pages.len() as u64)
}

/// `nvmlDeviceArchitecture_t` → [`Architecture`]; numbers newer than this agent are `Unknown`.
pub fn architecture(value: u32) -> Architecture {
    const ALL: [Architecture; 9] = [
        Architecture::Kepler,
        Architecture::Maxwell,
        Architecture::Pascal,
        Architecture::Volta,
        Architecture::Turing,
        Architecture::Ampere,
        Architecture::Ada,
        Architecture::Hopper,
        Architecture::Blackwell,
    ];
    ALL.into_iter()
        .find(|a| a.nvml_value() == value)
        .unwrap_or(Architecture::Unknown)
}

fn compute_mode(mode: NvmlComputeMode) -> ComputeMode {
    match mode {
        NvmlComputeMode::Default => ComputeMode::Default,
        NvmlComputeMode::ExclusiveThread => ComputeMode::ExclusiveThread,
        NvmlComputeMode::Prohibited => ComputeMode::Prohibited,
        NvmlComputeMode::ExclusiveProcess => ComputeMode::ExclusiveProcess,
    }
}

/// Per-link NVLink state and counters. Links are probed from 0 until one answers `NOT_SUPPORTED` or
/// `INVALID_ARGUMENT` (past the part's last link); when link 0 cannot be read at all, neither can NVLink
/// (e.g. `NOT_SUPPORTED` on a PCIe card), and that is the result.
fn nvlinks(device: &Device) -> Reading<Vec<NvLinkSnapshot>> {
    let mut links = Vec::new();
    for n in 0..NVML_NVLINK_MAX_LINKS {
        let link = device.link_wrapper_for(n);
        let active = r(link.is_active());
        if let Err(e) = &active {
            if n == 0 {
                return Err(e.clone());
            }
            if matches!(
                e.code,
                NvmlReturn::NotSupported | NvmlReturn::InvalidArgument
            ) {
                break;
            }
        }
        let counter = |c| r(link.error_counter(c));
        links.push(NvLinkSnapshot {
            link: n,
            active,
            crc_flit_errors: counter(ErrorCounter::DlCrcFlit),
            crc_data_errors: counter(ErrorCounter::DlCrcData),
            replay_errors: counter(ErrorCounter::DlReplay),
            recovery_errors: counter(ErrorCounter::DlRecovery),
        });
    }
    Ok(links)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_enums_convert_exactly() {
        assert_eq!(watts(71_520), 71.52);
        assert_eq!(watts(700_000), 700.0);
        assert_eq!(watts(1), 0.001);
        assert_eq!(architecture(9), Architecture::Hopper);
        assert_eq!(architecture(7), Architecture::Ampere);
        assert_eq!(architecture(10), Architecture::Blackwell);
        assert_eq!(architecture(11), Architecture::Unknown);
        assert_eq!(architecture(0xffff_ffff), Architecture::Unknown);
        assert_eq!(to_u32(5), Ok(5));
        assert_eq!(to_u32(1 << 40).unwrap_err().code, NvmlReturn::Unknown);
    }
}
