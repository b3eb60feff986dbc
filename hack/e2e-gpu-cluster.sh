#!/usr/bin/env bash
# End-to-end test on a real GPU cluster (the current KUBECONFIG context; not run in CI). Installs the chart as
# the README's quick start does, waits until every agent is Ready, opens an MCP session in one agent with
# `kubectl exec -i`, runs get_gpu_inventory and analyze_xid_errors, and uninstalls.
#
# analyze_xid_errors reads the kernel ring buffer through syslog(2) with CAP_SYSLOG (agent.kernelLog, the
# default) in a non-privileged pod: this script is how we learn whether that route works on a given cluster.
#
#   hack/e2e-gpu-cluster.sh [-- EXTRA_HELM_FLAGS...]     e.g. -- --set gpu.mode=DevicePlugin
#   NODE=gpu-node-7 hack/e2e-gpu-cluster.sh               open the session on that node (default: the first agent)
#   KEEP=1 hack/e2e-gpu-cluster.sh                        leave the release installed
# Environment: REGISTRY and TAG select images built with hack/build-images.sh (default: the chart's defaults);
# RELEASE (k8s-mcp-agent), NAMESPACE (gpu-diagnostics), TIMEOUT seconds for the agents (default 600).
# Needs: kubectl, helm, python3 (to read the JSON-RPC replies). Exit status 0 = every check passed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

release=${RELEASE:-k8s-mcp-agent}
ns=${NAMESPACE:-gpu-diagnostics}
timeout=${TIMEOUT:-600}
chart=./deployment/helm/k8s-mcp-agent
[ "${1:-}" = "--" ] && shift
extra=("$@")

die() { echo "e2e-gpu-cluster: FAILED: $*" >&2; exit 1; }
step() { echo "e2e-gpu-cluster: $*" >&2; }
for tool in kubectl helm python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
images=()
if [ -n "${REGISTRY:-}" ] || [ -n "${TAG:-}" ]; then
  registry=${REGISTRY:-ghcr.io/k8s-mcp-agent}
  [ -n "${TAG:-}" ] || die "set TAG together with REGISTRY (the tag hack/build-images.sh printed)"
  images=(--set "image.repository=$registry/agent" --set "image.tag=$TAG"
          --set "operator.image.repository=$registry/operator" --set "operator.image.tag=$TAG")
fi

step "cluster: $(kubectl config current-context)"
gpu_nodes=$(kubectl get nodes -l nvidia.com/gpu.present=true -o name | wc -l)
[ "$gpu_nodes" -gt 0 ] || die "no node is labelled nvidia.com/gpu.present=true (deploy GPU Feature Discovery, or \
label the GPU nodes; the chart's nodeSelector selects them)"
step "$gpu_nodes GPU node(s)"

cleanup() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    kubectl get gpudiagnosticsconfig default -o yaml >&2 || true
    kubectl -n "$ns" get pods -o wide >&2 || true
  fi
  if [ -z "${KEEP:-}" ]; then
    step "helm uninstall"
    helm uninstall "$release" --namespace "$ns" >&2 || true
  fi
  exit "$status"
}
trap cleanup EXIT

step "helm install (the README's quick start)"
helm install "$release" "$chart" --namespace "$ns" --create-namespace "${images[@]}" "${extra[@]}" >&2
kubectl -n "$ns" rollout status "deploy/$release-operator" --timeout=300s >&2 \
  || kubectl -n "$ns" rollout status deploy/k8s-mcp-agent-operator --timeout=60s >&2

gdc() { kubectl get gpudiagnosticsconfig default -o "jsonpath=$1" 2>/dev/null || true; }
deadline=$(( $(date +%s) + timeout ))
until [ "$(gdc '{.status.conditions[?(@.type=="Ready")].status}')" = True ]; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    kubectl get gpudiagnosticsconfig default -o wide >&2 || true
    die "agents not Ready after ${timeout}s: $(gdc '{.status.conditions[?(@.type=="Ready")].message}'); \
$(gdc '{.status.conditions[?(@.type=="Degraded")].message}')"
  fi
  sleep 5
done
step "mode $(gdc '{.status.mode}'): $(gdc '{.status.reason}')"
step "$(gdc '{.status.numberReady}') of $(gdc '{.status.desiredNumberScheduled}') agents Ready"

node=${NODE:-$(kubectl -n "$ns" get pods -l app.kubernetes.io/name=k8s-mcp-agent -o 'jsonpath={.items[0].spec.nodeName}')}
pod=$(kubectl get pods -n "$ns" -l app.kubernetes.io/name=k8s-mcp-agent --field-selector "spec.nodeName=$node" \
  -o 'jsonpath={.items[0].metadata.name}')
[ -n "$pod" ] || die "no agent pod on node $node"
step "MCP session with $pod on $node (kubectl exec -i)"
replies=$(printf '%s\n' \
  '{"jsonrpc":"2.0","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e-gpu-cluster","version":"1"}},"id":0}' \
  '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
  '{"jsonrpc":"2.0","method":"tools/call","params":{"name":"get_gpu_inventory","arguments":{}},"id":1}' \
  '{"jsonrpc":"2.0","method":"tools/call","params":{"name":"analyze_xid_errors","arguments":{}},"id":2}' \
  | kubectl exec -i -n "$ns" "$pod" -c agent -- /agent)

# Judge the replies: inventory lists GPUs; the Xid analysis read the kernel log (and through what).
REPLIES=$replies NODE=$node python3 - <<'PY'
import json, os, sys

replies = {}
for line in os.environ["REPLIES"].splitlines():
    line = line.strip()
    if line:
        message = json.loads(line)
        replies[message.get("id")] = message

def result(request_id, name):
    reply = replies.get(request_id)
    if reply is None:
        sys.exit(f"e2e-gpu-cluster: FAILED: no reply to {name}")
    if "error" in reply:
        sys.exit(f"e2e-gpu-cluster: FAILED: {name}: JSON-RPC error {reply['error']}")
    return reply["result"]

def text(res):
    return " ".join(c.get("text", "") for c in res.get("content", []))

inventory = result(1, "get_gpu_inventory")
if inventory.get("isError"):
    sys.exit(f"e2e-gpu-cluster: FAILED: get_gpu_inventory: {text(inventory)}")
gpus = inventory.get("structuredContent", {}).get("gpus", [])
if not gpus:
    sys.exit(f"e2e-gpu-cluster: FAILED: get_gpu_inventory lists no GPU: {text(inventory)[:2000]}")
print(f"e2e-gpu-cluster: inventory: {len(gpus)} GPU(s) on {os.environ['NODE']}: "
      + ", ".join(sorted({str(g.get('name')) for g in gpus})), file=sys.stderr)

xid = result(2, "analyze_xid_errors")
if xid.get("isError"):
    print(f"""e2e-gpu-cluster: FAILED: analyze_xid_errors could not read the kernel log:
{text(xid)}

The agent reads the kernel ring buffer with syslog(2), which needs CAP_SYSLOG (agent.kernelLog=true adds it;
no privileged container, no hostPath). Please report this in an issue with:
  - the message above,
  - `kubectl version` and the node's OS, kernel (`uname -r`) and container runtime
    (`kubectl get node NODE -o jsonpath='{{.status.nodeInfo}}'`),
  - `sysctl kernel.dmesg_restrict` on the node,
  - the agent pod's security context (`kubectl get pod -n NAMESPACE POD -o jsonpath='{{.spec.containers[0].securityContext}}'`)
    and its namespace's pod-security labels,
  - whether a seccomp or AppArmor/SELinux profile other than RuntimeDefault applies to the pod.""", file=sys.stderr)
    sys.exit(1)
report = xid.get("structuredContent", {})
source = report.get("source", {})
print(f"e2e-gpu-cluster: kernel log read through {source.get('kind')} {source.get('path', '')}".rstrip()
      + f": {report.get('records_scanned')} records, {report.get('xid_event_count')} Xid event(s), "
      f"verdict {report.get('verdict')}", file=sys.stderr)
if source.get("kind") == "syslog":
    print("e2e-gpu-cluster: the CAP_SYSLOG / syslog(2) route works in a non-privileged pod", file=sys.stderr)
PY
step "PASSED"
