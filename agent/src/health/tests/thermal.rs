//! Temperature thresholds and the thermal violation counter.

use super::*;

#[test]
fn temperature_boundaries_follow_the_gpus_own_thresholds() {
    // Healthy H100: slowdown 87 °C, shutdown 92 °C.
    let at = |t| gpu0(|d| d.temperature_c = Ok(t));
    assert_eq!(at(86), vec![]);
    assert_eq!(at(87), vec![(Rule::ThermalSlowdown, Severity::Warn)]);
    assert_eq!(at(91), vec![(Rule::ThermalSlowdown, Severity::Warn)]);
    assert_eq!(at(92), vec![(Rule::ThermalShutdown, Severity::Fail)]);
    assert_eq!(at(120), vec![(Rule::ThermalShutdown, Severity::Fail)]);
    let r = eval(&edited(|d| d.temperature_c = Ok(92)));
    let f = finding(&r, 0, Rule::ThermalShutdown);
    assert_eq!(ev(f, "shutdown_threshold_c"), 92);
    assert!(
        f.action
            .as_deref()
            .unwrap()
            .starts_with("Stop GPU 0's workloads now")
    );
}

#[test]
fn unreadable_thresholds_are_not_replaced_by_assumed_ones() {
    // Upstream fell back to T4 values (82/90 °C); here 100 °C with unknown thresholds is unjudged.
    let r = eval(&edited(|d| {
        d.temperature_c = Ok(100);
        d.temperature_slowdown_c = err(NvmlReturn::NotSupported);
        d.temperature_shutdown_c = err(NvmlReturn::NotSupported);
    }));
    assert_eq!(rules_of(&r, 0), vec![]);
    assert_eq!(
        skipped(&r, 0, Rule::ThermalSlowdown),
        "slowdown temperature threshold: not supported by this GPU or driver (NVML_ERROR_NOT_SUPPORTED)"
    );
    assert!(skipped(&r, 0, Rule::ThermalShutdown).starts_with("shutdown temperature threshold"));

    // The shutdown threshold alone missing still lets the slowdown rule run.
    let r = eval(&edited(|d| {
        d.temperature_c = Ok(95);
        d.temperature_shutdown_c = err(NvmlReturn::NotSupported);
    }));
    assert_eq!(
        rules_of(&r, 0),
        vec![(Rule::ThermalSlowdown, Severity::Warn)]
    );
}

#[test]
fn unreadable_temperature_skips_both_rules() {
    let r = eval(&edited(|d| d.temperature_c = err(NvmlReturn::Unknown)));
    assert_eq!(rules_of(&r, 0), vec![]);
    assert!(skipped(&r, 0, Rule::ThermalSlowdown).starts_with("temperature: "));
    assert!(skipped(&r, 0, Rule::ThermalShutdown).contains("NVML_ERROR_UNKNOWN"));
}

#[test]
fn thermal_violation_time_growing_warns() {
    let before = healthy();
    let grown = |ns| {
        let mut after = before.clone();
        after.devices[0].violation_thermal_ns = Ok(ns);
        eval_window(&before, &after, 10)
    };
    assert!(!has(&grown(0), 0, Rule::ThermalViolationRate));
    let r = grown(1_000_000);
    let f = finding(&r, 0, Rule::ThermalViolationRate);
    assert_eq!(f.severity, Severity::Warn);
    assert_eq!(ev(f, "thermal_violation_ms_delta"), 1.0);
    assert_eq!(ev(f, "throttled_percent_of_window"), 0.01);
    assert_eq!(ev(f, "window_seconds"), 10.0);
    assert_eq!(ev(f, "counter_reset"), false);
}

#[test]
fn a_violation_counter_that_went_backwards_is_judged_on_its_count_since_the_reset() {
    let mut before = healthy();
    before.devices[0].violation_thermal_ns = Ok(5_000_000_000);
    let mut after = healthy();
    after.devices[0].violation_thermal_ns = Ok(2_000_000);
    let r = eval_window(&before, &after, 10);
    let f = finding(&r, 0, Rule::ThermalViolationRate);
    assert_eq!(ev(f, "counter_reset"), true);
    assert_eq!(ev(f, "thermal_violation_ms_delta"), 2.0);

    // Reset to zero: nothing to judge since; said so rather than silently passing.
    after.devices[0].violation_thermal_ns = Ok(0);
    let r = eval_window(&before, &after, 10);
    assert!(!has(&r, 0, Rule::ThermalViolationRate));
    assert!(
        skipped(&r, 0, Rule::ThermalViolationRate).contains("went backwards from 5000000000 to 0")
    );
}
