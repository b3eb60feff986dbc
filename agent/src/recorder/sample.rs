//! What the recorder keeps of a GPU snapshot: one [`GpuSample`] per GPU per tick, with short field
//! names (the history format, `docs/history-format.md`). Every metric is declared once here — its
//! key, its unit and how it is read from a [`DeviceSnapshot`] — and the aggregates, the timeline and
//! the health rules follow from these tables.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::metric_map::{MetricKey, MetricMap};
use crate::gpu::{DeviceSnapshot, NodeSnapshot};

/// Per-gauge values (one slot per [`Gauge`]).
pub type GaugeMap<T> = MetricMap<Gauge, T, { Gauge::ALL.len() }>;

/// Counter values (one slot per [`CounterId`]).
pub type CounterMap = MetricMap<CounterId, u64, { CounterId::ALL.len() }>;

/// A value that moves up and down; summarised as min/max/mean/last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Gauge {
    #[serde(rename = "t")]
    TemperatureC,
    #[serde(rename = "p")]
    PowerWatts,
    #[serde(rename = "sm")]
    SmClockMhz,
    #[serde(rename = "mc")]
    MemoryClockMhz,
    #[serde(rename = "ug")]
    GpuUtilizationPercent,
    #[serde(rename = "um")]
    MemoryUtilizationPercent,
    #[serde(rename = "mu")]
    MemoryUsedBytes,
}

impl Gauge {
    /// Every gauge, in output order.
    pub const ALL: [Gauge; 7] = [
        Gauge::TemperatureC,
        Gauge::PowerWatts,
        Gauge::SmClockMhz,
        Gauge::MemoryClockMhz,
        Gauge::GpuUtilizationPercent,
        Gauge::MemoryUtilizationPercent,
        Gauge::MemoryUsedBytes,
    ];

    /// The name in tool output, unit included.
    pub const fn name(self) -> &'static str {
        match self {
            Gauge::TemperatureC => "temperature_c",
            Gauge::PowerWatts => "power_draw_watts",
            Gauge::SmClockMhz => "clock_sm_mhz",
            Gauge::MemoryClockMhz => "clock_memory_mhz",
            Gauge::GpuUtilizationPercent => "utilization_gpu_percent",
            Gauge::MemoryUtilizationPercent => "utilization_memory_percent",
            Gauge::MemoryUsedBytes => "memory_used_bytes",
        }
    }

    fn read(self, d: &DeviceSnapshot) -> Option<f64> {
        match self {
            Gauge::TemperatureC => d.temperature_c.as_ref().ok().map(|v| f64::from(*v)),
            Gauge::PowerWatts => d.power_draw_watts.as_ref().ok().copied(),
            Gauge::SmClockMhz => d.clock_sm_mhz.as_ref().ok().map(|v| f64::from(*v)),
            Gauge::MemoryClockMhz => d.clock_memory_mhz.as_ref().ok().map(|v| f64::from(*v)),
            Gauge::GpuUtilizationPercent => d
                .utilization
                .as_ref()
                .ok()
                .map(|u| f64::from(u.gpu_percent)),
            Gauge::MemoryUtilizationPercent => d
                .utilization
                .as_ref()
                .ok()
                .map(|u| f64::from(u.memory_percent)),
            Gauge::MemoryUsedBytes => d.memory.as_ref().ok().map(|m| m.used_bytes as f64),
        }
    }
}

impl MetricKey for Gauge {
    const ALL: &'static [Gauge] = &Gauge::ALL;
    fn slot(self) -> usize {
        self as usize
    }
}

/// A cumulative hardware counter; its increments are events, a decrease is a reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CounterId {
    #[serde(rename = "sbe")]
    EccCorrected,
    #[serde(rename = "dbe")]
    EccUncorrected,
    #[serde(rename = "rps")]
    RetiredPagesSbe,
    #[serde(rename = "rpd")]
    RetiredPagesDbe,
    #[serde(rename = "rrc")]
    RemappedRowsCorrectable,
    #[serde(rename = "rru")]
    RemappedRowsUncorrectable,
    #[serde(rename = "pr")]
    PcieReplays,
    #[serde(rename = "nc")]
    NvlinkCrcErrors,
    #[serde(rename = "nr")]
    NvlinkReplayErrors,
    #[serde(rename = "nv")]
    NvlinkRecoveryErrors,
    #[serde(rename = "vt")]
    ThermalViolationNs,
    #[serde(rename = "vp")]
    PowerViolationNs,
}

impl CounterId {
    /// Every counter, in output order.
    pub const ALL: [CounterId; 12] = [
        CounterId::EccCorrected,
        CounterId::EccUncorrected,
        CounterId::RetiredPagesSbe,
        CounterId::RetiredPagesDbe,
        CounterId::RemappedRowsCorrectable,
        CounterId::RemappedRowsUncorrectable,
        CounterId::PcieReplays,
        CounterId::NvlinkCrcErrors,
        CounterId::NvlinkReplayErrors,
        CounterId::NvlinkRecoveryErrors,
        CounterId::ThermalViolationNs,
        CounterId::PowerViolationNs,
    ];

    /// The name in tool output.
    pub const fn name(self) -> &'static str {
        match self {
            CounterId::EccCorrected => "ecc_volatile_corrected",
            CounterId::EccUncorrected => "ecc_volatile_uncorrected",
            CounterId::RetiredPagesSbe => "retired_pages_sbe",
            CounterId::RetiredPagesDbe => "retired_pages_dbe",
            CounterId::RemappedRowsCorrectable => "remapped_rows_correctable",
            CounterId::RemappedRowsUncorrectable => "remapped_rows_uncorrectable",
            CounterId::PcieReplays => "pcie_replay_counter",
            CounterId::NvlinkCrcErrors => "nvlink_crc_errors",
            CounterId::NvlinkReplayErrors => "nvlink_replay_errors",
            CounterId::NvlinkRecoveryErrors => "nvlink_recovery_errors",
            CounterId::ThermalViolationNs => "violation_thermal_ns",
            CounterId::PowerViolationNs => "violation_power_ns",
        }
    }

    /// Whether each increment is worth an event (violation time grows continuously while throttled,
    /// which the throttle-reason events already tell).
    pub const fn increments_are_events(self) -> bool {
        !matches!(
            self,
            CounterId::ThermalViolationNs | CounterId::PowerViolationNs
        )
    }

    fn read(self, d: &DeviceSnapshot) -> Option<u64> {
        let link_sum = |f: fn(&crate::gpu::NvLinkSnapshot) -> Option<u64>| {
            let links = d.nvlinks.as_ref().ok()?;
            let values: Vec<u64> = links.iter().filter_map(f).collect();
            (!values.is_empty()).then(|| values.iter().sum())
        };
        match self {
            CounterId::EccCorrected => d.ecc_volatile_corrected.as_ref().ok().copied(),
            CounterId::EccUncorrected => d.ecc_volatile_uncorrected.as_ref().ok().copied(),
            CounterId::RetiredPagesSbe => d.retired_pages_sbe.as_ref().ok().map(|v| u64::from(*v)),
            CounterId::RetiredPagesDbe => d.retired_pages_dbe.as_ref().ok().map(|v| u64::from(*v)),
            CounterId::RemappedRowsCorrectable => d
                .remapped_rows_correctable
                .as_ref()
                .ok()
                .map(|v| u64::from(*v)),
            CounterId::RemappedRowsUncorrectable => d
                .remapped_rows_uncorrectable
                .as_ref()
                .ok()
                .map(|v| u64::from(*v)),
            CounterId::PcieReplays => d.pcie_replay_counter.as_ref().ok().copied(),
            CounterId::NvlinkCrcErrors => {
                link_sum(
                    |l| match (l.crc_flit_errors.as_ref(), l.crc_data_errors.as_ref()) {
                        (Ok(a), Ok(b)) => Some(a + b),
                        (Ok(a), Err(_)) | (Err(_), Ok(a)) => Some(*a),
                        _ => None,
                    },
                )
            }
            CounterId::NvlinkReplayErrors => link_sum(|l| l.replay_errors.as_ref().ok().copied()),
            CounterId::NvlinkRecoveryErrors => {
                link_sum(|l| l.recovery_errors.as_ref().ok().copied())
            }
            CounterId::ThermalViolationNs => d.violation_thermal_ns.as_ref().ok().copied(),
            CounterId::PowerViolationNs => d.violation_power_ns.as_ref().ok().copied(),
        }
    }
}

impl MetricKey for CounterId {
    const ALL: &'static [CounterId] = &CounterId::ALL;
    fn slot(self) -> usize {
        self as usize
    }
}

/// How a minute folds one state value of its samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fold {
    /// The newest value a sample reported.
    Last,
    /// Every value seen, OR-ed together (reason bits; for a flag: true when any sample was).
    Union,
}

/// A per-GPU state value: how a minute folds it, and whether there is anything to keep.
pub trait StateValue {
    /// Folds `new` (a later sample's value) into `self` (the minute so far).
    fn fold(&mut self, rule: Fold, new: &Self);
    /// False when the value is unknown or empty (then it is left out of the record).
    fn present(&self) -> bool;
}

impl<T: Copy + std::ops::BitOr<Output = T>> StateValue for Option<T> {
    fn fold(&mut self, rule: Fold, new: &Self) {
        let Some(n) = *new else { return };
        *self = Some(match (rule, *self) {
            (Fold::Union, Some(a)) => a | n,
            _ => n,
        });
    }

    fn present(&self) -> bool {
        self.is_some()
    }
}

impl StateValue for Vec<u32> {
    fn fold(&mut self, _rule: Fold, new: &Self) {
        self.clone_from(new);
    }

    fn present(&self) -> bool {
        !self.is_empty()
    }
}

/// Whether a state value is left out of a record (serde's `skip_serializing_if`).
pub fn absent<T: StateValue>(v: &T) -> bool {
    !v.present()
}

/// Declares the per-GPU state values once: the [`GpuState`] struct (its history keys), how a
/// minute folds them ([`GpuState::fold`]) and their binary encoding, in this order.
macro_rules! gpu_state {
    ($( $(#[doc = $doc:literal])* $field:ident : $ty:ty => ($key:literal, $fold:ident), )*) => {
        /// A GPU's state besides gauges and counters: what one sample saw, or what a minute kept.
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        pub struct GpuState {
            $(
                $(#[doc = $doc])*
                #[serde(rename = $key, default, skip_serializing_if = "absent")]
                pub $field: $ty,
            )*
        }

        impl GpuState {
            /// The history keys, in encoding order.
            pub const KEYS: &'static [&'static str] = &[$($key),*];

            /// Folds a later sample's state into a minute's.
            pub fn fold(&mut self, new: &GpuState) {
                $( self.$field.fold(Fold::$fold, &new.$field); )*
            }

            /// Binary encoding: a presence mask, then each present value.
            pub(crate) fn write(&self, w: &mut super::codec::Writer) {
                use super::codec::StateCodec;
                w.mask([$(self.$field.present()),*].into_iter());
                $( if self.$field.present() { self.$field.write(w); } )*
            }

            /// Reads what [`GpuState::write`] wrote.
            pub(crate) fn read(
                r: &mut super::codec::Reader,
            ) -> Result<GpuState, super::codec::Malformed> {
                use super::codec::StateCodec;
                let mask = r.mask(Self::KEYS.len())?;
                let mut bit = 0;
                let mut s = GpuState::default();
                $(
                    if mask & (1 << bit) != 0 {
                        s.$field = StateCodec::read(r)?;
                    }
                    bit += 1;
                )*
                let _ = bit;
                Ok(s)
            }
        }
    };
}

gpu_state! {
    /// Clock event (throttle) reasons bitmask; a minute keeps the union.
    reasons: Option<u64> => ("r", Union),
    /// Current PCIe generation.
    pcie_gen: Option<u32> => ("gen", Last),
    /// Current PCIe link width.
    pcie_width: Option<u32> => ("w", Last),
    /// Temperature at which the GPU slows itself down (°C): the threshold events are judged against.
    slowdown_c: Option<u32> => ("ts", Last),
    /// Inactive NVLinks, by link number (empty on an all-active or non-NVLink GPU).
    nvlinks_down: Vec<u32> => ("nd", Last),
    /// A row remap waits for the next GPU reset; a minute keeps whether any sample said so.
    remap_pending: Option<bool> => ("rp", Union),
}

/// One GPU at one tick. Values the GPU could not report are left out (never written as 0).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuSample {
    /// NVML index.
    #[serde(rename = "i")]
    pub index: u32,
    /// Shared between the records of one read (a day holds thousands of copies of each).
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<Arc<str>>,
    /// Set when the GPU is lost (NVML `GPU_IS_LOST` / `RESET_REQUIRED`): the NVML error's C name.
    #[serde(rename = "lost", default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<String>,
    #[serde(rename = "g", default, skip_serializing_if = "GaugeMap::is_empty")]
    pub gauges: GaugeMap<f64>,
    #[serde(rename = "c", default, skip_serializing_if = "CounterMap::is_empty")]
    pub counters: CounterMap,
    /// Throttle reasons, PCIe link, slowdown threshold, inactive NVLinks, pending remap.
    #[serde(flatten)]
    pub state: GpuState,
    /// Per NVLink (links 0..n in order): CRC flit, CRC data, replay and recovery error counters
    /// (`null` when unreadable), so health rate rules can run against a recorded sample.
    #[serde(rename = "nl", default, skip_serializing_if = "Vec::is_empty")]
    pub nvlink_counters: Vec<[Option<u64>; 4]>,
}

/// An Xid the kernel logged, attributed to a GPU when its PCI address matched one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct XidSample {
    /// When the kernel logged it (ms since the epoch).
    #[serde(rename = "t")]
    pub unix_ms: i64,
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
    #[serde(rename = "x")]
    pub code: u32,
    /// The PCI address as the kernel wrote it.
    #[serde(rename = "pci")]
    pub pci: String,
    #[serde(rename = "m", default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// The recorder's view of one GPU in a snapshot (pure).
pub fn gpu_sample(d: &DeviceSnapshot) -> GpuSample {
    let lost = [&d.handle.as_ref().err(), &d.name.as_ref().err()]
        .into_iter()
        .flatten()
        .find(|e| e.is_gpu_lost())
        .map(|e| e.code.c_name().to_string());
    let mut s = GpuSample {
        index: d.index,
        uuid: d.uuid.as_deref().ok().map(Arc::from),
        lost,
        state: GpuState {
            reasons: d.clock_event_reasons.as_ref().ok().copied(),
            pcie_gen: d.pcie_gen_current.as_ref().ok().copied(),
            pcie_width: d.pcie_width_current.as_ref().ok().copied(),
            slowdown_c: d.temperature_slowdown_c.as_ref().ok().copied(),
            nvlinks_down: Vec::new(),
            remap_pending: d.remap_pending.as_ref().ok().copied(),
        },
        ..GpuSample::default()
    };
    for g in Gauge::ALL {
        if let Some(v) = g.read(d) {
            s.gauges.insert(g, v);
        }
    }
    for c in CounterId::ALL {
        if let Some(v) = c.read(d) {
            s.counters.insert(c, v);
        }
    }
    if let Ok(links) = &d.nvlinks {
        s.state.nvlinks_down = links
            .iter()
            .filter(|l| l.active == Ok(false))
            .map(|l| l.link)
            .collect();
        s.nvlink_counters = links
            .iter()
            .map(|l| {
                [
                    l.crc_flit_errors.as_ref().ok().copied(),
                    l.crc_data_errors.as_ref().ok().copied(),
                    l.replay_errors.as_ref().ok().copied(),
                    l.recovery_errors.as_ref().ok().copied(),
                ]
            })
            .collect();
    }
    s
}

/// A recorded sample as a snapshot baseline for the health rate rules: the counters those rules
/// compare (PCIe replays, NVLink errors per link, violation time) and the GPU's identity; every other
/// value reads as not kept.
pub fn baseline_device(s: &GpuSample) -> DeviceSnapshot {
    use crate::gpu::{NvLinkSnapshot, NvmlReturn, ReadError};
    let not_kept = ReadError::with_detail(NvmlReturn::NotSupported, "not kept in the GPU history");
    let mut d = DeviceSnapshot::unreachable(s.index, Ok(()), not_kept.clone());
    if s.lost.is_some() {
        return d;
    }
    let counter = |c: CounterId| s.counters.get(c).copied().ok_or_else(|| not_kept.clone());
    d.uuid = s
        .uuid
        .as_deref()
        .map(str::to_owned)
        .ok_or_else(|| not_kept.clone());
    d.pcie_replay_counter = counter(CounterId::PcieReplays);
    d.violation_thermal_ns = counter(CounterId::ThermalViolationNs);
    d.violation_power_ns = counter(CounterId::PowerViolationNs);
    if !s.nvlink_counters.is_empty() {
        let value = |v: Option<u64>| v.ok_or_else(|| not_kept.clone());
        d.nvlinks = Ok(s
            .nvlink_counters
            .iter()
            .enumerate()
            .map(|(n, c)| NvLinkSnapshot {
                link: n as u32,
                active: Ok(!s.state.nvlinks_down.contains(&(n as u32))),
                crc_flit_errors: value(c[0]),
                crc_data_errors: value(c[1]),
                replay_errors: value(c[2]),
                recovery_errors: value(c[3]),
            })
            .collect());
    }
    d
}

/// Every GPU of a snapshot.
pub fn node_samples(snapshot: &NodeSnapshot) -> Vec<GpuSample> {
    snapshot.devices.iter().map(gpu_sample).collect()
}
