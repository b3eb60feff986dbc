"""`agent fleet` end to end: the official MCP Python SDK client drives the real binary against the simulated
fleet (`fleet_cluster.py`: the test API server, whose pods/exec runs the real agent per node), in both
protocol eras."""

import os
import pathlib
import time

import jsonschema
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from conftest import AGENT, run
from fleet_cluster import NAMESPACE, fleet_cluster  # noqa: F401  (fixture)

NODE_TIMEOUT_S = 3


def fleet(env: dict, *args: str) -> StdioServerParameters:
    if not AGENT.exists():
        pytest.fail(f"{AGENT} is missing: build it first (cargo build -p agent)")
    return StdioServerParameters(
        command=str(AGENT),
        args=["--log-level=error", "fleet", "--node-timeout", f"{NODE_TIMEOUT_S}s", *args],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
    )


def cluster_env(cluster) -> dict:
    return {"KUBECONFIG": str(cluster.kubeconfig), "HOME": str(cluster.dir)}


async def session(params, mode, body):
    async with Client(params, mode=mode) as client:
        return await body(client)


def schemas(tools) -> dict:
    return {t.name: t.output_schema for t in tools}


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_fleet_health_ranks_every_node_and_says_why_some_did_not_answer(fleet_cluster, mode):
    async def body(c):
        tools = (await c.list_tools()).tools
        started = time.monotonic()
        res = await c.call_tool("get_fleet_gpu_health", {})
        return tools, res, time.monotonic() - started

    tools, res, elapsed = run(session(fleet(cluster_env(fleet_cluster)), mode, body))
    assert not res.is_error, res.content
    health = res.structured_content
    jsonschema.validate(health, schemas(tools)["get_fleet_gpu_health"])
    # The hung node is cut off at --node-timeout; the others answered in the meantime.
    assert elapsed < NODE_TIMEOUT_S + 1, elapsed
    by_node = {n["node"]: n for n in health["nodes"]}
    assert "cpu-a" not in by_node
    assert by_node["gpu-healthy"]["verdict"] == "PASS"
    assert len(by_node["gpu-healthy"]["gpus"]) == 8
    for failing in ("gpu-ecc-dbe", "gpu-fallen-off-bus"):
        assert by_node[failing]["verdict"] == "FAIL", by_node[failing]
        assert any(f["severity"] == "fail" for f in by_node[failing]["findings"])
    assert by_node["gpu-thermal-throttle"]["verdict"] in ("WARN", "FAIL")
    errors = {n: e["error"] for n, e in by_node.items() if e["verdict"] == "UNKNOWN"}
    assert set(errors) == {"gpu-no-agent", "gpu-not-ready", "gpu-hang", "gpu-forbidden"}
    assert "no agent pod on node gpu-no-agent" in errors["gpu-no-agent"]
    assert "is not ready: CrashLoopBackOff" in errors["gpu-not-ready"]
    assert f"timed out after {NODE_TIMEOUT_S} s" in errors["gpu-hang"]
    assert "`create pods/exec`" in errors["gpu-forbidden"]
    assert f"namespace {NAMESPACE}" in errors["gpu-forbidden"]
    assert "kubectl create rolebinding" in errors["gpu-forbidden"]
    assert health["verdict"] == "FAIL"
    assert health["counts"]["UNKNOWN"] == 4 and health["counts"]["FAIL"] >= 2
    order = {"FAIL": 0, "UNKNOWN": 1, "WARN": 2, "PASS": 3}
    ranks = [order[n["verdict"]] for n in health["nodes"]]
    assert ranks == sorted(ranks), "worst first"
    assert res.content[0].type == "text" and res.content[0].text.startswith("{")


def test_list_gpu_nodes_reads_the_api_server_and_the_exec_permission(fleet_cluster):
    async def body(c):
        tools = (await c.list_tools()).tools
        return tools, await c.call_tool("list_gpu_nodes", {}), await c.call_tool(
            "list_gpu_nodes", {"selector": "kubernetes.io/hostname=gpu-ecc-dbe"})

    tools, res, one = run(session(fleet(cluster_env(fleet_cluster)), "auto", body))
    assert not res.is_error, res.content
    listed = res.structured_content
    jsonschema.validate(listed, schemas(tools)["list_gpu_nodes"])
    nodes = {n["node"]: n for n in listed["nodes"]}
    assert sorted(nodes) == sorted(n for n in fleet_cluster.nodes if n != "cpu-a")
    healthy = nodes["gpu-healthy"]
    assert healthy["gpu_capacity"] == 8 and healthy["gpu_product"] == "NVIDIA-H100-80GB-HBM3"
    assert healthy["agent_pod"] == {"namespace": NAMESPACE, "name": fleet_cluster.pods["gpu-healthy"], "ready": True}
    assert healthy["config"] == "default" and healthy["access_mode"] == "RuntimeClass"
    assert "agent_pod" not in nodes["gpu-no-agent"]
    assert nodes["gpu-not-ready"]["node_problem"]["reason"] == "CrashLooping"
    assert listed["exec_access"] == [{"namespace": NAMESPACE, "exec": "allowed", "detail": listed["exec_access"][0]["detail"]}]
    assert [n["node"] for n in one.structured_content["nodes"]] == ["gpu-ecc-dbe"]


def test_forwarded_tools_reopen_the_session_when_the_pod_is_replaced(fleet_cluster):
    async def body(c):
        first = await c.call_tool("get_gpu_inventory", {"node": "gpu-ecc-dbe"})
        old = fleet_cluster.pods["gpu-ecc-dbe"]
        new = fleet_cluster.replace_pod("gpu-ecc-dbe")
        second = await c.call_tool("get_gpu_health", {"node": "gpu-ecc-dbe"})
        listed = await c.call_tool("list_gpu_nodes", {})
        missing = await c.call_tool("get_gpu_health", {})
        unknown = await c.call_tool("analyze_xid_errors", {"node": "gpu-nope"})
        return first, old, new, second, listed, missing, unknown

    first, old, new, second, listed, missing, unknown = run(
        session(fleet(cluster_env(fleet_cluster)), "legacy", body))
    assert not first.is_error, first.content
    assert first.structured_content["node_name"] == "gpu-ecc-dbe"
    assert first.structured_content["data_source"] == "mock:ecc-dbe"
    # The old pod is gone; the next call found the new one and opened a session there.
    assert old != new
    assert not second.is_error, second.content
    assert second.structured_content["verdict"] == "FAIL"
    assert second.structured_content["node_name"] == "gpu-ecc-dbe"
    assert "verdict" in second.structured_content["node"], "the node agent's own `node` is kept"
    pods = {n["node"]: n.get("agent_pod", {}).get("name") for n in listed.structured_content["nodes"]}
    assert pods["gpu-ecc-dbe"] == new
    assert missing.is_error and "`node` is required" in missing.content[0].text
    assert unknown.is_error and 'no node named "gpu-nope"' in unknown.content[0].text


def test_fleet_xid_errors_summarise_codes_across_nodes(fleet_cluster):
    async def body(c):
        tools = (await c.list_tools()).tools
        return tools, await c.call_tool(
            "get_fleet_xid_errors", {"nodes": ["gpu-fallen-off-bus", "gpu-healthy", "gpu-no-agent"]})

    tools, res = run(session(fleet(cluster_env(fleet_cluster)), "legacy", body))
    assert not res.is_error, res.content
    xid = res.structured_content
    jsonschema.validate(xid, schemas(tools)["get_fleet_xid_errors"])
    assert [n["node"] for n in xid["nodes"]][0] == "gpu-fallen-off-bus"
    codes = {c["code"]: c for c in xid["codes"]}
    assert 79 in codes and codes[79]["nodes"] == ["gpu-fallen-off-bus"]
    assert codes[79]["severity"] == "critical"
    assert xid["counts"]["UNKNOWN"] == 1


def test_the_triage_prompt_and_tool_annotations(fleet_cluster):
    async def body(c):
        return (await c.list_tools()).tools, await c.get_prompt("fleet-triage", {"since_seconds": "3600"})

    tools, prompt = run(session(fleet(cluster_env(fleet_cluster)), "legacy", body))
    for tool in tools:
        assert tool.annotations.read_only_hint is True, tool.name
        assert tool.input_schema.get("additionalProperties") is False, tool.name
    text = prompt.messages[0].content.text
    assert "get_fleet_gpu_health" in text and '"since_seconds": 3600' in text


def test_without_a_kubeconfig_every_tool_says_what_to_fix(tmp_path):
    env = {"KUBECONFIG": str(tmp_path / "missing" / "kubeconfig"), "HOME": str(tmp_path)}

    async def body(c):
        return await c.call_tool("get_fleet_gpu_health", {})

    res = run(session(fleet(env), "legacy", body))
    assert res.is_error
    text = res.content[0].text
    assert "no Kubernetes configuration" in text
    assert str(tmp_path / "missing" / "kubeconfig") in text
    assert "--kubeconfig" in text


def test_an_unreachable_api_server_is_an_error_naming_the_kubeconfig_and_context(tmp_path):
    kubeconfig = tmp_path / "kc.yaml"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:9'}\n"
        "users:\n- name: u\n  user: {token: t}\ncontexts:\n- name: prod\n  context: {cluster: c, user: u}\n"
        "current-context: prod\n")

    async def body(c):
        return await c.call_tool("list_gpu_nodes", {})

    res = run(session(fleet({"HOME": str(tmp_path)}, "--kubeconfig", str(kubeconfig), "--context", "prod"),
                      "legacy", body))
    assert res.is_error
    text = res.content[0].text
    assert "cannot reach the Kubernetes API server" in text
    assert f"kubeconfig {kubeconfig}, context prod" in text
    assert "kubectl --context prod get nodes" in text


def agent_children(cluster) -> int:
    """Processes the test API server started for exec sessions (the node agents)."""
    parent = cluster._process.pid
    count = 0
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            count += 1
    return count


def test_closing_the_fleet_closes_every_node_session(fleet_cluster):
    async def body(c):
        await c.call_tool("get_fleet_gpu_health", {"nodes": ["gpu-healthy", "gpu-ecc-dbe", "gpu-fallen-off-bus"]})
        return agent_children(fleet_cluster)

    open_sessions = run(session(fleet(cluster_env(fleet_cluster)), "legacy", body))
    assert open_sessions == 3, "one node agent per node, kept open between calls"
    deadline = time.monotonic() + 10
    while agent_children(fleet_cluster) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert agent_children(fleet_cluster) == 0, "the fleet closed each agent's stdin on exit"
