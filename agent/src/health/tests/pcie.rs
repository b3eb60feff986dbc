//! PCIe width, generation and replay rate.

use super::*;
use crate::gpu::Utilization;

#[test]
fn a_narrower_link_than_the_maximum_warns() {
    assert_eq!(gpu0(|d| d.pcie_width_current = Ok(16)), vec![]);
    assert_eq!(
        gpu0(|d| d.pcie_width_current = Ok(15)),
        vec![(Rule::PcieLinkWidth, Severity::Warn)]
    );
    let r = eval(&edited(|d| d.pcie_width_current = Ok(8)));
    let f = finding(&r, 0, Rule::PcieLinkWidth);
    assert_eq!(ev(f, "pcie_width_current"), 8);
    assert_eq!(ev(f, "pcie_width_max"), 16);
    assert!(f.action.as_deref().unwrap().contains("reseat the GPU"));
    let r = eval(&edited(|d| {
        d.pcie_width_max = err(NvmlReturn::NotSupported)
    }));
    assert!(skipped(&r, 0, Rule::PcieLinkWidth).starts_with("maximum PCIe link width: "));
}

#[test]
fn a_lower_generation_is_judged_only_under_load() {
    let at = |busy| {
        gpu0(|d| {
            d.pcie_gen_current = Ok(4);
            d.utilization = Ok(Utilization {
                gpu_percent: busy,
                memory_percent: 0,
            });
        })
    };
    assert_eq!(at(0), vec![(Rule::PcieLinkGen, Severity::Info)]);
    assert_eq!(at(49), vec![(Rule::PcieLinkGen, Severity::Info)]);
    assert_eq!(at(50), vec![(Rule::PcieLinkGen, Severity::Warn)]);
    assert_eq!(at(100), vec![(Rule::PcieLinkGen, Severity::Warn)]);
    let opts = EvaluateOptions {
        busy_utilization_percent: 90,
    };
    let s = edited(|d| {
        d.pcie_gen_current = Ok(4);
        d.utilization = Ok(Utilization {
            gpu_percent: 80,
            memory_percent: 0,
        });
    });
    let r = evaluate(&s, None, &[], &opts);
    assert_eq!(finding(&r, 0, Rule::PcieLinkGen).severity, Severity::Info);
    assert_eq!(
        ev(finding(&r, 0, Rule::PcieLinkGen), "busy_threshold_percent"),
        90
    );
    // At max gen the utilization is not even needed.
    assert_eq!(
        gpu0(|d| d.utilization = err(NvmlReturn::NotSupported)),
        vec![]
    );
    let r = eval(&edited(|d| {
        d.pcie_gen_current = Ok(3);
        d.utilization = err(NvmlReturn::NotSupported);
    }));
    assert_eq!(rules_of(&r, 0), vec![]);
    assert!(skipped(&r, 0, Rule::PcieLinkGen).starts_with("GPU utilization"));
}

/// GPU 0 on Gen `gen_` x`width` whose replay counter grows by `delta` over `secs`.
fn replays(gen_: u32, width: u32, before: u64, after: u64, secs: u64) -> HealthReport {
    let link = |d: &mut DeviceSnapshot| {
        d.pcie_gen_current = Ok(gen_);
        d.pcie_gen_max = Ok(gen_.max(5));
        d.pcie_width_current = Ok(width);
        d.pcie_width_max = Ok(width);
        d.utilization = Ok(Utilization {
            gpu_percent: 0,
            memory_percent: 0,
        });
    };
    let b = edited(|d| {
        link(d);
        d.pcie_replay_counter = Ok(before);
    });
    let a = edited(|d| {
        link(d);
        d.pcie_replay_counter = Ok(after);
    });
    eval_window(&b, &a, secs)
}

#[test]
fn replay_rate_fires_strictly_above_the_threshold_of_every_gen_and_width() {
    let table: [(u32, [u64; 4]); 6] = [
        (1, [1, 1, 2, 3]),
        (2, [1, 2, 3, 5]),
        (3, [1, 2, 4, 8]),
        (4, [1, 4, 8, 16]),
        (5, [2, 8, 16, 31]),
        (6, [4, 16, 31, 62]),
    ];
    for (gen_, row) in table {
        for (width, threshold) in [1, 4, 8, 16].into_iter().zip(row) {
            let at = replays(gen_, width, 1000, 1000 + threshold, 60);
            assert!(
                !has(&at, 0, Rule::PcieReplayRate),
                "Gen{gen_} x{width} at {threshold}"
            );
            let above = replays(gen_, width, 1000, 1000 + threshold + 1, 60);
            let f = finding(&above, 0, Rule::PcieReplayRate);
            assert_eq!(f.severity, Severity::Warn);
            assert_eq!(ev(f, "threshold_replays_per_minute"), threshold);
            assert_eq!(ev(f, "pcie_replays_delta"), threshold + 1);
        }
    }
}

#[test]
fn gen5_x16_allows_31_replays_per_minute_scaled_to_the_window() {
    let f = |delta, secs| has(&replays(5, 16, 0, delta, secs), 0, Rule::PcieReplayRate);
    assert!(!f(31, 60));
    assert!(f(32, 60));
    // 30 s: 15.5 allowed.
    assert!(!f(15, 30));
    assert!(f(16, 30));
    // 10 s: 5.17 allowed.
    assert!(!f(5, 10));
    assert!(f(6, 10));
    let r = replays(5, 16, 0, 6, 10);
    let finding = finding(&r, 0, Rule::PcieReplayRate);
    assert_eq!(ev(finding, "threshold_replays_in_window"), 5.167);
    assert_eq!(ev(finding, "window_seconds"), 10.0);
    assert_eq!(
        finding.message,
        "GPU 0 (GPU-5f3b8a1e-2c4d-4e6f-8a9b-0c1d2e3f4a50) logged 6 PCIe replays in 10.0 s, above \
         the 5.2 a Gen5 x16 link may show in that time (31 per minute)."
    );
    assert!(r.rate_rules_evaluated.contains(&Rule::PcieReplayRate));
}

#[test]
fn a_replay_counter_reset_is_judged_on_the_count_since_the_reset() {
    // Went back from 5000 to 40: at least 40 replays in the window, above 31.
    let r = replays(5, 16, 5000, 40, 60);
    let f = finding(&r, 0, Rule::PcieReplayRate);
    assert_eq!(ev(f, "counter_reset"), true);
    assert!(
        f.message.contains("logged at least 40 PCIe replays"),
        "{}",
        f.message
    );
    // Went back to 5: within the threshold, but the full rate is unknown.
    let r = replays(5, 16, 5000, 5, 60);
    assert!(!has(&r, 0, Rule::PcieReplayRate));
    assert!(skipped(&r, 0, Rule::PcieReplayRate).contains("went backwards from 5000 to 5"));
}

#[test]
fn replay_rate_needs_both_readings_and_a_known_link() {
    let before = healthy();
    let mut after = healthy();
    after.devices[0].pcie_replay_counter = err(NvmlReturn::NotSupported);
    let r = eval_window(&before, &after, 60);
    assert!(skipped(&r, 0, Rule::PcieReplayRate).starts_with("PCIe replay counter: not supported"));
    let r = eval_window(&after, &before, 60);
    assert!(skipped(&r, 0, Rule::PcieReplayRate).starts_with("PCIe replay counter (baseline): "));
    let r = replays(7, 16, 0, 100, 60);
    assert_eq!(
        skipped(&r, 0, Rule::PcieReplayRate),
        "no replay threshold is known for a Gen7 x16 link"
    );
    // Without a baseline, the GPU lists nothing: the node says once that rates were not evaluated.
    let r = eval(&healthy());
    assert!(r.gpus[0].not_evaluated.is_empty());
}
