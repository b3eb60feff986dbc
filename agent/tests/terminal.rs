//! `agent inventory|health|xid` through the real binary, as a person or a script at a terminal uses
//! them: the table of every built-in scenario (insta snapshots), exit codes per verdict, `-o json`
//! equal to the MCP tool's `structuredContent`, `-o yaml` equal to it too, and no escape codes unless
//! stdout is a terminal without `NO_COLOR`.

mod common;
mod support;

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Output, Stdio};

use common::{AGENT, Session};
use gpu_fixture::Fixture;
use serde_json::{Value, json};
use support::fake_nvml::{self, pci_sysfs};
use support::frozen::{frozen_builtin, mask_timestamps};

/// Every built-in scenario with the health verdict and Xid verdict it must earn.
const SCENARIOS: &[(&str, &str, &str)] = &[
    ("healthy", "PASS", "PASS"),
    ("thermal-throttle", "WARN", "PASS"),
    ("ecc-dbe", "FAIL", "FAIL"),
    ("row-remap-pending", "WARN", "WARN"),
    ("row-remap-failure", "FAIL", "FAIL"),
    ("fallen-off-bus", "FAIL", "FAIL"),
    ("nvlink-errors", "FAIL", "FAIL"),
    ("pcie-downtrain", "WARN", "PASS"),
];

/// The one-shot command of each tool.
const COMMANDS: &[(&str, &str)] = &[
    ("inventory", "get_gpu_inventory"),
    ("health", "get_gpu_health"),
    ("xid", "analyze_xid_errors"),
];

fn agent(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(AGENT);
    cmd.args(args)
        .env_remove("NODE_NAME")
        .env_remove("NO_COLOR")
        .env_remove("AGENT_NVML_MODE")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("agent runs")
}

/// Built-in scenarios with their counters frozen, so runs at different instants read the same numbers.
struct Scenarios {
    dir: tempfile::TempDir,
}

impl Scenarios {
    fn new() -> Scenarios {
        let dir = tempfile::tempdir().unwrap();
        for &(name, _, _) in SCENARIOS {
            frozen_builtin(dir.path(), name);
        }
        Scenarios { dir }
    }

    fn path(&self, scenario: &str) -> String {
        self.dir
            .path()
            .join(format!("{scenario}.yaml"))
            .display()
            .to_string()
    }

    /// `agent COMMAND` on the scenario, plus `extra` flags.
    fn run(&self, command: &str, scenario: &str, extra: &[&str]) -> Output {
        let path = self.path(scenario);
        let mut args = vec![command, "--nvml-mode=mock", "--mock-fixture", &path];
        args.extend_from_slice(extra);
        agent(&args, &[])
    }

    /// The MCP server on the scenario.
    fn session(&self, scenario: &str) -> Session {
        Session::start(&[
            "--nvml-mode=mock",
            "--mock-fixture",
            &self.path(scenario),
            "--log-level=warn",
        ])
    }

    /// `text` with the scenario files' folder left out (`mock-fixture:ecc-dbe.yaml`).
    fn relative(&self, text: &str) -> String {
        text.replace(&format!("{}/", self.dir.path().display()), "")
    }
}

fn mock(command: &str, scenario: &str, extra: &[&str]) -> Output {
    let mut args = vec![command, "--nvml-mode=mock", "--mock-scenario", scenario];
    args.extend_from_slice(extra);
    agent(&args, &[])
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn exit_code(verdict: &str) -> i32 {
    match verdict {
        "PASS" => 0,
        "WARN" => 1,
        "FAIL" => 2,
        other => panic!("not a verdict: {other}"),
    }
}

/// A tool result with its clock-dependent parts made comparable: times masked, and the span the log
/// covers up to "now" removed.
fn comparable(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(mask_timestamps(s)),
        Value::Array(items) => Value::Array(items.iter().map(comparable).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "covered_seconds")
                .map(|(k, v)| (k.clone(), comparable(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[test]
fn every_scenario_has_its_tables_and_exit_codes() {
    let scenarios = Scenarios::new();
    for &(scenario, health, xid) in SCENARIOS {
        for &(command, _) in COMMANDS {
            let out = scenarios.run(command, scenario, &[]);
            let expected = match command {
                "inventory" => 0,
                "health" => exit_code(health),
                _ => exit_code(xid),
            };
            assert_eq!(
                out.status.code(),
                Some(expected),
                "agent {command} on {scenario}: {}",
                stderr(&out)
            );
            assert_eq!(stderr(&out), "", "agent {command} on {scenario}");
            let table = stdout(&out);
            assert!(!table.contains('\x1b'), "escape codes in a pipe: {table:?}");
            insta::assert_snapshot!(
                format!("{command}-{scenario}"),
                mask_timestamps(&scenarios.relative(&table))
            );
        }
    }
}

#[test]
fn json_and_yaml_are_the_tools_structured_content() {
    let scenarios = Scenarios::new();
    for &(scenario, _, _) in SCENARIOS {
        let mut session = scenarios.session(scenario);
        session.initialize("2025-11-25");
        for &(command, tool) in COMMANDS {
            let result = session.call_tool(tool, json!({}));
            assert_eq!(result["isError"], false, "{tool} on {scenario}");
            let mcp = comparable(&result["structuredContent"]);

            let json_out = scenarios.run(command, scenario, &["-o", "json"]);
            let cli: Value = serde_json::from_slice(&json_out.stdout)
                .unwrap_or_else(|e| panic!("agent {command} -o json is not JSON: {e}"));
            assert_eq!(
                comparable(&cli),
                mcp,
                "agent {command} -o json on {scenario}"
            );

            let yaml_out = scenarios.run(command, scenario, &["-o", "yaml"]);
            let yaml: Value = serde_yaml::from_slice(&yaml_out.stdout)
                .unwrap_or_else(|e| panic!("agent {command} -o yaml is not YAML: {e}"));
            assert_eq!(
                comparable(&yaml),
                mcp,
                "agent {command} -o yaml on {scenario}"
            );
            // The exit code follows the verdict whatever the format.
            assert_eq!(json_out.status.code(), yaml_out.status.code());
        }
    }
}

#[test]
fn one_gpu_and_a_window_pass_through_to_the_tool() {
    let out = mock(
        "health",
        "ecc-dbe",
        &["--gpu", "4", "--window", "1s", "-o", "json"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let health: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(health["gpus"].as_array().unwrap().len(), 1);
    assert_eq!(health["gpus"][0]["index"], 4);
    assert!(
        health["window_seconds"].as_f64().unwrap() >= 1.0,
        "{health}"
    );
    assert!(
        !health["rate_rules_evaluated"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let out = mock("xid", "ecc-dbe", &["--since", "1s", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let xid: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(xid["coverage"]["since_seconds"], 1);
    assert_eq!(
        xid["xid_event_count"], 0,
        "the mock's Xids are older than 1 s"
    );

    let out = mock("xid", "ecc-dbe", &["--since", "24h", "--gpu", "4"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.contains("xid48_with_row_remap"), "{table}");
}

#[test]
fn could_not_tell_exits_3_with_the_reason() {
    // No NVML: the health check cannot tell.
    let out = agent(
        &["health", "--nvml-lib", "/nonexistent/libnvidia-ml.so.1"],
        &[],
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(
        err.starts_with("agent health: NVML library /nonexistent/libnvidia-ml.so.1"),
        "{err}"
    );
    assert!(err.contains("--nvml-mode=mock"), "{err}");
    assert_eq!(err.lines().count(), 1, "one message, said once: {err}");

    let out = agent(
        &["inventory", "--nvml-lib", "/nonexistent/libnvidia-ml.so.1"],
        &[],
    );
    assert_eq!(out.status.code(), Some(3));

    // The kernel log cannot be read: xid cannot tell.
    let out = agent(
        &[
            "xid",
            "--nvml-mode=mock",
            "--kmsg-path",
            "/nonexistent/kmsg",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/nonexistent/kmsg"),
        "{}",
        stderr(&out)
    );

    // A mistyped flag or value never reads as FAIL (2).
    for (args, message) in [
        (vec!["health", "--window", "5x"], "unknown duration unit"),
        (
            vec!["health", "--window", "500ms", "--nvml-mode=mock"],
            "whole seconds",
        ),
        (
            vec!["health", "--window", "2m", "--nvml-mode=mock"],
            "between 1 and 60",
        ),
        (vec!["health", "--bogus"], "--bogus"),
        (vec!["health", "-o", "xml"], "xml"),
        (vec!["xid", "--since", "soon"], "not a duration"),
        (
            vec!["health", "--nvml-mode=mock", "--mock-scenario", "nope"],
            "nope",
        ),
        (
            vec!["health", "--mock-scenario", "healthy"],
            "--nvml-mode=mock",
        ),
    ] {
        let out = agent(&args, &[]);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
    // Help is not an error; the MCP server keeps clap's usage code.
    assert_eq!(agent(&["health", "--help"], &[]).status.code(), Some(0));
    assert_eq!(agent(&["--bogus"], &[]).status.code(), Some(2));
}

#[test]
fn the_real_nvml_path_prints_the_same_verdicts() {
    let lib = fake_nvml::library().to_str().unwrap().to_string();
    let fixture = Fixture::builtin("ecc-dbe").unwrap();
    let sysfs = pci_sysfs(&fixture);
    let kmsg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(kmsg.path(), fixture.kernel_log.join("\n") + "\n").unwrap();
    let out = agent(
        &[
            "health",
            "--nvml-lib",
            &lib,
            "--kmsg-path",
            kmsg.path().to_str().unwrap(),
        ],
        &[
            ("FAKE_NVML_FIXTURE", "builtin:ecc-dbe"),
            ("AGENT_PCI_DEVICES_DIR", sysfs.path().to_str().unwrap()),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(
        table.starts_with("this node (nvml), driver 550.54.15, 8 GPU(s): FAIL"),
        "{table}"
    );
    let gpu4 = table.lines().find(|l| l.starts_with("4 ")).unwrap();
    assert!(
        gpu4.contains("FAIL") && gpu4.contains("ecc.volatile_dbe"),
        "{gpu4}"
    );
    assert!(
        gpu4.contains("NVIDIA H100 80GB HBM3") && gpu4.contains("W / 700W"),
        "{gpu4}"
    );
}

/// Runs `agent ARGS` with stdout on a pseudo-terminal; returns what it wrote there.
fn on_terminal(args: &[&str], env: &[(&str, &str)]) -> String {
    // SAFETY: plain POSIX calls on descriptors this function owns; every result is checked.
    let (master, slave) = unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(master >= 0, "posix_openpt");
        assert_eq!(libc::grantpt(master), 0);
        assert_eq!(libc::unlockpt(master), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(master, name.as_mut_ptr(), name.len()), 0);
        let slave = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        assert!(slave >= 0, "open the pty's slave side");
        (
            std::fs::File::from(OwnedFd::from_raw_fd(master)),
            OwnedFd::from_raw_fd(slave),
        )
    };
    let mut cmd = Command::new(AGENT);
    cmd.args(args)
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave))
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("agent runs");
    drop(cmd); // our copy of the slave side: the master reads EOF/EIO once the child exits
    let reader = std::thread::spawn(move || {
        let mut master = master;
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
            }
        }
        bytes
    });
    child.wait().expect("agent exits");
    String::from_utf8(reader.join().unwrap()).expect("UTF-8")
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let args = ["health", "--nvml-mode=mock", "--mock-scenario", "ecc-dbe"];
    let tty = on_terminal(&args, &[]);
    assert!(tty.contains("\x1b[1;31mFAIL\x1b[0m"), "{tty:?}");
    let no_color = on_terminal(&args, &[("NO_COLOR", "1")]);
    assert!(
        no_color.contains("FAIL") && !no_color.contains('\x1b'),
        "{no_color:?}"
    );
    let dumb = on_terminal(&args, &[("TERM", "dumb")]);
    assert!(dumb.contains("FAIL") && !dumb.contains('\x1b'), "{dumb:?}");
    for command in ["inventory", "xid"] {
        let out = on_terminal(
            &[
                command,
                "--nvml-mode=mock",
                "--mock-scenario",
                "fallen-off-bus",
            ],
            &[("NO_COLOR", "1")],
        );
        assert!(
            out.contains("GPU") && !out.contains('\x1b'),
            "{command}: {out:?}"
        );
    }
    // JSON is never coloured, even on a terminal.
    let json = on_terminal(&["xid", "--nvml-mode=mock", "-o", "json"], &[]);
    assert!(
        json.contains("\"verdict\"") && !json.contains('\x1b'),
        "{json:?}"
    );
}
