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
use nvml_wrapper_sys::bindings::NVML_NVLINK_MAX_LINKS;

use crate::gpu::*;

use super::error::read_error;
use super::raw;

/// Writes `read_present`, which reads every value of the table of GPU values through NVML.
macro_rules! read_present {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident: $kind:ident, unit $unit:literal, nvml $call:expr, fixture $key:literal,
            output [$($(#[doc = $odoc:literal])* $okey:ident: $oty:ty),* $(,)?];
    )*) => {
        /// Every value of a GPU whose handle was had.
        fn read_present(index: u32, reader: &DeviceReader) -> DeviceSnapshot {
            DeviceSnapshot {
                index,
                handle: Ok(()),
                $($name: <kind::$kind as NvmlValue>::read(reader, $call),)*
            }
        }
    };
}
gpu_fixture::gpu_values!(read_present);

/// Reads GPU `index`; a GPU whose handle cannot be had is still returned, every value carrying why.
pub fn read_device(nvml: &Nvml, index: u32) -> DeviceSnapshot {
    let device = match nvml.device_by_index(index) {
        Ok(device) => device,
        Err(e) => {
            let e = read_error(e);
            return DeviceSnapshot::unreachable(index, Err(e.clone()), e);
        }
    };
    read_present(index, &DeviceReader::new(&device))
}

/// One GPU's handle, with every field value the table reads fetched in one
/// `nvmlDeviceGetFieldValues` call.
struct DeviceReader<'a> {
    device: &'a Device<'a>,
    fields: Vec<(u32, Reading<u64>)>,
}

impl<'a> DeviceReader<'a> {
    fn new(device: &'a Device<'a>) -> DeviceReader<'a> {
        let ids: Vec<u32> = gpu_fixture::GPU_VALUES
            .iter()
            .filter_map(|v| match v.nvml {
                NvmlCall::FieldValues { field_id } => Some(field_id),
                _ => None,
            })
            .collect();
        let values = raw::field_values(device, &ids);
        DeviceReader {
            device,
            fields: ids.into_iter().zip(values).collect(),
        }
    }

    fn field(&self, id: u32) -> Reading<u64> {
        self.fields.iter().find(|(i, _)| *i == id).map_or_else(
            || Err(mismatch(NvmlCall::FieldValues { field_id: id }, "a field")),
            |(_, v)| v.clone(),
        )
    }
}

/// How the NVML backend reads a kind of value: the `nvml-wrapper` call behind each [`NvmlCall`] the
/// table gives a value of this kind, converted to the snapshot's units.
trait NvmlValue: ReadingKind {
    fn read(reader: &DeviceReader, call: NvmlCall) -> Reading<Self::Reading>;
}

/// A table row whose call does not give its kind's value (a mistake in the table, caught by the
/// tests that compare the NVML and mock backends).
fn mismatch(call: NvmlCall, what: &str) -> ReadError {
    ReadError::with_detail(
        NvmlReturn::Unknown,
        format!("{call:?} does not read {what}"),
    )
}

impl NvmlValue for kind::Text {
    fn read(reader: &DeviceReader, call: NvmlCall) -> Reading<String> {
        let d = reader.device;
        match call {
            NvmlCall::Name => r(d.name()),
            NvmlCall::Uuid => r(d.uuid()),
            NvmlCall::Serial => r(d.serial()),
            NvmlCall::VbiosVersion => r(d.vbios_version()),
            _ => Err(mismatch(call, "a string")),
        }
    }
}

impl NvmlValue for kind::Count {
    fn read(reader: &DeviceReader, call: NvmlCall) -> Reading<u32> {
        let d = reader.device;
        match call {
            NvmlCall::Temperature { sensor } => {
                r(d.temperature(r(TemperatureSensor::try_from(sensor))?))
            }
            NvmlCall::TemperatureThreshold { threshold } => {
                r(d.temperature_threshold(r(TemperatureThreshold::try_from(threshold))?))
            }
            NvmlCall::ClockInfo { clock } => r(d.clock_info(r(Clock::try_from(clock))?)),
            NvmlCall::MaxClockInfo { clock } => r(d.max_clock_info(r(Clock::try_from(clock))?)),
            NvmlCall::CurrPcieLinkGeneration => r(d.current_pcie_link_gen()),
            NvmlCall::MaxPcieLinkGeneration => r(d.max_pcie_link_gen()),
            NvmlCall::CurrPcieLinkWidth => r(d.current_pcie_link_width()),
            NvmlCall::MaxPcieLinkWidth => r(d.max_pcie_link_width()),
            NvmlCall::RetiredPages { cause } => {
                let pages = r(d.retired_pages(r(RetirementCause::try_from(cause))?))?;
                to_u32(pages.len() as u64)
            }
            NvmlCall::FieldValues { field_id } => reader.field(field_id).and_then(to_u32),
            _ => Err(mismatch(call, "a count")),
        }
    }
}

impl NvmlValue for kind::Flag {
    fn read(reader: &DeviceReader, call: NvmlCall) -> Reading<bool> {
        let d = reader.device;
        match call {
            NvmlCall::PersistenceMode => r(d.is_in_persistent_mode()),
            NvmlCall::EccMode => r(d.is_ecc_enabled()).map(|s| s.currently_enabled),
            NvmlCall::RetiredPagesPendingStatus => r(d.are_pages_pending_retired()),
            NvmlCall::FieldValues { field_id } => reader.field(field_id).map(|v| v != 0),
            _ => Err(mismatch(call, "an on/off state")),
        }
    }
}

impl NvmlValue for kind::Cumulative {
    fn read(reader: &DeviceReader, call: NvmlCall) -> Reading<u64> {
        let d = reader.device;
        match call {
            NvmlCall::PcieReplayCounter => r(d.pcie_replay_counter()).map(u64::from),
            NvmlCall::TotalEccErrors {
                error_type,
                counter_type,
            } => r(d.total_ecc_errors(
                r(MemoryError::try_from(error_type))?,
                r(EccCounter::try_from(counter_type))?,
            )),
            NvmlCall::ViolationStatus { policy } => {
                r(d.violation_status(r(PerformancePolicy::try_from(policy))?))
                    .map(|v| v.violation_time)
            }
            _ => Err(mismatch(call, "a counter")),
        }
    }
}

impl NvmlValue for kind::Watts {
    fn read(reader: &DeviceReader, call: NvmlCall) -> Reading<f64> {
        let d = reader.device;
        match call {
            NvmlCall::PowerUsage => r(d.power_usage()).map(watts),
            NvmlCall::EnforcedPowerLimit => r(d.enforced_power_limit()).map(watts),
            _ => Err(mismatch(call, "watts")),
        }
    }
}

impl NvmlValue for kind::Arch {
    fn read(reader: &DeviceReader, _: NvmlCall) -> Reading<Architecture> {
        r(raw::architecture(reader.device)).map(architecture)
    }
}

impl NvmlValue for kind::Compute {
    fn read(reader: &DeviceReader, _: NvmlCall) -> Reading<ComputeMode> {
        r(reader.device.compute_mode()).map(compute_mode)
    }
}

impl NvmlValue for kind::Reasons {
    fn read(reader: &DeviceReader, _: NvmlCall) -> Reading<u64> {
        r(raw::clock_event_reasons(reader.device))
    }
}

impl NvmlValue for kind::Capability {
    fn read(reader: &DeviceReader, _: NvmlCall) -> Reading<ComputeCapability> {
        let cc = r(reader.device.cuda_compute_capability())?;
        match (u32::try_from(cc.major), u32::try_from(cc.minor)) {
            (Ok(major), Ok(minor)) => Ok(ComputeCapability { major, minor }),
            _ => Err(ReadError::with_detail(
                NvmlReturn::Unknown,
                format!("NVML returned compute capability {}.{}", cc.major, cc.minor),
            )),
        }
    }
}

impl NvmlValue for kind::Pci {
    fn read(reader: &DeviceReader, _: NvmlCall) -> Reading<PciInfo> {
        pci(reader.device)
    }
}

impl NvmlValue for kind::Memory {
    fn read(reader: &DeviceReader, _: NvmlCall) -> Reading<MemoryInfo> {
        r(reader.device.memory_info()).map(|m| MemoryInfo {
            total_bytes: m.total,
            used_bytes: m.used,
            free_bytes: m.free,
        })
    }
}

impl NvmlValue for kind::Utilization {
    fn read(reader: &DeviceReader, _: NvmlCall) -> Reading<Utilization> {
        r(reader.device.utilization_rates()).map(|u| Utilization {
            gpu_percent: u.gpu,
            memory_percent: u.memory,
        })
    }
}

impl NvmlValue for kind::Mig {
    fn read(reader: &DeviceReader, _: NvmlCall) -> Reading<MigMode> {
        r(reader.device.mig_mode()).map(|m| MigMode {
            current: m.current != 0,
            pending: m.pending != 0,
        })
    }
}

impl NvmlValue for kind::Inforom {
    fn read(reader: &DeviceReader, _: NvmlCall) -> Reading<bool> {
        match reader.device.validate_info_rom() {
            Ok(()) => Ok(true),
            Err(NvmlError::CorruptedInfoROM) => Ok(false),
            Err(e) => Err(read_error(e)),
        }
    }
}

impl NvmlValue for kind::NvLinks {
    fn read(reader: &DeviceReader, _: NvmlCall) -> Reading<Vec<NvLinkSnapshot>> {
        nvlinks(reader.device)
    }
}

impl NvmlValue for kind::Processes {
    fn read(reader: &DeviceReader, _: NvmlCall) -> Reading<Vec<GpuProcess>> {
        r(reader.device.running_compute_processes()).map(|ps| {
            ps.into_iter()
                .map(|p| GpuProcess {
                    pid: p.pid,
                    used_memory_bytes: match p.used_gpu_memory {
                        UsedGpuMemory::Used(bytes) => Some(bytes),
                        UsedGpuMemory::Unavailable => None,
                    },
                })
                .collect()
        })
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
