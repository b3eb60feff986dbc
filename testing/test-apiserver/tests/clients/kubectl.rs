//! The real kubectl: client-side and server-side apply, get in every output format, selectors, delete.

use serde_json::{Value, json};
use test_apiserver::{Config, DraVersion, RequestMatch, TestApiServer, Verb};

use crate::common::{Scratch, config_crd, ok, run, tool};

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: gpu
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  namespace: gpu
  labels: {app: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      runtimeClassName: nvidia
      containers:
      - name: agent
        image: agent:1
        env: [{name: NVIDIA_VISIBLE_DEVICES, value: all}]
"#;

#[test]
fn kubectl_apply_get_and_delete() {
    let Some(kubectl) = tool("kubectl", "TEST_KUBECTL") else {
        return;
    };
    let scratch = Scratch::new("kubectl");
    let server = TestApiServer::start_blocking(Config::default().object(config_crd())).unwrap();
    let kubeconfig = server.kubeconfig_path();
    let kubectl_ok = |args: &[&str]| ok(&kubectl, kubeconfig, &scratch.0, args);
    let manifest = scratch.0.join("agent.yaml");
    std::fs::write(&manifest, MANIFESTS).unwrap();
    let manifest = manifest.to_str().unwrap();

    let out = kubectl_ok(&["apply", "-f", manifest]);
    assert!(
        out.contains("namespace/gpu created") && out.contains("daemonset.apps/agent created"),
        "{out}"
    );
    std::fs::write(
        scratch.0.join("agent.yaml"),
        MANIFESTS.replace("agent:1", "agent:2"),
    )
    .unwrap();
    let out = kubectl_ok(&["apply", "-f", manifest]);
    assert!(out.contains("daemonset.apps/agent configured"), "{out}");
    let image = kubectl_ok(&[
        "get",
        "ds",
        "agent",
        "-n",
        "gpu",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, "agent:2");
    let ds: Value = serde_json::from_str(&kubectl_ok(&[
        "get",
        "daemonset",
        "agent",
        "-n",
        "gpu",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(ds["metadata"]["generation"], 2);
    assert_eq!(
        ds["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"],
        "all"
    );

    let rc = scratch.0.join("rc.yaml");
    std::fs::write(&rc, "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: nvidia}\nhandler: nvidia\n").unwrap();
    let out = kubectl_ok(&["apply", "--server-side", "-f", rc.to_str().unwrap()]);
    assert!(
        out.contains("runtimeclass.node.k8s.io/nvidia serverside-applied"),
        "{out}"
    );
    let yaml = kubectl_ok(&[
        "get",
        "runtimeclass",
        "nvidia",
        "-o",
        "yaml",
        "--show-managed-fields",
    ]);
    assert!(
        yaml.contains("manager: kubectl") && yaml.contains("operation: Apply"),
        "{yaml}"
    );

    server
        .create_object(json!({"apiVersion": "gpu.example.com/v1alpha1", "kind": "GpuDiagnosticsConfig", "metadata": {"name": "default"},
            "status": {"mode": "RuntimeClass", "desired": 2, "conditions": [{"type": "Ready", "status": "True"}]}}))
        .unwrap();
    let table = kubectl_ok(&["get", "gdc"]);
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["NAME", "MODE", "READY", "DESIRED", "AGE"],
        "{table}"
    );
    assert_eq!(
        &lines[1][..4],
        ["default", "RuntimeClass", "True", "2"],
        "{table}"
    );

    for (name, node, app) in [
        ("a", "n1", "agent"),
        ("b", "n2", "agent"),
        ("c", "n1", "other"),
    ] {
        server
            .create_object(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "gpu", "labels": {"app": app}},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]}}))
            .unwrap();
    }
    let names = |args: &[&str]| {
        kubectl_ok(args)
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&["get", "pods", "-n", "gpu", "-l", "app=agent", "-o", "name"]),
        ["pod/a", "pod/b"]
    );
    assert_eq!(
        names(&[
            "get",
            "pods",
            "-n",
            "gpu",
            "--field-selector",
            "spec.nodeName=n1",
            "-o",
            "name"
        ]),
        ["pod/a", "pod/c"]
    );
    assert_eq!(
        names(&["get", "pods", "-A", "-l", "app notin (agent)", "-o", "name"]),
        ["pod/c"]
    );

    let out = kubectl_ok(&["delete", "daemonset", "agent", "-n", "gpu"]);
    assert!(out.contains("daemonset.apps \"agent\" deleted"), "{out}");
    let missing = run(
        &kubectl,
        kubeconfig,
        &scratch.0,
        &["get", "ds", "agent", "-n", "gpu"],
    );
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("Error from server (NotFound)") && stderr.contains("\"agent\" not found"),
        "{stderr}"
    );
    // Namespace deletion is synchronous here: contents go at once (a real cluster takes a moment).
    kubectl_ok(&["delete", "namespace", "gpu"]);
    assert!(server.get_object("v1", "Namespace", None, "gpu").is_none());
    assert!(
        server.list_objects("v1", "Pod", Some("gpu")).is_empty(),
        "the namespace took its pods"
    );
    assert!(
        server.count(
            test_apiserver::LogMark(0),
            &RequestMatch::resource("pods").verb(Verb::List)
        ) >= 3
    );
}

#[test]
fn kubectl_sees_the_dra_version_a_test_serves() {
    let Some(kubectl) = tool("kubectl", "TEST_KUBECTL") else {
        return;
    };
    let scratch = Scratch::new("kubectl-dra");
    let server =
        TestApiServer::start_blocking(Config::default().dra_versions(&[DraVersion::V1beta1]))
            .unwrap();
    let versions = ok(
        &kubectl,
        server.kubeconfig_path(),
        &scratch.0,
        &["api-versions"],
    );
    assert!(
        versions.lines().any(|l| l == "resource.k8s.io/v1beta1"),
        "{versions}"
    );
    assert!(
        !versions.lines().any(|l| l == "resource.k8s.io/v1"),
        "{versions}"
    );
    let resources = ok(
        &kubectl,
        server.kubeconfig_path(),
        &scratch.0,
        &[
            "api-resources",
            "--api-group",
            "resource.k8s.io",
            "-o",
            "name",
        ],
    );
    assert!(
        resources.contains("resourceclaimtemplates.resource.k8s.io"),
        "{resources}"
    );
}
