//! The `get_gpu_timeline` table: per GPU one line per metric summarising the window (min, max, mean,
//! last), then every event in time order (time, GPU, kind, message), what the history covers, and the
//! recorder's notes.

use std::fmt::Write;

use super::{NA, node_line, seconds, wire};
use crate::cli::style::Style;
use crate::cli::table::Table;
use crate::recorder::timeline::{MetricSeries, TimelineEvent};
use crate::server::TimelineResult;

/// The timeline as a person reads it.
pub fn table(result: &TimelineResult, style: Style) -> String {
    let report = &result.report;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}, history {} to {}",
        node_line(result.node_name.as_deref(), &result.data_source),
        seconds(&report.from),
        seconds(&report.to)
    );
    for gpu in &report.gpus {
        let _ = write!(
            out,
            "\n{} {} ({} sample(s))\n",
            style.heading(&format!("GPU {}", gpu.index)),
            gpu.uuid.as_deref().unwrap_or(NA),
            gpu.samples
        );
        let mut t = Table::new(&["METRIC", "MIN", "MAX", "MEAN", "LAST"]);
        for m in &gpu.metrics {
            let s = summary(m);
            let cell = |v: Option<f64>| v.map_or_else(|| "-".to_string(), number);
            t.row(vec![
                m.name.as_str().into(),
                cell(s.min).into(),
                cell(s.max).into(),
                cell(s.mean).into(),
                cell(s.last).into(),
            ]);
        }
        out.push_str(&t.render(style));
    }

    let mut events: Vec<&TimelineEvent> = report
        .gpus
        .iter()
        .flat_map(|g| g.events.iter())
        .chain(report.node_events.iter())
        .collect();
    events.sort_by(|a, b| (a.unix_ms, &a.time).cmp(&(b.unix_ms, &b.time)));
    let _ = write!(
        out,
        "\n{} ({} in the window{})\n",
        style.heading("EVENTS"),
        report.events_total,
        if report.truncated {
            ", some left out"
        } else {
            ""
        }
    );
    if events.is_empty() {
        out.push_str("none\n");
    } else {
        let mut t = Table::new(&["TIME", "GPU", "KIND", "MESSAGE"]);
        for e in events {
            let time = if e.approximate {
                format!("~{}", seconds(&e.time))
            } else {
                seconds(&e.time)
            };
            t.row(vec![
                time.into(),
                e.gpu
                    .map_or_else(|| "-".to_string(), |g| g.to_string())
                    .into(),
                wire(&e.kind).into(),
                e.detail.as_str().into(),
            ]);
        }
        out.push_str(&t.render(style));
    }
    if let Some(c) = &report.coverage {
        let _ = write!(
            out,
            "\n{}\nsampled every {}s; oldest {}, newest {}",
            style.heading("HISTORY"),
            number(c.sample_interval_seconds),
            c.oldest.as_deref().map_or(NA.to_string(), seconds),
            c.newest.as_deref().map_or(NA.to_string(), seconds),
        );
        if let Some(full) = &c.full_resolution_from {
            let _ = write!(out, "; every sample from {}", seconds(full));
        }
        out.push('\n');
    }
    if let Some(narrow) = &report.narrow {
        let _ = writeln!(out, "narrow: {narrow}");
    }
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

/// A metric over the whole window, from its `[min, max, mean, last]` buckets.
#[derive(Debug, Default, PartialEq)]
struct Summary {
    min: Option<f64>,
    max: Option<f64>,
    /// The mean of the buckets' means (buckets without samples left out).
    mean: Option<f64>,
    last: Option<f64>,
}

fn summary(m: &MetricSeries) -> Summary {
    let full: Vec<&[f64]> = m
        .buckets
        .iter()
        .filter(|b| b.len() == 4)
        .map(Vec::as_slice)
        .collect();
    if full.is_empty() {
        return Summary::default();
    }
    let fold = |i: usize, f: fn(f64, f64) -> f64| full.iter().map(|b| b[i]).reduce(f);
    Summary {
        min: fold(0, f64::min),
        max: fold(1, f64::max),
        mean: Some(full.iter().map(|b| b[2]).sum::<f64>() / full.len() as f64),
        last: full.last().map(|b| b[3]),
    }
}

/// `33`, `71.5`, `0.25`: integers bare, others to at most two decimals.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_summarises_its_non_empty_buckets() {
        let m = MetricSeries {
            name: "temperature_c".into(),
            buckets: vec![
                vec![33.0, 40.0, 35.0, 40.0],
                vec![],
                vec![38.0, 90.0, 60.0, 88.0],
            ],
        };
        assert_eq!(
            summary(&m),
            Summary {
                min: Some(33.0),
                max: Some(90.0),
                mean: Some(47.5),
                last: Some(88.0)
            }
        );
        let empty = MetricSeries {
            name: "x".into(),
            buckets: vec![vec![]],
        };
        assert_eq!(summary(&empty), Summary::default());
        assert_eq!(number(33.0), "33");
        assert_eq!(number(71.456), "71.46");
        assert_eq!(number(0.5), "0.5");
    }
}
