"""Real `helm install` / `helm upgrade` / `helm uninstall` (helm 3.17 and 4.1) and the `kubectl apply`
path against the in-repo test API server, with the real operator binary started the way the chart's
Deployment starts it. Proves the CRD layout: the chart's crds/ folder makes the first install work
in one command (Helm installs and waits for the CRD before it creates the GpuDiagnosticsConfig),
Helm never upgrades it, the operator does (`--install-crd`), and uninstall keeps it.
"""

import copy
import json

import yaml

from conftest import CHART, COMMANDS, INLINE_CLAIM, KUBECTL, ROOT, Operator, run

CRD_NAME = "gpudiagnosticsconfigs.gpu.k8s-mcp-agent.io"
CRD_PATH = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD_NAME}"
CONFIG_PATH = "/apis/gpu.k8s-mcp-agent.io/v1alpha1/gpudiagnosticsconfigs/default"
AGENT_NS = "gpu-diagnostics"
DAEMONSET_PATH = f"/apis/apps/v1/namespaces/{AGENT_NS}/daemonsets/k8s-mcp-agent-default"
DEPLOYMENT_PATH = f"/apis/apps/v1/namespaces/{AGENT_NS}/deployments/k8s-mcp-agent-operator"
NAMESPACE_PATH = f"/api/v1/namespaces/{AGENT_NS}"
GENERATED_CRD = yaml.safe_load((CHART / "crds" / "gpudiagnosticsconfigs.yaml").read_text())

NVIDIA_RUNTIME_CLASS = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "nvidia"},
                        "handler": "nvidia"}


def gpu_node(name):
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"nvidia.com/gpu.present": "true", "kubernetes.io/hostname": name}}}


def status_mode(server):
    config = server.get(CONFIG_PATH) or {}
    return config.get("status", {}).get("mode")


def condition(config, kind):
    return next(c for c in config["status"]["conditions"] if c["type"] == kind)


def wait_mode(server, operator, mode):
    def resolved():
        if operator.process.poll() is not None:
            raise AssertionError(f"the operator exited:\n{operator.logs()}")
        return status_mode(server) == mode

    server.wait_for(f"status.mode {mode}", resolved)


def pod(name, labels, node):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": AGENT_NS, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]}}


def test_install_upgrade_uninstall_with_the_original_commands(helm, apiserver_factory, tmp_path):
    server = apiserver_factory(seed=[NVIDIA_RUNTIME_CLASS, gpu_node("gpu-node-a"), gpu_node("gpu-node-b")])
    kc = server.kubeconfig

    # Quick start, exactly as the original README wrote it.
    notes = run([helm, "install", "k8s-mcp-agent", CHART, *COMMANDS["quick-start"]], tmp_path, kc).stdout
    # NOTES.txt: how to find the agent on a node and start a session, with -i (not -it).
    assert "-l app.kubernetes.io/name=k8s-mcp-agent \\\n    --field-selector spec.nodeName=$NODE_NAME" in notes, notes
    assert "kubectl exec -i -n gpu-diagnostics $POD -c agent -- /agent" in notes
    assert "kubectl exec -it" not in notes
    assert "kubectl delete namespace gpu-diagnostics" in notes
    crd = server.get(CRD_PATH)
    assert crd["spec"] == GENERATED_CRD["spec"], "Helm installed the chart's crds/ copy"
    assert any(c["type"] == "Established" and c["status"] == "True" for c in crd["status"]["conditions"])
    config = server.get(CONFIG_PATH)
    assert config["spec"]["gpu"]["mode"] == "Auto"
    deployment = server.get(DEPLOYMENT_PATH)
    assert server.get(f"/api/v1/namespaces/{AGENT_NS}/serviceaccounts/k8s-mcp-agent-operator")
    assert server.get("/apis/rbac.authorization.k8s.io/v1/clusterroles/k8s-mcp-agent-operator")

    # The operator, started as the Deployment starts it, finds RuntimeClass "nvidia".
    operator = Operator(server, deployment, tmp_path)
    wait_mode(server, operator, "RuntimeClass")
    server.wait_for("the agent DaemonSet", lambda: server.get(DAEMONSET_PATH))
    operator.stop()
    config = server.get(CONFIG_PATH)
    assert condition(config, "GpuAccessResolved")["reason"] == "RuntimeClassFound"
    # Helm created the namespace (--create-namespace); the operator labels it for the agent's
    # CAP_SYSLOG but does not adopt it, so the two never fight over it.
    namespace = server.get(NAMESPACE_PATH)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert not namespace["metadata"].get("ownerReferences")

    # "Find Agent Pod", exactly as the README wrote it, with the operator's pod on the same node.
    daemon_set = server.get(DAEMONSET_PATH)
    server.create(f"/api/v1/namespaces/{AGENT_NS}/pods",
                  pod("k8s-mcp-agent-operator-5d9c7-x2x4z", deployment["spec"]["template"]["metadata"]["labels"],
                      "gpu-node-a"))
    for node in ("gpu-node-b", "gpu-node-a"):
        server.create(f"/api/v1/namespaces/{AGENT_NS}/pods",
                      pod(f"k8s-mcp-agent-default-{node[-1]}", daemon_set["spec"]["template"]["metadata"]["labels"], node))
    found = run([KUBECTL, "get", "pods", "-n", AGENT_NS, "-l", "app.kubernetes.io/name=k8s-mcp-agent",
                 "--field-selector", "spec.nodeName=gpu-node-a", "-o", "jsonpath={.items[0].metadata.name}"],
                tmp_path, kc).stdout
    assert found == "k8s-mcp-agent-default-a"

    # An older operator's CRD is still installed: Helm leaves crds/ alone on upgrade...
    stale = copy.deepcopy(server.get(CRD_PATH))
    del stale["spec"]["versions"][0]["additionalPrinterColumns"]
    server.put(CRD_PATH, stale)
    run([helm, "upgrade", "k8s-mcp-agent", CHART, "--namespace", AGENT_NS,
         "--set", "gpu.runtimeClass.enabled=false", "--set", "gpu.resourceRequest.enabled=true"], tmp_path, kc)
    assert "additionalPrinterColumns" not in server.get(CRD_PATH)["spec"]["versions"][0]
    assert server.get(CONFIG_PATH)["spec"]["gpu"]["resourceRequest"]["enabled"] is True

    # ...and the upgraded operator applies its own at start-up, then follows the new values.
    operator = Operator(server, server.get(DEPLOYMENT_PATH), tmp_path)
    server.wait_for("the CRD upgraded by the operator",
                    lambda: server.get(CRD_PATH)["spec"]["versions"][0].get("additionalPrinterColumns"))
    wait_mode(server, operator, "DevicePlugin")
    server.wait_for("the device-plugin DaemonSet", lambda: (
        server.get(DAEMONSET_PATH)["spec"]["template"]["spec"]["containers"][0]["resources"]
        .get("limits", {}).get("nvidia.com/gpu") == "1"))
    operator.stop()
    assert server.get(CRD_PATH)["spec"] == GENERATED_CRD["spec"]

    # Uninstall, then delete the namespace, as the README says.
    run([helm, "uninstall", "k8s-mcp-agent", "-n", AGENT_NS], tmp_path, kc)
    assert server.get(CONFIG_PATH) is None
    assert server.get(DAEMONSET_PATH) is None, "the agent goes with its config (owner references)"
    assert server.get(DEPLOYMENT_PATH) is None
    assert server.get(CRD_PATH) is not None, "the CRD is kept"
    assert server.get(NAMESPACE_PATH) is not None, "Helm's namespace is kept, as the README says"
    run([KUBECTL, "delete", "namespace", AGENT_NS], tmp_path, kc)
    assert server.get(NAMESPACE_PATH) is None


def dra_seed():
    # Kubernetes 1.32-style DRA (resource.k8s.io/v1beta1: the flat request shape the original
    # README's inline spec is written in), the NVIDIA DRA driver's DeviceClass, and the template
    # the README's first DRA command names.
    return [
        gpu_node("gpu-node-a"),
        {"apiVersion": "resource.k8s.io/v1beta1", "kind": "DeviceClass", "metadata": {"name": "gpu.nvidia.com"},
         "spec": {"selectors": [{"cel": {"expression": "device.driver == 'gpu.nvidia.com'"}}]}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": AGENT_NS}},
        {"apiVersion": "resource.k8s.io/v1beta1", "kind": "ResourceClaimTemplate",
         "metadata": {"name": "gpu-template", "namespace": AGENT_NS},
         "spec": {"spec": {"devices": {"requests": [{"name": "gpu", "deviceClassName": "gpu.nvidia.com"}]}}}},
    ]


def test_the_dra_commands_give_the_agent_a_claim(helm, apiserver_factory, tmp_path):
    for command, template in (("dra-template", "gpu-template"), ("dra-inline", "k8s-mcp-agent-default")):
        server = apiserver_factory(seed=dra_seed(), dra="v1beta1")
        kc = server.kubeconfig
        # As the README wrote them: no --namespace, so the operator lands in "default" and the
        # agent in namespace.name.
        run([helm, "install", "k8s-mcp-agent", CHART, *COMMANDS[command]], tmp_path, kc)
        deployment = server.get("/apis/apps/v1/namespaces/default/deployments/k8s-mcp-agent-operator")
        operator = Operator(server, deployment, tmp_path)
        wait_mode(server, operator, "DRA")
        daemon_set = server.wait_for("the DRA DaemonSet", lambda: server.get(DAEMONSET_PATH))
        claims = daemon_set["spec"]["template"]["spec"]["resourceClaims"]
        assert claims == [{"name": "gpu", "resourceClaimTemplateName": template}], command
        assert daemon_set["spec"]["template"]["spec"]["containers"][0]["resources"]["claims"] == [{"name": "gpu"}]
        if command == "dra-inline":
            stored = server.wait_for("the inline claim template", lambda: server.get(
                f"/apis/resource.k8s.io/v1beta1/namespaces/{AGENT_NS}/resourceclaimtemplates/{template}"))
            assert stored["spec"]["spec"] == json.loads(INLINE_CLAIM)
        operator.stop()
        run([helm, "uninstall", "k8s-mcp-agent"], tmp_path, kc)
        assert server.get(DAEMONSET_PATH) is None
        assert server.get(CRD_PATH) is not None


def test_the_kubectl_apply_path_and_crds_install_false(helm, apiserver_factory, tmp_path):
    server = apiserver_factory(seed=[NVIDIA_RUNTIME_CLASS, gpu_node("gpu-node-a")])
    kc = server.kubeconfig
    # README: kubectl install.
    run([KUBECTL, "apply", "--server-side", "-f", ROOT / "crds"], tmp_path, kc)
    run([KUBECTL, "wait", "--for", "condition=Established", f"crd/{CRD_NAME}", "--timeout=30s"], tmp_path, kc)
    run([KUBECTL, "apply", "--server-side", "-f", ROOT / "deployment" / "manifests"], tmp_path, kc)
    run([KUBECTL, "apply", "-f", ROOT / "examples" / "gpudiagnosticsconfig.yaml"], tmp_path, kc)
    operator = Operator(server, server.get(DEPLOYMENT_PATH), tmp_path)
    wait_mode(server, operator, "RuntimeClass")
    operator.stop()
    run([KUBECTL, "delete", "-f", ROOT / "examples" / "gpudiagnosticsconfig.yaml"], tmp_path, kc)
    run([KUBECTL, "delete", "--ignore-not-found", "-f", ROOT / "deployment" / "manifests"], tmp_path, kc)
    assert server.get(DAEMONSET_PATH) is None
    assert server.get(NAMESPACE_PATH) is None

    # The CRD already there (from kubectl): a Helm release that leaves it alone entirely.
    run([helm, "install", "k8s-mcp-agent", CHART, *COMMANDS["quick-start"], "--skip-crds",
         "--set", "crds.install=false"], tmp_path, kc)
    deployment = server.get(DEPLOYMENT_PATH)
    assert "--install-crd=false" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    before = server.get(CRD_PATH)["metadata"]["resourceVersion"]
    operator = Operator(server, deployment, tmp_path)
    wait_mode(server, operator, "RuntimeClass")
    operator.stop()
    assert server.get(CRD_PATH)["metadata"]["resourceVersion"] == before, "crds.install=false: CRD untouched"
    run([helm, "uninstall", "k8s-mcp-agent", "-n", AGENT_NS], tmp_path, kc)
    assert server.get(CRD_PATH) is not None
