//! `analyze_xid_errors` through the binary: the built-in scenarios' kernel logs, saved logs given with
//! `--kmsg-path`, unreadable logs, filters and limits, and Xid analysis when NVML itself is broken.

mod common;

use common::{Session, text_of};
use serde_json::{Value, json};

fn xid(args: &[&str], call: Value) -> Value {
    let mut full = vec!["--log-level=error"];
    full.extend_from_slice(args);
    let mut s = Session::start(&full);
    s.initialize("2025-11-25");
    s.call_tool("analyze_xid_errors", call)
}

fn report(args: &[&str], call: Value) -> Value {
    let r = xid(args, call);
    assert_eq!(r["isError"], false, "{}", text_of(&r));
    r["structuredContent"].clone()
}

fn gpu(r: &Value, index: u64) -> Value {
    r["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gpu_index"] == index)
        .cloned()
        .unwrap_or_else(|| panic!("GPU {index} in {}", r["gpus"]))
}

fn codes(g: &Value) -> Vec<u64> {
    g["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect()
}

#[test]
fn scenario_kernel_logs_are_attributed_and_explained() {
    let r = report(&["--nvml-mode=mock", "--mock-scenario=ecc-dbe"], json!({}));
    assert_eq!(r["data_source"], "mock:ecc-dbe");
    assert_eq!(r["verdict"], "FAIL");
    let g4 = gpu(&r, 4);
    assert_eq!(codes(&g4), [48, 63, 94]);
    assert_eq!(g4["recommended_action"], "DRAIN_AND_RESET");
    assert_eq!(g4["gpu_uuid"], "GPU-5f3b8a1e-2c4d-4e6f-8a9b-0c1d2e3f4a54");
    for i in [0, 1, 2, 3, 5, 6, 7] {
        assert_eq!(gpu(&r, i)["verdict"], "PASS");
    }
    let explained: Vec<u64> = r["explanations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_u64().unwrap())
        .collect();
    assert_eq!(explained, [48, 63, 94]);

    let r = report(
        &["--nvml-mode=mock", "--mock-scenario=fallen-off-bus"],
        json!({}),
    );
    let g5 = gpu(&r, 5);
    assert_eq!(codes(&g5), [79]);
    assert_eq!(g5["recommended_action"], "REBOOT_NODE");

    let r = report(
        &["--nvml-mode=mock", "--mock-scenario=nvlink-errors"],
        json!({}),
    );
    let g3 = gpu(&r, 3);
    assert_eq!(codes(&g3), [74]);
    let text = g3["findings"].to_string();
    assert!(text.contains("link 7"), "{text}");
}

#[test]
fn a_healthy_log_qualifies_its_silence() {
    let r = report(&["--nvml-mode=mock"], json!({}));
    assert_eq!(r["verdict"], "PASS");
    assert_eq!(r["xid_event_count"], 0);
    let d = r["coverage"]["description"].as_str().unwrap();
    assert!(
        d.contains("covers") && d.contains("older Xids are not visible"),
        "{d}"
    );
}

#[test]
fn a_saved_log_is_read_from_kmsg_path() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kmsg/h100-xid79-fallen-off-bus.kmsg"
    );
    let kmsg = format!("--kmsg-path={path}");
    let r = report(&["--nvml-mode=mock", &kmsg], json!({}));
    assert_eq!(r["source"]["kind"], "file");
    assert!(r["xid_event_count"].as_u64().unwrap() >= 1);
    let all = r["summary"].to_string();
    assert!(all.contains("\"code\":79"), "{all}");
}

#[test]
fn an_unreadable_log_says_what_was_tried_and_what_to_do() {
    let r = xid(
        &["--nvml-mode=mock", "--kmsg-path=/nonexistent/kmsg.log"],
        json!({}),
    );
    assert_eq!(r["isError"], true);
    let t = text_of(&r);
    assert!(t.contains("/nonexistent/kmsg.log"), "{t}");
    // Health still answers, and says the Xid rules did not run.
    let mut s = Session::start(&[
        "--nvml-mode=mock",
        "--kmsg-path=/nonexistent/kmsg.log",
        "--log-level=error",
    ]);
    s.initialize("2025-11-25");
    let h = s.call_tool("get_gpu_health", json!({}));
    assert_eq!(h["isError"], false);
    let ne = h["structuredContent"]["node"]["not_evaluated"].to_string();
    assert!(
        ne.contains("xid.kernel_log") && ne.contains("/nonexistent/kmsg.log"),
        "{ne}"
    );
}

#[test]
fn filters_and_limits() {
    let args = ["--nvml-mode=mock", "--mock-scenario=ecc-dbe"];
    let r = report(&args, json!({"max_events": 1}));
    assert_eq!(r["events_returned"], 1);
    assert_eq!(r["truncated"], true);
    assert_eq!(r["xid_event_count"], 3, "counts cover everything");
    let r = report(&args, json!({"gpu_index": 2}));
    assert_eq!(r["xid_event_count"], 0);
    let r = report(&args, json!({"since_seconds": 60}));
    assert_eq!(r["xid_event_count"], 0, "the Xids are an hour old");
    let r = report(&args, json!({"since_seconds": 86400}));
    assert_eq!(r["xid_event_count"], 3);
    for (call, needle) in [
        (
            json!({"max_events": 0}),
            "max_events must be between 1 and 10000",
        ),
        (
            json!({"max_events": 10001}),
            "max_events must be between 1 and 10000",
        ),
        (json!({"gpu_index": 8}), "does not exist"),
        (json!({"since": 5}), "unknown field `since`"),
        (json!({"since_seconds": "1h"}), "invalid type"),
    ] {
        let r = xid(&args, call.clone());
        assert_eq!(r["isError"], true, "{call}");
        assert!(text_of(&r).contains(needle), "{call}: {}", text_of(&r));
    }
}

#[test]
fn xids_are_still_analyzed_when_nvml_cannot_load() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kmsg/h100-xid79-fallen-off-bus.kmsg"
    );
    let kmsg = format!("--kmsg-path={path}");
    let r = report(
        &["--nvml-lib=/nonexistent/libnvidia-ml.so.1", &kmsg],
        json!({}),
    );
    assert_eq!(r["data_source"], "nvml");
    let notes = r["notes"].to_string();
    assert!(
        notes.contains("could not be enumerated")
            && notes.contains("/nonexistent/libnvidia-ml.so.1"),
        "{notes}"
    );
    assert!(r["summary"].to_string().contains("\"code\":79"));
    assert_eq!(r["verdict"], "FAIL");
}
