//! Shared helpers: CRD fixtures and locating the CLI tools `hack/install-test-tools.sh` installs.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{Value, json};

/// A cluster-scoped CRD with a status subresource, defaults, a list-map and printer columns, shaped like
/// the operator's `GpuDiagnosticsConfig`.
pub fn config_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gpudiagnosticsconfigs.gpu.example.com"},
        "spec": {
            "group": "gpu.example.com",
            "scope": "Cluster",
            "names": {"plural": "gpudiagnosticsconfigs", "singular": "gpudiagnosticsconfig", "kind": "GpuDiagnosticsConfig", "shortNames": ["gdc"]},
            "versions": [{
                "name": "v1alpha1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "mode": {"type": "string", "default": "Auto"},
                        "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"}}
                    }},
                    "status": {"type": "object", "properties": {
                        "mode": {"type": "string"},
                        "desired": {"type": "integer"},
                        "observedGeneration": {"type": "integer"},
                        "conditions": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
                            "items": {"type": "object", "properties": {"type": {"type": "string"}, "status": {"type": "string"}, "reason": {"type": "string"}}}}
                    }}
                }}},
                "additionalPrinterColumns": [
                    {"name": "Mode", "type": "string", "jsonPath": ".status.mode"},
                    {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                    {"name": "Desired", "type": "integer", "jsonPath": ".status.desired"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                ]
            }]
        }
    })
}

/// A CLI tool from `.tools/` (or the path in `env_override`); `None` with a message when it is missing,
/// so developers without the tools still get a green `cargo test` while CI, which installs them, runs it.
pub fn tool(name: &str, env_override: &str) -> Option<PathBuf> {
    let path = std::env::var_os(env_override)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../.tools")
                .join(name)
        });
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: {name} not found at {} — run hack/install-test-tools.sh (or set {env_override}); CI installs it",
            path.display()
        );
        None
    }
}

/// Runs a tool with `KUBECONFIG` pointing at the server and a private HOME, returning its output.
pub fn run(
    tool: &PathBuf,
    kubeconfig: &std::path::Path,
    home: &std::path::Path,
    args: &[&str],
) -> Output {
    Command::new(tool)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("HELM_CACHE_HOME", home.join("helm-cache"))
        .env("HELM_CONFIG_HOME", home.join("helm-config"))
        .env("HELM_DATA_HOME", home.join("helm-data"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()))
}

/// Runs a tool and insists on success; returns stdout.
pub fn ok(
    tool: &PathBuf,
    kubeconfig: &std::path::Path,
    home: &std::path::Path,
    args: &[&str],
) -> String {
    let output = run(tool, kubeconfig, home, args);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{} {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
        tool.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A scratch folder removed at drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A fresh, empty folder named for the test.
    pub fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("test-apiserver-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("scratch folder");
        Self(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
