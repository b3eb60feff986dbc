//! Tests of `catalog.rs`.

use super::*;
use xid_catalog::{self as catalog_csv, ACTION_BUCKETS};

const CSV: &str = include_str!("../../../data/xid-catalog.csv");
const UPSTREAM: &str = include_str!("../../../data/upstream/xiderrorsmapping.csv");

#[test]
fn every_code_from_1_to_172_is_present_once_and_sorted() {
    let codes: Vec<u32> = entries().iter().map(|e| e.code).collect();
    assert_eq!(codes, (1..=172).collect::<Vec<u32>>());
}

/// gpu-health.md §4: mnemonic, immediate bucket and fatal flag of every code it lists.
#[test]
fn reference_table_codes_match() {
    use ActionBucket as B;
    let expected: &[(u32, &str, ActionBucket, bool)] = &[
        (
            8,
            "ROBUST_CHANNEL_FIFO_ERROR_IDLE_TIMEOUT",
            B::RestartApp,
            false,
        ),
        (13, "ROBUST_CHANNEL_GR_EXCEPTION", B::RestartApp, false),
        (
            31,
            "ROBUST_CHANNEL_FIFO_ERROR_MMU_ERR_FLT",
            B::RestartApp,
            false,
        ),
        (32, "ROBUST_CHANNEL_PBDMA_ERROR", B::RestartApp, false),
        (
            43,
            "ROBUST_CHANNEL_RESETCHANNEL_VERIF_ERROR",
            B::Ignore,
            false,
        ),
        (
            45,
            "ROBUST_CHANNEL_PREEMPTIVE_REMOVAL",
            B::WorkflowXid45,
            false,
        ),
        (46, "ROBUST_CHANNEL_GPU_TIMEOUT_ERROR", B::ResetGpu, true),
        (48, "ROBUST_CHANNEL_GPU_ECC_DBE", B::WorkflowXid48, true),
        (
            54,
            "SILENT_RUNNING_PWR_REDUCED_CLOCKING",
            B::CheckMechanicals,
            true,
        ),
        (61, "PMU_BREAKPOINT", B::UnexpectedErrReportIssue, true),
        (62, "PMU_HALT_ERROR", B::ResetGpu, true),
        (63, "INFOROM_DRAM_RETIREMENT_EVENT", B::Ignore, false),
        (64, "INFOROM_DRAM_RETIREMENT_FAILURE", B::ResetGpu, true),
        (68, "ROBUST_CHANNEL_NVDEC0_ERROR", B::RestartApp, false),
        (69, "ROBUST_CHANNEL_GR_CLASS_ERROR", B::RestartApp, false),
        (74, "NVLINK_ERROR", B::WorkflowNvlinkErr, true),
        (
            79,
            "ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS",
            B::RestartBm,
            true,
        ),
        (92, "EXCESSIVE_SBE_INTERRUPTS", B::Ignore, false),
        (94, "ROBUST_CHANNEL_CONTAINED_ERROR", B::RestartApp, false),
        (95, "ROBUST_CHANNEL_UNCONTAINED_ERROR", B::ResetGpu, true),
        (109, "ROBUST_CHANNEL_CTXSW_TIMEOUT_ERROR", B::ResetGpu, true),
        (110, "SEC_FAULT_ERROR", B::ResetGpu, true),
        (119, "GSP_RPC_TIMEOUT", B::ResetGpu, true),
        (120, "GSP_ERROR", B::ResetGpu, true),
        (136, "ALI_TRAINING_FAIL", B::ResetGpu, true),
        (140, "UNRECOVERABLE_ECC_ERROR_ESCAPE", B::ResetGpu, true),
        (
            142,
            "ROBUST_CHANNEL_NVENC3_ERROR",
            B::UnexpectedErrReportIssue,
            true,
        ),
        (143, "GPU_INIT_ERROR", B::ResetGpu, true),
        (144, "NVLINK_SAW_ERROR", B::WorkflowNvlink5Err, true),
        (145, "NVLINK_RLW_ERROR", B::WorkflowNvlink5Err, true),
        (146, "NVLINK_TLW_ERROR", B::WorkflowNvlink5Err, true),
        (147, "NVLINK_TREX_ERROR", B::WorkflowNvlink5Err, true),
        (148, "NVLINK_NVLPW_CTRL_ERROR", B::WorkflowNvlink5Err, true),
        (149, "NVLINK_NETIR_ERROR", B::WorkflowNvlink5Err, true),
        (150, "NVLINK_MSE_ERROR", B::WorkflowNvlink5Err, true),
        (151, "ROBUST_CHANNEL_KEY_ROTATION_ERROR", B::RestartVm, true),
        (154, "GPU_RECOVERY_ACTION_CHANGED", B::Xid154, false),
        (155, "NVLINK_SW_DEFINED_ERROR", B::ResetGpu, true),
        (156, "RESOURCE_RETIREMENT_EVENT", B::ResetGpu, true),
        (158, "GPU_FATAL_TIMEOUT", B::ResetGpu, true),
    ];
    for (code, mnemonic, action, fatal) in expected {
        let entry = lookup(*code).unwrap_or_else(|| panic!("Xid {code} missing"));
        assert!(
            entry.mnemonic.starts_with(mnemonic),
            "Xid {code}: mnemonic {} should start with {mnemonic}",
            entry.mnemonic
        );
        assert_eq!(
            entry.immediate_action, *action,
            "Xid {code} immediate action"
        );
        assert_eq!(entry.fatal, Some(*fatal), "Xid {code} fatal flag");
    }
    assert_eq!(lookup(79).map(|e| e.severity), Some(Severity::Critical));
    assert_eq!(lookup(43).map(|e| e.severity), Some(Severity::Info));
    assert_eq!(lookup(13).map(|e| e.severity), Some(Severity::Warning));
    assert_eq!(
        lookup(13).map(|e| e.investigatory_action),
        Some(ActionBucket::WorkflowXid13)
    );
}

/// The catalog's NVSentinel columns agree with the verbatim upstream copy, except where the
/// README documents a deliberate deviation. Fails when upstream is updated and we are not.
#[test]
fn agrees_with_upstream_nvsentinel_mapping_except_documented_deviations() {
    let mut checked = 0;
    for line in UPSTREAM.lines() {
        let fields = catalog_csv::split_csv_line(line).expect("upstream row parses");
        let code: u32 = fields[0].parse().expect("upstream code");
        let (mnemonic, action, fatal) = (fields[1].trim(), fields[2].trim(), fields[3].trim());
        let entry = lookup(code).expect("every upstream code is in our catalog");
        match code {
            154 => {
                assert_eq!(action, "Follow guidance as it aapplies to another Xid");
                assert_eq!(entry.immediate_action, ActionBucket::Xid154);
            }
            162 => {
                assert_eq!((mnemonic, action, fatal), ("", "RESET_GPU", "FATAL"));
                assert_eq!(entry.mnemonic, "PSHC_REENGAGED");
            }
            _ => {
                assert_eq!(entry.mnemonic, mnemonic, "Xid {code} mnemonic");
                assert_eq!(
                    serde_json::to_value(entry.immediate_action).expect("serializes"),
                    serde_json::json!(action),
                    "Xid {code} immediate action"
                );
                assert_eq!(entry.fatal, Some(fatal == "FATAL"), "Xid {code} fatal");
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 162);
}

#[test]
fn bucket_wire_names_match_the_csv_vocabulary() {
    assert_eq!(ActionBucket::ALL.len(), ACTION_BUCKETS.len());
    for (bucket, (csv_name, _)) in ActionBucket::ALL.iter().zip(ACTION_BUCKETS) {
        assert_eq!(
            serde_json::to_value(bucket).expect("serializes"),
            serde_json::json!(csv_name)
        );
        assert!(
            bucket.instruction().ends_with('.'),
            "{csv_name} instruction"
        );
    }
}

#[test]
fn unknown_codes_are_not_guessed() {
    assert!(lookup(0).is_none());
    assert!(lookup(999).is_none());
    assert!(unknown_code_meaning().starts_with("not in catalog, see NVIDIA Xid catalog"));
}

#[test]
fn committed_csv_parses_to_the_compiled_table() {
    let rows = catalog_csv::parse_catalog(CSV).expect("catalog parses");
    assert_eq!(rows.len(), entries().len());
    assert_eq!(rows[47].mnemonic, entries()[47].mnemonic);
    let generated = catalog_csv::render_rust(&rows);
    assert!(generated.starts_with("// @generated by agent/build.rs"));
    assert!(generated.contains(
        "XidCatalogEntry { code: 79, mnemonic: \"ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS\", \
         immediate_action: ActionBucket::RestartBm, investigatory_action: ActionBucket::ContactSupport, \
         fatal: Some(true), severity: Severity::Critical,"
    ));
}

fn with_row(row: &str) -> String {
    let mut text = CSV.to_owned();
    text.push_str(row);
    text.push('\n');
    text
}

#[test]
fn malformed_rows_are_rejected_with_the_line_and_the_reason() {
    let lines = CSV.lines().count() + 1;
    let cases = [
        (
            "173,NEW_CODE,RESTART_APP,CONTACT_SUPPORT,FATAL,critical,,,d,m",
            "expected 11 fields",
        ),
        (
            "173,NEW_CODE,REBOOT_PLEASE,CONTACT_SUPPORT,FATAL,critical,,,d,m,n",
            "immediate_action `REBOOT_PLEASE` is not one of",
        ),
        (
            "173,NEW_CODE,RESTART_APP,CONTACT_SUPPORT,MAYBE,critical,,,d,m,n",
            "fatal `MAYBE` must be FATAL, NONFATAL or UNKNOWN",
        ),
        (
            "173,NEW_CODE,RESTART_APP,CONTACT_SUPPORT,FATAL,severe,,,d,m,n",
            "severity `severe` is not one of",
        ),
        (
            "173,NEW_CODE,RESTART_APP,CONTACT_SUPPORT,FATAL,info,V100,,d,m,n",
            "applies_to `V100` is not one of",
        ),
        (
            "100,DUPLICATE,RESTART_APP,CONTACT_SUPPORT,FATAL,info,,,d,m,n",
            "must be greater than the previous row's code 172",
        ),
        (
            "x1,NEW_CODE,RESTART_APP,CONTACT_SUPPORT,FATAL,info,,,d,m,n",
            "code `x1` is not a positive integer",
        ),
        (
            "173,new code,RESTART_APP,CONTACT_SUPPORT,FATAL,info,,,d,m,n",
            "mnemonic `new code` must be non-empty upper-case",
        ),
        (
            "173,NEW_CODE,RESTART_APP,CONTACT_SUPPORT,FATAL,info,,,\"d,m,n",
            "unterminated quote in field 9",
        ),
        (
            "173,NEW_CODE,RESTART_APP,CONTACT_SUPPORT,FATAL,info,,,,m,n",
            "description and meaning must not be empty",
        ),
    ];
    for (row, reason) in cases {
        let error = catalog_csv::parse_catalog(&with_row(row)).expect_err(row);
        assert!(
            error.starts_with(&format!("line {lines}: ")) && error.contains(reason),
            "{row}: got `{error}`, wanted line {lines} and `{reason}`"
        );
    }
}

#[test]
fn missing_codes_and_bad_headers_are_rejected() {
    let without_79: String = CSV
        .lines()
        .filter(|l| !l.starts_with("79,"))
        .map(|l| format!("{l}\n"))
        .collect();
    let error = catalog_csv::parse_catalog(&without_79).expect_err("79 missing");
    assert!(error.contains("codes 79 are missing"), "{error}");
    let error = catalog_csv::parse_catalog("code,mnemonic\n").expect_err("bad header");
    assert!(error.starts_with("line 1: header must be"), "{error}");
    let error = catalog_csv::parse_catalog("# only a comment\n").expect_err("empty");
    assert_eq!(error, "no header row: the catalog is empty");
}

#[test]
fn quoted_fields_keep_commas_and_escaped_quotes() {
    assert_eq!(
        catalog_csv::split_csv_line(r#"1,"a, b","say ""hi""",,x"#).expect("parses"),
        vec!["1", "a, b", r#"say "hi""#, "", "x"]
    );
    assert!(catalog_csv::split_csv_line(r#"1,a"b"#).is_err());
    assert!(catalog_csv::split_csv_line(r#"1,"a"b"#).is_err());
}
