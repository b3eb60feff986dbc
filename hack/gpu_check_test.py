"""Tests of hack/gpu_check.py's pure parts: nvidia-smi XML parsing (current and older schemas), the
cross-check rules and the report. Run: python3 -m unittest discover -s hack -p 'gpu_check_test.py'."""

import copy
import os
import unittest

import gpu_check as gc

HERE = os.path.dirname(os.path.abspath(__file__))
H100_XML = os.path.join(HERE, "testdata", "nvidia-smi-q-x-hgx-h100.xml")

# A V100 on driver 470: power under <power_readings> with <power_limit>/<enforced_power_limit>, no slowdown
# threshold element, MIG not applicable, a process running.
OLD_SCHEMA_XML = """<?xml version="1.0" ?>
<nvidia_smi_log>
  <driver_version>470.256.02</driver_version>
  <cuda_version>11.4</cuda_version>
  <attached_gpus>1</attached_gpus>
  <gpu id="00000000:06:00.0">
    <product_name>Tesla V100-SXM2-32GB</product_name>
    <persistence_mode>Disabled</persistence_mode>
    <mig_mode><current_mig>N/A</current_mig><pending_mig>N/A</pending_mig></mig_mode>
    <serial>0323118000101</serial>
    <uuid>GPU-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0</uuid>
    <vbios_version>88.00.80.00.01</vbios_version>
    <pci>
      <pci_bus_id>00000000:06:00.0</pci_bus_id>
      <pci_gpu_link_info>
        <pcie_gen><max_link_gen>3</max_link_gen><current_link_gen>3</current_link_gen></pcie_gen>
        <link_widths><max_link_width>16x</max_link_width><current_link_width>16x</current_link_width></link_widths>
      </pci_gpu_link_info>
    </pci>
    <fb_memory_usage><total>32768 MiB</total><used>300 MiB</used><free>32468 MiB</free></fb_memory_usage>
    <compute_mode>Exclusive_Process</compute_mode>
    <ecc_mode><current_ecc>Enabled</current_ecc><pending_ecc>Enabled</pending_ecc></ecc_mode>
    <temperature>
      <gpu_temp>41 C</gpu_temp>
      <gpu_temp_max_threshold>90 C</gpu_temp_max_threshold>
      <gpu_temp_max_gpu_threshold>87 C</gpu_temp_max_gpu_threshold>
    </temperature>
    <power_readings>
      <power_state>P0</power_state>
      <power_draw>57.12 W</power_draw>
      <power_limit>300.00 W</power_limit>
      <enforced_power_limit>300.00 W</enforced_power_limit>
    </power_readings>
    <max_clocks><sm_clock>1530 MHz</sm_clock><mem_clock>877 MHz</mem_clock></max_clocks>
  </gpu>
</nvidia_smi_log>
"""


def agent_inventory(smi):
    """The inventory a correct agent would report for `smi`."""
    gpus = []
    for i, g in enumerate(smi["gpus"]):
        gpus.append(
            {
                "index": i,
                "pci_bus_id": g["pci_bus_id"],
                "name": g["name"],
                "uuid": g["uuid"],
                "serial": g["serial"],
                "vbios_version": g["vbios_version"],
                "memory_total_bytes": int(g["memory_total_mib"]) * 2**20 + 12345,
                "temperature_c": int(g["temperature_c"]) + 1,
                "temperature_slowdown_c": g["temperature_slowdown_c"],
                "temperature_shutdown_c": g["temperature_shutdown_c"],
                "power_draw_watts": g["power_draw_watts"] + 3.0,
                "power_limit_watts": g["power_limit_watts"],
                "clock_sm_max_mhz": g["clock_sm_max_mhz"],
                "clock_memory_max_mhz": g["clock_memory_max_mhz"],
                "pcie_gen_max": g["pcie_gen_max"],
                "pcie_width_max": g["pcie_width_max"],
                "persistence_mode_enabled": g["persistence_mode_enabled"],
                "ecc_enabled": g["ecc_enabled"],
                "mig_mode_enabled": g["mig_mode_enabled"],
                "compute_mode": g["compute_mode"].lower(),
                "unavailable": {},
            }
        )
    return {
        "data_source": "nvml",
        "driver_version": smi["driver_version"],
        "cuda_driver_version": smi["cuda_version"],
        "device_count": len(gpus),
        "gpus": gpus,
        "unavailable": {},
    }


class Parsing(unittest.TestCase):
    def test_quantities_and_not_available(self):
        self.assertEqual(gc.quantity("81559 MiB"), 81559.0)
        self.assertEqual(gc.quantity("71.52 W"), 71.52)
        self.assertEqual(gc.quantity("16x"), 16.0)
        self.assertEqual(gc.quantity("0 %"), 0.0)
        for na in ("N/A", "[N/A]", "", None, "Unknown Error", "[Not Supported]"):
            self.assertIsNone(gc.quantity(na), na)

    def test_pci_ids_compare_numerically(self):
        self.assertEqual(gc.pci_key("00000000:3B:00.0"), gc.pci_key("0000:3b:00.0"))
        self.assertEqual(gc.pci_key("3b:00.0"), (0, 0x3B, 0, 0))
        self.assertNotEqual(gc.pci_key("0000:3b:00.0"), gc.pci_key("0000:b3:00.0"))
        self.assertIsNone(gc.pci_key("garbage"))
        self.assertIsNone(gc.pci_key(None))

    def test_current_schema_h100(self):
        with open(H100_XML, encoding="utf-8") as f:
            smi = gc.parse_smi_xml(f.read())
        self.assertEqual(smi["driver_version"], "550.54.15")
        self.assertEqual(smi["cuda_version"], "12.4")
        self.assertEqual(smi["attached_gpus"], 8)
        self.assertEqual(len(smi["gpus"]), 8)
        g = smi["gpus"][3]
        self.assertEqual(g["pci_bus_id"], "00000000:5D:00.0")
        self.assertEqual(g["name"], "NVIDIA H100 80GB HBM3")
        self.assertEqual(g["uuid"], "GPU-5f3b8a1e-2c4d-4e6f-8a9b-0c1d2e3f4a53")
        self.assertEqual(g["memory_total_mib"], 81559)
        self.assertEqual(g["temperature_slowdown_c"], 87)
        self.assertEqual(g["temperature_shutdown_c"], 92)
        self.assertEqual(g["power_draw_watts"], 73.35)
        self.assertEqual(g["power_limit_watts"], 700)
        self.assertEqual((g["clock_sm_max_mhz"], g["clock_memory_max_mhz"]), (1980, 2619))
        self.assertEqual((g["pcie_gen_max"], g["pcie_width_max"]), (5, 16))
        self.assertEqual(
            (g["persistence_mode_enabled"], g["ecc_enabled"], g["mig_mode_enabled"]), (True, True, False)
        )
        self.assertEqual(g["compute_mode"], "Default")

    def test_older_schema_v100(self):
        smi = gc.parse_smi_xml(OLD_SCHEMA_XML)
        g = smi["gpus"][0]
        self.assertEqual(g["power_draw_watts"], 57.12)
        self.assertEqual(g["power_limit_watts"], 300)
        self.assertIsNone(g["temperature_slowdown_c"])
        self.assertEqual(g["temperature_shutdown_c"], 90)
        self.assertIsNone(g["mig_mode_enabled"])
        self.assertEqual(g["compute_mode"], "Exclusive_Process")


class CrossCheck(unittest.TestCase):
    def setUp(self):
        with open(H100_XML, encoding="utf-8") as f:
            self.smi = gc.parse_smi_xml(f.read())
        self.inventory = agent_inventory(self.smi)

    def failed(self, inventory):
        return [(c.gpu, c.field) for c in gc.compare(self.smi, inventory) if not c.ok]

    def test_a_correct_agent_passes_every_check_within_tolerance(self):
        checks = gc.compare(self.smi, self.inventory)
        self.assertEqual(self.failed(self.inventory), [])
        self.assertEqual(len(checks), 3 + 8 * 19)

    def test_exact_fields_fail_on_any_difference(self):
        inv = copy.deepcopy(self.inventory)
        inv["gpus"][2]["uuid"] = "GPU-other"
        inv["gpus"][5]["memory_total_bytes"] = 81558 * 2**20
        inv["driver_version"] = "550.54.14"
        self.assertEqual(
            self.failed(inv), [("node", "driver_version"), ("2", "uuid"), ("5", "memory_total_mib")]
        )

    def test_tolerances_bound_moving_values(self):
        inv = copy.deepcopy(self.inventory)
        inv["gpus"][0]["temperature_c"] = self.smi["gpus"][0]["temperature_c"] + 6
        inv["gpus"][1]["power_draw_watts"] = self.smi["gpus"][1]["power_draw_watts"] + 25
        inv["gpus"][2]["power_limit_watts"] = 650.0
        self.assertEqual(
            self.failed(inv), [("0", "temperature_c"), ("1", "power_draw_watts"), ("2", "power_limit_watts")]
        )

    def test_gpus_match_by_pci_id_and_a_missing_or_unreadable_one_fails(self):
        inv = copy.deepcopy(self.inventory)
        inv["gpus"].reverse()
        self.assertEqual(self.failed(inv), [])
        lost = inv["gpus"].pop()
        inv["gpus"].append({"index": lost["index"], "error": "GPU_IS_LOST", "unavailable": {}})
        self.assertIn(("00000000:18:00.0", "pci_bus_id"), self.failed(inv))
        inv = copy.deepcopy(self.inventory)
        del inv["gpus"][4]["serial"]
        inv["gpus"][4]["unavailable"]["serial"] = {"code": "NO_PERMISSION", "reason": "denied"}
        checks = [c for c in gc.compare(self.smi, inv) if not c.ok]
        self.assertEqual([(c.gpu, c.field, c.agent) for c in checks], [("4", "serial", "unavailable (NO_PERMISSION)")])

    def test_values_both_sides_cannot_read_agree(self):
        smi = gc.parse_smi_xml(OLD_SCHEMA_XML)
        inv = agent_inventory(smi)
        del inv["gpus"][0]["mig_mode_enabled"]
        inv["gpus"][0]["unavailable"]["mig_mode_enabled"] = {"code": "NOT_SUPPORTED", "reason": "x"}
        inv["gpus"][0]["temperature_slowdown_c"] = 87
        failed = [(c.field, c.agent) for c in gc.compare(smi, inv) if not c.ok]
        # nvidia-smi 470 does not print the slowdown threshold: reported, not hidden.
        self.assertEqual(failed, [("temperature_slowdown_c", 87)])
        mig = [c for c in gc.compare(smi, inv) if c.field == "mig_mode_enabled"][0]
        self.assertTrue(mig.ok)
        self.assertEqual(mig.note, "both unavailable")


class Report(unittest.TestCase):
    def test_report_lists_mismatches_timings_and_unavailable_values(self):
        with open(H100_XML, encoding="utf-8") as f:
            smi = gc.parse_smi_xml(f.read())
        inv = agent_inventory(smi)
        inv["gpus"][2]["temperature_c"] = 88
        inv["gpus"][7]["unavailable"]["processes"] = {"code": "NO_PERMISSION", "reason": "denied"}
        checks = gc.compare(smi, inv)
        run = gc.Run("agent 0.1.0", 95.0, 3.2, 41.5, 30.2, 0, "")
        run.tools.append(gc.ToolRun("get_gpu_inventory", 12.0, [3.0, 4.0, 5.0], False, 16000, "device_count=8"))
        text = gc.render(smi, inv, checks, run, "gpu-node-1")
        self.assertIn("# GPU check: 8x NVIDIA H100 80GB HBM3", text)
        self.assertIn("**154/155 passed**, **1 failed**", text)
        self.assertIn("| 2 | temperature_c | 33 | 88 |", text)
        self.assertIn("answered (NVML loads on first use): **41.5 ms** (of which spawn → `initialize` answered: 3.2 ms)", text)
        self.assertIn("| `get_gpu_inventory` | 12.0 ms | 4.0 ms | 5.0 ms | 16000 B |", text)
        self.assertIn("- processes: NO_PERMISSION (GPUs 7)", text)
        self.assertIn("release build: 95 s", text)


if __name__ == "__main__":
    unittest.main()
