//! Analysis tests: attribution, windows, truncation, filters, coverage and the wire form.

use super::*;
use crate::xid::catalog::ActionBucket;
use crate::xid::scan::{ReadLimits, SourceUsed};
use crate::xid::time::Clock;
use crate::xid::{XidReport, XidRule};

/// 2026-11-27T10:00:00Z, two hours after boot.
const CLOCK: Clock = Clock {
    realtime_unix_micros: 1_795_773_600_000_000,
    monotonic_micros: 7_200_000_000,
};

fn log(lines: &[&str]) -> KernelLog {
    KernelLog::from_lines(
        lines,
        SourceUsed {
            kind: SourceKind::Kmsg,
            path: Some("/dev/kmsg".into()),
        },
        CLOCK,
        &ReadLimits::default(),
    )
}

/// Two GPUs as NVML names them: 8-digit domain, upper-case hex, function digit.
fn gpus() -> Vec<GpuIdentity> {
    vec![
        GpuIdentity {
            index: 0,
            uuid: Some("GPU-aaaa".into()),
            pci: PciLocation::parse("00000000:3B:00.0"),
        },
        GpuIdentity {
            index: 1,
            uuid: Some("GPU-bbbb".into()),
            pci: PciLocation::parse("00000000:B3:00.0"),
        },
    ]
}

fn run(lines: &[&str], options: AnalyzeOptions) -> XidReport {
    analyze(&log(lines), &gpus(), &options)
}

#[test]
fn xids_attribute_to_gpus_by_numeric_pci_match() {
    let report = run(
        &[
            "[ 3600.000000] NVRM: Xid (PCI:0000:3b:00): 13, pid=1, name=a, Graphics Exception",
            "[ 3601.000000] NVRM: Xid (PCI:0000:b3:00): 31, pid=2, name=b, MMU Fault",
            "[ 3602.000000] NVRM: Xid (0000:B3:00): 31, MMU Fault from an old driver",
        ],
        AnalyzeOptions::default(),
    );
    let owners: Vec<(u32, Option<u32>, Option<&str>)> = report
        .events
        .iter()
        .map(|e| (e.code, e.gpu_index, e.gpu_uuid.as_deref()))
        .collect();
    assert_eq!(
        owners,
        [
            (31, Some(1), Some("GPU-bbbb")),
            (31, Some(1), Some("GPU-bbbb")),
            (13, Some(0), Some("GPU-aaaa"))
        ]
    );
    assert!(report.gpus.iter().all(|g| g.attributed));
    assert_eq!(
        report
            .gpus
            .iter()
            .map(|g| g.xid_event_count)
            .collect::<Vec<_>>(),
        [1, 2]
    );
}

#[test]
fn an_xid_no_gpu_matches_is_reported_unattributed_with_the_reason() {
    let report = run(
        &[
            "[ 1843.100000] NVRM: GPU at PCI:0000:1a:00: GPU-lost-one",
            "[ 1843.308145] NVRM: Xid (PCI:0000:1a:00): 79, pid=1234, name=python3, GPU has fallen off the bus.",
        ],
        AnalyzeOptions::default(),
    );
    let event = &report.events[0];
    assert_eq!(
        (event.gpu_index, event.pci_bus_id.as_str()),
        (None, "0000:1a:00")
    );
    let lost = report
        .gpus
        .iter()
        .find(|g| !g.attributed)
        .expect("unattributed entry");
    assert_eq!(lost.pci_bus_id.as_deref(), Some("0000:1a:00"));
    assert_eq!(lost.uuid_from_kernel_log.as_deref(), Some("GPU-lost-one"));
    assert_eq!(
        lost.unattributed_reason.as_deref(),
        Some(
            "no GPU NVML reports is at PCI 0000:1a:00: the GPU may have fallen off the bus or been removed, or the log comes from another machine"
        )
    );
    assert_eq!(
        (lost.verdict, lost.recommended_action),
        (Verdict::Fail, RecommendedAction::RebootNode)
    );
    assert_eq!(
        (report.verdict, report.recommended_action),
        (Verdict::Fail, RecommendedAction::RebootNode)
    );
    let healthy: Vec<Verdict> = report
        .gpus
        .iter()
        .filter(|g| g.attributed)
        .map(|g| g.verdict)
        .collect();
    assert_eq!(
        healthy,
        [Verdict::Pass, Verdict::Pass],
        "GPUs without Xids are listed as PASS"
    );
}

#[test]
fn gpus_without_pci_info_or_no_gpus_at_all_explain_the_missing_match() {
    let gpus = [GpuIdentity {
        index: 0,
        uuid: None,
        pci: None,
    }];
    let line = ["[ 1.0] NVRM: Xid (PCI:0000:3b:00): 13, Graphics Exception"];
    let report = analyze(&log(&line), &gpus, &AnalyzeOptions::default());
    let reason = report.gpus[1]
        .unattributed_reason
        .clone()
        .unwrap_or_default();
    assert!(
        reason.ends_with("; 1 GPU(s) have no readable PCI info"),
        "{reason}"
    );
    let report = analyze(&log(&line), &[], &AnalyzeOptions::default());
    assert_eq!(
        report.gpus[0].unattributed_reason.as_deref(),
        Some("no GPU list to match PCI 0000:3b:00 against (NVML unavailable?)")
    );
}

#[test]
fn since_boot_times_become_wall_clock_times() {
    let report = run(
        &["4,12,3600123456,-;NVRM: Xid (PCI:0000:3b:00): 13, Graphics Exception"],
        AnalyzeOptions::default(),
    );
    let event = &report.events[0];
    assert_eq!(event.time.as_deref(), Some("2026-11-27T09:00:00.123456Z"));
    assert_eq!(event.seconds_since_boot, Some(3600.123456));
    assert_eq!(event.sequence, Some(12));
    assert_eq!(report.analyzed_at, "2026-11-27T10:00:00.000000Z");
}

#[test]
fn since_seconds_keeps_only_the_window_and_says_so() {
    let lines = [
        "[    0.000000] Linux version",
        "[  600.000000] NVRM: Xid (PCI:0000:3b:00): 13, old",
        "[ 7000.000000] NVRM: Xid (PCI:0000:3b:00): 31, recent",
        "Nov 27 09:59:00 host kernel: NVRM: Xid (PCI:0000:3b:00): 43, no timestamp",
    ];
    let report = run(
        &lines,
        AnalyzeOptions {
            since_seconds: Some(600),
            ..AnalyzeOptions::default()
        },
    );
    assert_eq!(
        report.events.iter().map(|e| e.code).collect::<Vec<_>>(),
        [31]
    );
    assert_eq!(report.xid_event_count, 1);
    assert_eq!(
        report.coverage.window_start_time.as_deref(),
        Some("2026-11-27T09:50:00.000000Z")
    );
    assert_eq!(
        report.coverage.description,
        "The kernel log (/dev/kmsg) covers 2026-11-27T08:00:00.000000Z to 2026-11-27T09:56:40.000000Z (116.7 minutes of records, the oldest 2.0 hours ago); older Xids are not visible: the ring buffer is bounded and cleared at boot. Analysed: the last 10.0 minutes (since 2026-11-27T09:50:00.000000Z)."
    );
    assert!(
        report.notes.contains(
            &"1 Xid line(s) without a recognised timestamp left out by the since_seconds filter."
                .to_owned()
        )
    );
    let all = run(&lines, AnalyzeOptions::default());
    assert_eq!(all.xid_event_count, 3);
}

#[test]
fn max_events_cuts_the_list_but_not_the_counts() {
    let lines: Vec<String> = (0..25)
        .map(|i| {
            format!(
                "[ {}.0] NVRM: Xid (PCI:0000:3b:00): 8, pid={i}, name=a, idle timeout",
                100 + i
            )
        })
        .collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let report = run(
        &lines,
        AnalyzeOptions {
            max_events: Some(10),
            ..AnalyzeOptions::default()
        },
    );
    assert!(report.truncated);
    assert_eq!((report.events_returned, report.xid_event_count), (10, 25));
    assert_eq!(report.events[0].pid, Some(24), "newest first");
    assert_eq!(report.summary[0].count, 25);
    assert_eq!(report.gpus[0].xid_event_count, 25);
    assert_eq!(
        report.summary[0].first_seen.as_deref(),
        Some("2026-11-27T08:01:40.000000Z")
    );
    assert_eq!(
        report.summary[0].last_seen.as_deref(),
        Some("2026-11-27T08:02:04.000000Z")
    );
    let report = run(
        &lines,
        AnalyzeOptions {
            max_events: Some(50_000),
            ..AnalyzeOptions::default()
        },
    );
    assert!(!report.truncated);
    assert!(
        report
            .notes
            .contains(&format!("max_events is capped at {MAX_EVENTS_LIMIT}."))
    );
    let report = run(
        &lines,
        AnalyzeOptions {
            max_events: Some(0),
            ..AnalyzeOptions::default()
        },
    );
    assert!(report.truncated && report.events.is_empty() && report.summary[0].count == 25);
}

#[test]
fn gpu_index_filter_keeps_one_gpu_and_notes_what_it_left_out() {
    let lines = [
        "[ 1.0] NVRM: Xid (PCI:0000:3b:00): 13, a",
        "[ 2.0] NVRM: Xid (PCI:0000:b3:00): 31, b",
        "[ 3.0] NVRM: Xid (PCI:0000:01:00): 79, c",
    ];
    let report = run(
        &lines,
        AnalyzeOptions {
            gpu_index: Some(1),
            ..AnalyzeOptions::default()
        },
    );
    assert_eq!(
        report.events.iter().map(|e| e.code).collect::<Vec<_>>(),
        [31]
    );
    assert_eq!(report.gpus.len(), 1);
    assert_eq!(report.gpus[0].gpu_index, Some(1));
    assert!(report.notes.contains(&"2 Xid event(s) of other GPUs or unattributed PCI locations left out by the gpu_index filter.".to_owned()));
    let report = run(
        &lines,
        AnalyzeOptions {
            gpu_index: Some(7),
            ..AnalyzeOptions::default()
        },
    );
    assert!(report.gpus.is_empty() && report.events.is_empty());
    assert!(
        report
            .notes
            .contains(&"no GPU has index 7; known indices: 0, 1.".to_owned())
    );
}

#[test]
fn spread_of_xid13_over_gpus_reaches_the_workflow() {
    let lines = [
        "[ 1.0] NVRM: Xid (PCI:0000:3b:00): 13, Graphics Exception",
        "[ 600.0] NVRM: Xid (PCI:0000:3b:00): 13, Graphics Exception",
        "[ 1200.0] NVRM: Xid (PCI:0000:3b:00): 13, Graphics Exception",
        "[ 1201.0] NVRM: Xid (PCI:0000:b3:00): 13, Graphics Exception",
    ];
    let report = run(&lines, AnalyzeOptions::default());
    assert_eq!(report.gpus[0].findings[0].rule, XidRule::ApplicationFault);
    assert_eq!(
        report.gpus[0].findings[0].recommended_action,
        RecommendedAction::InvestigateApplication
    );
    let only_one = run(&lines[..3], AnalyzeOptions::default());
    assert_eq!(
        only_one.gpus[0].findings[0].rule,
        XidRule::RecurringOnOneGpu
    );
}

#[test]
fn unknown_codes_are_explained_as_unknown() {
    let report = run(
        &["[ 1.0] NVRM: Xid (PCI:0000:3b:00): 999, something new"],
        AnalyzeOptions::default(),
    );
    assert_eq!(
        (
            report.events[0].mnemonic.as_str(),
            report.events[0].severity
        ),
        ("UNKNOWN", Severity::Unknown)
    );
    assert_eq!(report.events[0].immediate_action, None);
    let explanation = &report.explanations[0];
    assert!(!explanation.in_catalog);
    assert!(
        explanation
            .meaning
            .starts_with("not in catalog, see NVIDIA Xid catalog")
    );
    assert_eq!(report.verdict, Verdict::Warn);
    let known = explain(79);
    assert_eq!(known.immediate_action, Some(ActionBucket::RestartBm));
    assert_eq!(
        known.immediate_instruction.as_deref(),
        Some(ActionBucket::RestartBm.instruction())
    );
}

#[test]
fn coverage_of_an_empty_or_unstamped_log_is_qualified() {
    let report = run(&[], AnalyzeOptions::default());
    assert_eq!(
        report.coverage.description,
        "The kernel log (/dev/kmsg) is empty."
    );
    assert_eq!((report.verdict, report.records_scanned), (Verdict::Pass, 0));
    let report = run(
        &["Nov 27 10:00:00 host kernel: hello"],
        AnalyzeOptions::default(),
    );
    assert_eq!(
        report.coverage.description,
        "The kernel log (/dev/kmsg) has 1 records but no timestamps this tool recognises, so its time span is unknown."
    );
}

#[test]
fn stamps_later_than_uptime_are_flagged_as_another_boot() {
    let report = run(
        &["[ 9000.0] NVRM: Xid (PCI:0000:3b:00): 13, from an earlier, longer boot"],
        AnalyzeOptions::default(),
    );
    assert!(report.notes.iter().any(|n| {
        n.starts_with("1 Xid record(s) carry a since-boot time later than the current uptime")
    }));
}

#[test]
fn optional_fields_are_absent_never_null() {
    let report = run(
        &[
            "[ 1.0] NVRM: Xid (PCI:0000:3b:00): 999, x",
            "Nov 27 host kernel: NVRM: Xid (0000:01:00): 43, no time, no pid",
        ],
        AnalyzeOptions::default(),
    );
    let json = serde_json::to_string(&report).expect("serializes");
    assert!(!json.contains("null"), "{json}");
    let value = serde_json::to_value(&report).expect("serializes");
    assert!(value["events"][0].get("time").is_none());
    assert!(value["events"][0].get("pid").is_none());
    assert_eq!(value["verdict"], "WARN");
}

#[test]
fn coverage_tells_the_span_of_the_records_apart_from_the_age_of_the_oldest() {
    // Records from 24 h to 12 h before the analysis: the text must not call that "the last 24 hours".
    let lines = [
        "2026-11-26T10:00:00,000000+00:00 Linux version",
        "2026-11-26T22:00:00,000000+00:00 NVRM: Xid (PCI:0000:3b:00): 13, old",
    ];
    let report = run(&lines, AnalyzeOptions::default());
    assert_eq!(
        report.coverage.description,
        "The kernel log (/dev/kmsg) covers 2026-11-26T10:00:00.000000Z to 2026-11-26T22:00:00.000000Z (12.0 hours of records, the oldest 24.0 hours ago); older Xids are not visible: the ring buffer is bounded and cleared at boot."
    );
    assert_eq!(report.coverage.covered_seconds, Some(86_400.0));
}
