//! The flight recorder through the real binary: `agent idle` sampling every 100 ms in the
//! background, then a session's `get_gpu_timeline`; a SIGKILLed recorder that restarts; and a session
//! without a recorder.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Session, text_of};
use serde_json::{Value, json};

const FIXTURE: &str = "extends: healthy\ntimeline:\n\
  - {at: 600ms, gpu: 3, set: {temperature_c: 90, clock_event_reasons: [hw_slowdown]}}\n\
  - {at: 900ms, gpu: 1, set: {ecc_volatile_corrected: 4}}\n\
  - {at: 1s, kernel_log: 'NVRM: Xid (PCI:0000:2a:00): 48, pid=77, name=train, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 2, subpartition 0.'}\n";

fn recorder(dir: &Path, fixture: &Path) -> Session {
    Session::start(&[
        "idle",
        "--nvml-mode=mock",
        "--mock-fixture",
        fixture.to_str().unwrap(),
        "--history-dir",
        dir.to_str().unwrap(),
        "--sample-interval",
        "100ms",
        "--log-level=warn",
    ])
}

fn timeline(dir: &Path, args: Value) -> Value {
    let mut s = Session::start_with_env(
        &["--nvml-mode=mock", "--log-level=warn"],
        &[("AGENT_HISTORY_DIR", dir.to_str().unwrap())],
    );
    s.initialize("2025-11-25");
    let r = s.call_tool("get_gpu_timeline", args);
    assert_eq!(r["isError"], false, "{}", text_of(&r));
    r["structuredContent"].clone()
}

fn kinds(gpu: &Value) -> Vec<String> {
    gpu["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_session_reads_what_agent_idle_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = tmp.path().join("incident.yaml");
    std::fs::write(&fixture, FIXTURE).unwrap();
    let history = tmp.path().join("history");
    let mut idle = recorder(&history, &fixture);
    wait_for("the Xid to be recorded", || {
        let r = timeline(&history, json!({"gpu": 1, "since_seconds": 60}));
        r["gpus"][0]["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["kind"] == "xid"))
    });
    let r = timeline(&history, json!({"since_seconds": 60}));
    assert_eq!(r["recorder_available"], true);
    assert_eq!(r["gpus"].as_array().unwrap().len(), 8);
    let gpu3 = &r["gpus"][3];
    assert_eq!(
        kinds(gpu3),
        ["temperature_above_slowdown", "throttle_start"],
        "{gpu3}"
    );
    assert_eq!(gpu3["events"][1]["metric"], "hw_slowdown");
    let gpu1 = &r["gpus"][1];
    assert_eq!(kinds(gpu1), ["counter_increment", "xid"], "{gpu1}");
    assert_eq!(gpu1["events"][0]["from"], 0.0);
    assert_eq!(gpu1["events"][0]["to"], 4.0);
    assert!(
        gpu1["events"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("Xid 48")
    );
    let temp = &gpu3["metrics"][0];
    assert_eq!(temp["name"], "temperature_c");
    let maxima: Vec<f64> = temp["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b.get(1).and_then(Value::as_f64))
        .collect();
    assert!(maxima.contains(&90.0), "{temp}");
    // By UUID, the same GPU.
    let by_uuid = timeline(
        &history,
        json!({"gpu": "GPU-5f3b8a1e-2c4d-4e6f-8a9b-0c1d2e3f4a53", "since_seconds": 60}),
    );
    assert_eq!(by_uuid["gpus"][0]["index"], 3);

    // SIGKILL, then a restart: the gap shows as a restart, nothing recorded twice.
    idle.signal(libc::SIGKILL);
    idle.wait(Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    let _idle = recorder(&history, &fixture);
    wait_for("the restart to be recorded", || {
        let r = timeline(&history, json!({"since_seconds": 60}));
        r["node_events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["kind"] == "agent_restarted"))
    });
    std::thread::sleep(Duration::from_millis(1500));
    let r = timeline(&history, json!({"gpu": 1, "since_seconds": 60}));
    let xids = kinds(&r["gpus"][0]).iter().filter(|k| *k == "xid").count();
    // The restarted mock replays its timeline: the Xid line is printed again at a new time, so it is
    // a second Xid; the first one is not recorded twice.
    assert!(xids <= 2, "{}", r["gpus"][0]);
}

#[test]
fn a_stopped_recorder_exits_zero_and_keeps_its_history() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = tmp.path().join("incident.yaml");
    std::fs::write(&fixture, FIXTURE).unwrap();
    let history = tmp.path().join("history");
    let mut idle = recorder(&history, &fixture);
    wait_for("a segment", || {
        history.read_dir().is_ok_and(|mut d| d.next().is_some())
    });
    std::thread::sleep(Duration::from_millis(300));
    idle.signal(libc::SIGTERM);
    let status = idle
        .wait(Duration::from_secs(10))
        .expect("agent idle exits on SIGTERM");
    assert!(status.success(), "{status:?}: {}", idle.stderr());
    let r = timeline(&history, json!({}));
    assert_eq!(r["recorder_available"], true, "{r}");
    assert!(r["gpus"][0]["samples"].as_u64().unwrap() >= 1);
}

#[test]
fn without_a_recorder_the_tool_answers_with_a_note_not_an_error() {
    let mut s = Session::mock("healthy");
    s.initialize("2025-11-25");
    let r = s.call_tool("get_gpu_timeline", json!({}));
    assert_eq!(r["isError"], false, "{}", text_of(&r));
    let c = &r["structuredContent"];
    assert_eq!(c["recorder_available"], false);
    assert!(
        c["notes"][0]
            .as_str()
            .unwrap()
            .contains("No flight recorder"),
        "{c}"
    );
    assert_eq!(c["data_source"], "mock:healthy");
}

#[test]
fn bad_arguments_are_errors_that_say_what_to_pass() {
    let mut s = Session::mock("healthy");
    s.initialize("2025-11-25");
    let r = s.call_tool("get_gpu_timeline", json!({"max_events": 0}));
    assert_eq!(r["isError"], true);
    assert!(
        text_of(&r).contains("max_events must be between 1 and 5000"),
        "{}",
        text_of(&r)
    );
    let r = s.call_tool("get_gpu_timeline", json!({"gpus": 1}));
    assert_eq!(r["isError"], true);
    assert!(text_of(&r).contains("unknown field"), "{}", text_of(&r));
}

#[test]
fn a_bad_sample_interval_is_refused_with_the_format() {
    let out = std::process::Command::new(common::AGENT)
        .args([
            "idle",
            "--nvml-mode=mock",
            "--sample-interval",
            "10 seconds",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--sample-interval") && err.contains("use ms, s, m or h"),
        "{err}"
    );
}
