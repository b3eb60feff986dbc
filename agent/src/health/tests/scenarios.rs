//! Every built-in scenario end to end: snapshot from the mock backend → verdicts and key findings,
//! with and without a baseline, plus JSON snapshots of full reports.

use super::*;

#[test]
fn healthy_passes_with_nothing_above_info_and_nothing_unchecked() {
    let r = eval(&healthy());
    assert_eq!(r.verdict, Verdict::Pass);
    assert_eq!(r.gpus.len(), 8);
    others_pass(&r, &[]);
    // Hopper answers NOT_SUPPORTED for page retirement: normal, so neither a finding nor "unchecked".
    for g in &r.gpus {
        assert!(g.findings.is_empty(), "{:#?}", g.findings);
        assert!(g.not_evaluated.is_empty(), "{:#?}", g.not_evaluated);
    }
    assert_eq!(r.node.verdict, Verdict::Pass);
    let [no_baseline] = r.node.findings.as_slice() else {
        panic!("{:#?}", r.node.findings)
    };
    assert_eq!(no_baseline.check, Rule::RatesNoBaseline);
    assert_eq!(no_baseline.severity, Severity::Info);
    assert!(
        no_baseline
            .action
            .as_deref()
            .unwrap()
            .contains("window_seconds")
    );
    assert_eq!(r.window_seconds, 0.0);
    assert!(r.rate_rules_evaluated.is_empty());
    assert_eq!(
        r.summary,
        "PASS: 8 GPU(s) checked, no problems found; rate rules not evaluated (no baseline)."
    );
}

#[test]
fn healthy_with_a_baseline_runs_every_rate_rule() {
    let r = eval_scenario_window("healthy", 60);
    assert_eq!(r.verdict, Verdict::Pass);
    assert!(r.node.findings.is_empty());
    assert_eq!(r.window_seconds, 60.0);
    assert_eq!(r.rate_rules_evaluated, Rule::RATE_RULES.to_vec());
    assert_eq!(
        r.summary,
        "PASS: 8 GPU(s) checked, no problems found; rates over 60.0 s."
    );
}

#[test]
fn thermal_throttle_warns_about_gpu_2() {
    let r = eval(&snap_at(&backend("thermal-throttle"), 0));
    assert_eq!(r.verdict, Verdict::Warn);
    assert_eq!(r.gpus[2].verdict, Verdict::Warn);
    let f = finding(&r, 2, Rule::ThermalSlowdown);
    assert_eq!(ev(f, "temperature_c"), 88);
    assert_eq!(ev(f, "slowdown_threshold_c"), 87);
    assert!(
        f.message
            .starts_with("GPU 2 (GPU-5f3b8a1e-2c4d-4e6f-8a9b-0c1d2e3f4a52) is at 88 °C")
    );
    assert!(has(&r, 2, Rule::ClockEventsSwThermalSlowdown));
    assert!(has(&r, 2, Rule::ClockEventsHwThermalSlowdown));
    others_pass(&r, &[2]);
    assert!(
        r.summary
            .starts_with("WARN: GPU 2 WARN (thermal.slowdown, "),
        "{}",
        r.summary
    );

    let r = eval_scenario_window("thermal-throttle", 60);
    let f = finding(&r, 2, Rule::ThermalViolationRate);
    assert_eq!(f.severity, Severity::Warn);
    assert_eq!(ev(f, "thermal_violation_ms_delta"), 42_000.0);
    assert_eq!(ev(f, "throttled_percent_of_window"), 70.0);
    assert_eq!(ev(f, "window_seconds"), 60.0);
    others_pass(&r, &[2]);
}

#[test]
fn ecc_dbe_fails_gpu_4_on_ecc() {
    let r = eval(&snap_at(&backend("ecc-dbe"), 0));
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(r.gpus[4].verdict, Verdict::Fail);
    let f = finding(&r, 4, Rule::EccVolatileDbe);
    assert_eq!(f.severity, Severity::Fail);
    assert_eq!(ev(f, "ecc_volatile_uncorrected"), 2);
    assert!(f.message.contains("GPU 4"), "{}", f.message);
    assert!(
        f.action
            .as_deref()
            .unwrap()
            .contains("so the pending row remap takes effect"),
        "{f:#?}"
    );
    assert_eq!(
        finding(&r, 4, Rule::RowRemapPending).severity,
        Severity::Warn
    );
    assert_eq!(
        finding(&r, 4, Rule::RecoveryAction).severity,
        Severity::Fail
    );
    assert_eq!(finding(&r, 4, Rule::EccSbe).severity, Severity::Info);
    others_pass(&r, &[4]);
    // Failures first.
    assert_eq!(r.gpus[4].findings[0].severity, Severity::Fail);
    assert_eq!(
        r.summary,
        "FAIL: GPU 4 FAIL (ecc.volatile_dbe, recovery_action, memory.row_remap_pending); 7 of 8 \
         GPU(s) PASS; rate rules not evaluated (no baseline)."
    );
}

#[test]
fn row_remap_pending_warns_gpu_1() {
    let r = eval(&snap_at(&backend("row-remap-pending"), 0));
    assert_eq!(r.verdict, Verdict::Warn);
    let f = finding(&r, 1, Rule::RowRemapPending);
    assert_eq!(f.severity, Severity::Warn);
    assert!(
        f.message
            .contains("reset required before trusting it for new tenants")
    );
    assert!(
        f.action
            .as_deref()
            .unwrap()
            .contains("`nvidia-smi -r -i 1`")
    );
    assert_eq!(ev(f, "remapped_rows_correctable"), 1);
    assert_eq!(r.gpus[1].verdict, Verdict::Warn);
    others_pass(&r, &[1]);
}

#[test]
fn row_remap_failure_fails_gpu_6() {
    let r = eval(&snap_at(&backend("row-remap-failure"), 0));
    assert_eq!(r.verdict, Verdict::Fail);
    let f = finding(&r, 6, Rule::RowRemapFailure);
    assert_eq!(f.severity, Severity::Fail);
    assert_eq!(ev(f, "remapped_rows_uncorrectable"), 9);
    assert!(f.action.as_deref().unwrap().contains("RMA"));
    assert!(!has(&r, 6, Rule::RowRemapPending));
    assert!(has(&r, 6, Rule::EccVolatileDbe));
    others_pass(&r, &[6]);
}

#[test]
fn fallen_off_bus_fails_gpu_5_as_lost() {
    let r = eval(&snap_at(&backend("fallen-off-bus"), 0));
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(rules_of(&r, 5), vec![(Rule::GpuLost, Severity::Fail)]);
    let f = finding(&r, 5, Rule::GpuLost);
    assert_eq!(ev(f, "nvml_error"), "NVML_ERROR_GPU_IS_LOST");
    assert_eq!(ev(f, "failed_read"), "name");
    assert!(f.message.starts_with("GPU 5 is lost"), "{}", f.message);
    assert!(f.action.as_deref().unwrap().contains("power-cycle"));
    assert!(r.gpus[5].uuid.is_none());
    // Still enumerated by NVML: no count mismatch.
    assert!(
        !r.node
            .findings
            .iter()
            .any(|f| f.check == Rule::GpuCountMismatch)
    );
    others_pass(&r, &[5]);
}

#[test]
fn nvlink_errors_fail_gpu_3_on_link_7_and_link_2_rates() {
    let r = eval(&snap_at(&backend("nvlink-errors"), 0));
    assert_eq!(r.verdict, Verdict::Fail);
    let f = finding(&r, 3, Rule::NvlinkDown);
    assert_eq!(f.severity, Severity::Fail);
    assert_eq!(ev(f, "links_down"), "7");
    assert_eq!(ev(f, "links_up"), 17);
    let totals = finding(&r, 3, Rule::NvlinkErrorTotals);
    assert_eq!(totals.severity, Severity::Warn);
    assert_eq!(ev(totals, "link_2_replay_errors"), 310);
    assert_eq!(ev(totals, "link_2_recovery_errors"), 4);
    assert_eq!(
        finding(&r, 3, Rule::NvlinkCrcTotals).severity,
        Severity::Info
    );
    others_pass(&r, &[3]);

    let r = eval_scenario_window("nvlink-errors", 60);
    let replay = finding(&r, 3, Rule::NvlinkReplayRate);
    assert_eq!(replay.severity, Severity::Fail);
    assert_eq!(ev(replay, "links"), "2");
    assert_eq!(ev(replay, "link_2_replay_errors_delta"), 30);
    assert_eq!(ev(replay, "window_seconds"), 60.0);
    let recovery = finding(&r, 3, Rule::NvlinkRecoveryRate);
    assert_eq!(ev(recovery, "link_2_recovery_errors_delta"), 1);
    let crc = finding(&r, 3, Rule::NvlinkCrcRate);
    assert_eq!(crc.severity, Severity::Warn);
    assert_eq!(ev(crc, "link_2_crc_errors_delta"), 122);
    others_pass(&r, &[3]);
}

#[test]
fn pcie_downtrain_warns_gpu_0_and_its_replay_rate() {
    let r = eval(&snap_at(&backend("pcie-downtrain"), 0));
    assert_eq!(r.verdict, Verdict::Warn);
    let f = finding(&r, 0, Rule::PcieLinkWidth);
    assert_eq!(
        f.message,
        "GPU 0 (GPU-5f3b8a1e-2c4d-4e6f-8a9b-0c1d2e3f4a50)'s PCIe link is downtrained: x8 of x16 lanes."
    );
    // 88 % busy: the generation counts too.
    assert_eq!(finding(&r, 0, Rule::PcieLinkGen).severity, Severity::Warn);
    assert!(!has(&r, 0, Rule::PcieReplayRate));
    others_pass(&r, &[0]);

    let r = eval_scenario_window("pcie-downtrain", 60);
    let f = finding(&r, 0, Rule::PcieReplayRate);
    assert_eq!(f.severity, Severity::Warn);
    assert_eq!(ev(f, "pcie_replays_delta"), 60);
    assert_eq!(ev(f, "threshold_replays_per_minute"), 8);
    assert_eq!(ev(f, "pcie_gen_current"), 4);
    assert_eq!(ev(f, "pcie_width_current"), 8);
    assert_eq!(r.gpus[0].verdict, Verdict::Warn);
    others_pass(&r, &[0]);
}

#[test]
fn a_gpu_missing_from_nvml_fails_the_node_naming_its_address() {
    let b = backend_yaml("extends: healthy\ngpu_overrides: {6: {presence: absent}}");
    let r = eval(&snap_at(&b, 0));
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(r.node.verdict, Verdict::Fail);
    let f = r
        .node
        .findings
        .iter()
        .find(|f| f.check == Rule::GpuCountMismatch)
        .unwrap();
    assert_eq!(
        f.message,
        "NVML enumerates 7 GPU(s) but the PCI bus holds 8 NVIDIA GPU(s): NVML does not see the \
         GPU(s) at 00000000:BA:00.0."
    );
    assert_eq!(ev(f, "missing_pci_bus_ids"), "00000000:BA:00.0");
    others_pass(&r, &[]);
    assert!(
        r.summary
            .starts_with("FAIL: node FAIL (gpu.count_mismatch); 7 of 7 GPU(s) PASS")
    );

    // Filtered to one GPU: the mismatch is still seen, but which GPU is missing cannot be told.
    let one = b.snapshot_at(GpuFilter::Index(0), Duration::ZERO).unwrap();
    let r = eval(&one);
    let f = r
        .node
        .findings
        .iter()
        .find(|f| f.check == Rule::GpuCountMismatch)
        .unwrap();
    assert!(
        f.message.contains("which ones are missing is unknown"),
        "{}",
        f.message
    );
    assert!(r.summary.contains("1 of 7 GPU(s)"), "{}", r.summary);
}

#[test]
fn a_gpu_whose_handle_is_lost_is_listed_as_lost() {
    let b = backend_yaml("extends: healthy\ngpu_overrides: {2: {presence: handle_lost}}");
    let r = eval(&snap_at(&b, 0));
    let f = finding(&r, 2, Rule::GpuLost);
    assert_eq!(ev(f, "failed_read"), "handle");
    assert_eq!(r.gpus[2].findings.len(), 1);
}

#[test]
fn an_unreadable_pci_scan_is_reported_as_not_evaluated() {
    let b = backend_yaml("extends: healthy\nnode: {pci_gpu_functions: {error: NO_PERMISSION}}");
    let r = eval(&snap_at(&b, 0));
    assert_eq!(r.verdict, Verdict::Pass);
    let [n] = r.node.not_evaluated.as_slice() else {
        panic!("{:#?}", r.node)
    };
    assert_eq!(n.check, Rule::GpuCountMismatch);
    assert!(
        n.reason.contains("NVML_ERROR_NO_PERMISSION"),
        "{}",
        n.reason
    );
}

/// Every value of a JSON document, to look for nulls.
fn walk(v: &serde_json::Value, found_null: &mut Vec<String>, path: String) {
    match v {
        serde_json::Value::Null => found_null.push(path),
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                walk(x, found_null, format!("{path}[{i}]"));
            }
        }
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                walk(x, found_null, format!("{path}.{k}"));
            }
        }
        _ => {}
    }
}

#[test]
fn every_scenario_serializes_to_an_object_without_nulls() {
    for name in gpu_fixture::builtin_names() {
        for r in [
            eval(&snap_at(&backend(name), 0)),
            eval_scenario_window(name, 10),
        ] {
            let v = serde_json::to_value(&r).unwrap();
            assert!(v.is_object());
            let mut nulls = Vec::new();
            walk(&v, &mut nulls, String::new());
            assert!(nulls.is_empty(), "{name}: null at {nulls:?}");
        }
    }
}

#[test]
fn report_json_snapshots() {
    insta::assert_json_snapshot!("healthy", eval(&healthy()));
    insta::assert_json_snapshot!("ecc_dbe", eval(&snap_at(&backend("ecc-dbe"), 0)));
    insta::assert_json_snapshot!(
        "fallen_off_bus",
        eval(&snap_at(&backend("fallen-off-bus"), 0))
    );
    insta::assert_json_snapshot!(
        "nvlink_errors_60s",
        eval_scenario_window("nvlink-errors", 60)
    );
    insta::assert_json_snapshot!(
        "pcie_downtrain_10s",
        eval_scenario_window("pcie-downtrain", 10)
    );
}

#[test]
fn report_schema_snapshot() {
    let schema = schemars::schema_for!(HealthReport);
    insta::assert_json_snapshot!("health_report_schema", schema);
}

#[test]
fn the_tool_output_schema_is_an_object_without_null_types() {
    let schema = crate::server::schema::output_schema::<HealthReport>();
    assert_eq!(schema.get("type"), Some(&serde_json::json!("object")));
    let props = schema["properties"].as_object().unwrap();
    for key in [
        "verdict",
        "summary",
        "window_seconds",
        "rate_rules_evaluated",
        "node",
        "gpus",
    ] {
        assert!(props.contains_key(key), "{key}");
    }
    let text = serde_json::to_string(&*schema).unwrap();
    assert!(!text.contains("\"null\""), "{text}");
}
