#!/usr/bin/env bash
# End-to-end test on a kind cluster (no GPU needed; not run in CI: it needs a container engine). Builds both
# images and loads them into kind, installs the chart as the README says, and checks what the operator reports:
#   1. no GPU access method on a GPU-less cluster (GpuAccessResolved=False, NoGpuAccessMethod);
#   2. a fake `nvidia` RuntimeClass whose handler no node has: RuntimeClass mode, and status.nodeProblems
#      reports RuntimeHandlerMissing on every node (the kubelet's FailedCreatePodSandBox);
#   3. switching modes with `helm upgrade`: DevicePlugin (pods Unschedulable: no nvidia.com/gpu), then a faked
#      nvidia.com/gpu capacity so the agent pod starts, and an MCP session over `kubectl exec -i` answers
#      (NVML is missing, which the agent must say clearly);
#   4. helm uninstall: the agent goes, the CRD stays.
#
#   hack/e2e-kind.sh              create cluster k8s-mcp-agent-e2e, test, delete it
#   KEEP=1 hack/e2e-kind.sh       keep the cluster afterwards (kubectl --context kind-k8s-mcp-agent-e2e ...)
#   SKIP_BUILD=1 hack/e2e-kind.sh reuse images already tagged $REGISTRY/{agent,operator}:e2e
# Needs: kind, kubectl, helm (3.17+ or 4), docker or podman (ENGINE=podman uses kind's podman provider).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

cluster=${CLUSTER:-k8s-mcp-agent-e2e}
registry=${REGISTRY:-localhost/k8s-mcp-agent}
tag=e2e
ns=gpu-diagnostics
chart=./deployment/helm/k8s-mcp-agent
context="kind-$cluster"

die() { echo "e2e-kind: FAILED: $*" >&2; exit 1; }
step() { echo "e2e-kind: $*" >&2; }
for tool in kind kubectl helm; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
k() { kubectl --context "$context" "$@"; }
h() { helm --kube-context "$context" "$@"; }

# Polls `$2...` (a command printing a value) until it prints something matching the regex $1, for at most
# $TIMEOUT seconds (default 180).
wait_for() {
  local pattern=$1; shift
  local deadline=$(( $(date +%s) + ${TIMEOUT:-180} )) value=""
  while [ "$(date +%s)" -lt "$deadline" ]; do
    value=$("$@" 2>/dev/null || true)
    if [[ "$value" =~ $pattern ]]; then printf '%s' "$value"; return 0; fi
    sleep 3
  done
  echo "e2e-kind: timed out waiting for /$pattern/ from: $*; last value: $value" >&2
  return 1
}
gdc() { k get gpudiagnosticsconfig default -o "jsonpath=$1"; }
show_status() { k get gpudiagnosticsconfig default -o yaml >&2 || true; }

cleanup() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    show_status
    k -n "$ns" get pods -o wide >&2 || true
    k -n "$ns" logs deploy/k8s-mcp-agent-operator --tail=50 >&2 || true
  fi
  if [ -z "${KEEP:-}" ]; then kind delete cluster --name "$cluster" >&2 || true; fi
  exit "$status"
}

if ! kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  step "creating kind cluster $cluster"
  kind create cluster --name "$cluster" --wait 120s
fi
trap cleanup EXIT

if [ -z "${SKIP_BUILD:-}" ]; then
  step "building images $registry/{agent,operator}:$tag"
  REGISTRY=$registry TAG=$tag hack/build-images.sh
fi
for image in agent operator; do
  if [ "${ENGINE:-docker}" = podman ]; then
    archive=$(mktemp)
    podman save -o "$archive" "$registry/$image:$tag"
    kind load image-archive "$archive" --name "$cluster"
    rm -f "$archive"
  else
    kind load docker-image "$registry/$image:$tag" --name "$cluster"
  fi
done

nodes=$(k get nodes -o 'jsonpath={.items[*].metadata.name}')
node_count=$(wc -w <<<"$nodes")
step "labelling $node_count node(s) as GPU nodes (nvidia.com/gpu.present=true)"
# shellcheck disable=SC2086 # one argument per node
k label node $nodes nvidia.com/gpu.present=true --overwrite >/dev/null
# kind's control-plane node is tainted; the agent must reach it too for the per-node checks below.
images=(--set image.repository="$registry/agent" --set image.tag="$tag" --set image.pullPolicy=Never
        --set operator.image.repository="$registry/operator" --set operator.image.tag="$tag"
        --set operator.image.pullPolicy=Never
        --set 'tolerations[0].key=node-role.kubernetes.io/control-plane' --set 'tolerations[0].operator=Exists'
        --set 'tolerations[0].effect=NoSchedule')

step "1/4 helm install (the README's quick start) on a cluster without GPUs"
h install k8s-mcp-agent "$chart" --namespace "$ns" --create-namespace "${images[@]}"
k -n "$ns" rollout status deploy/k8s-mcp-agent-operator --timeout=180s
wait_for '^NoGpuAccessMethod$' gdc '{.status.conditions[?(@.type=="GpuAccessResolved")].reason}' >/dev/null \
  || die "expected GpuAccessResolved=False/NoGpuAccessMethod without RuntimeClass, DRA or device plugin"
step "   reason: $(gdc '{.status.reason}')"

step "2/4 a fake nvidia RuntimeClass whose handler no node has"
k apply -f - <<'YAML'
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata:
  name: nvidia
handler: nvidia
YAML
# Auto takes RuntimeClass "nvidia" when the nodes do not say which handlers they have, and skips it when
# they all report handlers without "nvidia" (newer containerd): either way the reason names it.
wait_for 'RuntimeClass "nvidia"' gdc '{.status.reason}' >/dev/null || die "the operator did not notice RuntimeClass nvidia"
step "   Auto: $(gdc '{.status.reason}')"
step "   forcing RuntimeClass mode as the original chart did (gpu.runtimeClass.enabled=true)"
h upgrade k8s-mcp-agent "$chart" --namespace "$ns" --reuse-values --set gpu.runtimeClass.enabled=true
wait_for '^RuntimeClass$' gdc '{.status.mode}' >/dev/null || die "the operator did not switch to RuntimeClass mode"
missing() { gdc '{range .status.nodeProblems[?(@.reason=="RuntimeHandlerMissing")]}{.node}{"\n"}{end}' | sort -u | wc -l; }
TIMEOUT=300 wait_for "^ *$node_count\$" missing >/dev/null \
  || die "expected RuntimeHandlerMissing in status.nodeProblems for each of the $node_count node(s)"
step "   $(gdc '{.status.nodeProblems[0].message}')"
step "   fix: $(gdc '{.status.nodeProblems[0].fix}')"

step "3/4 helm upgrade to the device-plugin fallback (the README's flags)"
k delete runtimeclass nvidia
h upgrade k8s-mcp-agent "$chart" --namespace "$ns" --reuse-values \
  --set gpu.runtimeClass.enabled=false --set gpu.resourceRequest.enabled=true
wait_for '^DevicePlugin$' gdc '{.status.mode}' >/dev/null || die "the operator did not switch to DevicePlugin mode"
unschedulable() { gdc '{range .status.nodeProblems[?(@.reason=="Unschedulable")]}{.node}{"\n"}{end}' | sort -u | wc -l; }
wait_for "^ *$node_count\$" unschedulable >/dev/null || die "expected Unschedulable node problems without nvidia.com/gpu"
step "   pods wait for a GPU, as reported; now faking one nvidia.com/gpu per node"
for node in $nodes; do
  k patch node "$node" --subresource=status --type=json \
    -p '[{"op":"add","path":"/status/capacity/nvidia.com~1gpu","value":"1"}]' >/dev/null
done
pod_on() { k -n "$ns" get pods -l app.kubernetes.io/name=k8s-mcp-agent --field-selector "spec.nodeName=$1,status.phase=Running" -o 'jsonpath={.items[0].metadata.name}'; }
first_node=${nodes%% *}
pod=$(wait_for '.' pod_on "$first_node") || die "no running agent pod on $first_node"
step "   agent pod $pod runs on $first_node; MCP session over kubectl exec -i"
reply=$(printf '%s\n' \
  '{"jsonrpc":"2.0","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e-kind","version":"1"}},"id":0}' \
  '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
  '{"jsonrpc":"2.0","method":"tools/call","params":{"name":"get_gpu_inventory","arguments":{}},"id":1}' \
  | k exec -i -n "$ns" "$pod" -c agent -- /agent)
grep -q '"id":0' <<<"$reply" || die "no initialize reply from the agent: $reply"
grep -q 'libnvidia-ml.so.1' <<<"$reply" || die "expected the agent to report that NVML is missing, got: $reply"
step "   the agent answers and names the missing NVML library (no GPU in kind), as it should"
step "   back to Auto (device plugin flag unset): it now finds the faked nvidia.com/gpu"
h upgrade k8s-mcp-agent "$chart" --namespace "$ns" --reuse-values --set gpu.resourceRequest.enabled=null
wait_for '^DevicePluginResourceFound$' gdc '{.status.conditions[?(@.type=="GpuAccessResolved")].reason}' >/dev/null \
  || die "Auto did not choose the device plugin"
step "   Auto: $(gdc '{.status.reason}')"

step "4/4 helm uninstall"
h uninstall k8s-mcp-agent --namespace "$ns"
TIMEOUT=120 wait_for '^ *0$' sh -c "kubectl --context $context -n $ns get daemonsets -o name | wc -l" >/dev/null \
  || die "the agent DaemonSet survived helm uninstall"
k get crd gpudiagnosticsconfigs.gpu.k8s-mcp-agent.io >/dev/null || die "the CRD must be kept on uninstall"
k delete namespace "$ns" --wait=false >/dev/null
step "PASSED"
