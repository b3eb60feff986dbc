//! `get_gpu_health` through the binary: the verdict and key finding of every built-in scenario, rate
//! rules over a sampling window and across calls, and argument checking.

mod common;

use common::{Session, text_of};
use serde_json::{Value, json};

fn health(scenario: &str, args: Value) -> Value {
    let mut s = Session::mock(scenario);
    s.initialize("2025-11-25");
    let r = s.call_tool("get_gpu_health", args);
    assert_eq!(r["isError"], false, "{}", text_of(&r));
    r["structuredContent"].clone()
}

fn checks(gpu: &Value) -> Vec<String> {
    gpu["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_scenario_gets_its_verdict_on_the_right_gpu() {
    let cases = [
        ("healthy", "PASS", None, ""),
        ("thermal-throttle", "WARN", Some(2), "thermal.slowdown"),
        ("ecc-dbe", "FAIL", Some(4), "ecc.volatile_dbe"),
        (
            "row-remap-pending",
            "WARN",
            Some(1),
            "memory.row_remap_pending",
        ),
        (
            "row-remap-failure",
            "FAIL",
            Some(6),
            "memory.row_remap_failure",
        ),
        ("fallen-off-bus", "FAIL", Some(5), "gpu.lost"),
        ("nvlink-errors", "FAIL", Some(3), "nvlink.down"),
        ("pcie-downtrain", "WARN", Some(0), "pcie.link_width"),
    ];
    for (scenario, verdict, gpu, check) in cases {
        let r = health(scenario, json!({}));
        assert_eq!(r["verdict"], verdict, "{scenario}: {}", r["summary"]);
        assert_eq!(r["data_source"], format!("mock:{scenario}"));
        let gpus = r["gpus"].as_array().unwrap();
        assert_eq!(gpus.len(), 8, "{scenario}: every GPU is judged");
        for g in gpus {
            let i = g["index"].as_u64().unwrap() as u32;
            if Some(i) == gpu {
                assert_eq!(g["verdict"], verdict, "{scenario} GPU {i}");
                assert!(
                    checks(g).iter().any(|c| c == check),
                    "{scenario}: {:?}",
                    checks(g)
                );
                let f = g["findings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|f| f["check"] == check)
                    .unwrap();
                assert!(f["message"].as_str().unwrap().len() > 10);
                assert!(f["evidence"].is_object());
            } else {
                assert_eq!(g["verdict"], "PASS", "{scenario} GPU {i}: {:?}", checks(g));
                assert!(
                    g["findings"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|f| f["severity"] == "info"),
                    "{scenario} GPU {i}"
                );
            }
        }
    }
}

#[test]
fn healthy_has_nothing_above_info_and_nothing_unevaluated() {
    let r = health("healthy", json!({}));
    for g in r["gpus"].as_array().unwrap() {
        assert!(g["findings"].as_array().unwrap().is_empty(), "{g}");
        assert!(g["not_evaluated"].as_array().unwrap().is_empty(), "{g}");
    }
}

#[test]
fn a_sampling_window_judges_rates() {
    let r = health("nvlink-errors", json!({"window_seconds": 2}));
    assert!(r["window_seconds"].as_f64().unwrap() >= 2.0);
    let gpu3 = &r["gpus"][3];
    let c = checks(gpu3);
    assert!(
        c.iter()
            .any(|c| c == "nvlink.replay_rate" || c == "nvlink.recovery_rate"),
        "{c:?}"
    );
    let r = health("pcie-downtrain", json!({"window_seconds": 2}));
    assert!(
        checks(&r["gpus"][0])
            .iter()
            .any(|c| c == "pcie.replay_rate"),
        "{:?}",
        checks(&r["gpus"][0])
    );
}

#[test]
fn a_second_call_uses_the_first_as_its_baseline() {
    let mut s = Session::mock("nvlink-errors");
    s.initialize("2025-11-25");
    let first = s.call_tool("get_gpu_health", json!({"gpu_index": 3}));
    assert_eq!(first["structuredContent"]["window_seconds"], 0.0);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let second = s.call_tool("get_gpu_health", json!({"gpu_index": 3}));
    let r = &second["structuredContent"];
    assert!(
        r["window_seconds"].as_f64().unwrap() >= 2.0,
        "{}",
        r["summary"]
    );
    assert_eq!(r["gpus"].as_array().unwrap().len(), 1);
    assert!(!r["rate_rules_evaluated"].as_array().unwrap().is_empty());
}

#[test]
fn bad_windows_and_indices_are_tool_errors() {
    let mut s = Session::mock("healthy");
    s.initialize("2025-11-25");
    let r = s.call_tool("get_gpu_health", json!({"window_seconds": 61}));
    assert_eq!(r["isError"], true);
    assert!(text_of(&r).contains("between 1 and 60"), "{}", text_of(&r));
    let r = s.call_tool("get_gpu_health", json!({"gpu_index": 12}));
    assert_eq!(r["isError"], true);
    assert!(text_of(&r).contains("does not exist"));
    let r = s.call_tool("get_gpu_health", json!({"window": 5}));
    assert_eq!(r["isError"], true);
    assert!(text_of(&r).contains("unknown field `window`"));
}
