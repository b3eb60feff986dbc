#!/usr/bin/env python3
"""Real-GPU check of the agent: runs every tool over stdio with real NVML, cross-checks the inventory
against `nvidia-smi -q -x`, times cold start and each tool, and prints a markdown report.

Driven by hack/gpu-check.sh (which builds the agent first). Standard library only, so it runs on a bare
GPU machine. Exit status: 0 when every cross-check passes, 1 when one fails, 2 when the check could not run.

Self-test without a GPU (what CI does): pass a saved XML with --nvidia-smi-xml and point the agent at the
fake NVML library with `-- --nvml-lib target/debug/libnvidia_ml.so` and FAKE_NVML_FIXTURE set.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Optional

PROTOCOL = "2025-06-18"
REPLY_TIMEOUT_S = 60.0
COMMAND_TIMEOUT_S = 120.0
WARM_CALLS = 5

# Tolerances for values that move between two reads (nvidia-smi and the agent read moments apart).
TEMPERATURE_TOLERANCE_C = 5
POWER_TOLERANCE_W = 20.0
POWER_TOLERANCE_FRACTION = 0.15
POWER_LIMIT_TOLERANCE_W = 1.0


# ---------------------------------------------------------------------------------------------------
# nvidia-smi -q -x parsing (pure)


def quantity(text: Optional[str]) -> Optional[float]:
    """'81559 MiB' -> 81559.0, '71.52 W' -> 71.52, '16x' -> 16.0; 'N/A', '[N/A]', '' or None -> None."""
    if text is None:
        return None
    t = text.strip()
    if not t or "N/A" in t or t.lower() in ("unknown error", "not supported", "[not supported]"):
        return None
    number = t.split()[0].rstrip("x%")
    try:
        return float(number)
    except ValueError:
        return None


def pci_key(bus_id: Optional[str]) -> Optional[tuple[int, int, int, int]]:
    """A PCI bus id as numbers, so `00000000:18:00.0` and `0000:18:00.0` compare equal."""
    if not bus_id:
        return None
    try:
        slot, _, function = bus_id.strip().rpartition(".")
        parts = slot.split(":")
        if len(parts) == 2:
            parts = ["0"] + parts
        domain, bus, device = (int(p, 16) for p in parts)
        return (domain, bus, device, int(function, 16))
    except ValueError:
        return None


def _text(node: Optional[ET.Element], path: str) -> Optional[str]:
    if node is None:
        return None
    found = node.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip()


def _first(node: ET.Element, *paths: str) -> Optional[str]:
    """The first of `paths` present with a value (the XML schema moved fields between driver releases)."""
    for p in paths:
        t = _text(node, p)
        if t is not None and quantity(t) is not None:
            return t
    for p in paths:
        t = _text(node, p)
        if t is not None:
            return t
    return None


def _enabled(text: Optional[str]) -> Optional[bool]:
    if text is None:
        return None
    t = text.strip().lower()
    if t == "enabled":
        return True
    if t == "disabled":
        return False
    return None


def parse_smi_xml(text: str) -> dict[str, Any]:
    """The fields the agent's inventory also reports, from `nvidia-smi -q -x` output."""
    root = ET.fromstring(text)
    gpus = []
    for g in root.findall("gpu"):
        gpus.append(
            {
                "pci_bus_id": _text(g, "pci/pci_bus_id") or g.get("id"),
                "name": _text(g, "product_name"),
                "uuid": _text(g, "uuid"),
                "serial": _text(g, "serial"),
                "vbios_version": _text(g, "vbios_version"),
                "memory_total_mib": quantity(_text(g, "fb_memory_usage/total")),
                "temperature_c": quantity(_text(g, "temperature/gpu_temp")),
                "temperature_slowdown_c": quantity(_text(g, "temperature/gpu_temp_slow_threshold")),
                "temperature_shutdown_c": quantity(_text(g, "temperature/gpu_temp_max_threshold")),
                "power_draw_watts": quantity(
                    _first(
                        g,
                        "gpu_power_readings/power_draw",
                        "gpu_power_readings/average_power_draw",
                        "gpu_power_readings/instant_power_draw",
                        "power_readings/power_draw",
                    )
                ),
                "power_limit_watts": quantity(
                    _first(
                        g,
                        "gpu_power_readings/current_power_limit",
                        "power_readings/enforced_power_limit",
                        "power_readings/power_limit",
                    )
                ),
                "clock_sm_max_mhz": quantity(_text(g, "max_clocks/sm_clock")),
                "clock_memory_max_mhz": quantity(_text(g, "max_clocks/mem_clock")),
                "pcie_gen_max": quantity(_text(g, "pci/pci_gpu_link_info/pcie_gen/max_link_gen")),
                "pcie_width_max": quantity(
                    _text(g, "pci/pci_gpu_link_info/link_widths/max_link_width")
                ),
                "persistence_mode_enabled": _enabled(_text(g, "persistence_mode")),
                "ecc_enabled": _enabled(_text(g, "ecc_mode/current_ecc")),
                "mig_mode_enabled": _enabled(_text(g, "mig_mode/current_mig")),
                "compute_mode": _text(g, "compute_mode"),
            }
        )
    return {
        "driver_version": _text(root, "driver_version"),
        "cuda_version": _text(root, "cuda_version"),
        "attached_gpus": quantity(_text(root, "attached_gpus")),
        "gpus": gpus,
    }


# ---------------------------------------------------------------------------------------------------
# Cross-check (pure)


@dataclass
class Check:
    gpu: str  # "node" or the GPU's index
    field: str
    smi: Any
    agent: Any
    ok: bool
    note: str = ""


def _exact(gpu: str, name: str, smi: Any, agent: Any, unavailable: dict) -> Check:
    if smi is None and agent is None:
        why = unavailable.get(name, {}).get("code", "absent")
        return Check(gpu, name, "N/A", f"unavailable ({why})", True, "both unavailable")
    if agent is None:
        why = unavailable.get(name, {}).get("code", "absent")
        return Check(gpu, name, smi, f"unavailable ({why})", False)
    return Check(gpu, name, smi, agent, smi == agent)


def _within(gpu: str, name: str, smi: Any, agent: Any, tolerance: float, unavailable: dict) -> Check:
    if smi is None or agent is None:
        return _exact(gpu, name, smi, agent, unavailable)
    return Check(gpu, name, smi, agent, abs(smi - agent) <= tolerance, f"±{tolerance:g}")


def compare(smi: dict[str, Any], inventory: dict[str, Any]) -> list[Check]:
    """Every cross-check of the agent's `get_gpu_inventory` against nvidia-smi; GPUs matched by PCI id."""
    node_unavailable = inventory.get("unavailable", {})
    checks = [
        _exact("node", "driver_version", smi["driver_version"], inventory.get("driver_version"), node_unavailable),
        _exact("node", "cuda_driver_version", smi["cuda_version"], inventory.get("cuda_driver_version"), node_unavailable),
        _exact("node", "device_count", smi["attached_gpus"], float(inventory.get("device_count", -1)), {}),
    ]
    by_pci = {pci_key(g.get("pci_bus_id")): g for g in inventory.get("gpus", []) if g.get("pci_bus_id")}
    for s in smi["gpus"]:
        a = by_pci.get(pci_key(s["pci_bus_id"]))
        if a is None:
            checks.append(Check(s["pci_bus_id"] or "?", "pci_bus_id", s["pci_bus_id"], "not listed", False))
            continue
        gpu = str(a.get("index"))
        u = a.get("unavailable", {})
        mem = a.get("memory_total_bytes")
        agent_mib = math.floor(mem / 2**20) if mem is not None else None
        power = a.get("power_draw_watts")
        power_tolerance = max(POWER_TOLERANCE_W, POWER_TOLERANCE_FRACTION * (s["power_draw_watts"] or 0))
        mode = a.get("compute_mode")
        checks += [
            Check(gpu, "pci_bus_id", s["pci_bus_id"], a.get("pci_bus_id"), True, "numeric match"),
            _exact(gpu, "name", s["name"], a.get("name"), u),
            _exact(gpu, "uuid", s["uuid"], a.get("uuid"), u),
            _exact(gpu, "serial", s["serial"], a.get("serial"), u),
            _exact(gpu, "vbios_version", s["vbios_version"], a.get("vbios_version"), u),
            _exact(gpu, "memory_total_mib", s["memory_total_mib"], agent_mib, u),
            _within(gpu, "temperature_c", s["temperature_c"], a.get("temperature_c"), TEMPERATURE_TOLERANCE_C, u),
            _exact(gpu, "temperature_slowdown_c", s["temperature_slowdown_c"], a.get("temperature_slowdown_c"), u),
            _exact(gpu, "temperature_shutdown_c", s["temperature_shutdown_c"], a.get("temperature_shutdown_c"), u),
            _within(gpu, "power_draw_watts", s["power_draw_watts"], power, power_tolerance, u),
            _within(gpu, "power_limit_watts", s["power_limit_watts"], a.get("power_limit_watts"), POWER_LIMIT_TOLERANCE_W, u),
            _exact(gpu, "clock_sm_max_mhz", s["clock_sm_max_mhz"], a.get("clock_sm_max_mhz"), u),
            _exact(gpu, "clock_memory_max_mhz", s["clock_memory_max_mhz"], a.get("clock_memory_max_mhz"), u),
            _exact(gpu, "pcie_gen_max", s["pcie_gen_max"], a.get("pcie_gen_max"), u),
            _exact(gpu, "pcie_width_max", s["pcie_width_max"], a.get("pcie_width_max"), u),
            _exact(gpu, "persistence_mode_enabled", s["persistence_mode_enabled"], a.get("persistence_mode_enabled"), u),
            _exact(gpu, "ecc_enabled", s["ecc_enabled"], a.get("ecc_enabled"), u),
            _exact(gpu, "mig_mode_enabled", s["mig_mode_enabled"], a.get("mig_mode_enabled"), u),
            _exact(
                gpu,
                "compute_mode",
                (s["compute_mode"] or "").lower() or None,
                mode.lower() if isinstance(mode, str) else None,
                u,
            ),
        ]
    return checks


# ---------------------------------------------------------------------------------------------------
# Report (pure)


@dataclass
class ToolRun:
    name: str
    first_ms: float
    warm_ms: list[float]
    is_error: bool
    size_bytes: int
    summary: str


@dataclass
class Run:
    agent_version: str
    build_s: Optional[float]
    initialize_ms: float  # spawn -> `initialize` answered
    cold_start_ms: float  # spawn -> first `get_gpu_inventory` answered (NVML loads on first use)
    check_ms: float
    check_exit: int
    check_stderr: str
    tools: list[ToolRun] = field(default_factory=list)


def unavailable_summary(inventory: dict[str, Any]) -> list[str]:
    """'field: CODE (GPUs 0-7)' lines: what this GPU/driver does not report, and why."""
    by_field: dict[tuple[str, str], list[int]] = {}
    for g in inventory.get("gpus", []):
        for name, why in g.get("unavailable", {}).items():
            by_field.setdefault((name, why.get("code", "?")), []).append(g.get("index"))
    for name, why in inventory.get("unavailable", {}).items():
        by_field.setdefault((name, why.get("code", "?")), []).append(-1)
    lines = []
    for (name, code), gpus in sorted(by_field.items()):
        where = "node" if gpus == [-1] else "GPUs " + ",".join(str(i) for i in gpus)
        lines.append(f"{name}: {code} ({where})")
    return lines


def tool_summary(name: str, result: dict[str, Any]) -> str:
    """One line on what a tool answered: its error text, or its top-level scalar fields."""
    if result.get("isError"):
        text = (result.get("content") or [{}])[0].get("text", "")
        return "isError: " + text[:200]
    content = result.get("structuredContent") or {}
    parts = []
    for key, value in content.items():
        if isinstance(value, (str, int, float, bool)) and key != "data_source":
            parts.append(f"{key}={value}")
        elif isinstance(value, list):
            parts.append(f"{key}: {len(value)}")
    return ", ".join(parts)[:300]


def _ms(v: float) -> str:
    return f"{v:.1f} ms"


def _num(v: Any) -> str:
    """Numbers as people write them: 81559 not 81559.0."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def render(smi: dict[str, Any], inventory: dict[str, Any], checks: list[Check], run: Run, host: str) -> str:
    names = sorted({g["name"] for g in smi["gpus"] if g["name"]})
    failed = [c for c in checks if not c.ok]
    by_gpu: dict[str, dict[str, Check]] = {}
    for c in checks:
        by_gpu.setdefault(c.gpu, {})[c.field] = c
    lines = [
        f"# GPU check: {len(smi['gpus'])}x {', '.join(names) or 'unknown GPU'}",
        "",
        f"- Host `{host}`: driver {smi['driver_version']}, CUDA {smi['cuda_version']}; `{run.agent_version}`; "
        f"data source reported: `{inventory.get('data_source')}`",
        f"- Cross-checks against `nvidia-smi -q -x`: **{len(checks) - len(failed)}/{len(checks)} passed**"
        + ("" if not failed else f", **{len(failed)} failed**"),
        f"- Exact: names, UUIDs, serials, VBIOS, PCI bus ids (numerically), memory totals (MiB), temperature "
        f"thresholds, max clocks, max PCIe gen/width, persistence/ECC/MIG/compute modes, driver and CUDA "
        f"versions, GPU count. Within tolerance: temperature ±{TEMPERATURE_TOLERANCE_C} °C, power draw "
        f"±max({POWER_TOLERANCE_W:g} W, {POWER_TOLERANCE_FRACTION:.0%}), power limit ±{POWER_LIMIT_TOLERANCE_W:g} W.",
        "",
        "| GPU | PCI bus id | name | UUID | memory MiB | °C smi/agent | W smi/agent | checks |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for gpu, fields in by_gpu.items():
        if gpu == "node":
            continue
        get = lambda f, side: _num(getattr(fields[f], side)) if f in fields else "?"  # noqa: E731
        passed = sum(c.ok for c in fields.values())
        lines.append(
            f"| {gpu} | {get('pci_bus_id', 'smi')} | {get('name', 'agent')} | {get('uuid', 'agent')} "
            f"| {get('memory_total_mib', 'agent')} | {get('temperature_c', 'smi')}/{get('temperature_c', 'agent')} "
            f"| {get('power_draw_watts', 'smi')}/{get('power_draw_watts', 'agent')} | {passed}/{len(fields)} |"
        )
    if failed:
        lines += ["", "### Mismatches", "", "| GPU | field | nvidia-smi | agent |", "|---|---|---|---|"]
        lines += [f"| {c.gpu} | {c.field} | {_num(c.smi)} | {_num(c.agent)} |" for c in failed]
    lines += [
        "",
        "## Timings",
        "",
        f"Cold start, spawn → first `get_gpu_inventory` answered (NVML loads on first use): "
        f"**{_ms(run.cold_start_ms)}** (of which spawn → `initialize` answered: {_ms(run.initialize_ms)}); "
        f"`agent check`: {_ms(run.check_ms)} (exit {run.check_exit})"
        + (f"; release build: {run.build_s:.0f} s" if run.build_s is not None else "")
        + ".",
        "",
        f"| tool | first call¹ | next {WARM_CALLS}: median | max | result size |",
        "|---|---|---|---|---|",
    ]
    for t in run.tools:
        median = _ms(statistics.median(t.warm_ms)) if t.warm_ms else "-"
        worst = _ms(max(t.warm_ms)) if t.warm_ms else "-"
        lines.append(f"| `{t.name}` | {_ms(t.first_ms)} | {median} | {worst} | {t.size_bytes} B |")
    lines += ["", "¹ after the cold-start inventory call, so NVML is already loaded.", "", "## Tool results", ""]
    for t in run.tools:
        lines.append(f"- `{t.name}`{' (isError)' if t.is_error else ''}: {t.summary}")
    unavailable = unavailable_summary(inventory)
    lines += ["", "## Values the driver did not report", ""]
    lines += [f"- {u}" for u in unavailable] or ["- none"]
    if run.check_stderr.strip():
        lines += ["", f"`agent check` stderr: `{run.check_stderr.strip()}`"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------
# Driving the agent (I/O)


class Agent:
    """The agent on stdio: one JSON-RPC message per line."""

    def __init__(self, argv: list[str]):
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        threading.Thread(target=self._pump_stderr, daemon=True).start()
        self.next_id = 0

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        msg_id = self.next_id
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"no reply to {method} within {REPLY_TIMEOUT_S:.0f} s") from None
            if line is None:
                raise RuntimeError(f"the agent exited during {method}: {''.join(self.stderr)[-2000:]}")
            reply = json.loads(line)
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method} failed: {reply['error']}")
                return reply["result"]

    def send(self, msg: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def run_agent(agent: str, agent_args: list[str]) -> tuple[Run, dict[str, Any]]:
    base = [agent, "--nvml-mode=real", "--log-level=warn", *agent_args]
    version = subprocess.run(
        [agent, "--version"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
    ).stdout.strip()

    t0 = time.perf_counter()
    check = subprocess.run(
        [agent, "check", "--nvml-mode=real", *agent_args], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
    )
    check_ms = (time.perf_counter() - t0) * 1000

    t0 = time.perf_counter()
    session = Agent(base)
    inventory: dict[str, Any] = {}
    try:
        session.request(
            "initialize",
            {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "gpu-check", "version": "1"}},
        )
        initialize_ms = (time.perf_counter() - t0) * 1000
        session.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        session.request("tools/call", {"name": "get_gpu_inventory", "arguments": {}})
        cold_ms = (time.perf_counter() - t0) * 1000
        run = Run(version, None, initialize_ms, cold_ms, check_ms, check.returncode, check.stderr)
        tools = [t["name"] for t in session.request("tools/list", {})["tools"]]
        for name in tools:
            t0 = time.perf_counter()
            result = session.request("tools/call", {"name": name, "arguments": {}})
            first = (time.perf_counter() - t0) * 1000
            warm = []
            for _ in range(WARM_CALLS):
                t0 = time.perf_counter()
                session.request("tools/call", {"name": name, "arguments": {}})
                warm.append((time.perf_counter() - t0) * 1000)
            if name == "get_gpu_inventory":
                if result.get("isError"):
                    raise RuntimeError("get_gpu_inventory failed: " + tool_summary(name, result))
                inventory = result.get("structuredContent") or {}
            run.tools.append(
                ToolRun(name, first, warm, bool(result.get("isError")), len(json.dumps(result)), tool_summary(name, result))
            )
    finally:
        session.close()
    return run, inventory


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", required=True, help="the agent binary")
    parser.add_argument("--nvidia-smi-xml", help="read this saved `nvidia-smi -q -x` output instead of running it")
    parser.add_argument("--out", help="also write the report to this file")
    parser.add_argument("--build-seconds", type=float, help="how long the build took (for the report)")
    parser.add_argument("agent_args", nargs="*", help="extra agent flags, after `--` (e.g. --nvml-lib PATH)")
    args = parser.parse_args(argv)

    try:
        if args.nvidia_smi_xml:
            with open(args.nvidia_smi_xml, encoding="utf-8") as f:
                xml_text = f.read()
        else:
            xml_text = subprocess.run(
                ["nvidia-smi", "-q", "-x"], capture_output=True, text=True, check=True, timeout=COMMAND_TIMEOUT_S
            ).stdout
        smi = parse_smi_xml(xml_text)
        run, inventory = run_agent(args.agent, args.agent_args)
    except (OSError, RuntimeError, subprocess.SubprocessError, ET.ParseError) as e:
        print(f"gpu-check: cannot run the check: {e}", file=sys.stderr)
        return 2
    run.build_s = args.build_seconds
    checks = compare(smi, inventory)
    report = render(smi, inventory, checks, run, platform.node())
    sys.stdout.write(report)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(report)
    failed = [c for c in checks if not c.ok]
    if run.check_exit != 0:
        print(f"gpu-check: `agent check` exited {run.check_exit}", file=sys.stderr)
    return 1 if failed or run.check_exit != 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
