"""The benchmark's Python peer: what a team would write in an afternoon instead of the agent.

An MCP server on stdio built with the official `mcp` SDK (v2's MCPServer, formerly FastMCP) that serves
`get_gpu_inventory` from the same fixture YAML as the agent's mock backend, in the same JSON shape.
Plain and idiomatic on purpose: PyYAML loads the file once, each call builds the inventory from it.

Usage: python inventory_server.py FIXTURE.yaml
"""

import sys
from typing import Any

import yaml
from mcp.server.mcpserver import MCPServer

FIXTURE_PATH = sys.argv[1]
with open(FIXTURE_PATH, encoding="utf-8") as f:
    FIXTURE = yaml.safe_load(f)

mcp = MCPServer("gpu-inventory-py", version="0.1.0")


def gpu_entry(index: int, gpu: dict[str, Any]) -> dict[str, Any]:
    """One GPU of the inventory: the fixture's defaults overlaid with the GPU's own values."""
    g = {**FIXTURE.get("gpu_defaults", {}), **gpu}
    memory = g["memory"]
    links = g.get("nvlink", {}).get("links", 0)
    return {
        "index": index,
        "name": g["name"],
        "uuid": g["uuid"],
        "serial": g["serial"],
        "architecture": g["architecture"],
        "pci_bus_id": g["pci"]["bus_id"],
        "pci_device_id": f"0x{g['pci']['device_id']:08X}",
        "compute_capability": g["compute_capability"],
        "vbios_version": g["vbios_version"],
        "memory_total_bytes": memory["total_bytes"],
        "memory_used_bytes": memory["used_bytes"],
        "memory_free_bytes": memory["total_bytes"] - memory["used_bytes"],
        "temperature_c": g["temperature_c"],
        "temperature_slowdown_c": g["temperature_slowdown_c"],
        "temperature_shutdown_c": g["temperature_shutdown_c"],
        "power_draw_watts": g["power_draw_watts"],
        "power_limit_watts": g["power_limit_watts"],
        "clock_sm_mhz": g["clock_sm_mhz"],
        "clock_memory_mhz": g["clock_memory_mhz"],
        "clock_sm_max_mhz": g["clock_sm_max_mhz"],
        "clock_memory_max_mhz": g["clock_memory_max_mhz"],
        "utilization_gpu_percent": g["utilization"]["gpu_percent"],
        "utilization_memory_percent": g["utilization"]["memory_percent"],
        "pcie_gen_current": g["pcie_gen_current"],
        "pcie_gen_max": g["pcie_gen_max"],
        "pcie_width_current": g["pcie_width_current"],
        "pcie_width_max": g["pcie_width_max"],
        "persistence_mode_enabled": g["persistence_mode"],
        "mig_mode_enabled": g["mig_mode"]["current"],
        "mig_mode_pending": g["mig_mode"]["pending"],
        "compute_mode": g["compute_mode"],
        "ecc_enabled": g["ecc_enabled"],
        "nvlink_links_total": links,
        "nvlink_links_active": links,
        "processes": [{"pid": p["pid"], "used_memory_bytes": p["used_memory_bytes"]} for p in g["processes"]],
        "unavailable": {},
    }


@mcp.tool()
def get_gpu_inventory() -> dict[str, Any]:
    """List this node's NVIDIA GPUs and their current state."""
    node = FIXTURE["node"]
    gpus = [gpu_entry(i, gpu) for i, gpu in enumerate(FIXTURE["gpus"])]
    return {
        "data_source": f"mock-fixture:{FIXTURE_PATH}",
        "driver_version": node["driver_version"],
        "cuda_driver_version": node["cuda_driver_version"],
        "nvml_version": node["nvml_version"],
        "device_count": len(gpus),
        "gpus": gpus,
        "unavailable": {},
    }


if __name__ == "__main__":
    mcp.run()
