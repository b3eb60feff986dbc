//! A generated 100,000-record kernel log (mostly non-NVIDIA lines) must yield exact counts through
//! the real file reader and the analysis, with bounded output.

use std::io::Write;

use agent::xid::{
    AnalyzeOptions, Clock, GpuIdentity, LogSource, PciLocation, ReadLimits, analyze,
    read_kernel_log,
};
use gpu_fixture::synthetic_kmsg::{PCI, kmsg_log};

#[test]
fn a_100k_record_log_yields_exact_counts() {
    let synthetic = kmsg_log(100_000, 1000);
    assert_eq!(synthetic.xids(), 100);
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(synthetic.text.as_bytes()).expect("write");
    let mut log = read_kernel_log(&LogSource::File(file.path().into()), &ReadLimits::default())
        .expect("readable");
    assert_eq!(log.records_scanned, synthetic.records);
    assert_eq!(log.xids.len() as u64, synthetic.xids());
    assert_eq!(log.malformed_xid_lines, 0);
    log.clock = Clock {
        realtime_unix_micros: 1_795_773_600_000_000,
        monotonic_micros: 1_000_000_000,
    };

    let gpus: Vec<GpuIdentity> = PCI[..8]
        .iter()
        .enumerate()
        .map(|(index, pci)| GpuIdentity {
            index: index as u32,
            uuid: None,
            pci: PciLocation::parse(pci),
        })
        .collect();
    let report = analyze(
        &log,
        &gpus,
        &AnalyzeOptions {
            max_events: Some(40),
            ..AnalyzeOptions::default()
        },
    );
    assert_eq!(report.records_scanned, 100_000);
    assert_eq!(report.xid_event_count, 100);
    assert_eq!((report.events_returned, report.truncated), (40, true));
    let counted: std::collections::BTreeMap<(String, u32), u64> = report
        .summary
        .iter()
        .map(|s| ((s.pci_bus_id.clone(), s.code), s.count))
        .collect();
    assert_eq!(counted, synthetic.expected);
    let unattributed: u64 = report
        .gpus
        .iter()
        .filter(|g| !g.attributed)
        .map(|g| g.xid_event_count)
        .sum();
    let expected_unattributed: u64 = synthetic
        .expected
        .iter()
        .filter(|((pci, _), _)| pci == PCI[8])
        .map(|(_, n)| n)
        .sum();
    assert_eq!(unattributed, expected_unattributed);
    assert!(unattributed > 0);
    assert_eq!(
        report.gpus.iter().map(|g| g.xid_event_count).sum::<u64>(),
        100
    );
}

#[test]
fn the_same_log_as_in_memory_lines_gives_the_same_counts() {
    let synthetic = kmsg_log(100_000, 1000);
    let lines: Vec<&str> = synthetic.text.lines().collect();
    let log = agent::xid::KernelLog::from_lines(
        &lines,
        agent::xid::SourceUsed {
            kind: agent::xid::SourceKind::Lines,
            path: None,
        },
        Clock {
            realtime_unix_micros: 0,
            monotonic_micros: 1_000_000_000,
        },
        &ReadLimits::default(),
    );
    assert_eq!(
        (log.records_scanned, log.xids.len() as u64),
        (synthetic.records, synthetic.xids())
    );
}
