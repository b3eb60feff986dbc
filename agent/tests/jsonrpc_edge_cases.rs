//! JSON-RPC corner cases a host can hit: reused and null ids, cancellation followed by EOF, calls
//! before `initialize`, and concurrent calls' log lines.

mod common;

use std::time::{Duration, Instant};

use common::Session;
use serde_json::{Value, json};

/// An agent whose every GPU query takes `delay_ms`.
fn slow_agent(delay_ms: u64) -> (Session, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slow.yaml");
    std::fs::write(
        &path,
        format!("extends: healthy\nnode: {{query_delay_ms: {delay_ms}}}\n"),
    )
    .unwrap();
    let s = Session::start(&[
        "--nvml-mode=mock",
        "--mock-fixture",
        path.to_str().unwrap(),
        "--log-level=warn",
    ]);
    (s, dir)
}

fn inventory_call(id: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "get_gpu_inventory", "arguments": {}}})
}

#[test]
fn a_second_request_reusing_an_id_in_flight_gets_an_error_and_the_first_its_reply() {
    let (mut s, _dir) = slow_agent(800);
    s.initialize("2025-06-18");
    s.send(&inventory_call(json!(7)));
    s.send(&inventory_call(json!(7)));
    let first = s.recv();
    assert_eq!(first["id"], 7);
    assert_eq!(first["error"]["code"], -32600, "{first}");
    let message = first["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("id 7 is already used by a request still in flight"),
        "{message}"
    );
    let second = s.recv();
    assert_eq!(second["id"], 7);
    assert_eq!(second["result"]["isError"], false, "{second}");
    // Once answered, the id may be used again.
    s.send(&inventory_call(json!(7)));
    assert!(s.recv()["result"].is_object());
}

#[test]
fn a_request_with_a_null_id_gets_an_invalid_request_error() {
    let mut s = Session::mock("healthy");
    s.initialize("2025-06-18");
    s.send(&json!({"jsonrpc": "2.0", "id": null, "method": "ping"}));
    let reply = s.recv();
    assert_eq!(reply["id"], Value::Null, "{reply}");
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"id\" is null"),
        "{reply}"
    );
    // The session goes on.
    assert_eq!(s.request("ping", json!({}))["result"], json!({}));
}

#[test]
fn eof_after_a_cancelled_call_exits_without_waiting_for_it() {
    let (mut s, _dir) = slow_agent(6000);
    s.initialize("2025-06-18");
    s.send(&inventory_call(json!(3)));
    std::thread::sleep(Duration::from_millis(200));
    s.send(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                   "params": {"requestId": 3, "reason": "user gave up"}}),
    );
    let t0 = Instant::now();
    s.close_stdin();
    let status = s
        .wait(Duration::from_secs(4))
        .expect("exits soon after EOF");
    assert!(status.success(), "{status:?}");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    // The cancelled call is never answered (MCP: the receiver of a cancellation sends no reply).
    assert!(s.recv_timeout(Duration::from_millis(100)).is_none());
}

#[test]
fn a_tool_call_before_initialize_says_to_initialize_first() {
    let mut s = Session::mock("healthy");
    s.send(&inventory_call(json!(1)));
    let reply = s.recv();
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "No session: send initialize first (or use the 2026-07-28 per-request metadata"
        ),
        "{message}"
    );
}

#[test]
fn a_failed_calls_log_line_names_only_its_own_tool() {
    let (mut s, _dir) = slow_agent(1000);
    s.initialize("2025-06-18");
    s.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                   "params": {"name": "get_gpu_health", "arguments": {}}}));
    std::thread::sleep(Duration::from_millis(200));
    s.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                   "params": {"name": "get_gpu_inventory", "arguments": {"bogus": 1}}}));
    let failed = s.recv_id(&json!(2));
    assert_eq!(failed["result"]["isError"], true, "{failed}");
    s.recv_id(&json!(1));
    s.close_stdin();
    s.wait(Duration::from_secs(5));
    let stderr = s.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("tool failed"))
        .unwrap_or_else(|| panic!("no `tool failed` line in:\n{stderr}"));
    assert!(line.contains("get_gpu_inventory"), "{line}");
    assert!(!line.contains("get_gpu_health"), "{line}");
}
