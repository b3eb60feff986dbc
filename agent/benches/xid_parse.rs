//! Benchmark: read and analyse a 1,000,000-record kernel log (one Xid line per 1,000 records).
//! Run with `cargo bench -p agent --bench xid_parse`; prints the best of five runs.

use std::io::Write;
use std::time::{Duration, Instant};

use agent::xid::{
    AnalyzeOptions, GpuIdentity, KernelLog, LogSource, PciLocation, ReadLimits, SourceKind,
    SourceUsed, analyze, read_kernel_log,
};
use gpu_fixture::synthetic_kmsg;

const RECORDS: u64 = 1_000_000;
const RUNS: usize = 5;

fn best<T>(mut run: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..RUNS {
        let started = Instant::now();
        let value = run();
        best = best.min(started.elapsed());
        last = Some(value);
    }
    (best, last.expect("RUNS > 0"))
}

fn main() {
    let synthetic = synthetic_kmsg::kmsg_log(RECORDS, 1000);
    let bytes = synthetic.text.len();
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(synthetic.text.as_bytes()).expect("write");
    let source = LogSource::File(file.path().into());
    let limits = ReadLimits::default();

    let (file_time, log) = best(|| read_kernel_log(&source, &limits).expect("readable"));
    assert_eq!(log.records_scanned, synthetic.records);
    assert_eq!(log.xids.len() as u64, synthetic.xids());
    report("read file (kmsg format)", file_time, bytes);

    let lines: Vec<&str> = synthetic.text.lines().collect();
    let source_used = SourceUsed {
        kind: SourceKind::Lines,
        path: None,
    };
    let (lines_time, _) =
        best(|| KernelLog::from_lines(&lines, source_used.clone(), log.clock, &limits));
    report("scan in-memory lines", lines_time, bytes);

    let gpus: Vec<GpuIdentity> = synthetic_kmsg::PCI[..8]
        .iter()
        .enumerate()
        .map(|(index, pci)| GpuIdentity {
            index: index as u32,
            uuid: None,
            pci: PciLocation::parse(pci),
        })
        .collect();
    let (analyze_time, report_value) = best(|| analyze(&log, &gpus, &AnalyzeOptions::default()));
    let json = serde_json::to_string(&report_value).expect("serializes");
    println!(
        "analyze {} Xids: {:.2} ms, report {} bytes of JSON",
        report_value.xid_event_count,
        analyze_time.as_secs_f64() * 1e3,
        json.len()
    );
}

fn report(what: &str, time: Duration, bytes: usize) {
    let seconds = time.as_secs_f64();
    println!(
        "{what}: {RECORDS} records, {:.1} MiB in {:.1} ms = {:.1} M records/s, {:.0} MiB/s",
        bytes as f64 / 1048576.0,
        seconds * 1e3,
        RECORDS as f64 / seconds / 1e6,
        bytes as f64 / 1048576.0 / seconds
    );
}
