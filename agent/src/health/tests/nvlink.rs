//! NVLink state, totals and rates.

use super::*;

/// Edits link `n` of GPU 0.
fn link(d: &mut DeviceSnapshot, n: usize, edit: impl FnOnce(&mut crate::gpu::NvLinkSnapshot)) {
    edit(&mut d.nvlinks.as_mut().expect("healthy H100 has NVLink")[n]);
}

#[test]
fn an_inactive_link_on_an_nvlink_part_fails() {
    let r = eval(&edited(|d| link(d, 7, |l| l.active = Ok(false))));
    assert_eq!(rules_of(&r, 0), vec![(Rule::NvlinkDown, Severity::Fail)]);
    let f = finding(&r, 0, Rule::NvlinkDown);
    assert_eq!(ev(f, "links_down"), "7");
    assert_eq!(ev(f, "links_total"), 18);
    assert!(
        f.action
            .as_deref()
            .unwrap()
            .contains("nvidia-fabricmanager")
    );
}

#[test]
fn no_active_link_at_all_is_a_warning_not_a_link_failure() {
    // A PCIe card that reports link state but has no bridge must not look like 18 failed links.
    let r = eval(&edited(|d| {
        for l in d.nvlinks.as_mut().unwrap() {
            l.active = Ok(false);
        }
    }));
    assert_eq!(rules_of(&r, 0), vec![(Rule::NvlinkDown, Severity::Warn)]);
    assert!(
        finding(&r, 0, Rule::NvlinkDown)
            .message
            .starts_with("None of GPU 0")
    );
}

#[test]
fn a_part_without_nvlink_is_skipped_entirely() {
    let no_nvlink = |s: &mut NodeSnapshot| {
        for d in &mut s.devices {
            d.nvlinks = err(NvmlReturn::NotSupported);
        }
    };
    let mut before = healthy();
    let mut after = healthy();
    no_nvlink(&mut before);
    no_nvlink(&mut after);
    for r in [eval(&after), eval_window(&before, &after, 60)] {
        assert_eq!(r.verdict, Verdict::Pass);
        for g in &r.gpus {
            assert!(
                g.findings.is_empty() && g.not_evaluated.is_empty(),
                "{g:#?}"
            );
        }
    }
    let r = eval_window(&before, &after, 60);
    assert_eq!(
        r.rate_rules_evaluated,
        vec![
            Rule::PcieReplayRate,
            Rule::ThermalViolationRate,
            Rule::PowerViolationRate
        ]
    );
}

#[test]
fn an_unreadable_nvlink_is_not_evaluated() {
    let r = eval(&edited(|d| d.nvlinks = err(NvmlReturn::Unknown)));
    assert_eq!(rules_of(&r, 0), vec![]);
    assert!(skipped(&r, 0, Rule::NvlinkDown).contains("NVML_ERROR_UNKNOWN"));
    let r = eval(&edited(|d| {
        link(d, 3, |l| l.active = err(NvmlReturn::Unknown))
    }));
    assert!(skipped(&r, 0, Rule::NvlinkDown).starts_with("NVLink state unreadable for link 3: "));
}

#[test]
fn replay_and_recovery_totals_warn_crc_totals_inform() {
    assert_eq!(
        gpu0(|d| link(d, 1, |l| l.replay_errors = Ok(1))),
        vec![(Rule::NvlinkErrorTotals, Severity::Warn)]
    );
    assert_eq!(
        gpu0(|d| link(d, 1, |l| l.recovery_errors = Ok(2))),
        vec![(Rule::NvlinkErrorTotals, Severity::Warn)]
    );
    let r = eval(&edited(|d| link(d, 4, |l| l.crc_data_errors = Ok(9))));
    assert_eq!(
        rules_of(&r, 0),
        vec![(Rule::NvlinkCrcTotals, Severity::Info)]
    );
    assert_eq!(
        ev(
            finding(&r, 0, Rule::NvlinkCrcTotals),
            "link_4_crc_data_errors"
        ),
        9
    );
}

/// GPU 0's link 2 counters grow by `delta` (set by `set`) over `secs`.
fn grown(secs: u64, set: impl Fn(&mut crate::gpu::NvLinkSnapshot, u64)) -> HealthReport {
    let before = edited(|d| link(d, 2, |l| set(l, 100)));
    let after = edited(|d| link(d, 2, |l| set(l, 100 + 1)));
    eval_window(&before, &after, secs)
}

#[test]
fn one_new_error_per_minute_is_the_rate_threshold() {
    // CRC: WARN at ≥ 1/min; replay and recovery: FAIL.
    let crc = |l: &mut crate::gpu::NvLinkSnapshot, n| l.crc_flit_errors = Ok(n);
    let replay = |l: &mut crate::gpu::NvLinkSnapshot, n| l.replay_errors = Ok(n);
    let recovery = |l: &mut crate::gpu::NvLinkSnapshot, n| l.recovery_errors = Ok(n);
    let r = grown(60, crc);
    assert_eq!(finding(&r, 0, Rule::NvlinkCrcRate).severity, Severity::Warn);
    assert!(!has(&grown(61, crc), 0, Rule::NvlinkCrcRate));
    let r = grown(60, replay);
    let f = finding(&r, 0, Rule::NvlinkReplayRate);
    assert_eq!(f.severity, Severity::Fail);
    assert_eq!(ev(f, "link_2_replay_errors_delta"), 1);
    assert_eq!(ev(f, "threshold_errors_per_minute"), 1);
    assert!(!has(&grown(120, replay), 0, Rule::NvlinkReplayRate));
    assert_eq!(
        finding(&grown(5, recovery), 0, Rule::NvlinkRecoveryRate).severity,
        Severity::Fail
    );
    // No growth: only the totals speak.
    let s = edited(|d| link(d, 2, |l| l.replay_errors = Ok(100)));
    let r = eval_window(&s, &s, 60);
    assert_eq!(
        rules_of(&r, 0),
        vec![(Rule::NvlinkErrorTotals, Severity::Warn)]
    );
}

#[test]
fn a_link_counter_reset_is_judged_on_the_count_since_the_reset() {
    let before = edited(|d| link(d, 2, |l| l.replay_errors = Ok(500)));
    let after = edited(|d| link(d, 2, |l| l.replay_errors = Ok(3)));
    let r = eval_window(&before, &after, 60);
    let f = finding(&r, 0, Rule::NvlinkReplayRate);
    assert_eq!(ev(f, "link_2_counter_reset"), true);
    let after = edited(|d| link(d, 2, |l| l.replay_errors = Ok(0)));
    let r = eval_window(&before, &after, 60);
    assert!(skipped(&r, 0, Rule::NvlinkReplayRate).contains("went back from 500 to 0"));
}

#[test]
fn crc_rate_uses_the_readable_counter_when_the_other_is_not_supported() {
    let set = |d: &mut DeviceSnapshot, n| {
        link(d, 2, |l| {
            l.crc_data_errors = err(NvmlReturn::NotSupported);
            l.crc_flit_errors = Ok(n);
        })
    };
    let r = eval_window(&edited(|d| set(d, 0)), &edited(|d| set(d, 2)), 60);
    assert_eq!(
        ev(
            finding(&r, 0, Rule::NvlinkCrcRate),
            "link_2_crc_errors_delta"
        ),
        2
    );
}
