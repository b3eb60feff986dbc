//! The agent's side of the bench: how to start it (mock fixture, or the real NVML path on the fake
//! library), its Xid analysis throughput against `grep`, and its binary size.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use gpu_fixture::Fixture;
use serde_json::json;

use crate::kernel_log::KernelLog;
use crate::measure::{Repeats, Server};
use crate::procfs::{self, Memory};
use crate::stats::Samples;
use crate::stdio::{self, Peer};

/// Where the agent and the fake NVML library were built, and the fixture both serve.
pub struct AgentSetup {
    pub agent: PathBuf,
    pub fake_nvml: PathBuf,
    pub fixture: PathBuf,
    /// A sysfs-like PCI tree listing the fixture's GPUs, for the NVML path's PCI-bus scan.
    pci_devices: tempfile::TempDir,
}

impl AgentSetup {
    /// Checks the binaries exist and lays out the fake PCI tree for `fixture`.
    pub fn new(bin_dir: &Path, fixture: &Path) -> anyhow::Result<AgentSetup> {
        let agent = bin_dir.join("agent");
        let fake_nvml = bin_dir.join("libnvidia_ml.so");
        for path in [&agent, &fake_nvml] {
            anyhow::ensure!(
                path.is_file(),
                "{} is missing: build it with `cargo build --release -p agent -p fake-nvml` (hack/bench does)",
                path.display()
            );
        }
        let parsed = Fixture::from_path(fixture)
            .with_context(|| format!("cannot load the fixture {}", fixture.display()))?;
        Ok(AgentSetup {
            agent,
            fake_nvml,
            fixture: fixture.to_owned(),
            pci_devices: pci_sysfs(&parsed)?,
        })
    }

    /// The agent on the mock backend, serving the fixture file (what the Python peer reads too).
    pub fn mock(&self) -> Server<'_> {
        Server {
            name: "agent (mock)",
            command: Box::new(|| self.mock_command()),
        }
    }

    /// The command of [`AgentSetup::mock`].
    pub fn mock_command(&self) -> Command {
        let mut command = Command::new(&self.agent);
        command
            .arg("--nvml-mode=mock")
            .arg("--mock-fixture")
            .arg(&self.fixture);
        command
    }

    /// The agent on its real NVML path, loading the fake `libnvidia-ml` that serves the same fixture.
    pub fn fake_nvml(&self) -> Server<'_> {
        Server {
            name: "agent (fake NVML)",
            command: Box::new(|| self.fake_nvml_command()),
        }
    }

    /// The command of [`AgentSetup::fake_nvml`].
    pub fn fake_nvml_command(&self) -> Command {
        let mut command = Command::new(&self.agent);
        command
            .arg("--nvml-mode=real")
            .arg("--nvml-lib")
            .arg(&self.fake_nvml)
            .arg("--pci-devices-dir")
            .arg(self.pci_devices.path())
            .env("FAKE_NVML_FIXTURE", &self.fixture);
        command
    }

    /// The agent on the mock fixture, reading its kernel log from `kmsg`.
    pub fn with_kernel_log(&self, kmsg: &Path) -> Command {
        let mut command = self.mock_command();
        command.arg("--kmsg-path").arg(kmsg);
        command
    }
}

/// A directory laid out like `/sys/bus/pci/devices` with the fixture's GPUs and a host bridge.
fn pci_sysfs(fixture: &Fixture) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    fixture.write_pci_sysfs(dir.path())?;
    Ok(dir)
}

/// `analyze_xid_errors` over a large kernel-log file, and `grep` over the same file.
#[derive(Debug, Clone)]
pub struct XidThroughput {
    pub lines: u64,
    pub bytes: u64,
    /// Tool call round trips (ms).
    pub agent: Samples,
    /// `grep -c 'NVRM: Xid'` runs, process spawn to exit (ms).
    pub grep: Samples,
    pub after_initialize: Memory,
    pub after_calls: Memory,
}

/// Runs `analyze_xid_errors` on `log_path` in one agent session, checking every answer counts
/// `expected`'s lines and Xids, then times `grep` on the same file.
pub fn xid_throughput(
    setup: &AgentSetup,
    log_path: &Path,
    expected: &KernelLog,
    repeats: Repeats,
) -> anyhow::Result<XidThroughput> {
    let mut peer = Peer::spawn("agent (Xid)", setup.with_kernel_log(log_path))?;
    peer.call(&stdio::initialize(1), 1)?;
    peer.send(&stdio::initialized())?;
    let after_initialize = procfs::memory(peer.pid())?;
    let mut agent = Samples::default();
    let mut grep = Samples::default();
    // Alternate the agent's call and grep's run so that background load falls on both alike.
    for n in 0..repeats.warmup + repeats.measured {
        let id = 2 + n as u64;
        let request = stdio::tools_call(id, "analyze_xid_errors", json!({}));
        let (elapsed, reply) = peer.call(&request, id)?;
        let report = &reply["result"]["structuredContent"];
        let counted = (
            report["records_scanned"].as_u64(),
            report["xid_event_count"].as_u64(),
        );
        anyhow::ensure!(
            counted == (Some(expected.lines), Some(expected.xid_lines)),
            "analyze_xid_errors counted {counted:?} (records, Xids) in {}, expected ({}, {}): the \
             agent missed lines; the throughput would be meaningless",
            log_path.display(),
            expected.lines,
            expected.xid_lines
        );
        let grep_elapsed = grep_xids(log_path, expected.xid_lines)?;
        if n >= repeats.warmup {
            agent.push_duration(elapsed);
            grep.push_duration(grep_elapsed);
        }
    }
    let after_calls = procfs::memory(peer.pid())?;
    Ok(XidThroughput {
        lines: expected.lines,
        bytes: expected.text.len() as u64,
        agent,
        grep,
        after_initialize,
        after_calls,
    })
}

/// Times `grep -c 'NVRM: Xid' FILE` from spawn to exit and checks its count.
fn grep_xids(log_path: &Path, expected: u64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let output = Command::new("grep")
        .args(["-c", "NVRM: Xid"])
        .arg(log_path)
        .env("LC_ALL", "C")
        .output()
        .context("cannot run grep")?;
    let elapsed = started.elapsed();
    let count: u64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .context("grep -c printed no count")?;
    anyhow::ensure!(
        count == expected,
        "grep counted {count} Xid lines, expected {expected}"
    );
    Ok(elapsed)
}

/// A binary's size on disk and after `strip --strip-all` (the same when the build already strips).
#[derive(Debug, Clone, Copy)]
pub struct BinarySize {
    pub on_disk_bytes: u64,
    pub stripped_bytes: Option<u64>,
}

/// Measures `binary`; `stripped_bytes` is `None` when `strip` is not installed.
pub fn binary_size(binary: &Path) -> anyhow::Result<BinarySize> {
    let on_disk_bytes = std::fs::metadata(binary)
        .with_context(|| format!("cannot stat {}", binary.display()))?
        .len();
    let dir = tempfile::tempdir()?;
    let copy = dir.path().join("stripped");
    let stripped_bytes = Command::new("strip")
        .arg("--strip-all")
        .arg("-o")
        .arg(&copy)
        .arg(binary)
        .status()
        .ok()
        .filter(|s| s.success())
        .and_then(|_| std::fs::metadata(&copy).ok())
        .map(|m| m.len());
    Ok(BinarySize {
        on_disk_bytes,
        stripped_bytes,
    })
}
