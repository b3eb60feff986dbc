//! The `get_pod_gpu_allocation` table: one line per GPU with the containers holding it and how (device
//! plugin or DRA claim), then the GPUs nobody holds, devices no GPU matched and the sources that could
//! not be read with the permission missing.

use std::fmt::Write;

use super::{NA, node_line, wire};
use crate::cli::style::Style;
use crate::cli::table::Table;
use crate::tools::pod_gpus::PodGpuAllocationReport;

/// The allocation report as a person reads it.
pub fn table(report: &PodGpuAllocationReport, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}\n",
        node_line(report.node_name.as_deref(), &report.data_source)
    );
    let mut t = Table::new(&["GPU", "UUID", "NAME", "HOLDERS", "SOURCE"]);
    for g in &report.gpus {
        let holders: Vec<String> = g
            .holders
            .iter()
            .map(|h| format!("{}/{}/{}", h.namespace, h.pod, h.container))
            .collect();
        let mut sources: Vec<String> = g.holders.iter().map(|h| wire(&h.source)).collect();
        sources.dedup();
        let dash = |v: Vec<String>| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(", ")
            }
        };
        t.row(vec![
            g.index.to_string().into(),
            g.uuid.as_deref().unwrap_or(NA).into(),
            g.name.as_deref().unwrap_or(NA).into(),
            dash(holders).into(),
            dash(sources).into(),
        ]);
    }
    out.push_str(&t.render(style));

    match &report.unheld_gpus {
        Some(unheld) if !unheld.is_empty() => {
            let list: Vec<String> = unheld.iter().map(u32::to_string).collect();
            let _ = writeln!(out, "\nheld by nobody: GPU {}", list.join(", "));
        }
        Some(_) => out.push_str("\nheld by nobody: none\n"),
        None => out.push_str("\nheld by nobody: unknown (the kubelet could not be read)\n"),
    }
    if !report.unmatched.is_empty() {
        let _ = write!(out, "\n{}\n", style.heading("UNMATCHED DEVICES"));
        for u in &report.unmatched {
            let _ = writeln!(
                out,
                "{}/{}/{}   {}   {}: {}",
                u.namespace,
                u.pod,
                u.container,
                wire(&u.source),
                u.device,
                u.reason
            );
        }
    }
    if !report.unreadable.is_empty() {
        let _ = write!(out, "\n{}\n", style.heading("UNREADABLE"));
        for u in &report.unreadable {
            let _ = write!(out, "{}: {}", u.source, u.reason);
            if let Some(permission) = &u.missing_permission {
                let _ = write!(out, " (missing permission: {permission})");
            }
            out.push('\n');
        }
    }
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}
