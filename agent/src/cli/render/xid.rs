//! The `analyze_xid_errors` table: one line per GPU (and per PCI location no GPU matched) with its Xid
//! codes, last sighting, verdict and action; then the findings with their instructions, what the log
//! covers and the analysis' caveats.

use std::fmt::Write;

use super::{NA, node_line, seconds, wire};
use crate::cli::style::{Paint, Style};
use crate::cli::table::{Cell, Table};
use crate::server::XidResult;
use crate::xid::catalog::Severity;
use crate::xid::{GpuXidAssessment, XidCodeSummary};

/// The Xid report as a person reads it.
pub fn table(result: &XidResult, style: Style) -> String {
    let report = &result.report;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}, {} Xid event(s) in the kernel log ({}): {}\n",
        node_line(result.node_name.as_deref(), &result.data_source),
        report.xid_event_count,
        report.source.describe(),
        style.verdict(report.verdict)
    );
    let mut t = Table::new(&[
        "GPU",
        "BUS-ID",
        "XIDS",
        "EVENTS",
        "LAST SEEN",
        "VERDICT",
        "ACTION",
    ]);
    for g in &report.gpus {
        let codes: Vec<&XidCodeSummary> =
            report.summary.iter().filter(|s| same_gpu(g, s)).collect();
        let xids = codes
            .iter()
            .map(|s| format!("{} x{}", s.code, s.count))
            .collect::<Vec<_>>();
        let last_seen = codes
            .iter()
            .filter_map(|s| s.last_seen.as_deref())
            .max()
            .map_or_else(|| "-".to_string(), seconds);
        let gpu = match (g.gpu_index, g.attributed) {
            (Some(i), true) => i.to_string(),
            _ => "?".to_string(),
        };
        t.row(vec![
            gpu.into(),
            g.pci_bus_id.as_deref().unwrap_or(NA).into(),
            if xids.is_empty() {
                "-".to_string()
            } else {
                xids.join(", ")
            }
            .into(),
            g.xid_event_count.to_string().into(),
            last_seen.into(),
            Cell::painted(g.verdict.as_str(), Paint::of_verdict(g.verdict)),
            wire(&g.recommended_action).into(),
        ]);
    }
    out.push_str(&t.render(style));

    let owner_of = |g: &GpuXidAssessment| match (g.gpu_index, g.attributed) {
        (Some(i), true) => format!("GPU {i}"),
        _ => format!("PCI {}", g.pci_bus_id.as_deref().unwrap_or(NA)),
    };
    let width = report
        .gpus
        .iter()
        .filter(|g| !g.findings.is_empty() || g.unattributed_reason.is_some())
        .map(|g| owner_of(g).len())
        .max()
        .unwrap_or(0);
    let mut findings = String::new();
    for g in &report.gpus {
        let owner = format!("{:<width$}", owner_of(g));
        if let Some(why) = &g.unattributed_reason {
            let _ = writeln!(findings, "{owner}   not attributed: {why}");
        }
        for f in &g.findings {
            let codes: Vec<String> = f.codes.iter().map(u32::to_string).collect();
            let _ = writeln!(
                findings,
                "{owner}   {}   {} (Xid {}, {} event(s)): {}",
                severity(f.severity, style),
                wire(&f.rule),
                codes.join(", "),
                f.event_count,
                f.message
            );
            let _ = writeln!(
                findings,
                "    action ({}): {}",
                wire(&f.recommended_action),
                f.action_instruction
            );
        }
    }
    if !findings.is_empty() {
        let _ = write!(out, "\n{}\n{findings}", style.heading("FINDINGS"));
    }
    let _ = write!(
        out,
        "\n{}\n{}\n",
        style.heading("LOG"),
        report.coverage.description
    );
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

/// Whether a summary row belongs to this GPU (by index when attributed, else by PCI location).
fn same_gpu(g: &GpuXidAssessment, s: &XidCodeSummary) -> bool {
    match (g.attributed, g.gpu_index) {
        (true, Some(i)) => s.gpu_index == Some(i),
        _ => s.gpu_index.is_none() && g.pci_bus_id.as_deref() == Some(s.pci_bus_id.as_str()),
    }
}

fn severity(s: Severity, style: Style) -> String {
    let paint = match s {
        Severity::Info => Paint::Dim,
        Severity::Warning | Severity::Unknown => Paint::Yellow,
        Severity::Error | Severity::Critical => Paint::Red,
    };
    style.paint(&format!("{:<8}", wire(&s)), paint)
}
