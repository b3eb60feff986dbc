"""The READMEs keep the original chart's commands and the example config the operator tests apply."""

import re

import jsonschema
import yaml

from conftest import CHART, ROOT, run
from test_render import CONFIG_SCHEMA

README = (ROOT / "README.md").read_text()
EXAMPLE = ROOT / "examples" / "gpudiagnosticsconfig.yaml"

# The original chart README's commands, verbatim (their line breaks included).
ORIGINAL_COMMANDS = [
    "helm install k8s-mcp-agent ./deployment/helm/k8s-mcp-agent \\\n  --namespace gpu-diagnostics \\\n  --create-namespace",
    "  --set gpu.runtimeClass.enabled=false \\\n  --set gpu.resourceRequest.enabled=true",
    "  --set gpu.resourceClaim.enabled=true \\\n  --set gpu.resourceClaim.templateName=gpu-template",
    "  --set-json 'gpu.resourceClaim.spec={\"devices\":{\"requests\":[{\"name\":\"gpu\",\"deviceClassName\":\"gpu.nvidia.com\"}]}}'",
    "POD=$(kubectl get pods -n gpu-diagnostics \\\n  -l app.kubernetes.io/name=k8s-mcp-agent \\\n"
    "  --field-selector spec.nodeName=$NODE_NAME \\\n  -o jsonpath='{.items[0].metadata.name}')",
    "kubectl exec -it -n gpu-diagnostics $POD -- /agent --mode=read-only",
    "kubectl exec -i -n gpu-diagnostics $POD -- /agent",
    "helm uninstall k8s-mcp-agent -n gpu-diagnostics\nkubectl delete namespace gpu-diagnostics",
]


def first_config_block(text: str) -> str:
    """What the operator's end-to-end tests extract: the first ```yaml block whose first line is the
    GpuDiagnosticsConfig apiVersion."""
    for block in re.findall(r"```yaml\n(.*?)```", text, flags=re.S):
        if block.startswith("apiVersion: gpu.k8s-mcp-agent.io/v1alpha1\n"):
            return block
    raise AssertionError("README.md has no ```yaml block starting with the GpuDiagnosticsConfig apiVersion")


def test_the_readme_example_is_the_example_file_and_a_valid_config(generator, tmp_path):
    block = first_config_block(README)
    assert block == EXAMPLE.read_text()
    jsonschema.validate(yaml.safe_load(block), CONFIG_SCHEMA, cls=jsonschema.Draft7Validator)
    result = run([generator, "check-config", EXAMPLE], tmp_path)
    assert "1 GpuDiagnosticsConfig(s) checked, 0 problem(s)" in result.stdout


def test_the_readmes_keep_the_original_commands():
    chart_readme = (CHART / "README.md").read_text()
    for command in ORIGINAL_COMMANDS:
        assert command in README, f"README.md lost:\n{command}"
    for command in ORIGINAL_COMMANDS[:4]:
        assert command in chart_readme, f"the chart README lost:\n{command}"


def test_the_readme_documents_every_reason_the_operator_reports():
    sources = "\n".join(
        (ROOT / "operator" / "src" / path).read_text()
        for path in ("access.rs", "status.rs", "controller/report.rs")
    ) + (ROOT / "crds" / "src" / "status.rs").read_text()
    # Condition reasons (wire strings), and the NodeProblemReason variants.
    reasons = set(re.findall(r'=> "([A-Z][A-Za-z]+)"', sources))
    reasons |= set(re.findall(r'(?:READY|DEGRADED),\s*(?:false|true),\s*"([A-Z][A-Za-z]+)"', sources))
    reasons |= set(re.findall(r'pub const [A-Z_]+: &str = "([A-Z][A-Za-z]+)";', sources))
    reasons |= {"InvalidSpec", "AsExpected"}
    problems = (ROOT / "crds" / "src" / "status.rs").read_text()
    enum = problems[problems.index("pub enum NodeProblemReason"):]
    reasons |= set(re.findall(r"^\s+([A-Z][A-Za-z]+),$", enum[: enum.index("}")], flags=re.M))
    assert len(reasons) > 25, reasons
    missing = sorted(r for r in reasons if f"`{r}`" not in README)
    assert not missing, f"README.md's troubleshooting does not mention: {missing}"
