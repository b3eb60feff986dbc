//! What span of time the kernel log covers (so "no Xids" is qualified) and the caveats of the read
//! itself (dropped, lost, cut or unparsable records), for the report.

use super::options::AnalyzeOptions;
use super::parse::RecordTime;
use super::report::LogCoverage;
use super::scan::KernelLog;
use super::time::{format_rfc3339, human_duration};

/// The coverage block: oldest/newest record, the span to now, the analysed window.
pub(super) fn coverage(
    log: &KernelLog,
    options: &AnalyzeOptions,
    cutoff: Option<i64>,
) -> LogCoverage {
    let clock = log.clock;
    let wall = |time: Option<RecordTime>| match time? {
        RecordTime::SinceBoot(micros) => Some(clock.wall_micros(micros)),
        RecordTime::Wall(micros) => Some(micros),
        RecordTime::Unknown => None,
    };
    let (oldest, newest) = (wall(log.oldest), wall(log.newest));
    let covered_seconds = oldest.map(|o| (clock.realtime_unix_micros - o).max(0) as f64 / 1e6);
    let source = log.source.describe();
    let mut description = match (oldest, newest, covered_seconds) {
        (Some(oldest), Some(newest), Some(covered)) => format!(
            "The kernel log ({source}) covers {} to {} ({} of records, the oldest {} ago); older Xids are not visible: the ring buffer is bounded and cleared at boot.",
            format_rfc3339(oldest),
            format_rfc3339(newest),
            human_duration((newest - oldest).max(0) as f64 / 1e6),
            human_duration(covered)
        ),
        _ if log.records_scanned == 0 => format!("The kernel log ({source}) is empty."),
        _ => format!(
            "The kernel log ({source}) has {} records but no timestamps this tool recognises, so its time span is unknown.",
            log.records_scanned
        ),
    };
    if let Some(RecordTime::SinceBoot(newest)) = log.newest
        && newest > clock.monotonic_micros
    {
        description.push_str(&format!(
            " Its newest since-boot timestamp ({:.0} s) is later than this machine's uptime ({:.0} s): \
             the log comes from an earlier boot or another machine, so these wall-clock times are wrong; \
             read its since-boot times instead.",
            newest as f64 / 1e6,
            clock.monotonic_micros as f64 / 1e6
        ));
    }
    if let (Some(since), Some(cutoff)) = (options.since_seconds, cutoff) {
        description.push_str(&format!(
            " Analysed: the last {} (since {}).",
            human_duration(since as f64),
            format_rfc3339(cutoff)
        ));
    }
    LogCoverage {
        oldest_record_time: oldest.map(format_rfc3339),
        newest_record_time: newest.map(format_rfc3339),
        covered_seconds,
        since_seconds: options.since_seconds,
        window_start_time: cutoff.map(format_rfc3339),
        description,
    }
}

/// Notes about how complete the read was.
pub(super) fn log_notes(log: &KernelLog) -> Vec<String> {
    let mut notes = Vec::new();
    if log.xids_dropped > 0 {
        notes.push(format!(
            "{} older Xid record(s) were dropped to bound memory; counts cover the newest {}.",
            log.xids_dropped,
            log.xids.len()
        ));
    }
    if log.lost_records > 0 {
        notes.push(format!(
            "/dev/kmsg reported {} gap(s): records were overwritten before they could be read.",
            log.lost_records
        ));
    }
    if let Some(reason) = &log.stopped_early {
        notes.push(format!("The read stopped early: {reason}."));
    }
    if log.truncated_lines > 0 {
        notes.push(format!(
            "{} over-long line(s) were cut.",
            log.truncated_lines
        ));
    }
    if log.malformed_xid_lines > 0 {
        notes.push(format!(
            "{} line(s) look like Xid lines but do not parse (new driver format?): {}",
            log.malformed_xid_lines,
            log.malformed_examples.join(" | ")
        ));
    }
    notes
}
