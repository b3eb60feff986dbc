//! Lost/unreadable GPUs, InfoROM, recovery action, Xid rules and baseline matching.

use super::*;

#[test]
fn a_handle_that_fails_for_another_reason_is_unreadable_not_lost() {
    let mut s = healthy();
    let e = ReadError::new(NvmlReturn::NoPermission);
    s.devices[3] = DeviceSnapshot::unreachable(3, Err(e.clone()), e);
    let r = eval(&s);
    assert_eq!(rules_of(&r, 3), vec![(Rule::GpuUnreadable, Severity::Warn)]);
    assert!(
        finding(&r, 3, Rule::GpuUnreadable)
            .message
            .contains("none of its health checks ran")
    );
    assert_eq!(r.verdict, Verdict::Warn);
}

#[test]
fn reset_required_is_a_lost_gpu_with_a_reset_action() {
    let r = eval(&edited(|d| {
        d.temperature_c = err(NvmlReturn::ResetRequired)
    }));
    assert_eq!(rules_of(&r, 0), vec![(Rule::GpuLost, Severity::Fail)]);
    let f = finding(&r, 0, Rule::GpuLost);
    assert_eq!(ev(f, "failed_read"), "temperature");
    assert_eq!(ev(f, "pci_bus_id"), "00000000:18:00.0");
    assert!(
        f.action
            .as_deref()
            .unwrap()
            .contains("`nvidia-smi -r -i 0`")
    );
}

#[test]
fn inforom_corruption_warns_either_way_nvml_reports_it() {
    let rule = vec![(Rule::InforomCorrupt, Severity::Warn)];
    assert_eq!(gpu0(|d| d.inforom_valid = Ok(false)), rule);
    assert_eq!(
        gpu0(|d| d.inforom_valid = err(NvmlReturn::CorruptedInforom)),
        rule
    );
    let r = eval(&edited(|d| d.inforom_valid = err(NvmlReturn::NotSupported)));
    assert_eq!(rules_of(&r, 0), vec![]);
    assert!(skipped(&r, 0, Rule::InforomCorrupt).starts_with("InfoROM validation: not supported"));
}

#[test]
fn recovery_actions_map_to_verdicts_and_unknown_values_print_raw() {
    let at = |v| {
        let r = eval(&edited(|d| d.recovery_action = Ok(v)));
        r.gpus[0].findings.first().map(|f| {
            assert_eq!(f.check, Rule::RecoveryAction);
            (
                f.severity,
                ev(f, "recovery_action_name"),
                ev(f, "recovery_action"),
            )
        })
    };
    assert_eq!(at(0), None);
    let expect = [
        (1, Severity::Fail, "GPU_RESET"),
        (2, Severity::Fail, "NODE_REBOOT"),
        (3, Severity::Warn, "DRAIN_P2P"),
        (4, Severity::Warn, "DRAIN_AND_RESET"),
        (5, Severity::Fail, "RECOVER_IMEX_DOMAIN"),
        (6, Severity::Fail, "BUS_RESET"),
        (7, Severity::Fail, "SYSTEM_REBOOT"),
        (42, Severity::Warn, "unknown"),
    ];
    for (v, sev, name) in expect {
        assert_eq!(at(v), Some((sev, name.into(), v.into())), "value {v}");
    }
    let r = eval(&edited(|d| d.recovery_action = Ok(42)));
    assert!(r.gpus[0].findings[0].message.contains("recovery action 42"));
    let r = eval(&edited(|d| {
        d.recovery_action = err(NvmlReturn::NotSupported)
    }));
    assert!(skipped(&r, 0, Rule::RecoveryAction).starts_with("recovery action (NVML field 230): "));
}

fn xid(gpu_index: Option<u32>, code: u32, count: u32, last_seen: &str) -> ObservedXid {
    ObservedXid {
        gpu_index,
        code,
        count,
        last_seen: last_seen.into(),
    }
}

fn with_xids(s: &NodeSnapshot, xids: &[ObservedXid]) -> HealthReport {
    evaluate(s, None, xids, &EvaluateOptions::default())
}

#[test]
fn each_judged_xid_has_its_severity() {
    for (code, rule, sev) in [
        (48, Rule::Xid48, Severity::Fail),
        (63, Rule::Xid63, Severity::Warn),
        (64, Rule::Xid64, Severity::Fail),
        (74, Rule::Xid74, Severity::Fail),
        (79, Rule::Xid79, Severity::Fail),
        (94, Rule::Xid94, Severity::Info),
        (95, Rule::Xid95, Severity::Fail),
        (13, Rule::XidOther, Severity::Info),
        // Critical in NVIDIA's catalog (GSP RPC timeout): warns and points to the Xid tool.
        (119, Rule::XidOther, Severity::Warn),
        // Not in the catalog at all.
        (999, Rule::XidOther, Severity::Info),
    ] {
        let r = with_xids(&healthy(), &[xid(Some(2), code, 3, "2025-01-01T00:00:00Z")]);
        assert_eq!(rules_of(&r, 2), vec![(rule, sev)], "Xid {code}");
        let f = finding(&r, 2, rule);
        assert_eq!(ev(f, "xid"), code);
        assert_eq!(ev(f, "count"), 3);
        assert!(
            f.message
                .starts_with(&format!("GPU 2 reported Xid {code} (")),
            "{}",
            f.message
        );
    }
}

#[test]
fn xid_48_action_follows_its_companions() {
    let t = "2025-01-01T00:00:00Z";
    let action = |xids: &[ObservedXid]| {
        let r = with_xids(&healthy(), xids);
        finding(&r, 4, Rule::Xid48).action.clone().unwrap()
    };
    assert_eq!(
        action(&[xid(Some(4), 48, 1, t)]),
        "Stop GPU 4's workloads and reset GPU 4 (`nvidia-smi -r -i 4`)."
    );
    assert!(
        action(&[xid(Some(4), 48, 1, t), xid(Some(4), 63, 1, t)])
            .contains("so the row remap (Xid 63) applies")
    );
    assert!(
        action(&[xid(Some(4), 48, 1, t), xid(Some(4), 64, 1, t)]).contains("replace the GPU (RMA)")
    );
    // A 63 on another GPU is no companion.
    assert!(action(&[xid(Some(4), 48, 1, t), xid(Some(5), 63, 1, t)]).starts_with("Stop GPU 4"));
}

#[test]
fn xids_merge_per_gpu_and_code_and_unattributed_ones_go_to_the_node() {
    let r = with_xids(
        &healthy(),
        &[
            xid(Some(1), 95, 2, "2025-01-01T00:00:05Z"),
            xid(Some(1), 95, 1, "2025-01-02T00:00:00Z"),
            xid(None, 79, 1, "2025-01-03T00:00:00Z"),
        ],
    );
    let f = finding(&r, 1, Rule::Xid95);
    assert_eq!(ev(f, "count"), 3);
    assert_eq!(ev(f, "last_seen"), "2025-01-02T00:00:00Z");
    assert_eq!(r.node.verdict, Verdict::Fail);
    let n = r
        .node
        .findings
        .iter()
        .find(|f| f.check == Rule::Xid79)
        .unwrap();
    assert!(n.message.starts_with("an unidentified GPU reported Xid 79"));
    assert!(
        r.summary
            .starts_with("FAIL: node FAIL (xid.79); GPU 1 FAIL (xid.95)"),
        "{}",
        r.summary
    );
}

#[test]
fn xids_of_gpus_outside_a_filtered_snapshot_are_left_out() {
    let b = backend("healthy");
    let one = b.snapshot_at(GpuFilter::Index(4), Duration::ZERO).unwrap();
    let t = "2025-01-01T00:00:00Z";
    let r = with_xids(&one, &[xid(Some(4), 48, 1, t), xid(Some(5), 95, 1, t)]);
    assert_eq!(r.gpus.len(), 1);
    assert_eq!(rules_of(&r, 0), vec![(Rule::Xid48, Severity::Fail)]);
    assert!(
        r.node
            .findings
            .iter()
            .all(|f| f.check == Rule::RatesNoBaseline)
    );
    // Unfiltered, an Xid naming a GPU index the node lacks is kept at node level.
    let r = with_xids(&healthy(), &[xid(Some(12), 95, 1, t)]);
    assert!(r.node.findings.iter().any(|f| f.check == Rule::Xid95));
}

#[test]
fn a_baseline_of_other_gpus_is_not_used() {
    let before = healthy();
    let mut after = healthy();
    after.devices[0].uuid = Ok("GPU-00000000-0000-0000-0000-000000000000".into());
    let r = eval_window(&before, &after, 60);
    assert!(skipped(&r, 0, Rule::PcieReplayRate).contains("different UUID"));
    assert!(skipped(&r, 0, Rule::NvlinkReplayRate).contains("different UUID"));
    // GPUs matched by UUID even when the index moved.
    let mut moved = healthy();
    moved.devices.swap(0, 1);
    moved.devices[0].index = 0;
    moved.devices[1].index = 1;
    let r = eval_window(&moved, &healthy(), 60);
    assert!(r.gpus.iter().all(|g| g.not_evaluated.is_empty()));
    // A GPU absent from the baseline.
    let mut fewer = healthy();
    fewer.devices.pop();
    let r = eval_window(&fewer, &healthy(), 60);
    assert!(skipped(&r, 7, Rule::PcieReplayRate).contains("not in the baseline"));
}

#[test]
fn a_zero_length_window_counts_as_no_baseline() {
    let r = eval_window(&healthy(), &healthy(), 0);
    assert_eq!(r.window_seconds, 0.0);
    assert!(r.rate_rules_evaluated.is_empty());
    let f = &r.node.findings[0];
    assert_eq!(f.check, Rule::RatesNoBaseline);
    assert!(f.message.contains("taken 0 s before"));
    assert_eq!(
        ev(f, "rules_not_evaluated"),
        "pcie.replay_rate, nvlink.crc_rate, nvlink.replay_rate, nvlink.recovery_rate, \
         thermal.violation_rate, power.violation_rate"
    );
}

#[test]
fn rule_ids_are_their_wire_form() {
    assert_eq!(Rule::PcieReplayRate.id(), "pcie.replay_rate");
    assert_eq!(Rule::Xid95.to_string(), "xid.95");
    assert_eq!(
        serde_json::to_value(Rule::RecoveryAction).unwrap(),
        "recovery_action"
    );
}
