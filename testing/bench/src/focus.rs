//! `--only xid,cold-start`: the agent's Xid-throughput and cold-start rows alone, in about a minute,
//! optionally beside another build of the agent (`--baseline-bin-dir`) measured in the same run, so
//! one change can be judged on a loaded machine without the whole bench.

use clap::ValueEnum;

use crate::agent::{self, AgentSetup};
use crate::kernel_log;
use crate::measure::{self, ColdStartPlan, Repeats};
use crate::peers;
use crate::report::{Row, ms};
use crate::stats::Samples;
use crate::stdio;

/// A group of rows `--only` can pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Focus {
    /// `analyze_xid_errors` on the 1,000,000-line log against `grep -c` (RSS too).
    Xid,
    /// Spawn → `initialize` reply and → first `get_gpu_inventory`, against the pipe floor.
    ColdStart,
}

/// What to measure and how often.
pub struct FocusPlan<'a> {
    pub only: &'a [Focus],
    pub cold: Repeats,
    pub log_lines: u64,
    pub xid_calls: Repeats,
    /// The same measurements for an agent built elsewhere, in the same run.
    pub baseline: Option<&'a AgentSetup>,
}

fn median(samples: &Samples) -> f64 {
    samples.median().unwrap_or(f64::NAN)
}

/// Measures what `plan.only` names and returns its rows.
pub fn rows(setup: &AgentSetup, plan: &FocusPlan<'_>) -> anyhow::Result<Vec<Row>> {
    let mut builds = vec![("agent", setup)];
    if let Some(baseline) = plan.baseline {
        builds.push(("baseline agent", baseline));
    }
    let mut rows = Vec::new();
    if plan.only.contains(&Focus::ColdStart) {
        rows.extend(cold_start_rows(&builds, plan.cold)?);
    }
    if plan.only.contains(&Focus::Xid) {
        eprintln!(
            "bench: Xid analysis of a {}-line kernel log",
            plan.log_lines
        );
        let log = kernel_log::generate(plan.log_lines, 1000);
        let file = tempfile::NamedTempFile::new()?;
        std::fs::write(file.path(), &log.text)?;
        for (name, build) in &builds {
            let x = agent::xid_throughput(build, file.path(), &log, plan.xid_calls)?;
            let (ours, grep) = (median(&x.agent), median(&x.grep));
            rows.push(Row::new(
                format!(
                    "{name}: `analyze_xid_errors`, {}-line log vs `grep -c`",
                    x.lines
                ),
                format!(
                    "{} vs {} = {:.2}× grep's time; RSS before / peak: {:.1} / {:.1} MiB",
                    ms(ours),
                    ms(grep),
                    ours / grep,
                    x.after_initialize.rss_bytes as f64 / 1_048_576.0,
                    x.after_calls.hwm_bytes as f64 / 1_048_576.0
                ),
            ));
        }
    }
    Ok(rows)
}

fn cold_start_rows(builds: &[(&str, &AgentSetup)], repeats: Repeats) -> anyhow::Result<Vec<Row>> {
    let inventory = |id| stdio::tools_call(id, "get_gpu_inventory", serde_json::json!({}));
    let floor = peers::pipe_floor();
    let servers: Vec<_> = builds
        .iter()
        .flat_map(|(_, b)| [b.mock(), b.fake_nvml()])
        .collect();
    let mut plans: Vec<ColdStartPlan> = servers
        .iter()
        .map(|server| ColdStartPlan {
            server,
            first: &inventory,
            repeats,
        })
        .collect();
    plans.push(ColdStartPlan {
        server: &floor,
        first: &inventory,
        repeats,
    });
    eprintln!("bench: cold starts, interleaved ({} servers)", plans.len());
    let results = measure::cold_starts(&plans)?;
    let floor = median(&results[results.len() - 1].to_initialize);
    let mut rows = vec![Row::new("pipe floor: spawn `cat` → echo", ms(floor))];
    for (n, (name, _)) in builds.iter().enumerate() {
        let (mock, fake) = (&results[2 * n], &results[2 * n + 1]);
        let init = median(&mock.to_initialize);
        rows.push(Row::new(
            format!("{name} (mock): cold start → `initialize` / first `get_gpu_inventory`"),
            format!(
                "{} ({:.2}× the floor) / {}",
                ms(init),
                init / floor,
                ms(median(&mock.to_first_reply))
            ),
        ));
        let init = median(&fake.to_initialize);
        rows.push(Row::new(
            format!("{name} (fake NVML): cold start → `initialize` / first `get_gpu_inventory`"),
            format!(
                "{} ({:.2}× the floor) / {}",
                ms(init),
                init / floor,
                ms(median(&fake.to_first_reply))
            ),
        ));
    }
    Ok(rows)
}
