//! The `get_gpu_inventory` table: one line per GPU, then GPUs that could not be read and the values
//! each GPU could not report.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{NA, memory, node_line, power, temperature, wire};
use crate::cli::style::{Paint, Style};
use crate::cli::table::{Cell, Table};
use crate::tools::inventory::{GpuInventory, InventoryReport};

/// Field names listed per unavailable-reason before the rest are counted.
const FIELDS_SHOWN: usize = 4;

/// The inventory as a person reads it.
pub fn table(report: &InventoryReport, style: Style) -> String {
    let mut out = String::new();
    let mut versions = Vec::new();
    for (label, value) in [
        ("driver", &report.driver_version),
        ("CUDA", &report.cuda_driver_version),
        ("NVML", &report.nvml_version),
    ] {
        versions.push(format!("{label} {}", value.as_deref().unwrap_or(NA)));
    }
    let _ = writeln!(
        out,
        "{}, {}, {} GPU(s)\n",
        node_line(report.node_name.as_deref(), &report.data_source),
        versions.join(", "),
        report.device_count
    );
    let mut t = Table::new(&[
        "GPU", "MODEL", "BUS-ID", "TEMP", "POWER", "MEMORY", "UTIL", "PCIE", "PROCS",
    ]);
    for g in &report.gpus {
        t.row(row(g));
    }
    out.push_str(&t.render(style));

    let errors: Vec<&GpuInventory> = report.gpus.iter().filter(|g| g.error.is_some()).collect();
    if !errors.is_empty() {
        let _ = writeln!(out, "\n{}", style.heading("ERRORS"));
        for g in errors {
            let text = g.error.as_deref().unwrap_or_default();
            let _ = writeln!(out, "GPU {}   {}", g.index, style.paint(text, Paint::Red));
        }
    }
    let unavailable = unavailable_lines(report);
    if !unavailable.is_empty() {
        let _ = writeln!(out, "\n{}", style.heading("UNAVAILABLE"));
        for line in unavailable {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

fn row(g: &GpuInventory) -> Vec<Cell> {
    let name = match (&g.name, &g.error) {
        (Some(n), _) => Cell::from(n.as_str()),
        (None, Some(_)) => Cell::painted("(unreachable)", Paint::Red),
        (None, None) => Cell::from(NA),
    };
    let util = g
        .utilization_gpu_percent
        .map_or_else(|| NA.to_string(), |u| format!("{u}%"));
    let procs = g
        .processes
        .as_ref()
        .map_or_else(|| NA.to_string(), |p| p.len().to_string());
    vec![
        g.index.to_string().into(),
        name,
        g.pci_bus_id.as_deref().unwrap_or(NA).into(),
        temperature(g.temperature_c).into(),
        power(g.power_draw_watts, g.power_limit_watts).into(),
        memory(g.memory_used_bytes, g.memory_total_bytes).into(),
        util.into(),
        pcie(g).into(),
        procs.into(),
    ]
}

/// `Gen5 x16`, with the maximum beside it when the link runs below it.
fn pcie(g: &GpuInventory) -> String {
    let link = |gen_: Option<u32>, width: Option<u32>| {
        let gen_ = gen_.map_or_else(|| NA.to_string(), |v| format!("Gen{v}"));
        let width = width.map_or_else(|| NA.to_string(), |v| format!("x{v}"));
        format!("{gen_} {width}")
    };
    let current = link(g.pcie_gen_current, g.pcie_width_current);
    let max = link(g.pcie_gen_max, g.pcie_width_max);
    if g.pcie_gen_current.is_none() && g.pcie_width_current.is_none() {
        NA.to_string()
    } else if current == max || (g.pcie_gen_max.is_none() && g.pcie_width_max.is_none()) {
        current
    } else {
        format!("{current} (max {max})")
    }
}

/// One line per GPU (or the node) and NVML code: how many values, which ones, and why.
fn unavailable_lines(report: &InventoryReport) -> Vec<String> {
    let node = std::iter::once(("node".to_string(), &report.unavailable));
    let gpus = report
        .gpus
        .iter()
        .map(|g| (format!("GPU {}", g.index), &g.unavailable));
    let mut lines = Vec::new();
    for (owner, fields) in node.chain(gpus) {
        let mut by_reason: BTreeMap<(String, &str), Vec<&str>> = BTreeMap::new();
        for (field, why) in fields {
            by_reason
                .entry((wire(&why.code), why.reason.as_str()))
                .or_default()
                .push(field);
        }
        for ((code, reason), fields) in by_reason {
            let mut names = fields[..fields.len().min(FIELDS_SHOWN)].join(", ");
            if fields.len() > FIELDS_SHOWN {
                let _ = write!(names, " and {} more", fields.len() - FIELDS_SHOWN);
            }
            lines.push(format!("{owner}   {code}   {names}: {reason}"));
        }
    }
    lines
}
