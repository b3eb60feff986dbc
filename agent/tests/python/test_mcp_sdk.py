"""The agent as seen by the official MCP Python SDK client, in both protocol eras."""

import subprocess
import time

import jsonschema
import pytest

from conftest import AGENT, MODES, SCENARIOS, mock, run, server, tools_snapshot, with_client


@pytest.mark.parametrize("mode", MODES)
def test_handshake_negotiates_the_expected_era(mode):
    async def body(c):
        return c.protocol_version, c.server_capabilities

    version, caps = run(with_client(mock(), mode, body))
    assert version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
    if mode != "2026-07-28":  # a pinned modern client skips discovery and knows no capabilities
        assert caps.tools is not None and caps.prompts is not None


@pytest.mark.parametrize("mode", MODES)
def test_tools_list_matches_the_snapshot(mode):
    async def body(c):
        return (await c.list_tools()).tools

    tools = run(with_client(mock(), mode, body))
    expected = tools_snapshot()
    assert [t.name for t in tools] == [t["name"] for t in expected]
    for tool, snap in zip(tools, expected):
        assert tool.title == snap["title"]
        assert tool.description == snap["description"]
        assert tool.input_schema == snap["inputSchema"]
        assert tool.output_schema == snap["outputSchema"]
        a = tool.annotations
        assert (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint) == (True, False, True, False)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_every_tool_answers_on_every_scenario_within_its_output_schema(mode, scenario):
    async def body(c):
        results = {}
        for tool in (await c.list_tools()).tools:
            res = await c.call_tool(tool.name, {})
            results[tool.name] = (tool, res)
        return results

    for name, (tool, res) in run(with_client(mock(scenario), mode, body)).items():
        assert not res.is_error, f"{name} on {scenario}: {res.content}"
        assert res.structured_content["data_source"] == f"mock:{scenario}"
        jsonschema.validate(res.structured_content, tool.output_schema)
        # The text copy carries the same data for hosts that only read `content`.
        assert res.content[0].type == "text" and res.content[0].text.startswith("{")


@pytest.mark.parametrize("mode", MODES)
def test_inventory_lists_eight_h100s(mode):
    async def body(c):
        return await c.call_tool("get_gpu_inventory", {})

    res = run(with_client(mock(), mode, body))
    gpus = res.structured_content["gpus"]
    assert len(gpus) == 8
    assert {g["name"] for g in gpus} == {"NVIDIA H100 80GB HBM3"}
    assert len({g["uuid"] for g in gpus}) == 8
    assert all(g["memory_total_bytes"] == 85520809984 for g in gpus)


def test_a_lost_gpu_is_listed_with_its_error():
    async def body(c):
        return await c.call_tool("get_gpu_inventory", {})

    gpus = run(with_client(mock("fallen-off-bus"), "legacy", body)).structured_content["gpus"]
    assert len(gpus) == 8
    assert "GPU_IS_LOST" in gpus[5]["error"]
    assert gpus[5]["unavailable"]["uuid"]["code"] == "GPU_IS_LOST"


@pytest.mark.parametrize("mode", MODES)
def test_bad_arguments_are_tool_errors_and_the_session_survives(mode):
    async def body(c):
        unknown = await c.call_tool("get_gpu_inventory", {"bogus": 1})
        mistyped = await c.call_tool("get_gpu_inventory", {"gpu_index": "one"})
        ok = await c.call_tool("get_gpu_inventory", {"gpu_index": 0})
        return unknown, mistyped, ok

    unknown, mistyped, ok = run(with_client(mock(), mode, body))
    assert unknown.is_error and "unknown field `bogus`" in unknown.content[0].text
    assert mistyped.is_error and "invalid type" in mistyped.content[0].text
    assert not ok.is_error and len(ok.structured_content["gpus"]) == 1


@pytest.mark.parametrize("mode", MODES)
def test_unknown_tool_is_a_protocol_error(mode):
    from mcp import MCPError

    async def body(c):
        with pytest.raises(MCPError) as err:
            await c.call_tool("reset_gpu", {})
        return err.value

    err = run(with_client(mock(), mode, body))
    assert "get_gpu_inventory" in str(err)


@pytest.mark.parametrize("mode", MODES)
def test_prompts_list_and_get(mode):
    async def body(c):
        prompts = (await c.list_prompts()).prompts
        texts = {}
        for p in prompts:
            got = await c.get_prompt(p.name, {"gpu_index": "1"})
            texts[p.name] = got.messages[0].content.text
        return prompts, texts

    prompts, texts = run(with_client(mock(), mode, body))
    assert [p.name for p in prompts] == [
        "gpu-health-check",
        "diagnose-xid-errors",
        "gpu-incident-timeline",
        "gpu-triage",
    ]
    assert "get_gpu_timeline" in texts["gpu-incident-timeline"]
    assert all(p.title and p.description for p in prompts)
    assert "get_gpu_health" in texts["gpu-health-check"]
    assert "analyze_xid_errors" in texts["diagnose-xid-errors"]
    triage = texts["gpu-triage"]
    assert triage.index("get_gpu_inventory") < triage.index("get_gpu_health") < triage.index("analyze_xid_errors")


EXPECTED_HEALTH = {
    "healthy": ("PASS", None, None),
    "thermal-throttle": ("WARN", 2, "thermal.slowdown"),
    "ecc-dbe": ("FAIL", 4, "ecc.volatile_dbe"),
    "row-remap-pending": ("WARN", 1, "memory.row_remap_pending"),
    "row-remap-failure": ("FAIL", 6, "memory.row_remap_failure"),
    "fallen-off-bus": ("FAIL", 5, "gpu.lost"),
    "nvlink-errors": ("FAIL", 3, "nvlink.down"),
    "pcie-downtrain": ("WARN", 0, "pcie.link_width"),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_health_verdict_per_scenario(scenario):
    async def body(c):
        return await c.call_tool("get_gpu_health", {})

    verdict, gpu, check = EXPECTED_HEALTH[scenario]
    report = run(with_client(mock(scenario), "auto", body)).structured_content
    assert report["verdict"] == verdict, report["summary"]
    for g in report["gpus"]:
        if g["index"] == gpu:
            assert g["verdict"] == verdict
            assert check in [f["check"] for f in g["findings"]]
        else:
            assert all(f["severity"] == "info" for f in g["findings"]), g


INCIDENT = """extends: healthy
timeline:
  - {at: 300ms, gpu: 3, set: {temperature_c: 90, clock_event_reasons: [hw_thermal_slowdown]}}
  - {at: 500ms, gpu: 3, set: {presence: lost}}
"""


@pytest.mark.parametrize("mode", MODES)
def test_timeline_of_a_running_recorder_fits_its_output_schema(mode, tmp_path):
    fixture = tmp_path / "incident.yaml"
    fixture.write_text(INCIDENT)
    history = tmp_path / "history"
    recorder = subprocess.Popen(
        [str(AGENT), "idle", "--nvml-mode=mock", "--mock-fixture", str(fixture),
         "--history-dir", str(history), "--sample-interval", "100ms", "--log-level=error"],
    )
    try:
        async def body(c):
            tools = {t.name: t for t in (await c.list_tools()).tools}
            for _ in range(100):
                res = await c.call_tool("get_gpu_timeline", {"gpu": 3, "since_seconds": 60})
                kinds = [e["kind"] for g in res.structured_content["gpus"] for e in g["events"]]
                if "gpu_lost" in kinds:
                    break
                time.sleep(0.1)
            everything = await c.call_tool("get_gpu_timeline", {})
            return tools["get_gpu_timeline"], res, everything

        tool, res, everything = run(with_client(mock("healthy", "--history-dir", str(history)), mode, body))
    finally:
        recorder.terminate()
        assert recorder.wait(timeout=10) == 0
    for r in (res, everything):
        assert not r.is_error, r.content
        jsonschema.validate(r.structured_content, tool.output_schema)
        assert r.structured_content["recorder_available"] is True
    gpu = res.structured_content["gpus"][0]
    assert gpu["index"] == 3
    assert [e["kind"] for e in gpu["events"]] == ["temperature_above_slowdown", "throttle_start", "gpu_lost"]
    assert gpu["events"][1]["metric"] == "hw_thermal_slowdown"
    assert len(everything.structured_content["gpus"]) == 8


def test_timeline_without_a_recorder_is_a_note_not_an_error():
    async def body(c):
        return await c.call_tool("get_gpu_timeline", {"since_seconds": 600})

    res = run(with_client(mock(), "legacy", body))
    assert not res.is_error
    assert res.structured_content["recorder_available"] is False
    assert "No flight recorder" in res.structured_content["notes"][0]
