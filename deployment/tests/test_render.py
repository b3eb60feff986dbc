"""`helm lint` and `helm template` of every command the original chart's README documents (and the
chart's own switches), with helm 3.17 and 4.1: every manifest validates against Kubernetes 1.30 and
the newest schema kubernetes-validate knows, the GpuDiagnosticsConfig against the generated CRD
(structure, then CEL rules and the operator's parsing through `generator check-config`), and each
command asks for what the README says it does.
"""

import copy
import json

import jsonschema
import kubernetes_validate
import pytest
import yaml

from conftest import CHART, COMMANDS, ROOT, one, render, run

KUBERNETES_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
AGENT_SELECTOR = ("app.kubernetes.io/name", "k8s-mcp-agent")


def crd_schema() -> dict:
    crd = yaml.safe_load((CHART / "crds" / "gpudiagnosticsconfigs.yaml").read_text())
    return next(v for v in crd["spec"]["versions"] if v["storage"])["schema"]["openAPIV3Schema"]


def as_json_schema(node):
    """A structural CRD schema as plain JSON Schema: `nullable` allows null, int-or-string is two
    types, objects without preserve-unknown-fields are closed (the API server would prune), and
    the x-kubernetes-* keywords go (CEL is checked by `generator check-config`). Written
    independently of the Rust converter that makes values.schema.json."""
    if isinstance(node, list):
        return [as_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: as_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-") and k != "nullable"}
    if node.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
        return out
    if node.get("type") == "object" and "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    return out


CONFIG_SCHEMA = as_json_schema(crd_schema())
# apiVersion, kind and metadata are the API server's: a CRD schema does not declare them.
CONFIG_SCHEMA["properties"].update(
    apiVersion={"const": "gpu.k8s-mcp-agent.io/v1alpha1"},
    kind={"const": "GpuDiagnosticsConfig"},
    metadata={"type": "object"},
)


@pytest.fixture(params=sorted(COMMANDS), scope="module")
def command(request):
    return request.param


@pytest.fixture
def docs(helm, tmp_path, command):
    return render(helm, tmp_path, COMMANDS[command])


def test_lint_strict(helm, tmp_path, command):
    # `helm lint` takes the value flags and --namespace, not install's --create-namespace.
    flags = [f for f in COMMANDS[command] if f != "--create-namespace"]
    result = run([helm, "lint", "--strict", CHART, *flags], tmp_path)
    assert "0 chart(s) failed" in result.stdout


def test_every_manifest_validates_strictly_against_old_and_new_kubernetes(docs):
    for doc in docs:
        if doc["kind"] == "GpuDiagnosticsConfig":
            continue  # a custom resource: kubernetes-validate has no schema; checked below
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{doc['kind']} {doc['metadata']['name']} invalid for Kubernetes {version}: {error}")


def test_the_config_matches_the_crd_schema_and_passes_its_cel_rules(docs, command, generator, tmp_path):
    configs = [d for d in docs if d["kind"] == "GpuDiagnosticsConfig"]
    if "config.create=false" in COMMANDS[command]:
        assert configs == []
        return
    assert len(configs) == 1
    jsonschema.validate(configs[0], CONFIG_SCHEMA, cls=jsonschema.Draft7Validator)
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(docs))
    result = run([generator, "check-config", rendered], tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    assert "1 GpuDiagnosticsConfig(s) checked, 0 problem(s)" in result.stdout


EXPECTED_GPU = {
    # No flags: the operator searches (RuntimeClass first, like the original chart's default).
    "quick-start": {"mode": "Auto"},
    "leader-election": {"mode": "Auto"},
    "metrics-service": {"mode": "Auto"},
    # The fallback flags pick the device plugin and keep RuntimeClass out of the search.
    "device-plugin-fallback": {"mode": "Auto", "runtimeClass.enabled": False, "resourceRequest.enabled": True},
    "device-plugin-no-namespace": {"mode": "Auto", "runtimeClass.enabled": False, "resourceRequest.enabled": True},
    "dra-template": {"mode": "Auto", "runtimeClass.enabled": False, "resourceClaim.enabled": True,
                     "resourceClaim.templateName": "gpu-template", "resourceClaim.spec": {}},
    "dra-inline": {"mode": "Auto", "runtimeClass.enabled": False, "resourceClaim.enabled": True,
                   "resourceClaim.templateName": "",
                   "resourceClaim.spec": {"devices": {"requests": [{"name": "gpu", "deviceClassName": "gpu.nvidia.com"}]}}},
}


@pytest.mark.parametrize("case", sorted(EXPECTED_GPU))
def test_each_command_asks_for_the_access_mode_its_readme_names(helm, tmp_path, case):
    command = case
    gpu = one(render(helm, tmp_path, COMMANDS[command]), "GpuDiagnosticsConfig")["spec"]["gpu"]
    flags = {f"{section}.enabled": gpu[section].get("enabled") for section in ("runtimeClass", "resourceRequest", "resourceClaim")}
    expected = EXPECTED_GPU[command]
    for key, value in expected.items():
        section, _, field = key.partition(".")
        actual = gpu[section] if not field else gpu[section].get(field)
        assert actual == value, f"{command}: gpu.{key} is {actual!r}, expected {value!r}"
    # Flags the command does not set stay unset, so Auto may still consider those modes.
    for key, value in flags.items():
        if key not in expected:
            assert value is None, f"{command}: gpu.{key} should be unset"


def test_the_operator_deployment_is_locked_down(docs, command):
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["operator"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert env == {"POD_NAMESPACE": "metadata.namespace", "POD_NAME": "metadata.name"}
    args = container["args"]
    replicas = deployment["spec"]["replicas"]
    assert ("--leader-elect" in args) == (replicas > 1), args
    assert deployment["spec"]["strategy"]["type"] == ("RollingUpdate" if replicas > 1 else "Recreate")
    assert f"--install-crd={'false' if 'crds.install=false' in COMMANDS[command] else 'true'}" in args


def test_no_operator_object_matches_the_agent_pod_selector(docs):
    # The README finds the agent with `-l app.kubernetes.io/name=k8s-mcp-agent --field-selector
    # spec.nodeName=…`: an operator pod on that node must not be what `.items[0]` returns.
    for doc in docs:
        labels = doc["metadata"].get("labels", {})
        assert labels.get(AGENT_SELECTOR[0]) != AGENT_SELECTOR[1], f"{doc['kind']} {doc['metadata']['name']}"
        template = doc.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
        assert template.get(AGENT_SELECTOR[0]) != AGENT_SELECTOR[1]


def normalized_rules(rules):
    return sorted(
        json.dumps({k: sorted(v) if isinstance(v, list) else v for k, v in rule.items()}, sort_keys=True)
        for rule in rules
    )


def test_the_cluster_role_and_role_grant_exactly_the_operators_api_calls(helm, tmp_path, generator, command):
    # The operator's own list (operator/src/rbac.rs; its tests fail when it makes an unlisted call).
    expected = json.loads(run([generator, "rbac-rules"], tmp_path).stdout)
    docs = render(helm, tmp_path, COMMANDS[command])
    operator_role = one(docs, "ClusterRole", one(docs, "ClusterRoleBinding")["roleRef"]["name"])
    cluster = operator_role["rules"]
    roles = [d for d in docs if d["kind"] == "Role"]
    leader = "operator.replicas=2" in COMMANDS[command]
    assert len(roles) == (1 if leader else 0)
    granted = cluster + (roles[0]["rules"] if roles else [])
    if leader:
        assert normalized_rules(granted) == normalized_rules(expected)
        assert all(r["apiGroups"] == ["coordination.k8s.io"] for r in roles[0]["rules"])
        binding = one(docs, "RoleBinding")
        assert binding["roleRef"]["name"] == roles[0]["metadata"]["name"]
    else:
        without_leases = [r for r in expected if r["resources"] != ["leases"]]
        assert normalized_rules(granted) == normalized_rules(without_leases)
    binding = one(docs, "ClusterRoleBinding")
    assert binding["subjects"][0]["name"] == one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"]


def test_agent_namespaces_narrow_the_operators_namespace_rule_to_those_names(helm, tmp_path):
    def namespace_rules(args):
        docs = render(helm, tmp_path, args)
        return [r for r in one(docs, "ClusterRole", one(docs, "ClusterRoleBinding")["roleRef"]["name"])["rules"] if r["resources"] == ["namespaces"]]

    assert namespace_rules(COMMANDS["quick-start"]) == [
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "patch"]}]
    narrowed = namespace_rules(COMMANDS["quick-start"] + [
        "--set", "operator.rbac.agentNamespaces={gpu-diagnostics,gpu-b}"])
    assert narrowed == [{"apiGroups": [""], "resources": ["namespaces"],
                         "resourceNames": ["gpu-diagnostics", "gpu-b"], "verbs": ["get", "patch"]}]


def test_the_fleet_roles_grant_exactly_the_fleets_calls_and_can_be_left_out(helm, tmp_path, generator):
    expected = json.loads(run([generator, "fleet-rbac-rules"], tmp_path).stdout)
    docs = render(helm, tmp_path, [])
    read = one(docs, "ClusterRole", "k8s-mcp-agent-fleet")
    execute = one(docs, "ClusterRole", "k8s-mcp-agent-fleet-exec")
    assert normalized_rules(read["rules"]) == normalized_rules(expected["cluster"])
    assert normalized_rules(execute["rules"]) == normalized_rules(expected["exec"])
    exec_rule = next(r for r in execute["rules"] if r["resources"] == ["pods/exec"])
    assert sorted(exec_rule["verbs"]) == ["create", "get"]
    # Nothing is bound: an admin binds them (NOTES.txt and the README give the commands).
    bound = {d["roleRef"]["name"] for d in docs if d["kind"] in ("ClusterRoleBinding", "RoleBinding")}
    assert not bound & {"k8s-mcp-agent-fleet", "k8s-mcp-agent-fleet-exec"}
    without = render(helm, tmp_path, ["--set", "fleetRbac.create=false"])
    assert [d["metadata"]["name"] for d in without if d["kind"] == "ClusterRole"] == [
        one(without, "ClusterRoleBinding")["roleRef"]["name"]
    ]


def test_the_metrics_service_selects_the_operator(helm, tmp_path):
    docs = render(helm, tmp_path, COMMANDS["metrics-service"])
    service = one(docs, "Service")
    labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert all(labels[k] == v for k, v in service["spec"]["selector"].items())
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert not [d for d in render(helm, tmp_path, COMMANDS["quick-start"]) if d["kind"] == "Service"]


def test_the_release_namespace_holds_the_operator_and_the_agent_goes_where_namespace_name_says(helm, tmp_path):
    docs = render(helm, tmp_path, ["--namespace", "ops", "--set", "namespace.name=gpu-agents"])
    assert one(docs, "Deployment")["metadata"]["namespace"] == "ops"
    assert one(docs, "GpuDiagnosticsConfig")["spec"]["namespace"] == {"create": True, "name": "gpu-agents"}
    # The chart never renders a Namespace: --create-namespace (Helm) and namespace.create (the
    # operator, which labels but never adopts one it did not create) must not fight over it.
    assert not [d for d in docs if d["kind"] == "Namespace"]


def test_values_reach_the_config_unchanged(helm, tmp_path):
    docs = render(helm, tmp_path, [
        "--set", "agent.logLevel=debug", "--set", "priorityClassName=system-node-critical",
        "--set", "tolerations[0].key=dedicated", "--set", "tolerations[0].operator=Exists",
        "--set", "image.tag=sha256:0123", "--set", "nodeSelector.gpu=yes",
    ])
    spec = one(docs, "GpuDiagnosticsConfig")["spec"]
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert spec["agent"]["logLevel"] == "debug"
    assert spec["priorityClassName"] == "system-node-critical"
    assert spec["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert spec["image"]["tag"] == "sha256:0123"
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true", "gpu": "yes"}
    untouched = {k: v for k, v in defaults.items() if k in spec and k not in
                 ("agent", "priorityClassName", "tolerations", "image", "nodeSelector")}
    assert {k: spec[k] for k in untouched} == untouched
    # Only spec keys: the chart's own settings never leak into the config.
    assert not set(spec) & {"operator", "config", "crds", "global"}


def test_operator_image_tag_defaults_to_the_app_version_and_accepts_a_digest(helm, tmp_path):
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    image = lambda args: one(render(helm, tmp_path, args), "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image([]) == f"ghcr.io/k8s-mcp-agent/operator:{chart['appVersion']}"
    assert image(["--set", "operator.image.tag=sha256:abc"]) == "ghcr.io/k8s-mcp-agent/operator@sha256:abc"


def test_the_kubectl_manifests_validate_and_match_the_chart_defaults():
    docs = [d for d in yaml.safe_load_all((ROOT / "deployment" / "manifests" / "operator.yaml").read_text()) if d]
    kinds = sorted(d["kind"] for d in docs)
    # The operator's ClusterRole and the two fleet users' ClusterRoles.
    assert kinds == ["ClusterRole"] * 3 + ["ClusterRoleBinding", "Deployment", "Namespace", "ServiceAccount"]
    for doc in docs:
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(copy.deepcopy(doc), version, strict=True)


def test_every_operator_value_reaches_the_operator(helm, tmp_path):
    docs = render(helm, tmp_path, [
        "--namespace", "ops",
        "--set", "operator.imagePullSecrets[0].name=regcred",
        "--set", "operator.image.pullPolicy=Always",
        "--set", "operator.leaderElection.enabled=true",
        "--set", "operator.leaderElection.leaseName=gpu-lease",
        "--set", "operator.resyncInterval=30s",
        "--set", "operator.logLevel=debug",
        "--set", "operator.logFormat=json",
        "--set", "operator.metrics.port=9090",
        "--set", "operator.metrics.service.enabled=true",
        "--set-string", "operator.metrics.service.annotations.prometheus\\.io/scrape=true",
        "--set", "operator.serviceAccount.name=gpu-operator-sa",
        "--set", "operator.serviceAccount.annotations.team=gpu",
        "--set", "operator.resources.limits.memory=1Gi",
        "--set", "operator.nodeSelector.pool=system",
        "--set", "operator.tolerations[0].key=system", "--set", "operator.tolerations[0].operator=Exists",
        "--set", "operator.priorityClassName=system-cluster-critical",
        "--set", "operator.podAnnotations.checked=yes",
        "--set", "operator.podLabels.team=gpu",
    ])
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert container["imagePullPolicy"] == "Always"
    assert container["args"] == [
        "--metrics-addr=0.0.0.0:9090", "--resync-interval=30s", "--install-crd=true", "--log-level=debug",
        "--log-format=json", "--leader-elect", "--leader-election-lease=gpu-lease",
    ]
    assert container["ports"] == [{"name": "http", "containerPort": 9090, "protocol": "TCP"}]
    assert one(docs, "Service")["spec"]["ports"][0]["port"] == 9090
    assert one(docs, "Service")["metadata"]["annotations"] == {"prometheus.io/scrape": "true"}
    assert pod["spec"]["serviceAccountName"] == "gpu-operator-sa"
    account = one(docs, "ServiceAccount")
    assert (account["metadata"]["name"], account["metadata"]["annotations"]) == ("gpu-operator-sa", {"team": "gpu"})
    assert one(docs, "ClusterRoleBinding")["subjects"] == [
        {"kind": "ServiceAccount", "name": "gpu-operator-sa", "namespace": "ops"}]
    assert container["resources"]["limits"] == {"memory": "1Gi"}
    assert pod["spec"]["nodeSelector"] == {"pool": "system"}
    assert pod["spec"]["tolerations"] == [{"key": "system", "operator": "Exists"}]
    assert pod["spec"]["priorityClassName"] == "system-cluster-critical"
    assert pod["metadata"]["annotations"] == {"checked": "yes"}
    assert pod["metadata"]["labels"]["team"] == "gpu"
    assert one(docs, "Role")["metadata"]["namespace"] == "ops"
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "RollingUpdate"


def test_an_existing_operator_service_account_is_used_as_named(helm, tmp_path):
    docs = render(helm, tmp_path, ["--set", "operator.serviceAccount.create=false",
                                   "--set", "operator.serviceAccount.name=mine"])
    assert not [d for d in docs if d["kind"] == "ServiceAccount"]
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "mine"
    result = run([helm, "template", "x", CHART, "--set", "operator.serviceAccount.create=false"], tmp_path, check=False)
    assert result.returncode == 1
    assert "operator.serviceAccount.name is required when operator.serviceAccount.create=false" in result.stderr
