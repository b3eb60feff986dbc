"""Fleet benchmark rows: `get_fleet_gpu_health` over N simulated nodes through the real `agent fleet`, the
official MCP Python client and the in-repo test API server, whose pods/exec runs the real agent (mock
healthy 8x H100) per node. Prints one Markdown row per measure. Not a test; asserts only that every node
answered.

    .tools/python testing/bench/fleet_bench.py [--nodes 10,100,500] [--warm-calls 5] [--bin-dir target/debug]
"""

import argparse
import asyncio
import os
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "agent" / "tests" / "python"))

from mcp import Client  # noqa: E402
from mcp.client.stdio import StdioServerParameters  # noqa: E402


def fleet_pid() -> int:
    """The `agent fleet` process this Python process started."""
    me = os.getpid()
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(fields[1]) == me and b"fleet" in cmdline:
            return int(stat.parent.name)
    raise RuntimeError("the fleet process was not found")


def memory_mib(pid: int) -> tuple[float, float]:
    values = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


async def measure(cluster, agent: pathlib.Path, warm_calls: int, concurrency: int):
    params = StdioServerParameters(
        command=str(agent),
        args=["--log-level=error", "fleet", "--node-timeout", "120s", "--concurrency", str(concurrency)],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KUBECONFIG": str(cluster.kubeconfig),
             "HOME": str(cluster.dir)},
    )
    async with Client(params, mode="legacy") as client:
        started = time.monotonic()
        first = await client.call_tool("get_fleet_gpu_health", {})
        first_s = time.monotonic() - started
        counts = first.structured_content["counts"]
        if first.is_error or counts["PASS"] != len(cluster.nodes):
            raise RuntimeError(f"not every node answered: {counts} {first.content[0].text[:500]}")
        warm = []
        for _ in range(warm_calls):
            started = time.monotonic()
            res = await client.call_tool("get_fleet_gpu_health", {})
            warm.append(time.monotonic() - started)
            assert res.structured_content["counts"]["PASS"] == len(cluster.nodes)
        rss, hwm = memory_mib(fleet_pid())
        return first_s, statistics.median(warm), rss, hwm


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="10,100,500")
    parser.add_argument("--warm-calls", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--bin-dir", default=str(ROOT / "target" / "debug"))
    args = parser.parse_args()
    bin_dir = pathlib.Path(args.bin_dir)
    os.environ["AGENT_BIN"] = str(bin_dir / "agent")
    os.environ["TEST_APISERVER_BIN"] = str(bin_dir / "test-apiserver")
    from fleet_cluster import FleetCluster, Node  # reads the two variables above

    print("| Measure | Value |\n|---|---|")
    for n in [int(x) for x in args.nodes.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            nodes = [Node(f"gpu-{i:04d}") for i in range(n)]
            with FleetCluster(pathlib.Path(tmp), nodes) as cluster:
                first, warm, rss, hwm = asyncio.run(
                    measure(cluster, bin_dir / "agent", args.warm_calls, args.concurrency))
        print(f"| {n} nodes: `get_fleet_gpu_health` first call (opens {n} sessions) | {first * 1000:.0f} ms |")
        print(f"| {n} nodes: `get_fleet_gpu_health` warm call (median of {args.warm_calls}) | {warm * 1000:.0f} ms |")
        print(f"| {n} nodes: fleet RSS / peak with {n} sessions open | {rss:.1f} MiB / {hwm:.1f} MiB |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
