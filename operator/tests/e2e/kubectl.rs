//! Scenario 12 and the kubectl workflows: the example config (`examples/gpudiagnosticsconfig.yaml`
//! and the README's copy of it) applies verbatim against the CRD the operator installs itself;
//! `kubectl apply --server-side`, `kubectl get gdc -o yaml` and `kubectl delete` work on configs.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use test_apiserver::Config;

use crate::fixtures::{NAMESPACE, crd, gpu_node, runtime_class};
use crate::harness::{CONVERGE, Cluster, agent_container, env_value, has_condition};

const CRD_NAME: &str = "gpudiagnosticsconfigs.gpu.k8s-mcp-agent.io";
/// First line of the README block scenario 12 applies.
const EXAMPLE_FIRST_LINE: &str = "apiVersion: gpu.k8s-mcp-agent.io/v1alpha1";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The first ```yaml block of README.md whose first line is [`EXAMPLE_FIRST_LINE`].
fn readme_example() -> Option<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "```yaml" {
            let block: Vec<&str> = lines
                .by_ref()
                .take_while(|l| !l.trim_start().starts_with("```"))
                .collect();
            if block.first().map(|l| l.trim_end()) == Some(EXAMPLE_FIRST_LINE) {
                return Some(block.join("\n") + "\n");
            }
        }
    }
    None
}

/// A cluster with a RuntimeClass and one GPU node, whose CRD the operator installs at start-up.
fn cluster_without_crd() -> Cluster {
    let cluster = Cluster::start(
        Config::default().objects([runtime_class("nvidia"), gpu_node("gpu-a")]),
        &[],
    );
    cluster.wait("the operator's CRD to be Established", CONVERGE, |s| {
        let crd = s.get_object(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            CRD_NAME,
        )?;
        crd["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
            .then_some(())
    });
    cluster
}

/// Applies `manifest` with `kubectl apply -f` and waits until the operator has resolved the
/// config it names.
fn apply_and_wait(cluster: &Cluster, file: &Path, manifest: &str) -> Value {
    let object: Value = serde_yaml::from_str(manifest).expect("the example is YAML");
    let name = object["metadata"]["name"]
        .as_str()
        .expect("the example names its config");
    let applied = cluster.kubectl_ok(&["apply", "-f", &file.display().to_string()]);
    assert!(
        applied.contains(&format!("gpudiagnosticsconfig.gpu.k8s-mcp-agent.io/{name}")),
        "{applied}"
    );
    cluster.wait_status(name, "resolved", |s| s["mode"] == "RuntimeClass")
}

#[test]
fn the_example_config_file_applies_verbatim() {
    let file = repo_root().join("examples/gpudiagnosticsconfig.yaml");
    let manifest =
        std::fs::read_to_string(&file).expect("examples/gpudiagnosticsconfig.yaml exists");
    assert!(
        manifest.starts_with(EXAMPLE_FIRST_LINE),
        "examples/gpudiagnosticsconfig.yaml starts with `{EXAMPLE_FIRST_LINE}`"
    );
    let cluster = cluster_without_crd();
    apply_and_wait(&cluster, &file, &manifest);
    cluster.stop_operator();
}

#[test]
fn the_readme_example_config_applies_verbatim_and_matches_the_example_file() {
    let Some(block) = readme_example() else {
        // A README without the install section passes only while there is no Helm chart; with the
        // chart the block is required.
        let chart = repo_root().join("deployment/helm/k8s-mcp-agent/Chart.yaml");
        assert!(
            !chart.exists(),
            "README.md has no ```yaml block starting with `{EXAMPLE_FIRST_LINE}`: add the example \
             GpuDiagnosticsConfig (the content of examples/gpudiagnosticsconfig.yaml) to the README's usage section"
        );
        eprintln!(
            "NOTICE: README.md has no example GpuDiagnosticsConfig block yet (required once the chart lands)"
        );
        return;
    };
    let example = std::fs::read_to_string(repo_root().join("examples/gpudiagnosticsconfig.yaml"))
        .expect("examples/gpudiagnosticsconfig.yaml exists");
    let parse = |text: &str| serde_yaml::from_str::<Value>(text).expect("YAML");
    assert_eq!(
        parse(&block),
        parse(&example),
        "README.md's example config and examples/gpudiagnosticsconfig.yaml differ"
    );
    let cluster = cluster_without_crd();
    let file = cluster.dir().join("readme-example.yaml");
    std::fs::write(&file, &block).expect("the README block is written out");
    apply_and_wait(&cluster, &file, &block);
    cluster.stop_operator();
}

#[test]
fn kubectl_server_side_apply_get_yaml_and_delete_of_a_config() {
    let cluster = Cluster::start(
        Config::default().objects([crd(), runtime_class("nvidia"), gpu_node("gpu-a")]),
        &[],
    );
    let file = cluster.dir().join("config.yaml");
    let manifest = |log_level: &str| {
        format!(
            "apiVersion: gpu.k8s-mcp-agent.io/v1alpha1\nkind: GpuDiagnosticsConfig\nmetadata:\n  name: ssa\n\
             spec:\n  agent:\n    logLevel: {log_level}\n"
        )
    };
    std::fs::write(&file, manifest("info")).expect("manifest written");
    let applied =
        cluster.kubectl_ok(&["apply", "--server-side", "-f", &file.display().to_string()]);
    assert!(
        applied.contains("gpudiagnosticsconfig.gpu.k8s-mcp-agent.io/ssa serverside-applied"),
        "{applied}"
    );
    cluster.wait_status("ssa", "Ready is reported", |s| {
        s["mode"] == "RuntimeClass" && has_condition(s, "Ready", "False", "RolloutInProgress")
    });

    // kubectl shows the status the operator wrote, and the defaults the CRD filled in.
    let shown: Value =
        serde_yaml::from_str(&cluster.kubectl_ok(&["get", "gdc", "ssa", "-o", "yaml"]))
            .expect("kubectl prints YAML");
    assert_eq!(shown["status"]["mode"], "RuntimeClass", "{shown:#}");
    let types: Vec<&str> = shown["status"]["conditions"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["type"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        types,
        ["GpuAccessResolved", "Ready", "Degraded"],
        "{shown:#}"
    );
    assert_eq!(
        shown["status"]["daemonSet"],
        json!({"namespace": NAMESPACE, "name": "k8s-mcp-agent-ssa"})
    );
    assert_eq!(
        shown["spec"]["namespace"]["name"], NAMESPACE,
        "CRD defaults: {shown:#}"
    );

    // The spec stays kubectl's, the status the operator's: a second server-side apply with a
    // change succeeds without --force-conflicts and the agent follows it.
    let managers: Vec<(String, String)> =
        cluster.config("ssa").expect("ssa")["metadata"]["managedFields"]
            .as_array()
            .map(|fields| {
                fields
                    .iter()
                    .map(|f| {
                        (
                            f["manager"].as_str().unwrap_or_default().to_owned(),
                            f["subresource"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
    assert!(
        managers.contains(&("kubectl".into(), String::new())),
        "{managers:?}"
    );
    assert!(
        managers.contains(&("k8s-mcp-agent-operator".into(), "status".into())),
        "{managers:?}"
    );
    std::fs::write(&file, manifest("debug")).expect("manifest written");
    cluster.kubectl_ok(&["apply", "--server-side", "-f", &file.display().to_string()]);
    cluster.wait_daemon_set("ssa", "AGENT_LOG_LEVEL=debug", |ds| {
        env_value(agent_container(ds), "AGENT_LOG_LEVEL") == Some("debug")
    });

    let deleted = cluster.kubectl_ok(&["delete", "-f", &file.display().to_string()]);
    assert!(deleted.contains("\"ssa\" deleted"), "{deleted}");
    cluster.wait("the config and its DaemonSet gone", CONVERGE, |_| {
        (cluster.config("ssa").is_none() && cluster.daemon_set("ssa").is_none()).then_some(())
    });
    let listed = cluster.kubectl(&["get", "gdc"]);
    assert!(listed.status.success());
    assert!(
        String::from_utf8_lossy(&listed.stderr).contains("No resources found"),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    cluster.stop_operator();
}
