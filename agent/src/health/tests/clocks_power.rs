//! Clock event reasons and power rules.

use super::*;
use crate::gpu::ClockEventReason as R;

fn mask(reasons: &[R]) -> u64 {
    R::mask(reasons)
}

#[test]
fn alerting_clock_event_reasons_warn_each_under_its_rule() {
    for (reason, rule) in [
        (R::HwSlowdown, Rule::ClockEventsHwSlowdown),
        (R::SwThermalSlowdown, Rule::ClockEventsSwThermalSlowdown),
        (R::HwThermalSlowdown, Rule::ClockEventsHwThermalSlowdown),
        (R::HwPowerBrakeSlowdown, Rule::ClockEventsHwPowerBrake),
    ] {
        let r = eval(&edited(|d| d.clock_event_reasons = Ok(reason.bit())));
        assert_eq!(rules_of(&r, 0), vec![(rule, Severity::Warn)], "{reason:?}");
        let f = finding(&r, 0, rule);
        assert_eq!(ev(f, "reason_bit"), format!("{:#x}", reason.bit()));
        assert_eq!(ev(f, "clock_sm_mhz"), 345);
        assert!(f.action.is_some());
    }
    let r = eval(&edited(|d| {
        d.clock_event_reasons = Ok(mask(&[R::SwThermalSlowdown, R::HwThermalSlowdown]))
    }));
    let f = finding(&r, 0, Rule::ClockEventsHwThermalSlowdown);
    assert_eq!(ev(f, "clock_event_reasons_mask"), "0x60");
}

#[test]
fn software_power_cap_under_load_is_information_not_a_problem() {
    // Upstream scored SW power cap + application clocks as severe.
    let r = eval(&edited(|d| {
        d.clock_event_reasons = Ok(mask(&[R::SwPowerCap, R::ApplicationsClocksSetting]));
        d.power_draw_watts = Ok(699.0);
    }));
    assert_eq!(r.gpus[0].verdict, Verdict::Pass);
    assert_eq!(
        rules_of(&r, 0),
        vec![
            (Rule::ClockEventsSwPowerCap, Severity::Info),
            (Rule::ClockEventsInformational, Severity::Info)
        ]
    );
    let f = finding(&r, 0, Rule::ClockEventsInformational);
    assert_eq!(ev(f, "reasons"), "applications_clocks_setting");
    assert!(f.action.is_none());
}

#[test]
fn idle_is_quiet_and_unknown_bits_are_named_raw() {
    assert_eq!(
        gpu0(|d| d.clock_event_reasons = Ok(R::GpuIdle.bit())),
        vec![]
    );
    assert_eq!(gpu0(|d| d.clock_event_reasons = Ok(0)), vec![]);
    let r = eval(&edited(|d| {
        d.clock_event_reasons = Ok(0x200 | R::SyncBoost.bit() | R::DisplayClockSetting.bit())
    }));
    let f = finding(&r, 0, Rule::ClockEventsInformational);
    assert_eq!(
        ev(f, "reasons"),
        "sync_boost, display_clock_setting, unknown bits 0x200"
    );
    assert_eq!(f.severity, Severity::Info);
}

#[test]
fn unreadable_clock_event_reasons_are_not_evaluated() {
    let r = eval(&edited(|d| {
        d.clock_event_reasons = err(NvmlReturn::NotSupported)
    }));
    assert_eq!(rules_of(&r, 0), vec![]);
    for rule in [
        Rule::ClockEventsHwSlowdown,
        Rule::ClockEventsSwThermalSlowdown,
        Rule::ClockEventsHwThermalSlowdown,
        Rule::ClockEventsHwPowerBrake,
    ] {
        assert!(skipped(&r, 0, rule).contains("NVML_ERROR_NOT_SUPPORTED"));
    }
}

#[test]
fn unreadable_power_warns() {
    let r = eval(&edited(|d| {
        d.power_draw_watts = err(NvmlReturn::NotSupported)
    }));
    assert_eq!(
        rules_of(&r, 0),
        vec![(Rule::PowerUnreadable, Severity::Warn)]
    );
    let f = finding(&r, 0, Rule::PowerUnreadable);
    assert_eq!(ev(f, "nvml_error"), "NVML_ERROR_NOT_SUPPORTED");
    assert!(
        f.message
            .contains("power draw cannot be read (not supported"),
        "{}",
        f.message
    );
}

#[test]
fn power_draw_is_judged_against_the_limit_with_five_percent_tolerance() {
    let at = |w| gpu0(|d| d.power_draw_watts = Ok(w));
    assert_eq!(at(700.0), vec![]);
    assert_eq!(at(735.0), vec![]);
    assert_eq!(at(735.1), vec![(Rule::PowerOverLimit, Severity::Warn)]);
    let r = eval(&edited(|d| {
        d.power_draw_watts = Ok(900.0);
        d.power_limit_watts = err(NvmlReturn::NoPermission);
    }));
    assert_eq!(rules_of(&r, 0), vec![]);
    assert!(skipped(&r, 0, Rule::PowerOverLimit).starts_with("power limit: "));
}

#[test]
fn power_violation_growth_is_info_when_it_is_the_software_cap_and_a_warning_otherwise() {
    let before = healthy();
    let run = |reasons: u64, ns: u64| {
        let mut after = before.clone();
        after.devices[0].violation_power_ns = Ok(ns);
        after.devices[0].clock_event_reasons = Ok(reasons);
        eval_window(&before, &after, 10)
    };
    assert!(!has(&run(0, 0), 0, Rule::PowerViolationRate));
    let r = run(R::SwPowerCap.bit(), 5_000_000_000);
    let f = finding(&r, 0, Rule::PowerViolationRate);
    assert_eq!(f.severity, Severity::Info);
    assert_eq!(ev(f, "throttled_percent_of_window"), 50.0);
    assert_eq!(r.gpus[0].verdict, Verdict::Pass);
    let r = run(
        mask(&[R::SwPowerCap, R::HwPowerBrakeSlowdown]),
        5_000_000_000,
    );
    assert_eq!(
        finding(&r, 0, Rule::PowerViolationRate).severity,
        Severity::Warn
    );
    let r = run(0, 5_000_000_000);
    assert_eq!(
        finding(&r, 0, Rule::PowerViolationRate).severity,
        Severity::Warn
    );
}
