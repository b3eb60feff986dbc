//! The fleet's rows: `get_fleet_gpu_health` through the real `agent fleet` over simulated nodes.
//! testing/bench/fleet_bench.py measures them (the official MCP Python client drives the fleet, the
//! test API server's pods/exec starts a real mock-mode agent per node); this turns its Markdown rows
//! into report rows, with the targets beside the rows that have one.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use crate::report::Row;

/// Which cluster sizes, and how many warm calls each.
pub struct FleetPlan {
    pub nodes: Vec<usize>,
    pub warm_calls: usize,
}

impl FleetPlan {
    pub fn new(quick: bool) -> FleetPlan {
        if quick {
            FleetPlan {
                nodes: vec![10],
                warm_calls: 2,
            }
        } else {
            FleetPlan {
                nodes: vec![10, 100, 500],
                warm_calls: 3,
            }
        }
    }
}

/// Runs fleet_bench.py with `python` on the binaries of `bin_dir` (`agent`, `test-apiserver`).
pub fn measure(
    python: &Path,
    root: &Path,
    bin_dir: &Path,
    plan: &FleetPlan,
) -> anyhow::Result<Vec<Row>> {
    let script = root.join("testing/bench/fleet_bench.py");
    let nodes = plan
        .nodes
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let output = Command::new(python)
        .arg(&script)
        .args([
            "--nodes",
            &nodes,
            "--warm-calls",
            &plan.warm_calls.to_string(),
        ])
        .arg("--bin-dir")
        .arg(bin_dir)
        .current_dir(root)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {} {}", python.display(), script.display()))?;
    if !output.status.success() {
        bail!(
            "{} failed ({}); its output:\n{}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout)
        );
    }
    let rows = rows(&String::from_utf8_lossy(&output.stdout));
    if rows.len() < 2 {
        bail!("{} printed no rows", script.display());
    }
    Ok(rows)
}

/// Report rows from fleet_bench.py's Markdown table (`| measure | value |`), after a section row.
pub fn rows(markdown: &str) -> Vec<Row> {
    let mut rows = vec![Row::new(
        "**Fleet (`agent fleet`), simulated nodes through the test API server's pods/exec**",
        "",
    )];
    for line in markdown.lines() {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        let [measure, value] = cells[..] else {
            continue;
        };
        if measure == "Measure" || measure.starts_with("---") {
            continue;
        }
        let target = if measure.starts_with("100 nodes") && measure.contains("warm call") {
            " (target ≤ 1 s)"
        } else if measure.starts_with("500 nodes") && measure.contains("RSS") {
            " (target ≤ 40 MiB)"
        } else {
            ""
        };
        rows.push(Row::new(format!("{measure}{target}"), value));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_rows_become_report_rows_with_their_targets() {
        let printed = "| Measure | Value |\n|---|---|\n\
            | 100 nodes: `get_fleet_gpu_health` warm call (median of 3) | 811 ms |\n\
            | 500 nodes: fleet RSS / peak with 500 sessions open | 31.0 MiB / 40.1 MiB |\n\
            | 500 nodes: `get_fleet_gpu_health` first call (opens 500 sessions) | 31703 ms |\n\
            not a row\n";
        let rows = rows(printed);
        let got: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.measure.as_str(), r.ours.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "**Fleet (`agent fleet`), simulated nodes through the test API server's pods/exec**",
                    ""
                ),
                (
                    "100 nodes: `get_fleet_gpu_health` warm call (median of 3) (target ≤ 1 s)",
                    "811 ms"
                ),
                (
                    "500 nodes: fleet RSS / peak with 500 sessions open (target ≤ 40 MiB)",
                    "31.0 MiB / 40.1 MiB"
                ),
                (
                    "500 nodes: `get_fleet_gpu_health` first call (opens 500 sessions)",
                    "31703 ms"
                ),
            ]
        );
    }
}
