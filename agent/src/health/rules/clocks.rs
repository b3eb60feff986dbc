//! Clock event ("throttle") reasons decoded: alerts only for hardware slowdown, thermal slowdown and
//! the power brake; the software power cap and the rest are informational (normal under load).

use crate::gpu::{ClockEventReason, DeviceSnapshot};

use super::{Out, gpu_label};
use crate::health::report::{Finding, Severity};
use crate::health::rule::Rule;

/// The reasons that raise a warning, with their rule, what they mean, and what to check.
const ALERTS: [(ClockEventReason, Rule, &str, &str); 4] = [
    (
        ClockEventReason::HwSlowdown,
        Rule::ClockEventsHwSlowdown,
        "hardware slowdown (clocks cut by half or more: temperature, power brake or an external trigger)",
        "Check the GPU's temperature, the node's PSUs and the GPU's power cabling.",
    ),
    (
        ClockEventReason::SwThermalSlowdown,
        Rule::ClockEventsSwThermalSlowdown,
        "software thermal slowdown (the driver holds clocks down to stay within thermal limits)",
        "Check the node's cooling (fans, airflow, inlet temperature).",
    ),
    (
        ClockEventReason::HwThermalSlowdown,
        Rule::ClockEventsHwThermalSlowdown,
        "hardware thermal slowdown (the GPU is too hot and the hardware cuts its clocks)",
        "Check the node's cooling (fans, airflow, inlet temperature) now.",
    ),
    (
        ClockEventReason::HwPowerBrakeSlowdown,
        Rule::ClockEventsHwPowerBrake,
        "the hardware power brake (an external signal, usually from the power supply, cuts clocks)",
        "Check the node's power supplies and the GPU's power cabling; look at the BMC's PSU events.",
    ),
];

/// Bits that mean nothing is wrong and are not worth a line (the GPU is idle).
const QUIET: u64 = ClockEventReason::GpuIdle.bit();

/// `clock_events.*`.
pub(in crate::health) fn check(dev: &DeviceSnapshot, out: &mut Out) {
    let mask = match &dev.clock_event_reasons {
        Ok(mask) => *mask,
        Err(e) => {
            for (_, rule, _, _) in ALERTS {
                out.skip(rule, format!("clock event reasons: {e}"));
            }
            return;
        }
    };
    let label = gpu_label(dev);
    let hex = format!("{mask:#x}");
    let with_clocks = |mut f: Finding| {
        if let Ok(mhz) = dev.clock_sm_mhz {
            f = f.with("clock_sm_mhz", mhz);
        }
        if let Ok(mhz) = dev.clock_sm_max_mhz {
            f = f.with("clock_sm_max_mhz", mhz);
        }
        f.with("clock_event_reasons_mask", hex.as_str())
    };
    for (reason, rule, meaning, action) in ALERTS {
        if mask & reason.bit() != 0 {
            out.push(with_clocks(
                Finding::new(
                    rule,
                    Severity::Warn,
                    format!("{label}'s clocks are reduced by {meaning}."),
                )
                .with("reason_bit", format!("{:#x}", reason.bit()))
                .action(action),
            ));
        }
    }
    if mask & ClockEventReason::SwPowerCap.bit() != 0 {
        out.push(with_clocks(Finding::new(
            Rule::ClockEventsSwPowerCap,
            Severity::Info,
            format!(
                "{label} is at its software power cap: clocks follow the power limit (normal under \
                 heavy load)."
            ),
        )));
    }
    let judged = ALERTS
        .iter()
        .fold(QUIET | ClockEventReason::SwPowerCap.bit(), |m, a| {
            m | a.0.bit()
        });
    let rest = mask & !judged;
    if rest != 0 {
        let known: Vec<&str> = ClockEventReason::ALL
            .iter()
            .filter(|r| rest & r.bit() != 0)
            .map(|r| reason_name(*r))
            .collect();
        let known_bits = ClockEventReason::mask(&ClockEventReason::ALL);
        let mut names = known.join(", ");
        if rest & !known_bits != 0 {
            let unknown = format!("unknown bits {:#x}", rest & !known_bits);
            names = if names.is_empty() {
                unknown
            } else {
                format!("{names}, {unknown}")
            };
        }
        out.push(with_clocks(
            Finding::new(
                Rule::ClockEventsInformational,
                Severity::Info,
                format!("{label}'s clocks are also set by: {names} (no action needed)."),
            )
            .with("reasons", names.as_str()),
        ));
    }
}

/// NVML's name for a reason, as `nvidia-smi -q -d PERFORMANCE` spells it (lower case).
fn reason_name(r: ClockEventReason) -> &'static str {
    match r {
        ClockEventReason::GpuIdle => "gpu_idle",
        ClockEventReason::ApplicationsClocksSetting => "applications_clocks_setting",
        ClockEventReason::SwPowerCap => "sw_power_cap",
        ClockEventReason::HwSlowdown => "hw_slowdown",
        ClockEventReason::SyncBoost => "sync_boost",
        ClockEventReason::SwThermalSlowdown => "sw_thermal_slowdown",
        ClockEventReason::HwThermalSlowdown => "hw_thermal_slowdown",
        ClockEventReason::HwPowerBrakeSlowdown => "hw_power_brake_slowdown",
        ClockEventReason::DisplayClockSetting => "display_clock_setting",
    }
}
