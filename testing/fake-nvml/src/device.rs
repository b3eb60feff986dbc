//! Per-GPU queries that return one value or one struct: identity, memory, thermals, power, clocks, PCIe,
//! modes, ECC, clock event reasons, violation time, infoROM. A query for one number or string answers
//! with the table of GPU values' row for its call ([`gpu_fixture::gpu_values!`]).

// Matching on nvml.h's constants by their C names.
#![allow(non_upper_case_globals)]

use std::ffi::{c_char, c_int, c_uint, c_ulonglong};

use gpu_fixture::{NvmlCall, NvmlReturn};
use nvml_wrapper_sys::bindings::*;

use crate::ffi::{exports, out, write_str};
use crate::state::{query, query_enumeration};
use crate::values::{enable_state, flag, fx, number, text, uint};

/// `NVML_STRUCT_VERSION(Memory, 2)`: what `nvmlDeviceGetMemoryInfo_v2` requires in `version`.
const MEMORY_V2_VERSION: c_uint = (size_of::<nvmlMemory_v2_t>() | (2 << 24)) as c_uint;

/// Copies the string the table's value for `call` holds into a caller's buffer.
macro_rules! string_query {
    ($($name:ident => $call:ident),* $(,)?) => {
        exports! {$(
            fn $name(device: nvmlDevice_t, buf: *mut c_char, length: c_uint) {
                let v = text(device, NvmlCall::$call)?;
                // SAFETY: the caller passes a buffer of `length` bytes (nvml.h).
                unsafe { write_str(buf, length, &v) }
            }
        )*}
    };
}

/// Writes the `unsigned int` the table's value for `call` holds.
macro_rules! uint_query {
    ($($name:ident => $call:ident),* $(,)?) => {
        exports! {$(
            fn $name(device: nvmlDevice_t, value: *mut c_uint) {
                // SAFETY: the caller passes a valid pointer or null (nvml.h).
                let out = unsafe { out(value) }?;
                *out = uint(device, NvmlCall::$call, NvmlReturn::NotSupported)?;
                Ok(())
            }
        )*}
    };
}

string_query! {
    nvmlDeviceGetName => Name,
    nvmlDeviceGetUUID => Uuid,
    nvmlDeviceGetSerial => Serial,
    nvmlDeviceGetVbiosVersion => VbiosVersion,
}

uint_query! {
    nvmlDeviceGetCurrPcieLinkGeneration => CurrPcieLinkGeneration,
    nvmlDeviceGetMaxPcieLinkGeneration => MaxPcieLinkGeneration,
    nvmlDeviceGetCurrPcieLinkWidth => CurrPcieLinkWidth,
    nvmlDeviceGetMaxPcieLinkWidth => MaxPcieLinkWidth,
    nvmlDeviceGetPowerUsage => PowerUsage,
    nvmlDeviceGetEnforcedPowerLimit => EnforcedPowerLimit,
    nvmlDeviceGetPcieReplayCounter => PcieReplayCounter,
}

exports! {
    fn nvmlDeviceGetPciInfo_v3(device: nvmlDevice_t, pci: *mut nvmlPciInfo_t) {
        // SAFETY: the caller passes a valid pointer or null (nvml.h).
        let out = unsafe { out(pci) }?;
        let p = query_enumeration(device, |g, _| fx(&g.pci))?;
        let a = p.bus_id;
        let legacy = format!("{:04x}:{:02x}:{:02x}.{:x}", a.domain, a.bus, a.device, a.function);
        // SAFETY: both arrays are inside `*out`, with their declared lengths.
        unsafe {
            write_str(out.busIdLegacy.as_mut_ptr(), out.busIdLegacy.len() as c_uint, &legacy)?;
            write_str(out.busId.as_mut_ptr(), out.busId.len() as c_uint, &a.nvml_bus_id())?;
        }
        out.domain = a.domain;
        out.bus = a.bus.into();
        out.device = a.device.into();
        out.pciDeviceId = p.device_id;
        out.pciSubSystemId = p.subsystem_id;
        Ok(())
    }

    fn nvmlDeviceGetArchitecture(device: nvmlDevice_t, arch: *mut nvmlDeviceArchitecture_t) {
        // SAFETY: as above.
        let out = unsafe { out(arch) }?;
        *out = uint(device, NvmlCall::Architecture, NvmlReturn::NotSupported)?;
        Ok(())
    }

    fn nvmlDeviceGetCudaComputeCapability(device: nvmlDevice_t, major: *mut c_int, minor: *mut c_int) {
        // SAFETY: as above.
        let (major, minor) = unsafe { (out(major)?, out(minor)?) };
        let cc = query(device, |g, _| fx(&g.compute_capability))?;
        // Validated when the fixture was loaded.
        let cc = gpu_fixture::ComputeCapability::parse(&cc).map_err(|_| NvmlReturn::Unknown)?;
        *major = cc.major as c_int;
        *minor = cc.minor as c_int;
        Ok(())
    }

    fn nvmlDeviceGetMemoryInfo_v2(device: nvmlDevice_t, memory: *mut nvmlMemory_v2_t) {
        // SAFETY: as above.
        let out = unsafe { out(memory) }?;
        if out.version != MEMORY_V2_VERSION {
            return Err(NvmlReturn::ArgumentVersionMismatch);
        }
        let m = query(device, |g, _| fx(&g.memory))?;
        out.total = m.total_bytes;
        out.reserved = 0;
        out.used = m.used_bytes;
        out.free = m.free();
        Ok(())
    }

    fn nvmlDeviceGetTemperature(device: nvmlDevice_t, sensor: nvmlTemperatureSensors_t, temp: *mut c_uint) {
        // SAFETY: as above.
        let out = unsafe { out(temp) }?;
        *out = uint(device, NvmlCall::Temperature { sensor }, NvmlReturn::InvalidArgument)?;
        Ok(())
    }

    fn nvmlDeviceGetTemperatureThreshold(
        device: nvmlDevice_t,
        threshold: nvmlTemperatureThresholds_t,
        temp: *mut c_uint,
    ) {
        // SAFETY: as above.
        let out = unsafe { out(temp) }?;
        *out = uint(device, NvmlCall::TemperatureThreshold { threshold }, NvmlReturn::NotSupported)?;
        Ok(())
    }

    fn nvmlDeviceGetClockInfo(device: nvmlDevice_t, clock_type: nvmlClockType_t, clock: *mut c_uint) {
        // SAFETY: as above.
        let out = unsafe { out(clock) }?;
        *out = uint(device, NvmlCall::ClockInfo { clock: clock_type }, NvmlReturn::NotSupported)?;
        Ok(())
    }

    fn nvmlDeviceGetMaxClockInfo(device: nvmlDevice_t, clock_type: nvmlClockType_t, clock: *mut c_uint) {
        // SAFETY: as above.
        let out = unsafe { out(clock) }?;
        *out = uint(device, NvmlCall::MaxClockInfo { clock: clock_type }, NvmlReturn::NotSupported)?;
        Ok(())
    }

    fn nvmlDeviceGetUtilizationRates(device: nvmlDevice_t, utilization: *mut nvmlUtilization_t) {
        // SAFETY: as above.
        let out = unsafe { out(utilization) }?;
        let u = query(device, |g, _| fx(&g.utilization))?;
        out.gpu = u.gpu_percent;
        out.memory = u.memory_percent;
        Ok(())
    }

    fn nvmlDeviceGetPersistenceMode(device: nvmlDevice_t, mode: *mut nvmlEnableState_t) {
        // SAFETY: as above.
        let out = unsafe { out(mode) }?;
        *out = enable_state(flag(device, NvmlCall::PersistenceMode)?);
        Ok(())
    }

    fn nvmlDeviceGetMigMode(device: nvmlDevice_t, current: *mut c_uint, pending: *mut c_uint) {
        // SAFETY: as above.
        let (current, pending) = unsafe { (out(current)?, out(pending)?) };
        let m = query(device, |g, _| fx(&g.mig_mode))?;
        *current = enable_state(m.current);
        *pending = enable_state(m.pending);
        Ok(())
    }

    fn nvmlDeviceGetComputeMode(device: nvmlDevice_t, mode: *mut nvmlComputeMode_t) {
        // SAFETY: as above.
        let out = unsafe { out(mode) }?;
        *out = uint(device, NvmlCall::ComputeMode, NvmlReturn::NotSupported)?;
        Ok(())
    }

    fn nvmlDeviceGetEccMode(device: nvmlDevice_t, current: *mut nvmlEnableState_t, pending: *mut nvmlEnableState_t) {
        // SAFETY: as above.
        let (current, pending) = unsafe { (out(current)?, out(pending)?) };
        let on = flag(device, NvmlCall::EccMode)?;
        *current = enable_state(on);
        *pending = enable_state(on);
        Ok(())
    }

    fn nvmlDeviceGetTotalEccErrors(
        device: nvmlDevice_t,
        error_type: nvmlMemoryErrorType_t,
        counter_type: nvmlEccCounterType_t,
        ecc_counts: *mut c_ulonglong,
    ) {
        // SAFETY: as above.
        let out = unsafe { out(ecc_counts) }?;
        let call = NvmlCall::TotalEccErrors { error_type, counter_type };
        *out = number(device, call, NvmlReturn::InvalidArgument)?;
        Ok(())
    }

    fn nvmlDeviceGetCurrentClocksThrottleReasons(device: nvmlDevice_t, reasons: *mut c_ulonglong) {
        // SAFETY: as above.
        let out = unsafe { out(reasons) }?;
        *out = number(device, NvmlCall::CurrentClocksThrottleReasons, NvmlReturn::NotSupported)?;
        Ok(())
    }

    fn nvmlDeviceGetViolationStatus(
        device: nvmlDevice_t,
        policy: nvmlPerfPolicyType_t,
        time: *mut nvmlViolationTime_t,
    ) {
        // SAFETY: as above.
        let out = unsafe { out(time) }?;
        out.violationTime = number(device, NvmlCall::ViolationStatus { policy }, NvmlReturn::NotSupported)?;
        out.referenceTime = now_micros();
        Ok(())
    }

    /// `inforom_valid: false` → `CORRUPTED_INFOROM`, as the driver reports a bad checksum.
    fn nvmlDeviceValidateInforom(device: nvmlDevice_t) {
        match query(device, |g, _| fx(&g.inforom_valid))? {
            true => Ok(()),
            false => Err(NvmlReturn::CorruptedInforom),
        }
    }
}

/// Microseconds since the Unix epoch (NVML's CPU timestamps).
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
