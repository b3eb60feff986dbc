//! The `get_gpu_health` table: one line per GPU with its vitals, verdict and worst finding; then every
//! finding with its action, the checks that could not run, and the tool's one-line summary.

use std::fmt::Write;

use super::{NA, memory, node_line, power, temperature};
use crate::cli::style::{Paint, Style};
use crate::cli::table::{Cell, Table};
use crate::health::{Finding, Severity, Verdict};
use crate::server::HealthResult;
use crate::tools::inventory::{GpuInventory, InventoryReport};

/// The health report as a person reads it. `vitals` is the inventory read in the same run, for the
/// temperature, power and memory columns (N/A without it).
pub fn table(result: &HealthResult, vitals: Option<&InventoryReport>, style: Style) -> String {
    let report = &result.report;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}, driver {}, {} GPU(s): {}\n",
        node_line(result.node_name.as_deref(), &result.data_source),
        report.driver_version.as_deref().unwrap_or(NA),
        report.device_count,
        style.verdict(report.verdict)
    );

    let mut t = Table::new(&[
        "GPU",
        "MODEL",
        "TEMP",
        "POWER",
        "MEMORY",
        "VERDICT",
        "WORST FINDING",
    ]);
    for g in &report.gpus {
        let v = vitals.and_then(|inv| inv.gpus.iter().find(|i| i.index == g.index));
        let model = g.name.as_deref().or(v.and_then(|v| v.name.as_deref()));
        let mut row = vec![Cell::from(g.index.to_string()), model.unwrap_or(NA).into()];
        row.extend(vital_cells(v));
        row.push(Cell::painted(
            g.verdict.as_str(),
            Paint::of_verdict(g.verdict),
        ));
        row.push(worst(&g.findings).into());
        t.row(row);
    }
    // The node's own row only when it needs attention; its info findings are listed below.
    if report.node.verdict != Verdict::Pass {
        let v = report.node.verdict;
        let mut row = vec![
            Cell::from("node"),
            "".into(),
            "".into(),
            "".into(),
            "".into(),
        ];
        row.push(Cell::painted(v.as_str(), Paint::of_verdict(v)));
        row.push(worst(&report.node.findings).into());
        t.row(row);
    }
    out.push_str(&t.render(style));

    let owners: Vec<(String, &Vec<Finding>)> =
        std::iter::once(("node".to_string(), &report.node.findings))
            .chain(
                report
                    .gpus
                    .iter()
                    .map(|g| (format!("GPU {}", g.index), &g.findings)),
            )
            .filter(|(_, list)| !list.is_empty())
            .collect();
    let width = owners.iter().map(|(o, _)| o.len()).max().unwrap_or(0);
    let mut findings = String::new();
    for (owner, list) in &owners {
        for f in *list {
            finding(&mut findings, &format!("{owner:<width$}"), f, style);
        }
    }
    if !findings.is_empty() {
        let _ = write!(out, "\n{}\n{findings}", style.heading("FINDINGS"));
    }

    let not_run = std::iter::once(("node".to_string(), &report.node.not_evaluated)).chain(
        report
            .gpus
            .iter()
            .map(|g| (format!("GPU {}", g.index), &g.not_evaluated)),
    );
    let mut not_evaluated = String::new();
    for (owner, list) in not_run {
        for n in list {
            let _ = writeln!(not_evaluated, "{owner}   {}: {}", n.check, n.reason);
        }
    }
    if !not_evaluated.is_empty() {
        let _ = write!(out, "\n{}\n{not_evaluated}", style.heading("NOT EVALUATED"));
    }
    let _ = writeln!(out, "\n{}", report.summary);
    if report.rate_rules_evaluated.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            style.paint(
                "(rate rules need two readings: `agent health --window 10s` samples twice)",
                Paint::Dim
            )
        );
    }
    out
}

fn vital_cells(v: Option<&GpuInventory>) -> [Cell; 3] {
    match v {
        Some(v) => [
            temperature(v.temperature_c).into(),
            power(v.power_draw_watts, v.power_limit_watts).into(),
            memory(v.memory_used_bytes, v.memory_total_bytes).into(),
        ],
        None => [NA.into(), NA.into(), NA.into()],
    }
}

/// The first finding (the report lists them most severe first), and how many more there are.
fn worst(findings: &[Finding]) -> String {
    match findings {
        [] => "-".to_string(),
        [first, rest @ ..] => {
            let mut text = first.check.to_string();
            if first.severity == Severity::Info {
                text.push_str(" (info)");
            }
            if !rest.is_empty() {
                let _ = write!(text, " (+{} more)", rest.len());
            }
            text
        }
    }
}

fn finding(out: &mut String, owner: &str, f: &Finding, style: Style) {
    let (word, paint) = match f.severity {
        Severity::Info => ("info", Paint::Dim),
        Severity::Warn => ("warn", Paint::Yellow),
        Severity::Fail => ("fail", Paint::Red),
    };
    let _ = writeln!(
        out,
        "{owner}   {}   {}: {}",
        style.paint(word, paint),
        f.check,
        f.message
    );
    if let Some(action) = &f.action {
        let _ = writeln!(out, "    action: {action}");
    }
}
