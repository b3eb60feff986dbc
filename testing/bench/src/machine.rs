//! The machine a run measured: printed above every table, because numbers without their machine mean
//! nothing.

use std::path::Path;
use std::process::Command;

/// What the report says about the machine and the toolchains.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub memory: String,
    pub kernel: String,
    pub rustc: String,
    pub python: String,
    pub mcp_sdk: String,
    pub node: Option<String>,
    /// `/proc/loadavg`'s 1-, 5- and 15-minute averages when the run started (other work on the
    /// machine shows here).
    pub load_at_start: String,
    /// The same when the run ended.
    pub load_at_end: Option<String>,
}

impl Machine {
    /// Reads `/proc`, and asks `rustc`, the peer's Python and (when used) `node` for their versions.
    pub fn describe(python: &Path, node: Option<&Path>) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            cpu_model: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown CPU".to_owned()),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory: mem_total_gib(&meminfo)
                .map_or_else(|| "unknown".to_owned(), |g| format!("{g:.0} GiB")),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned()),
            rustc: version_of(Command::new("rustc").arg("--version")),
            python: version_of(Command::new(python).arg("--version")),
            mcp_sdk: version_of(Command::new(python).args([
                "-c",
                "import importlib.metadata as m; print('mcp', m.version('mcp'))",
            ])),
            node: node.map(|n| version_of(Command::new(n).arg("--version"))),
            load_at_start: load_average(),
            load_at_end: None,
        }
    }

    /// Records the load average at the end of the run.
    pub fn finish(&mut self) {
        self.load_at_end = Some(load_average());
    }

    /// One line per fact, for the top of stdout and of the Markdown report.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![
            format!("CPU: {} ({} cores)", self.cpu_model, self.cores),
            format!("memory: {}", self.memory),
            format!("kernel: Linux {}", self.kernel),
            format!("rustc: {}", self.rustc),
            format!("python: {} ({})", self.python, self.mcp_sdk),
        ];
        if let Some(node) = &self.node {
            lines.push(format!("node: {node}"));
        }
        lines.push(match &self.load_at_end {
            Some(end) => format!(
                "load average (1/5/15 min): {} at the start, {end} at the end",
                self.load_at_start
            ),
            None => format!("load average (1/5/15 min): {}", self.load_at_start),
        });
        lines
    }
}

fn version_of(command: &mut Command) -> String {
    command
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text).trim().to_owned()
        })
        .unwrap_or_else(|| "unavailable".to_owned())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_owned())
    })
}

fn mem_total_gib(meminfo: &str) -> Option<f64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_model_and_memory() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(mem_total_gib("MemTotal:       25165824 kB\n"), Some(24.0));
        assert_eq!(cpu_model("nothing"), None);
    }
}
