//! `agent timeline` and `agent pods` through the real binary: their tables (insta snapshots, times
//! and sample counts masked) on history `agent idle` recorded and on the fake kubelet, exit codes,
//! and `-o json` equal to the MCP tool's `structuredContent` for the same inputs.

mod common;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{AGENT, Session, text_of};
use fake_kubelet::{FakeKubelet, KubeletFixture};
use serde_json::{Value, json};
use support::frozen::mask_timestamps;

const FIXTURE: &str = "extends: healthy\ntimeline:\n\
  - {at: 300ms, kernel_log: 'NVRM: Xid (PCI:0000:2a:00): 48, pid=77, name=train, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 2, subpartition 0.'}\n";

fn agent(args: &[&str]) -> Output {
    Command::new(AGENT)
        .args(args)
        .env_remove("NODE_NAME")
        .env_remove("NO_COLOR")
        .env_remove("AGENT_NVML_MODE")
        .env_remove("AGENT_HISTORY_DIR")
        .env("KUBECONFIG", "")
        .stdin(Stdio::null())
        .output()
        .expect("agent runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `text` with times masked and every "(N sample(s))" count as `N`: how many samples a recorder took
/// depends on the machine's speed.
fn stable(text: &str) -> String {
    let masked = mask_timestamps(text);
    let mut out = String::new();
    for line in masked.lines() {
        match (line.rfind(" ("), line.ends_with(" sample(s))")) {
            (Some(open), true) => {
                out.push_str(&line[..open]);
                out.push_str(" (N sample(s))");
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// `get_gpu_timeline`'s result with its clock-dependent parts made comparable: times masked, bucket
/// starts dropped, each metric's buckets without samples left out and equal neighbours merged (the
/// window slides between two calls, so the same samples can sit in other buckets; the recorded
/// node's values are constant, so a bucket's summary does not depend on where it starts).
fn comparable_timeline(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(mask_timestamps(s)),
        Value::Array(items) => Value::Array(items.iter().map(comparable_timeline).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "bucket_starts")
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("buckets", Value::Array(b)) => {
                            let mut kept: Vec<Value> = b
                                .iter()
                                .filter(|b| b.as_array().is_some_and(|b| !b.is_empty()))
                                .cloned()
                                .collect();
                            kept.dedup();
                            Value::Array(kept)
                        }
                        _ => comparable_timeline(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn structured(args: &[&str], env: &[(&str, &str)], tool: &str, input: Value) -> Value {
    let mut all = vec!["--nvml-mode=mock", "--log-level=warn"];
    all.extend_from_slice(args);
    let mut s = Session::start_with_env(&all, env);
    s.initialize("2025-11-25");
    let r = s.call_tool(tool, input);
    assert_eq!(r["isError"], false, "{}", text_of(&r));
    r["structuredContent"].clone()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// History `agent idle` recorded on the healthy node with an Xid on GPU 1, the recorder stopped.
fn recorded(tmp: &Path) -> PathBuf {
    let fixture = tmp.join("incident.yaml");
    std::fs::write(&fixture, FIXTURE).unwrap();
    let history = tmp.join("history");
    let mut idle = Session::start(&[
        "idle",
        "--nvml-mode=mock",
        "--mock-fixture",
        fixture.to_str().unwrap(),
        "--history-dir",
        history.to_str().unwrap(),
        "--sample-interval",
        "100ms",
        "--log-level=warn",
    ]);
    let dir = history.to_str().unwrap().to_string();
    wait_for("the Xid to be recorded", || {
        let out = agent(&[
            "timeline",
            "--nvml-mode=mock",
            "--history-dir",
            &dir,
            "--gpu",
            "1",
            "-o",
            "json",
        ]);
        let r: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        r["gpus"][0]["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["kind"] == "xid"))
    });
    idle.signal(libc::SIGTERM);
    assert!(
        idle.wait(Duration::from_secs(10)).is_some(),
        "agent idle stops"
    );
    history
}

#[test]
fn timeline_table_json_and_exit_codes_on_recorded_history() {
    let tmp = tempfile::tempdir().unwrap();
    let history = recorded(tmp.path());
    let dir = history.to_str().unwrap();
    let base = ["timeline", "--nvml-mode=mock", "--history-dir", dir];

    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        agent(&args)
    };
    let out = run(&["--gpu", "1", "--since", "10m"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(!table.contains('\x1b'), "escape codes in a pipe: {table:?}");
    insta::assert_snapshot!("timeline-recorded-gpu1", stable(&table));

    // By UUID, the same GPU.
    let out = run(&[
        "--gpu",
        "GPU-5f3b8a1e-2c4d-4e6f-8a9b-0c1d2e3f4a51",
        "--since",
        "10m",
    ]);
    assert_eq!(stable(&stdout(&out)), stable(&table));

    // Every GPU: a table each, the events of all of them in one list.
    let out = run(&["--since", "10m"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let all = stdout(&out);
    for i in 0..8 {
        assert!(all.contains(&format!("\nGPU {i} GPU-")), "GPU {i}: {all}");
    }
    assert!(all.contains("   1     xid    Xid 48"), "{all}");

    for (extra, input) in [
        (
            vec!["--gpu", "1", "--since", "10m"],
            json!({"gpu": 1, "since_seconds": 600}),
        ),
        (vec!["--max-events", "1"], json!({"max_events": 1})),
    ] {
        let env = [("AGENT_HISTORY_DIR", dir)];
        let mcp = structured(&[], &env, "get_gpu_timeline", input);
        for format in ["json", "yaml"] {
            let mut args = extra.clone();
            args.extend(["-o", format]);
            let out = run(&args);
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            let cli: Value = serde_yaml::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("agent timeline -o {format}: {e}"));
            assert_eq!(
                comparable_timeline(&cli),
                comparable_timeline(&mcp),
                "agent timeline {args:?}"
            );
        }
    }
}

#[test]
fn timeline_without_a_recorder_says_so_and_bad_flags_exit_3() {
    let out = agent(&["timeline", "--nvml-mode=mock"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = stdout(&out);
    insta::assert_snapshot!("timeline-no-recorder", stable(&table));
    let cli: Value =
        serde_json::from_slice(&agent(&["timeline", "--nvml-mode=mock", "-o", "json"]).stdout)
            .unwrap();
    let mcp = structured(&[], &[], "get_gpu_timeline", json!({}));
    assert_eq!(comparable_timeline(&cli), comparable_timeline(&mcp));
    assert_eq!(cli["recorder_available"], false);

    for (args, says) in [
        (
            vec!["timeline", "--nvml-mode=mock", "--max-events", "0"],
            "max_events must be between 1 and 5000",
        ),
        (
            vec!["timeline", "--nvml-mode=mock", "--since", "1.5s"],
            "--since takes whole seconds",
        ),
        (vec!["timeline", "--nvml-mode=mock", "--gpu", ""], "--gpu"),
        (vec!["timeline", "--bogus"], "--bogus"),
        (vec!["pods", "--bogus"], "--bogus"),
        (
            vec!["pods", "--nvml-lib", "/nonexistent/libnvidia-ml.so.1"],
            "agent pods:",
        ),
    ] {
        let out = agent(&args);
        assert_eq!(
            out.status.code(),
            Some(3),
            "agent {args:?}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(says),
            "agent {args:?}: {}",
            stderr(&out)
        );
        assert_eq!(stdout(&out), "", "agent {args:?}");
    }
}

fn kubelet_fixture(name: &str) -> KubeletFixture {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testing/fake-kubelet/fixtures")
        .join(format!("{name}.yaml"));
    KubeletFixture::from_path(&path).unwrap()
}

#[test]
fn pods_table_json_and_exit_codes_with_the_fake_kubelet() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("kubelet.sock");
    let _kubelet = FakeKubelet::start(&socket, kubelet_fixture("device-plugin"));
    let socket_flag = format!("--pod-resources-socket={}", socket.display());
    let proc_flag = format!("--proc-root={}", tmp.path().join("proc").display());
    let flags = [
        "--nvml-mode=mock",
        "--mock-scenario=healthy",
        socket_flag.as_str(),
        proc_flag.as_str(),
    ];
    let pods = |extra: &[&str]| {
        let mut args = vec!["pods"];
        args.extend_from_slice(&flags);
        args.extend_from_slice(extra);
        agent(&args)
    };

    let out = pods(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(!table.contains('\x1b'), "escape codes in a pipe: {table:?}");
    insta::assert_snapshot!("pods-device-plugin", table);

    let out = pods(&["--namespace", "ml", "--pod", "train-7"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!("pods-device-plugin-ml-train-7", stdout(&out));

    let env = [("KUBECONFIG", "")];
    for (extra, input) in [
        (vec![], json!({})),
        (
            vec!["-n", "ml", "--pod", "train-7"],
            json!({"namespace": "ml", "pod": "train-7"}),
        ),
        (vec!["--namespace", "nope"], json!({"namespace": "nope"})),
    ] {
        let mcp = structured(&flags[1..], &env, "get_pod_gpu_allocation", input);
        for format in ["json", "yaml"] {
            let mut args = extra.clone();
            args.extend(["-o", format]);
            let out = pods(&args);
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            let cli: Value = serde_yaml::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("agent pods -o {format}: {e}"));
            assert_eq!(cli, mcp, "agent pods {args:?}");
        }
    }
}

#[test]
fn pods_without_a_kubelet_socket_names_the_unreadable_source() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("kubelet.sock");
    let socket_flag = format!("--pod-resources-socket={}", socket.display());
    let args = [
        "pods",
        "--nvml-mode=mock",
        "--mock-scenario=healthy",
        socket_flag.as_str(),
    ];
    let out = agent(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = stdout(&out).replace(&tmp.path().display().to_string(), "TMP");
    assert!(table.contains("\nUNREADABLE\npod-resources: "), "{table}");
    insta::assert_snapshot!("pods-no-socket", table);

    let mut json_args = args.to_vec();
    json_args.extend(["-o", "json"]);
    let cli: Value = serde_json::from_slice(&agent(&json_args).stdout).unwrap();
    let mcp = structured(
        &args[2..],
        &[("KUBECONFIG", "")],
        "get_pod_gpu_allocation",
        json!({}),
    );
    assert_eq!(cli, mcp);
    assert_eq!(cli["unreadable"][0]["source"], "pod-resources");
}
