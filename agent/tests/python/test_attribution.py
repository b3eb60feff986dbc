"""The workload-attribution tools through the official MCP Python SDK client, against the fake kubelet
(`target/debug/fake-kubelet`, testing/fake-kubelet) on a unix socket."""

import os
import pathlib
import subprocess
import time

import jsonschema
import pytest

from conftest import ROOT, mock, run, with_client

FAKE_KUBELET = pathlib.Path(os.environ.get("FAKE_KUBELET_BIN", ROOT / "target" / "debug" / "fake-kubelet"))
FIXTURES = ROOT / "testing" / "fake-kubelet" / "fixtures"
U = "GPU-5f3b8a1e-2c4d-4e6f-8a9b-0c1d2e3f4a5"


@pytest.fixture
def kubelet(tmp_path):
    """Starts the fake kubelet on `device-plugin.yaml`; yields its socket path."""
    if not FAKE_KUBELET.exists():
        pytest.fail(f"{FAKE_KUBELET} is missing: build it first (cargo build -p fake-kubelet)")
    socket = tmp_path / "kubelet.sock"
    proc = subprocess.Popen(
        [str(FAKE_KUBELET), "--socket", str(socket), "--fixture", str(FIXTURES / "device-plugin.yaml")]
    )
    deadline = time.monotonic() + 10
    while not socket.exists():
        assert proc.poll() is None, "fake-kubelet exited"
        assert time.monotonic() < deadline, "fake-kubelet did not create its socket"
        time.sleep(0.02)
    yield socket
    proc.terminate()
    proc.wait(timeout=10)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_pod_gpu_allocation_names_holders_within_its_schema(kubelet, mode):
    async def body(c):
        tools = {t.name: t for t in (await c.list_tools()).tools}
        all_ = await c.call_tool("get_pod_gpu_allocation", {})
        one = await c.call_tool("get_pod_gpu_allocation", {"namespace": "ml", "pod": "train-7"})
        node = await c.call_tool("describe_gpu_node", {})
        return tools, all_, one, node

    params = mock("healthy", f"--pod-resources-socket={kubelet}")
    tools, all_, one, node = run(with_client(params, mode, body))
    for name, res in [("get_pod_gpu_allocation", all_), ("get_pod_gpu_allocation", one), ("describe_gpu_node", node)]:
        assert not res.is_error, res.content
        jsonschema.validate(res.structured_content, tools[name].output_schema)
    gpus = all_.structured_content["gpus"]
    assert [h["pod"] for h in gpus[3]["holders"]] == ["train-7"]
    assert gpus[3]["holders"][0]["source"] == "device_plugin"
    assert [h["replica"] for h in gpus[2]["holders"]] == [0, 1]
    assert all_.structured_content["unheld_gpus"] == [0, 1, 4, 6, 7]
    assert [h["pod"] for g in one.structured_content["gpus"] for h in g["holders"]] == ["train-7"]
    count = [f for f in node.structured_content["findings"] if f["check"] == "k8s.gpu_count"][0]
    assert count["evidence"] == {"nvml_gpus": 8, "kubelet_allocatable_gpus": 7}
    # No API server here: the tool says so instead of failing.
    assert node.structured_content["unreadable"][0]["source"] == "kubernetes"


def test_a_missing_kubelet_is_reported_not_failed(tmp_path):
    async def body(c):
        return await c.call_tool("get_pod_gpu_allocation", {})

    res = run(with_client(mock("healthy", f"--pod-resources-socket={tmp_path / 'none.sock'}"), "legacy", body))
    assert not res.is_error
    assert "unheld_gpus" not in res.structured_content
    u = res.structured_content["unreadable"][0]
    assert u["source"] == "pod-resources" and "/var/lib/kubelet/pod-resources" in u["reason"]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_bad_arguments_of_the_new_tools_are_tool_errors(mode):
    async def body(c):
        a = await c.call_tool("get_pod_gpu_allocation", {"pods": "x"})
        b = await c.call_tool("describe_gpu_node", {"node": "other"})
        ok = await c.call_tool("describe_gpu_node", {})
        return a, b, ok

    a, b, ok = run(with_client(mock(), mode, body))
    assert a.is_error and "unknown field `pods`" in a.content[0].text
    assert b.is_error and "unknown field `node`" in b.content[0].text
    assert not ok.is_error
