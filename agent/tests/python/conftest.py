"""Shared helpers for the black-box tests that drive the agent binary with the official MCP Python SDK."""

import asyncio
import json
import os
import pathlib

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

ROOT = pathlib.Path(__file__).resolve().parents[3]
AGENT = pathlib.Path(os.environ.get("AGENT_BIN", ROOT / "target" / "debug" / "agent"))
SCENARIOS = [
    "healthy",
    "thermal-throttle",
    "ecc-dbe",
    "row-remap-pending",
    "row-remap-failure",
    "fallen-off-bus",
    "nvlink-errors",
    "pcie-downtrain",
]
# Protocol modes of the SDK client: the legacy initialize handshake, auto-detection (server/discover
# first), and the modern stateless era pinned.
MODES = ["legacy", "auto", "2026-07-28"]


def server(*args: str) -> StdioServerParameters:
    if not AGENT.exists():
        pytest.fail(f"{AGENT} is missing: build it first (cargo build -p agent)")
    return StdioServerParameters(command=str(AGENT), args=["--log-level=error", *args])


def mock(scenario: str = "healthy", *extra: str) -> StdioServerParameters:
    return server("--nvml-mode=mock", "--mock-scenario", scenario, *extra)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=60))


async def with_client(params: StdioServerParameters, mode: str, body):
    async with Client(params, mode=mode) as client:
        return await body(client)


def tools_snapshot() -> list:
    """The tools/list snapshot the Rust black-box test keeps (insta), parsed."""
    snap = (ROOT / "agent" / "tests" / "snapshots" / "stdio_protocol__tools_list.snap").read_text()
    body = snap.split("---\n", 2)[2]
    return json.loads(body)
