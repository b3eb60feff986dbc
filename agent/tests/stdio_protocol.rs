//! The agent binary over real pipes: the handshake in both protocol eras, the original chart README's
//! inventory query, and every kind of bad input a session must survive.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{AGENT, Session, text_of};
use serde_json::{Value, json};

#[test]
fn original_chart_readme_inventory_query_works_verbatim() {
    // The "Query GPU Inventory" example of the chart README users know, piped into the mock agent.
    let script = format!(
        r#"echo '{{"jsonrpc":"2.0","method":"initialize","params":{{"protocolVersion":"2025-06-18","capabilities":{{}},"clientInfo":{{"name":"test","version":"1.0"}}}},"id":0}}
{{"jsonrpc":"2.0","method":"tools/call","params":{{"name":"get_gpu_inventory","arguments":{{}}}},"id":1}}' | \
  {AGENT} --nvml-mode=mock"#
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("stdout is JSON-RPC only"))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let init = lines.iter().find(|l| l["id"] == 0).unwrap();
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    let inv = lines.iter().find(|l| l["id"] == 1).unwrap();
    let content = &inv["result"]["structuredContent"];
    assert_eq!(content["gpus"].as_array().unwrap().len(), 8);
    assert_eq!(content["gpus"][0]["name"], "NVIDIA H100 80GB HBM3");
    assert_eq!(content["data_source"], "mock:healthy");
    // The text copy is the same JSON, for hosts that read only `content`.
    let text: Value = serde_json::from_str(&text_of(&inv["result"])).unwrap();
    assert_eq!(&text, content);
}

#[test]
fn legacy_versions_are_echoed_and_unknown_ones_get_the_newest_legacy_version() {
    for (asked, expected) in [
        ("2024-11-05", "2024-11-05"),
        ("2025-03-26", "2025-03-26"),
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("2099-01-01", "2025-11-25"),
    ] {
        let mut s = Session::mock("healthy");
        let r = s.initialize(asked);
        assert_eq!(r["protocolVersion"], expected, "asked {asked}");
        assert_eq!(r["serverInfo"]["name"], "k8s-mcp-agent");
        assert!(r["capabilities"]["tools"].is_object());
        assert!(r["capabilities"]["prompts"].is_object());
    }
}

fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"}
    })
}

#[test]
fn modern_era_discover_then_stateless_calls() {
    let mut s = Session::mock("healthy");
    let d = s.request("server/discover", json!({"_meta": modern_meta()}));
    let versions = d["result"]["supportedVersions"].as_array().unwrap();
    assert!(versions.contains(&json!("2026-07-28")) && versions.contains(&json!("2024-11-05")));
    let list = s.request("tools/list", json!({"_meta": modern_meta()}));
    assert_eq!(list["result"]["resultType"], "complete");
    assert!(list["result"]["ttlMs"].as_u64().unwrap() > 0);
    assert!(list["result"]["cacheScope"].is_string());
    let call = s.request(
        "tools/call",
        json!({"name": "get_gpu_inventory", "arguments": {"gpu_index": 3}, "_meta": modern_meta()}),
    );
    let gpus = call["result"]["structuredContent"]["gpus"]
        .as_array()
        .unwrap();
    assert_eq!(gpus.len(), 1);
    assert_eq!(gpus[0]["index"], 3);
    // `ping` no longer exists in 2026-07-28.
    let ping = s.request("ping", json!({"_meta": modern_meta()}));
    assert_eq!(ping["error"]["code"], -32601);
}

#[test]
fn tools_list_schemas_and_annotations_snapshot() {
    let mut s = Session::mock("healthy");
    s.initialize("2025-11-25");
    let list = s.request("tools/list", json!({}));
    let tools = &list["result"]["tools"];
    for tool in tools.as_array().unwrap() {
        let a = &tool["annotations"];
        assert_eq!(a["readOnlyHint"], true, "{}", tool["name"]);
        assert_eq!(a["openWorldHint"], false, "{}", tool["name"]);
        assert!(tool["title"].is_string());
        let schema = tool["inputSchema"].to_string();
        assert!(!schema.contains("\"null\""), "null union in {schema}");
        assert_eq!(tool["inputSchema"]["additionalProperties"], false);
        assert_eq!(tool["outputSchema"]["type"], "object");
    }
    insta::assert_json_snapshot!("tools_list", tools);
}

#[test]
fn prompts_list_and_get() {
    let mut s = Session::mock("healthy");
    s.initialize("2025-11-25");
    let list = s.request("prompts/list", json!({}));
    let names: Vec<&str> = list["result"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "gpu-health-check",
            "diagnose-xid-errors",
            "gpu-incident-timeline",
            "gpu-triage"
        ]
    );
    let get = s.request(
        "prompts/get",
        json!({"name": "gpu-triage", "arguments": {"gpu_index": "1"}}),
    );
    let text = get["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap();
    assert!(text.contains("get_gpu_inventory") && text.contains(r#"{"gpu_index": 1}"#));
    let bad = s.request("prompts/get", json!({"name": "nope"}));
    assert_eq!(bad["error"]["code"], -32602);
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gpu-triage")
    );
}

#[test]
fn a_malformed_line_gets_a_parse_error_and_the_session_survives() {
    let mut s = Session::mock("healthy");
    s.send_raw("{this is not json");
    let e = s.recv();
    assert_eq!(e["error"]["code"], -32700);
    assert_eq!(e["id"], Value::Null);
    assert!(
        e.as_object().unwrap().contains_key("id"),
        "id is null, not omitted"
    );
    s.initialize("2025-06-18");
    let r = s.call_tool("get_gpu_inventory", json!({}));
    assert_eq!(r["isError"], false);
}

#[test]
fn batches_and_non_objects_are_invalid_requests() {
    let mut s = Session::mock("healthy");
    s.send_raw(
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#,
    );
    let e = s.recv();
    assert_eq!(e["error"]["code"], -32600);
    assert!(e["error"]["message"].as_str().unwrap().contains("batches"));
    s.send_raw("[]");
    assert_eq!(s.recv()["error"]["code"], -32600);
    s.send_raw(r#""hello""#);
    assert_eq!(s.recv()["error"]["code"], -32600);
    s.send_raw(r#"{"jsonrpc":"1.0","id":7,"method":"ping"}"#);
    let e = s.recv();
    assert_eq!(
        (e["id"].clone(), e["error"]["code"].clone()),
        (json!(7), json!(-32600))
    );
    assert_eq!(s.initialize("2025-06-18")["protocolVersion"], "2025-06-18");
}

#[test]
fn unknown_methods_tools_and_malformed_params() {
    let mut s = Session::mock("healthy");
    s.initialize("2025-11-25");
    let e = s.request("gpu/reset", json!({}));
    assert_eq!(e["error"]["code"], -32601);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Method not found: gpu/reset")
    );
    let e = s.request("tools/call", json!({"name": "reset_gpu", "arguments": {}}));
    assert_eq!(e["error"]["code"], -32602);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("get_gpu_inventory")
    );
    s.send_raw(r#"{"jsonrpc":"2.0","id":"no-params","method":"tools/call"}"#);
    let e = s.recv_id(&json!("no-params"));
    assert_eq!(e["error"]["code"], -32602);
    let e = s.request("resources/list", json!({}));
    assert_eq!(e["error"]["code"], -32601);
}

#[test]
fn unknown_and_mistyped_arguments_are_tool_errors() {
    let mut s = Session::mock("healthy");
    s.initialize("2025-11-25");
    let r = s.call_tool("get_gpu_inventory", json!({"gpu": 1}));
    assert_eq!(r["isError"], true);
    let t = text_of(&r);
    assert!(
        t.contains("unknown field `gpu`") && t.contains("gpu_index"),
        "{t}"
    );
    let r = s.call_tool("get_gpu_inventory", json!({"gpu_index": "one"}));
    assert_eq!(r["isError"], true);
    assert!(text_of(&r).contains("invalid type"), "{}", text_of(&r));
    let r = s.call_tool("get_gpu_inventory", json!({"gpu_index": -1}));
    assert_eq!(r["isError"], true);
    let r = s.call_tool("get_gpu_inventory", json!({"gpu_index": 8}));
    assert_eq!(r["isError"], true);
    assert!(text_of(&r).contains("NVML reports 8 GPU(s)"));
    // The session is intact.
    assert_eq!(
        s.call_tool("get_gpu_inventory", json!({"gpu_index": 7}))["isError"],
        false
    );
}

#[test]
fn a_ten_megabyte_line_is_refused_without_killing_the_session() {
    let mut s = Session::mock("healthy");
    s.initialize("2025-11-25");
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{{"name":"get_gpu_inventory","arguments":{{"pad":"{}"}}}}}}"#,
        "x".repeat(10 * 1024 * 1024)
    );
    s.send_raw(&huge);
    let e = s.recv();
    assert_eq!(e["error"]["code"], -32600);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than")
    );
    assert_eq!(
        s.call_tool("get_gpu_inventory", json!({}))["isError"],
        false
    );
}

#[test]
fn eof_before_initialize_exits_zero_silently() {
    let mut s = Session::mock("healthy");
    s.close_stdin();
    let status = s.wait(Duration::from_secs(5)).expect("exits on EOF");
    assert!(status.success(), "{status:?}");
    assert!(s.recv_timeout(Duration::from_millis(100)).is_none());
}

#[test]
fn eof_after_requests_flushes_every_reply() {
    let fixture = fixture_file("extends: healthy\nnode: {query_delay_ms: 300}");
    let mut s = Session::start(&[
        "--nvml-mode=mock",
        "--mock-fixture",
        fixture.path(),
        "--log-level=warn",
    ]);
    s.initialize("2025-06-18");
    for id in 1..=3 {
        s.send(&json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"get_gpu_inventory","arguments":{}}}));
    }
    s.close_stdin();
    let mut ids: Vec<i64> = (0..3).map(|_| s.recv()["id"].as_i64().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, [1, 2, 3]);
    assert!(s.wait(Duration::from_secs(10)).unwrap().success());
}

#[test]
fn sigterm_mid_request_exits_zero_promptly() {
    let fixture = fixture_file("extends: healthy\nnode: {query_delay_ms: 8000}");
    let mut s = Session::start(&[
        "--nvml-mode=mock",
        "--mock-fixture",
        fixture.path(),
        "--log-level=warn",
    ]);
    s.initialize("2025-06-18");
    s.send(&json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"get_gpu_inventory","arguments":{}}}));
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    s.signal(libc::SIGTERM);
    let status = s.wait(Duration::from_secs(3)).expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(t0.elapsed() < Duration::from_secs(3));
}

#[test]
fn sighup_ends_a_session_whose_stdin_never_closes() {
    let mut s = Session::mock("healthy");
    s.initialize("2025-06-18");
    s.signal(libc::SIGHUP);
    assert!(s.wait(Duration::from_secs(3)).unwrap().success());
}

#[test]
fn a_hung_driver_is_reported_not_waited_for() {
    let fixture = fixture_file("extends: healthy\nnode: {query_delay_ms: 4000}");
    let mut s = Session::start(&[
        "--nvml-mode=mock",
        "--mock-fixture",
        fixture.path(),
        "--nvml-timeout-seconds=1",
        "--log-level=error",
    ]);
    s.initialize("2025-11-25");
    let t0 = Instant::now();
    let r = s.call_tool("get_gpu_inventory", json!({}));
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert_eq!(r["isError"], true);
    assert!(
        text_of(&r).contains("did not answer within"),
        "{}",
        text_of(&r)
    );
    let r = s.call_tool("get_gpu_inventory", json!({}));
    assert_eq!(r["isError"], true);
    assert!(text_of(&r).contains("has not returned"), "{}", text_of(&r));
}

#[test]
fn idle_timeout_closes_an_abandoned_session() {
    let mut s = Session::start(&[
        "--nvml-mode=mock",
        "--idle-timeout-seconds=1",
        "--log-level=warn",
    ]);
    s.initialize("2025-06-18");
    let status = s
        .wait(Duration::from_secs(5))
        .expect("closes after the idle timeout");
    assert!(status.success());
    assert!(s.stderr().contains("idle timeout"));
}

#[test]
fn stdout_carries_only_protocol_messages_even_at_trace_level() {
    let mut s = Session::start(&["--nvml-mode=mock", "--log-level=trace"]);
    s.initialize("2025-06-18");
    s.call_tool("get_gpu_inventory", json!({}));
    s.send_raw("garbage");
    s.close_stdin();
    // `recv` panics on any non-JSON stdout line.
    while let Some(msg) = s.recv_timeout(Duration::from_secs(5)) {
        assert_eq!(msg["jsonrpc"], "2.0");
    }
    assert!(s.wait(Duration::from_secs(5)).unwrap().success());
    assert!(!s.stderr().is_empty(), "logs go to stderr");
}

#[test]
fn idle_subcommand_exits_zero_on_sigterm_and_sigint_within_a_second() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut s = Session::start(&["idle"]);
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            s.wait(Duration::from_millis(10)).is_none(),
            "idle keeps running"
        );
        let t0 = Instant::now();
        s.signal(sig);
        let status = s.wait(Duration::from_secs(1)).expect("exits within 1 s");
        assert!(status.success(), "{status:?}");
        assert!(t0.elapsed() < Duration::from_secs(1));
    }
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(AGENT)
        .args(args)
        .env_remove("NODE_NAME")
        .output()
        .unwrap()
}

#[test]
fn check_exit_codes_on_mock() {
    assert!(run(&["check", "--nvml-mode=mock"]).status.success());
    let f = fixture_file("node: {init_error: DRIVER_NOT_LOADED}\ngpus: []");
    let out = run(&["check", "--nvml-mode=mock", "--mock-fixture", f.path()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("NVIDIA kernel driver is not loaded"), "{err}");
    let f = fixture_file("node: {}\ngpus: []");
    let out = run(&["check", "--nvml-mode=mock", "--mock-fixture", f.path()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("NVML sees no GPU")
    );
}

#[test]
fn mock_flags_never_switch_a_real_agent_to_mock_data() {
    let out = run(&["--mock-scenario", "healthy"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("--nvml-mode=mock")
    );
    let out = run(&["--nvml-mode=mock", "--mock-scenario", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("unknown built-in scenario") && err.contains("pcie-downtrain"),
        "{err}"
    );
}

#[test]
fn version_flag() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout).unwrap().starts_with("agent "));
}

/// A fixture file that lives as long as the returned guard.
struct FixtureFile(std::path::PathBuf);

impl FixtureFile {
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for FixtureFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn fixture_file(yaml: &str) -> FixtureFile {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "agent-fixture-{}-{}.yaml",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, yaml).unwrap();
    FixtureFile(path)
}

#[test]
fn the_agent_mode_is_announced_and_read_only_by_default() {
    let mut s = Session::mock("healthy");
    let info = s.initialize("2025-11-25");
    assert!(
        info["instructions"]
            .as_str()
            .unwrap()
            .contains("read-only mode")
    );
    let info = Session::start_with_env(&["--nvml-mode=mock"], &[("AGENT_MODE", "read-only")])
        .initialize("2025-11-25");
    assert!(
        info["instructions"]
            .as_str()
            .unwrap()
            .contains("read-only mode")
    );
    // No other permission exists: `operator` is refused like any unknown value, naming the one that
    // works.
    for mode in ["--mode=operator", "--mode=admin"] {
        let out = run(&[mode, "--nvml-mode=mock"]);
        assert_eq!(out.status.code(), Some(2), "{mode}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains("possible values: read-only"),
            "{mode}: {stderr}"
        );
    }
}
