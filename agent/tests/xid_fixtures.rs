//! Xid analysis over realistic kernel-log fixtures: every line format, several driver generations,
//! interleaved non-NVIDIA lines, PCI → GPU attribution and the companion workflows.

use agent::xid::{
    AnalyzeOptions, Clock, GpuIdentity, KernelLog, LogSource, PciLocation, ReadLimits,
    RecommendedAction, RecordTime, SourceKind, Verdict, XidReport, XidRule, analyze,
    read_kernel_log,
};

/// 2026-11-27T10:00:00Z; the node booted 2 days earlier.
const CLOCK: Clock = Clock {
    realtime_unix_micros: 1_795_773_600_000_000,
    monotonic_micros: 172_800_000_000,
};

/// Reads a fixture through the real file reader, then pins the clock so times are stable.
fn read(name: &str) -> KernelLog {
    read_at_uptime(name, CLOCK.monotonic_micros)
}

/// As [`read`], for a fixture captured on a node that had been up longer than two days.
fn read_at_uptime(name: &str, uptime_micros: u64) -> KernelLog {
    let path = format!("tests/fixtures/kmsg/{name}");
    let mut log = read_kernel_log(&LogSource::File(path.into()), &ReadLimits::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    log.clock = Clock {
        monotonic_micros: uptime_micros,
        ..CLOCK
    };
    log
}

/// GPUs as NVML reports them: 8-digit domain, upper-case hex bus id with a function digit.
fn node(bus_ids: &[&str]) -> Vec<GpuIdentity> {
    bus_ids
        .iter()
        .enumerate()
        .map(|(index, bus_id)| GpuIdentity {
            index: index as u32,
            uuid: Some(format!("GPU-{index:08x}-0000-4000-8000-00000000000{index}")),
            pci: PciLocation::parse(bus_id),
        })
        .collect()
}

fn hgx_h100() -> Vec<GpuIdentity> {
    node(&[
        "00000000:18:00.0",
        "00000000:2A:00.0",
        "00000000:3A:00.0",
        "00000000:5D:00.0",
        "00000000:9A:00.0",
        "00000000:AB:00.0",
        "00000000:BA:00.0",
        "00000000:DB:00.0",
    ])
}

fn dgx_a100() -> Vec<GpuIdentity> {
    node(&[
        "00000000:07:00.0",
        "00000000:0F:00.0",
        "00000000:47:00.0",
        "00000000:4E:00.0",
        "00000000:87:00.0",
        "00000000:90:00.0",
        "00000000:B7:00.0",
        "00000000:BD:00.0",
    ])
}

fn gb200_tray() -> Vec<GpuIdentity> {
    node(&[
        "00000008:01:00.0",
        "00000009:01:00.0",
        "00000018:01:00.0",
        "00000019:01:00.0",
    ])
}

fn analyze_default(log: &KernelLog, gpus: &[GpuIdentity]) -> XidReport {
    analyze(log, gpus, &AnalyzeOptions::default())
}

fn gpu(report: &XidReport, index: u32) -> &agent::xid::GpuXidAssessment {
    report
        .gpus
        .iter()
        .find(|g| g.gpu_index == Some(index))
        .expect("GPU listed")
}

fn rules(report: &XidReport, index: u32) -> Vec<(XidRule, RecommendedAction)> {
    gpu(report, index)
        .findings
        .iter()
        .map(|f| (f.rule, f.recommended_action))
        .collect()
}

#[test]
fn h100_xid79_fallen_off_bus_from_kmsg_records() {
    let log = read("h100-xid79-fallen-off-bus.kmsg");
    assert_eq!(log.source.kind, SourceKind::File);
    assert_eq!(
        log.records_scanned, 29,
        "continuation lines are not records"
    );
    assert_eq!(log.oldest, Some(RecordTime::SinceBoot(0)));
    assert_eq!(
        log.xids.iter().map(|x| x.code).collect::<Vec<_>>(),
        [79, 154, 45, 45]
    );
    assert_eq!(log.xids[0].sequence, Some(3014));
    let report = analyze_default(&log, &hgx_h100());
    assert_eq!(report.events[3].gpu_index, Some(6), "0000:ba:00 is GPU 6");
    assert_eq!(
        report.events[3].time.as_deref(),
        Some("2026-11-25T11:31:51.204022Z")
    );
    assert_eq!(
        report.events[3].process_name.as_deref(),
        Some("pt_main_thread")
    );
    assert_eq!(
        rules(&report, 6),
        [
            (XidRule::Xid79FallenOffBus, RecommendedAction::RebootNode),
            (XidRule::Xid154RecoveryAction, RecommendedAction::RebootNode),
        ]
    );
    // The job's other GPUs logged Xid 45 within milliseconds: cleanup, not a fabric-manager problem.
    assert_eq!(
        rules(&report, 0),
        [(XidRule::Xid45Cleanup, RecommendedAction::None)]
    );
    assert_eq!(
        gpu(&report, 1).findings[0].message,
        "Xid 45 ×1 is channel cleanup after Xid 79 on GPU 6: follow the findings for those."
    );
    assert_eq!(
        (report.verdict, report.recommended_action),
        (Verdict::Fail, RecommendedAction::RebootNode)
    );
    assert_eq!(
        gpu(&report, 6).uuid_from_kernel_log.as_deref(),
        Some("GPU-6f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b")
    );
    assert_eq!(gpu(&report, 7).verdict, Verdict::Pass);
    insta::assert_json_snapshot!("h100_xid79_fallen_off_bus", report);
}

#[test]
fn a100_xid48_with_row_remap_from_plain_dmesg() {
    let log = read_at_uptime("a100-xid48-row-remap.dmesg", 432_000_000_000);
    let gpus = node(&[
        "00000000:17:00.0",
        "00000000:52:00.0",
        "00000000:8A:00.0",
        "00000000:CA:00.0",
    ]);
    let report = analyze_default(&log, &gpus);
    assert_eq!(report.xid_event_count, 5);
    assert_eq!(
        report.events[0].time.as_deref(),
        Some("2026-11-27T09:42:34.534520Z")
    );
    assert!(
        report.notes.iter().all(|n| !n.contains("earlier boot")),
        "{:?}",
        report.notes
    );
    assert_eq!(
        rules(&report, 1),
        [
            (XidRule::Xid48WithRowRemap, RecommendedAction::DrainAndReset),
            (XidRule::Xid45Cleanup, RecommendedAction::None),
            (
                XidRule::Xid94Contained,
                RecommendedAction::RestartApplication
            ),
        ]
    );
    assert_eq!(
        gpu(&report, 1).recommended_action,
        RecommendedAction::DrainAndReset
    );
    assert_eq!(
        report.events.last().and_then(|e| e.pid),
        None,
        "pid='<unknown>' is no pid"
    );
    insta::assert_json_snapshot!("a100_xid48_row_remap", report);
}

#[test]
fn h100_xid13_recurring_on_one_tpc_from_syslog_raw() {
    let log = read("h100-xid13-warp-exceptions.syslog");
    assert_eq!(log.records_scanned, 16);
    let report = analyze_default(&log, &hgx_h100());
    let gpu2 = gpu(&report, 2);
    assert_eq!(gpu2.codes, [13, 43]);
    assert_eq!(
        rules(&report, 2),
        [
            (XidRule::Xid43AfterOtherXid, RecommendedAction::None),
            (
                XidRule::RecurringOnOneGpu,
                RecommendedAction::RunFieldDiagnostics
            ),
        ]
    );
    assert!(
        gpu2.findings[1]
            .message
            .contains("GPC 3, TPC 1 in 3 bursts"),
        "{}",
        gpu2.findings[1].message
    );
    assert_eq!(gpu2.verdict, Verdict::Fail);
}

#[test]
fn a100_xid74_nvlink_from_iso_timestamps() {
    let log = read("a100-xid74-nvlink.iso");
    assert_eq!(log.oldest, Some(RecordTime::Wall(1_795_759_201_000_000)));
    let report = analyze_default(&log, &dgx_a100());
    let events_74: Vec<(Option<u32>, u32)> = report
        .events
        .iter()
        .filter(|e| e.code == 74)
        .map(|e| (e.gpu_index, e.nvlink.as_ref().map_or(u32::MAX, |n| n.link)))
        .collect();
    assert_eq!(
        events_74,
        [(Some(7), 9), (Some(6), 3), (Some(6), 3), (Some(6), 3)]
    );
    assert_eq!(
        report.events[0].time.as_deref(),
        Some("2026-11-27T09:47:02.651990Z")
    );
    assert_eq!(
        report.events[0].seconds_since_boot, None,
        "ISO lines carry wall time only"
    );
    assert_eq!(
        rules(&report, 6),
        [
            (XidRule::Xid45Cleanup, RecommendedAction::None),
            (XidRule::Xid74Nvlink, RecommendedAction::CheckMechanicals),
        ]
    );
    assert_eq!(
        rules(&report, 7),
        [(XidRule::Xid74Nvlink, RecommendedAction::ResetGpu)]
    );
    assert_eq!(
        report.coverage.description,
        "The kernel log (file tests/fixtures/kmsg/a100-xid74-nvlink.iso) covers 2026-11-27T06:00:01.000000Z to 2026-11-27T09:50:00.000000Z (3.8 hours of records, the oldest 4.0 hours ago); older Xids are not visible: the ring buffer is bounded and cleared at boot."
    );
}

#[test]
fn h100_xid119_gsp_timeouts_from_journalctl_short_iso() {
    let log = read("h100-xid119-gsp-timeout.journal");
    let report = analyze(
        &log,
        &hgx_h100(),
        &AnalyzeOptions {
            since_seconds: Some(3600),
            ..AnalyzeOptions::default()
        },
    );
    assert_eq!(
        report
            .summary
            .iter()
            .map(|s| (s.gpu_index, s.code, s.count))
            .collect::<Vec<_>>(),
        [(Some(4), 119, 2), (Some(4), 120, 1), (Some(4), 154, 1)]
    );
    assert_eq!(
        report.events.last().and_then(|e| e.process_name.as_deref()),
        Some("nv-hostengine")
    );
    assert_eq!(
        rules(&report, 4),
        [
            (XidRule::Xid154RecoveryAction, RecommendedAction::ResetGpu),
            (XidRule::Catalog, RecommendedAction::ResetGpu),
            (XidRule::Catalog, RecommendedAction::ResetGpu),
        ]
    );
    let narrow = analyze(
        &log,
        &hgx_h100(),
        &AnalyzeOptions {
            since_seconds: Some(60),
            ..AnalyzeOptions::default()
        },
    );
    assert_eq!(narrow.xid_event_count, 0);
    assert_eq!(narrow.verdict, Verdict::Pass);
}

#[test]
fn gb200_nvlink5_xids_and_recovery_action_from_kmsg() {
    let log = read("gb200-xid149-nvlink5.kmsg");
    let report = analyze_default(&log, &gb200_tray());
    assert_eq!(
        rules(&report, 1),
        [
            (XidRule::Xid45Cleanup, RecommendedAction::None),
            (XidRule::Nvlink5Error, RecommendedAction::ResetGpu),
            (
                XidRule::Xid154RecoveryAction,
                RecommendedAction::DrainAndReset
            ),
        ]
    );
    assert_eq!(
        gpu(&report, 1).recommended_action,
        RecommendedAction::DrainAndReset
    );
    assert_eq!(
        rules(&report, 0),
        [
            (XidRule::Xid45Cleanup, RecommendedAction::None),
            (XidRule::Nvlink5Error, RecommendedAction::Monitor),
        ]
    );
    let nvlink = report
        .events
        .iter()
        .find(|e| e.code == 149)
        .and_then(|e| e.nvlink.clone())
        .expect("decoded");
    assert_eq!(
        (nvlink.link, nvlink.subcode.as_deref(), nvlink.fatal),
        (1, Some("NETIR_LINK_EVT"), Some(true))
    );
    assert_eq!(
        report
            .events
            .iter()
            .find(|e| e.code == 149)
            .map(|e| e.pci_bus_id.as_str()),
        Some("0009:01:00")
    );
    insta::assert_json_snapshot!("gb200_xid149_nvlink5", report);
}

#[test]
fn legacy_driver_formats_in_a_syslog_file() {
    let log = read("legacy-driver-formats.log");
    assert_eq!(
        log.xids
            .iter()
            .map(|x| (x.code, x.pci.to_string()))
            .collect::<Vec<_>>(),
        [
            (13, "0000:03:00".to_owned()),
            (31, "0000:03:00".to_owned()),
            (48, "0000:04:00".to_owned()),
            (63, "0000:04:00".to_owned()),
            (79, "0000:02:00".to_owned()),
        ]
    );
    assert!(
        log.xids
            .iter()
            .all(|x| x.pid.is_none() && x.process_name.is_none())
    );
    assert_eq!(log.xids[0].time, RecordTime::SinceBoot(2_470_118_801));
    assert_eq!(log.oldest, Some(RecordTime::SinceBoot(0)));
    let gpus = node(&["00000000:02:00.0", "00000000:03:00.0", "00000000:04:00.0"]);
    let report = analyze_default(&log, &gpus);
    assert_eq!(
        rules(&report, 0),
        [(XidRule::Xid79FallenOffBus, RecommendedAction::RebootNode)]
    );
    assert_eq!(
        rules(&report, 2),
        [(XidRule::Xid48WithRowRemap, RecommendedAction::DrainAndReset)]
    );
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.starts_with("since-boot timestamps in the file were converted"))
    );
}

#[test]
fn mig_instances_are_kept_on_the_parent_gpu() {
    let log = read("a100-mig-xid94-contained.dmesg");
    let report = analyze_default(&log, &dgx_a100());
    let instances: Vec<_> = report
        .events
        .iter()
        .map(|e| {
            (
                e.code,
                e.gpu_index,
                e.gpu_instance_id,
                e.compute_instance_id,
            )
        })
        .collect();
    assert_eq!(
        instances,
        [
            (31, Some(0), Some(3), None),
            (43, Some(0), Some(5), Some(0)),
            (94, Some(0), Some(5), None)
        ]
    );
    assert_eq!(gpu(&report, 0).verdict, Verdict::Warn);
}

#[test]
fn unknown_codes_and_malformed_lines_are_reported_not_dropped() {
    let log = read("unknown-and-malformed-xids.dmesg");
    assert_eq!(log.malformed_xid_lines, 3);
    let report = analyze_default(&log, &hgx_h100());
    assert_eq!(report.xid_event_count, 1);
    assert_eq!(report.events[0].mnemonic, "UNKNOWN");
    assert!(!report.explanations[0].in_catalog);
    let note = report
        .notes
        .iter()
        .find(|n| n.starts_with("3 line(s) look like Xid lines"))
        .expect("note");
    assert!(
        note.contains("no Xid code after the PCI location: NVRM: Xid (PCI:0000:3b:00): abc"),
        "{note}"
    );
    assert_eq!(
        report.gpus.len(),
        9,
        "8 GPUs plus the unattributed 0000:3b:00"
    );
}

#[test]
fn the_report_fits_the_tool_output_schema_rules() {
    let schema = agent::server::schema::output_schema::<XidReport>();
    let text = serde_json::to_string(&*schema).expect("schema serializes");
    assert!(!text.contains("\"null\""), "no null types: {text}");
    assert!(!text.contains("$ref"), "self-contained");
    for field in [
        "events",
        "summary",
        "gpus",
        "coverage",
        "truncated",
        "recommended_action",
        "xid154_linkage",
    ] {
        assert!(text.contains(field), "{field} missing from the schema");
    }
    let report = analyze_default(&read("h100-xid79-fallen-off-bus.kmsg"), &hgx_h100());
    let json = serde_json::to_string(&report).expect("serializes");
    assert!(
        !json.contains("null"),
        "optional fields are absent, never null"
    );
}
