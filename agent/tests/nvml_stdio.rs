//! The real `agent` binary on its real NVML path, over stdio, against the fake `libnvidia-ml`: every tool's
//! `structuredContent` equals the mock path's for the same fixture; a missing library, unsupported or
//! failing reads and lost GPUs are reported as users need; `agent check` exit codes.

mod common;
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{AGENT, Session, text_of};
use gpu_fixture::{Fixture, builtin_names};
use serde_json::{Value, json};
use support::fake_nvml::{self, pci_sysfs};
use support::frozen::{fixture_yaml, freeze_counters, mask_timestamps};

const PROTOCOL: &str = "2025-06-18";

/// The fixtures beyond the built-in scenarios.
const FIXTURE_FILES: &[&str] = &[
    "v100-retired-pages-and-processes.yaml",
    "l4-restricted-container.yaml",
    "h100-handle-lost-and-absent.yaml",
];

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// One node situation, written where both paths can read it.
struct Case {
    label: String,
    fixture_file: PathBuf,
    kmsg_file: PathBuf,
    sysfs: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

impl Case {
    /// Writes `fixture` with its growing counters frozen at their starting values (the mock and the fake
    /// start at different instants; frozen, both paths must agree exactly), its kernel log as a
    /// `dmesg --raw` file, and a sysfs PCI tree listing its GPUs.
    fn new(label: &str, mut fixture: Fixture) -> Case {
        for gpu in &mut fixture.gpus {
            freeze_counters(gpu);
        }
        let dir = tempfile::tempdir().unwrap();
        let fixture_file = dir.path().join("fixture.yaml");
        std::fs::write(&fixture_file, fixture_yaml(&fixture)).unwrap();
        let kmsg_file = dir.path().join("kmsg.log");
        std::fs::write(&kmsg_file, fixture.kernel_log.join("\n") + "\n").unwrap();
        // The frozen file must describe the same node.
        let reread = Fixture::from_path(&fixture_file).unwrap();
        assert_eq!(reread.gpus, fixture.gpus, "{label}: fixture round trip");
        Case {
            label: label.to_string(),
            sysfs: pci_sysfs(&fixture),
            fixture_file,
            kmsg_file,
            _dir: dir,
        }
    }

    fn mock(&self) -> Session {
        let fixture = self.fixture_file.to_str().unwrap();
        let kmsg = self.kmsg_file.to_str().unwrap();
        Session::start(&[
            "--nvml-mode=mock",
            "--mock-fixture",
            fixture,
            "--kmsg-path",
            kmsg,
            "--log-level=warn",
        ])
    }

    fn real(&self) -> Session {
        real_session(
            self.fixture_file.to_str().unwrap(),
            &["--kmsg-path", self.kmsg_file.to_str().unwrap()],
            self.sysfs.path(),
        )
    }
}

/// `agent --nvml-mode=real --nvml-lib <fake>` serving `spec` (a fixture path or `builtin:<name>`).
fn real_session(spec: &str, extra: &[&str], sysfs: &Path) -> Session {
    let lib = fake_nvml::library().to_str().unwrap().to_string();
    let mut args = vec!["--nvml-mode=real", "--nvml-lib", &lib, "--log-level=warn"];
    args.extend_from_slice(extra);
    Session::start_with_env(
        &args,
        &[
            ("FAKE_NVML_FIXTURE", spec),
            ("AGENT_PCI_DEVICES_DIR", sysfs.to_str().unwrap()),
        ],
    )
}

/// Every tool the server lists, called without arguments: its `structuredContent` (or, for an error
/// result, the whole result).
fn call_every_tool(session: &mut Session) -> BTreeMap<String, Value> {
    session.initialize(PROTOCOL);
    let tools = session.request("tools/list", json!({}));
    let names: Vec<String> = tools["result"]["tools"]
        .as_array()
        .expect("tools/list lists tools")
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "get_gpu_inventory"), "{names:?}");
    names
        .into_iter()
        .map(|name| {
            let result = session.call_tool(&name, json!({}));
            let value = match result.get("structuredContent") {
                Some(content) => content.clone(),
                None => result,
            };
            (name, normalize(value))
        })
        .collect()
}

/// Removes what legitimately differs between the two paths: the `data_source` label, and wall-clock
/// times (each process converts the kernel log's since-boot stamps with the clocks it reads itself,
/// so they differ by microseconds), standalone or inside messages, and the kernel log's coverage
/// span measured up to "now".
fn normalize(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| k != "data_source")
                .map(|(k, v)| match (k.as_str(), v) {
                    ("coverage", Value::Object(mut c)) => {
                        c.remove("covered_seconds");
                        c.remove("description");
                        (k, normalize(Value::Object(c)))
                    }
                    (_, v) => (k, normalize(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        Value::String(s) => Value::String(mask_timestamps(&s)),
        other => other,
    }
}

fn all_cases() -> Vec<Case> {
    let builtins = builtin_names()
        .into_iter()
        .map(|name| Case::new(name, Fixture::builtin(name).unwrap()));
    let files = FIXTURE_FILES
        .iter()
        .map(|name| Case::new(name, Fixture::from_path(&fixture_path(name)).unwrap()));
    builtins.chain(files).collect()
}

#[test]
fn every_tool_answers_the_same_through_real_nvml_as_through_the_mock() {
    for case in all_cases() {
        let expected = call_every_tool(&mut case.mock());
        let actual = call_every_tool(&mut case.real());
        assert_eq!(
            actual.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "{}",
            case.label
        );
        for (tool, want) in &expected {
            assert_eq!(&actual[tool], want, "{}: {tool}", case.label);
        }
    }
}

#[test]
fn the_real_path_labels_its_data_nvml() {
    let case = Case::new("healthy", Fixture::builtin("healthy").unwrap());
    let mut s = case.real();
    s.initialize(PROTOCOL);
    let r = s.call_tool("get_gpu_inventory", json!({}));
    assert_eq!(r["structuredContent"]["data_source"], "nvml");
    assert_eq!(r["structuredContent"]["device_count"], 8);
    assert_eq!(r["structuredContent"]["gpus"][0]["power_draw_watts"], 71.52);
    assert_eq!(r["structuredContent"]["cuda_driver_version"], "12.4");
}

#[test]
fn a_missing_library_is_an_error_result_naming_it_and_the_likely_cause() {
    let mut s = Session::start(&[
        "--nvml-mode=real",
        "--nvml-lib",
        "/nonexistent/libnvidia-ml.so.1",
        "--log-level=error",
    ]);
    s.initialize(PROTOCOL);
    let r = s.call_tool("get_gpu_inventory", json!({}));
    assert_eq!(r["isError"], true, "{r}");
    let text = text_of(&r);
    for needle in [
        "/nonexistent/libnvidia-ml.so.1",
        "cannot open shared object file",
        "NVIDIA runtime",
        "runtimeClassName: nvidia",
        "--nvml-mode=mock",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in: {text}");
    }
    // The session survives for the next request.
    let again = s.call_tool("get_gpu_inventory", json!({}));
    assert_eq!(again["isError"], true);
}

#[test]
fn unsupported_and_failing_fields_are_reported_unavailable_and_the_gpu_stays_listed() {
    let path = fixture_path("l4-restricted-container.yaml");
    let sysfs = pci_sysfs(&Fixture::from_path(&path).unwrap());
    let mut s = real_session(path.to_str().unwrap(), &[], sysfs.path());
    s.initialize(PROTOCOL);
    let r = s.call_tool("get_gpu_inventory", json!({}));
    let inv = &r["structuredContent"];
    assert_eq!(inv["device_count"], 1, "{r}");
    let gpu = &inv["gpus"][0];
    assert_eq!(gpu["index"], 0);
    assert_eq!(gpu["uuid"], "GPU-1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809");
    assert!(gpu.get("name").is_none(), "{gpu}");
    assert!(gpu.get("nvlink_links_total").is_none(), "{gpu}");
    let unavailable = &gpu["unavailable"];
    assert_eq!(unavailable["name"]["code"], "UNKNOWN", "{gpu}");
    assert_eq!(unavailable["serial"]["code"], "NO_PERMISSION", "{gpu}");
    assert_eq!(
        unavailable["temperature_shutdown_c"]["code"],
        "NOT_SUPPORTED"
    );
    assert_eq!(
        unavailable["utilization_gpu_percent"]["code"],
        "INSUFFICIENT_RESOURCES"
    );
    let nvlink = unavailable["nvlink_links_total"]["reason"]
        .as_str()
        .unwrap();
    assert!(nvlink.contains("not supported"), "{nvlink}");
    assert_eq!(inv["unavailable"]["nvml_version"]["code"], "NOT_SUPPORTED");
}

#[test]
fn a_lost_gpu_is_listed_with_its_error_and_fails_health_naming_it() {
    let case = Case::new(
        "fallen-off-bus",
        Fixture::builtin("fallen-off-bus").unwrap(),
    );
    let mut s = case.real();
    let results = call_every_tool(&mut s);
    let lost = &results["get_gpu_inventory"]["gpus"][5];
    assert_eq!(lost["index"], 5, "{lost}");
    let error = lost["error"].as_str().unwrap_or_default();
    assert!(error.contains("GPU_IS_LOST"), "{lost}");
    let health = &results["get_gpu_health"];
    assert_eq!(health["verdict"], "FAIL", "{health}");
    let gpu5 = &health["gpus"][5];
    assert_eq!(
        (&gpu5["index"], &gpu5["verdict"]),
        (&json!(5), &json!("FAIL"))
    );
    let finding = &gpu5["findings"][0];
    assert_eq!(finding["check"], "gpu.lost", "{gpu5}");
    assert_eq!(finding["evidence"]["nvml_error"], "NVML_ERROR_GPU_IS_LOST");
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("GPU 5 is lost"),
        "{finding}"
    );
}

#[test]
fn a_gpu_missing_from_nvml_but_on_the_pci_bus_fails_health() {
    let name = "h100-handle-lost-and-absent.yaml";
    let case = Case::new(name, Fixture::from_path(&fixture_path(name)).unwrap());
    let mut s = case.real();
    s.initialize(PROTOCOL);
    let r = s.call_tool("get_gpu_health", json!({}));
    let health = &r["structuredContent"];
    assert_eq!(health["verdict"], "FAIL", "{r}");
    let mismatch = health["node"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "gpu.count_mismatch")
        .unwrap_or_else(|| panic!("no gpu.count_mismatch finding: {health}"));
    assert_eq!(mismatch["evidence"]["nvml_device_count"], 7);
    assert_eq!(mismatch["evidence"]["pci_gpu_functions"], 8);
    assert_eq!(health["gpus"][2]["findings"][0]["check"], "gpu.lost");
}

/// `agent check` with `args` and `env`: exit code and stderr.
fn check(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = std::process::Command::new(AGENT);
    cmd.arg("check").args(args).env_remove("AGENT_NVML_MODE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("agent check runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn agent_check_exit_codes_on_the_real_path() {
    let lib = fake_nvml::library().to_str().unwrap().to_string();
    let real = ["--nvml-lib", lib.as_str()];

    let (code, stderr) = check(&real, &[("FAKE_NVML_FIXTURE", "builtin:healthy")]);
    assert_eq!((code, stderr.as_str()), (0, ""));

    // A lost GPU is still a GPU NVML sees: the node is ready, health reports the loss.
    let (code, _) = check(&real, &[("FAKE_NVML_FIXTURE", "builtin:fallen-off-bus")]);
    assert_eq!(code, 0);

    let (code, stderr) = check(&["--nvml-lib", "/nonexistent/libnvidia-ml.so.1"], &[]);
    assert_eq!(code, 1);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("/nonexistent/libnvidia-ml.so.1"),
        "{stderr}"
    );
    assert!(stderr.contains("NVIDIA runtime"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, yaml: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, yaml).unwrap();
        p.to_str().unwrap().to_string()
    };
    let no_gpus = write(
        "no-gpus.yaml",
        "node: {driver_version: \"550.54.15\"}\ngpus: []",
    );
    let (code, stderr) = check(&real, &[("FAKE_NVML_FIXTURE", &no_gpus)]);
    assert_eq!(code, 1);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no GPU"), "{stderr}");

    let no_driver = write(
        "no-driver.yaml",
        "node: {init_error: DRIVER_NOT_LOADED}\ngpus: []",
    );
    let (code, stderr) = check(&real, &[("FAKE_NVML_FIXTURE", &no_driver)]);
    assert_eq!(code, 1);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("kernel driver is not loaded"), "{stderr}");
}
