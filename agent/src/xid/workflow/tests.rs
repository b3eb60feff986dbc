//! Companion-Xid workflow tests: one GPU's event set in, findings out.

use std::collections::HashMap;

use super::*;

const T0: i64 = 1_795_773_600_000_000;

/// `(seconds after T0, code, message)`.
fn observed(events: &[(i64, u32, &'static str)]) -> Vec<Observed<'static>> {
    events
        .iter()
        .map(|(offset, code, message)| Observed {
            code: *code,
            wall_micros: Some(T0 + offset * 1_000_000),
            message,
            label: format!("+{offset}s Xid {code}: {message}"),
        })
        .collect()
}

fn run(events: &[(i64, u32, &'static str)]) -> Vec<XidFinding> {
    run_spread(events, &[])
}

fn run_spread(events: &[(i64, u32, &'static str)], spread: &[(u32, usize)]) -> Vec<XidFinding> {
    let node = NodeContext {
        gpus_with_code: spread.iter().copied().collect(),
        events: Vec::new(),
    };
    findings(&observed(events), "GPU 0", &node)
}

fn rules(findings: &[XidFinding]) -> Vec<(XidRule, RecommendedAction, Vec<u32>, u64)> {
    findings
        .iter()
        .map(|f| (f.rule, f.recommended_action, f.codes.clone(), f.event_count))
        .collect()
}

#[test]
fn xid48_alone_resets_the_gpu() {
    let found = run(&[(
        0,
        48,
        "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0.",
    )]);
    assert_eq!(
        rules(&found),
        [(XidRule::Xid48Dbe, RecommendedAction::ResetGpu, vec![48], 1)]
    );
    assert_eq!(found[0].severity, Severity::Critical);
    assert!(
        found[0]
            .message
            .starts_with("uncorrectable ECC error (Xid 48 ×1) without a row-remap event")
    );
    assert!(!found[0].message.contains("SRAM"));
}

#[test]
fn xid48_with_63_drains_and_resets_and_takes_the_sympathetic_94_separately() {
    let found = run(&[
        (
            0,
            48,
            "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at physAddr 0x18f31d80 partition 16, subpartition 3.",
        ),
        (
            0,
            63,
            "Row Remapper: New row (0x0000000018f31d80) marked for remapping, reset gpu to activate.",
        ),
        (0, 94, "Contained: SM (0x1). RST: No, D-RST: No"),
    ]);
    assert_eq!(
        rules(&found),
        [
            (
                XidRule::Xid48WithRowRemap,
                RecommendedAction::DrainAndReset,
                vec![48, 63],
                2
            ),
            (
                XidRule::Xid94Contained,
                RecommendedAction::RestartApplication,
                vec![94],
                1
            ),
        ]
    );
    assert_eq!(found[0].evidence.len(), 2);
}

#[test]
fn xid48_with_64_is_the_rma_path_and_sram_is_called_out() {
    let found = run(&[
        (0, 48, "An uncorrectable SRAM error was detected"),
        (1, 64, "Row Remapper: row remapping failed"),
    ]);
    assert_eq!(
        rules(&found),
        [(
            XidRule::Xid48WithRemapFailure,
            RecommendedAction::ReplaceGpu,
            vec![48, 64],
            2
        )]
    );
    assert!(
        found[0]
            .message
            .contains("The error is in SRAM: check the SRAM error-threshold flag")
    );
}

#[test]
fn row_remap_far_from_a_48_is_judged_on_its_own() {
    let found = run(&[
        (0, 48, "DBE"),
        (3600, 63, "Row Remapper: New row marked for remapping"),
        (7200, 64, "Row Remapper: failed"),
    ]);
    assert_eq!(
        rules(&found),
        [
            (XidRule::Xid48Dbe, RecommendedAction::ResetGpu, vec![48], 1),
            (
                XidRule::Xid63RowRemap,
                RecommendedAction::Monitor,
                vec![63],
                1
            ),
            (
                XidRule::Xid64RemapFailure,
                RecommendedAction::ResetGpu,
                vec![64],
                1
            ),
        ]
    );
}

#[test]
fn xid45_alone_restarts_the_fabric_manager_and_next_to_others_is_cleanup() {
    let found = run(&[(0, 45, "Ch 00000010")]);
    assert_eq!(
        rules(&found),
        [(
            XidRule::Xid45Alone,
            RecommendedAction::RestartFabricManager,
            vec![45],
            1
        )]
    );
    let found = run(&[
        (0, 79, "GPU has fallen off the bus."),
        (1, 45, "Ch 00000010"),
    ]);
    assert_eq!(
        rules(&found),
        [
            (XidRule::Xid45Cleanup, RecommendedAction::None, vec![45], 1),
            (
                XidRule::Xid79FallenOffBus,
                RecommendedAction::RebootNode,
                vec![79],
                1
            ),
        ]
    );
    assert_eq!(
        found[0].message,
        "Xid 45 ×1 is channel cleanup after Xid 79: follow the findings for those."
    );
    // A fault on another GPU of the node within the window (one job spanning GPUs).
    let node = NodeContext {
        gpus_with_code: HashMap::new(),
        events: vec![
            NodeEvent {
                owner: "GPU 5".into(),
                code: 79,
                wall_micros: Some(T0 - 1_000_000),
            },
            NodeEvent {
                owner: "GPU 0".into(),
                code: 45,
                wall_micros: Some(T0),
            },
        ],
    };
    let found = findings(&observed(&[(0, 45, "Ch 00000008")]), "GPU 0", &node);
    assert_eq!(
        found[0].message,
        "Xid 45 ×1 is channel cleanup after Xid 79 on GPU 5: follow the findings for those."
    );
    // Newer drivers name the culprit even when it is outside the window.
    let found = run(&[(0, 45, "Ch 00000001 caused by previous Xid 149")]);
    assert_eq!(
        found[0].message,
        "Xid 45 ×1 is channel cleanup after Xid 149: follow the findings for those."
    );
}

#[test]
fn xid43_points_at_the_preceding_xid() {
    let found = run(&[
        (0, 13, "Graphics Exception: ESR 0x50"),
        (1, 43, "Ch 00000010"),
    ]);
    assert!(found.iter().any(|f| f.rule == XidRule::Xid43AfterOtherXid
        && f.message == "Xid 43 ×1 followed Xid 13: the GPU stopped the faulting application; act on that Xid."
        && f.recommended_action == RecommendedAction::None));
    let found = run(&[(0, 43, "Ch 00000010")]);
    assert_eq!(
        rules(&found),
        [(
            XidRule::Xid43Alone,
            RecommendedAction::InvestigateApplication,
            vec![43],
            1
        )]
    );
}

const WARP: &str = "Graphics SM Warp Exception on (GPC 3, TPC 1, SM 0): Out Of Range Address";
const WARP_OTHER: &str =
    "Graphics SM Warp Exception on (GPC 5, TPC 0, SM 1): Illegal Instruction Encoding";

#[test]
fn xid13_repeating_on_the_same_gpc_tpc_suspects_hardware() {
    let found = run(&[
        (0, 13, WARP),
        (0, 13, "Graphics Exception: ESR 0x51"),
        (600, 13, WARP),
        (1200, 13, WARP),
    ]);
    assert_eq!(
        rules(&found),
        [(
            XidRule::RecurringOnOneGpu,
            RecommendedAction::RunFieldDiagnostics,
            vec![13],
            4
        )]
    );
    assert_eq!(found[0].severity, Severity::Error);
    assert!(
        found[0]
            .message
            .contains("on the same unit (GPC 3, TPC 1 in 3 bursts)"),
        "{}",
        found[0].message
    );
}

#[test]
fn xid13_on_different_units_or_once_is_the_application() {
    let found = run(&[(0, 13, WARP), (600, 13, WARP_OTHER)]);
    assert_eq!(
        rules(&found),
        [(
            XidRule::ApplicationFault,
            RecommendedAction::RestartApplication,
            vec![13],
            2
        )]
    );
    assert!(found[0].message.contains("in 2 burst(s) on this GPU"));
}

#[test]
fn xid13_spread_over_gpus_is_the_application() {
    let found = run_spread(
        &[
            (0, 13, "Graphics Exception"),
            (600, 13, "Graphics Exception"),
            (1200, 13, "Graphics Exception"),
        ],
        &[(13, 4)],
    );
    assert_eq!(
        rules(&found),
        [(
            XidRule::ApplicationFault,
            RecommendedAction::InvestigateApplication,
            vec![13],
            3
        )]
    );
    assert!(found[0].message.contains("here and on 3 other GPU(s)"));
}

#[test]
fn xid31_recurring_on_one_gpu_suspects_hardware_but_not_within_one_burst() {
    let mmu = "Ch 00000008, intr 10000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted @ 0x7f2c_4a000000";
    let found = run(&[(0, 31, mmu), (900, 31, mmu), (1800, 31, mmu)]);
    assert_eq!(
        rules(&found),
        [(
            XidRule::RecurringOnOneGpu,
            RecommendedAction::RunFieldDiagnostics,
            vec![31],
            3
        )]
    );
    assert!(
        found[0]
            .message
            .contains("in 3 separate bursts on this GPU only")
    );
    let found = run(&[(0, 31, mmu), (1, 31, mmu), (2, 31, mmu)]);
    assert_eq!(
        rules(&found),
        [(
            XidRule::ApplicationFault,
            RecommendedAction::RestartApplication,
            vec![31],
            3
        )]
    );
    let found = run_spread(&[(0, 31, mmu), (900, 31, mmu), (1800, 31, mmu)], &[(31, 2)]);
    assert_eq!(
        found[0].recommended_action,
        RecommendedAction::InvestigateApplication
    );
}

#[test]
fn xid74_names_the_links_and_escalates_when_a_link_recurs() {
    let link3 = "NVLink: fatal error detected on link 3(0x0, 0x0, 0x10000, 0x0, 0x0, 0x0, 0x0)";
    let found = run(&[(0, 74, link3)]);
    assert_eq!(
        rules(&found),
        [(
            XidRule::Xid74Nvlink,
            RecommendedAction::ResetGpu,
            vec![74],
            1
        )]
    );
    assert!(
        found[0]
            .message
            .starts_with("NVLink error (Xid 74 ×1 on link 3 ×1):"),
        "{}",
        found[0].message
    );
    let found = run(&[
        (0, 74, link3),
        (60, 74, link3),
        (120, 74, link3),
        (
            180,
            74,
            "NVLink: fatal error detected on link 14(0x10000, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0)",
        ),
    ]);
    assert_eq!(
        found[0].recommended_action,
        RecommendedAction::CheckMechanicals
    );
    assert!(found[0].message.contains("on link 3 ×3, link 14 ×1"));
    assert!(
        found[0]
            .message
            .contains("It recurs on the same link (3+ times)")
    );
    assert!(
        found[0]
            .message
            .contains("register 0 bit 16: possible hardware issue")
    );
}

#[test]
fn nvlink5_fatal_resets_and_nonfatal_is_watched() {
    let found = run(&[(
        0,
        149,
        "NETIR_LINK_EVT  Fatal   XC0 i0 Link 09 (0x025525c6 0x00000000 0x00000000)",
    )]);
    assert_eq!(
        rules(&found),
        [(
            XidRule::Nvlink5Error,
            RecommendedAction::ResetGpu,
            vec![149],
            1
        )]
    );
    assert!(found[0].message.contains("NETIR_LINK_EVT link 9"));
    let found = run(&[(
        0,
        149,
        "NETIR_MFDE_EVENT Nonfatal XC0 i0 Link 00 (0x00000014 0x00000003)",
    )]);
    assert_eq!(
        rules(&found),
        [(
            XidRule::Nvlink5Error,
            RecommendedAction::Monitor,
            vec![149],
            1
        )]
    );
    assert_eq!(found[0].severity, Severity::Warning);
}

#[test]
fn xid154_follows_the_latest_recovery_action() {
    let found = run(&[
        (
            0,
            154,
            "GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)",
        ),
        (
            10,
            154,
            "GPU recovery action changed from 0x1 (GPU Reset Required) to 0x2 (Node Reboot Required)",
        ),
    ]);
    assert_eq!(
        rules(&found),
        [(
            XidRule::Xid154RecoveryAction,
            RecommendedAction::RebootNode,
            vec![154],
            2
        )]
    );
    assert!(found[0].message.starts_with("the driver's recovery action for this GPU is now 0x2 (Node Reboot Required) (latest of 2 Xid 154)"));
    for (text, action, severity) in [
        (
            "changed from 0x1 (GPU Reset Required) to 0x0 (None)",
            RecommendedAction::None,
            Severity::Info,
        ),
        (
            "changed from 0x0 (None) to 0x3 (Drain P2P)",
            RecommendedAction::DrainP2p,
            Severity::Warning,
        ),
        (
            "changed from 0x0 (None) to 0x4 (Drain and Reset)",
            RecommendedAction::DrainAndReset,
            Severity::Critical,
        ),
        (
            "changed from 0x0 (None) to 0x9 (Something New)",
            RecommendedAction::ConsultCatalog,
            Severity::Warning,
        ),
        (
            "GPU recovery action changed",
            RecommendedAction::ConsultCatalog,
            Severity::Warning,
        ),
    ] {
        let found = run(&[(0, 154, text)]);
        assert_eq!(
            (found[0].recommended_action, found[0].severity),
            (action, severity),
            "{text}"
        );
    }
}

#[test]
fn contained_and_uncontained_errors_differ() {
    let found = run(&[(0, 95, "Uncontained: LTC TAG (0x2,0x0). RST: Yes, D-RST: No")]);
    assert_eq!(
        rules(&found),
        [(
            XidRule::Xid95Uncontained,
            RecommendedAction::ResetGpu,
            vec![95],
            1
        )]
    );
    let found = run(&[(
        0,
        94,
        "Contained: CE User Channel (0x9). RST: No, D-RST: No",
    )]);
    assert_eq!(found[0].severity, Severity::Warning);
}

#[test]
fn other_codes_follow_the_catalog_and_unknown_codes_are_not_guessed() {
    let found = run(&[
        (
            0,
            119,
            "Timeout after 6s of waiting for RPC response from GPU1 GSP!",
        ),
        (0, 999, "brand new"),
    ]);
    assert_eq!(
        rules(&found),
        [
            (XidRule::Catalog, RecommendedAction::ResetGpu, vec![119], 1),
            (
                XidRule::UnknownCode,
                RecommendedAction::ConsultCatalog,
                vec![999],
                1
            ),
        ]
    );
    assert_eq!(
        found[0].message,
        "Xid 119 GSP_RPC_TIMEOUT ×1: GSP firmware RPC timeout."
    );
    assert_eq!(found[1].severity, Severity::Unknown);
    assert!(
        found[1]
            .message
            .starts_with("Xid 999 ×1: not in catalog, see NVIDIA Xid catalog")
    );
}

#[test]
fn evidence_keeps_the_newest_three_lines() {
    let found = run(&[(0, 8, "a"), (100, 8, "b"), (200, 8, "c"), (300, 8, "d")]);
    assert_eq!(
        found[0].evidence,
        ["+100s Xid 8: b", "+200s Xid 8: c", "+300s Xid 8: d"]
    );
    assert_eq!(
        found[0].action_instruction,
        RecommendedAction::RestartApplication.instruction()
    );
}

#[test]
fn catalog_buckets_map_to_concrete_actions() {
    assert_eq!(
        action_for_bucket(ActionBucket::RestartBm),
        RecommendedAction::RebootNode
    );
    assert_eq!(
        action_for_bucket(ActionBucket::CheckMechanicals),
        RecommendedAction::CheckMechanicals
    );
    assert_eq!(
        action_for_bucket(ActionBucket::UnexpectedErrReportIssue),
        RecommendedAction::ReportIssue
    );
}
