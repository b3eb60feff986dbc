//! Thermal and power rules: temperature against the GPU's own thresholds (never assumed ones), power
//! readability and limit, and the violation-time counters over a window.

use crate::gpu::{ClockEventReason, DeviceSnapshot};

use super::{Out, Window, gpu_label, seconds};
use crate::health::report::{Finding, Severity};
use crate::health::rule::Rule;

/// Power draw may exceed the enforced limit by this share before it counts as "not holding".
const POWER_OVER_LIMIT_TOLERANCE: f64 = 0.05;

/// `thermal.shutdown`, `thermal.slowdown`, `thermal.violation_rate`.
pub(in crate::health) fn check(dev: &DeviceSnapshot, window: Window<'_>, out: &mut Out) {
    check_temperature(dev, out);
    let label = gpu_label(dev);
    if let Some((growth, millis)) = out.growth_firing(
        Rule::ThermalViolationRate,
        "thermal violation time",
        window,
        |d| &d.violation_thermal_ns,
        dev,
        |count, _| count > 0,
    ) {
        let throttled_ms = growth.count as f64 / 1e6;
        let share = 100.0 * growth.count as f64 / (millis as f64 * 1e6);
        out.push(
            Finding::new(
                Rule::ThermalViolationRate,
                Severity::Warn,
                format!(
                    "{label} was held down for thermal reasons for {throttled_ms:.0} ms of the last \
                     {:.1} s.",
                    seconds(millis)
                ),
            )
            .with("thermal_violation_ms_delta", throttled_ms)
            .with("throttled_percent_of_window", share.min(100.0))
            .with("window_seconds", seconds(millis))
            .with("counter_reset", growth.reset.is_some())
            .action(
                "Check the node's cooling (fans, airflow, inlet temperature) and the GPU's clocks \
                 (`nvidia-smi -q -d PERFORMANCE`); thermal slowdown can occur below the slowdown \
                 temperature.",
            ),
        );
    }
}

fn check_temperature(dev: &DeviceSnapshot, out: &mut Out) {
    let temperature = match &dev.temperature_c {
        Ok(t) => *t,
        Err(e) => {
            out.skip(Rule::ThermalShutdown, format!("temperature: {e}"));
            out.skip(Rule::ThermalSlowdown, format!("temperature: {e}"));
            return;
        }
    };
    let label = gpu_label(dev);
    if let Some(&shutdown) = out.need(
        Rule::ThermalShutdown,
        "shutdown temperature threshold",
        &dev.temperature_shutdown_c,
    ) && temperature >= shutdown
    {
        out.push(
            Finding::new(
                Rule::ThermalShutdown,
                Severity::Fail,
                format!(
                    "{label} is at {temperature} °C, at or above its shutdown threshold of \
                     {shutdown} °C: the hardware will power it off."
                ),
            )
            .with("temperature_c", temperature)
            .with("shutdown_threshold_c", shutdown)
            .action(format!(
                "Stop GPU {}'s workloads now and fix the node's cooling before using it again.",
                dev.index
            )),
        );
        return;
    }
    if let Some(&slowdown) = out.need(
        Rule::ThermalSlowdown,
        "slowdown temperature threshold",
        &dev.temperature_slowdown_c,
    ) && temperature >= slowdown
    {
        out.push(
            Finding::new(
                Rule::ThermalSlowdown,
                Severity::Warn,
                format!(
                    "{label} is at {temperature} °C, at or above its slowdown threshold of \
                     {slowdown} °C: the driver cuts its clocks."
                ),
            )
            .with("temperature_c", temperature)
            .with("slowdown_threshold_c", slowdown)
            .action(
                "Check the node's cooling (fans, airflow, inlet temperature, neighbouring GPUs); \
                 the GPU keeps working, only slower.",
            ),
        );
    }
}

/// `power.unreadable`, `power.over_limit`, `power.violation_rate`.
pub(in crate::health) fn check_power(dev: &DeviceSnapshot, window: Window<'_>, out: &mut Out) {
    let label = gpu_label(dev);
    match &dev.power_draw_watts {
        Err(e) => out.push(
            Finding::new(
                Rule::PowerUnreadable,
                Severity::Warn,
                format!(
                    "{label}'s power draw cannot be read ({e}), so its power is not monitored."
                ),
            )
            .with("nvml_error", e.code.c_name())
            .action(format!(
                "Check `nvidia-smi -q -d POWER -i {}`; a data-center GPU that cannot report power \
                 points at its board or driver.",
                dev.index
            )),
        ),
        Ok(draw) => {
            let draw = *draw;
            if let Some(&limit) =
                out.need(Rule::PowerOverLimit, "power limit", &dev.power_limit_watts)
                && draw > limit * (1.0 + POWER_OVER_LIMIT_TOLERANCE)
            {
                out.push(
                    Finding::new(
                        Rule::PowerOverLimit,
                        Severity::Warn,
                        format!(
                            "{label} draws {draw:.1} W, above its enforced limit of {limit:.1} W: \
                             power capping is not holding it."
                        ),
                    )
                    .with("power_draw_watts", draw)
                    .with("power_limit_watts", limit)
                    .with("tolerance_percent", POWER_OVER_LIMIT_TOLERANCE * 100.0)
                    .action(
                        "Watch `nvidia-smi -q -d POWER`; if it persists, the power sensor or the \
                         board's power regulation is faulty: open a support case.",
                    ),
                );
            }
        }
    }
    let Some((growth, millis)) = out.growth_firing(
        Rule::PowerViolationRate,
        "power violation time",
        window,
        |d| &d.violation_power_ns,
        dev,
        |count, _| count > 0,
    ) else {
        return;
    };
    // Capping at the configured limit under heavy load is the SW power cap doing its job.
    let hw_bits = ClockEventReason::HwSlowdown.bit() | ClockEventReason::HwPowerBrakeSlowdown.bit();
    let normal_capping = matches!(dev.clock_event_reasons, Ok(mask)
        if mask & ClockEventReason::SwPowerCap.bit() != 0 && mask & hw_bits == 0);
    let throttled_ms = growth.count as f64 / 1e6;
    let mut finding = if normal_capping {
        Finding::new(
            Rule::PowerViolationRate,
            Severity::Info,
            format!(
                "{label} was capped at its power limit for {throttled_ms:.0} ms of the last {:.1} s \
                 (software power cap: normal under heavy load).",
                seconds(millis)
            ),
        )
    } else {
        Finding::new(
            Rule::PowerViolationRate,
            Severity::Warn,
            format!(
                "{label} was held down for power reasons for {throttled_ms:.0} ms of the last {:.1} s.",
                seconds(millis)
            ),
        )
        .action(
            "Check the clock event reasons (`nvidia-smi -q -d PERFORMANCE`) and the node's power \
             supply; hardware power brake or slowdown points at the PSU or board.",
        )
    };
    finding = finding
        .with("power_violation_ms_delta", throttled_ms)
        .with(
            "throttled_percent_of_window",
            (100.0 * growth.count as f64 / (millis as f64 * 1e6)).min(100.0),
        )
        .with("window_seconds", seconds(millis))
        .with("counter_reset", growth.reset.is_some());
    out.push(finding);
}
