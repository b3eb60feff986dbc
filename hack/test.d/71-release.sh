#!/usr/bin/env bash
# The release automation, offline: actionlint on .github/workflows, then a dry run of the packaging steps
# the release workflow runs (hack/release.sh): the names derived from a version tag, the chart packaged
# with version and appVersion from it (no push), and the tags a release must refuse.
set -euo pipefail
root=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root"
TOOLS=${TOOLS:-$root/.tools}
fail() { echo "release dry run: $*" >&2; exit 1; }

"$TOOLS/actionlint" .github/workflows/*.yml
echo "actionlint: .github/workflows is clean" >&2

# The workflow publishes through the scripts checked below, not a copy of their steps.
"$TOOLS/python" - .github/workflows/release.yml <<'PY'
import sys, yaml
workflow = yaml.safe_load(open(sys.argv[1]))
runs = "\n".join(step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"])
for needed in ('hack/release.sh plan "$RELEASE_TAG"',
               "hack/build-images.sh --push --platforms linux/amd64,linux/arm64",
               'hack/release.sh chart "$RELEASE_TAG" --out dist --push'):
    if needed not in runs:
        sys.exit(f"release.yml does not run `{needed}`")
triggers = workflow[True]["push"]["tags"]  # YAML 1.1 reads the key `on` as true
if not all(t.startswith("v") for t in triggers):
    sys.exit(f"release.yml runs on tags other than version tags: {triggers}")
PY

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

plan=$(GITHUB_OUTPUT="$tmp/github-output" hack/release.sh plan "v$version")
expected="version=$version
agent_image=ghcr.io/k8s-mcp-agent/agent:$version
operator_image=ghcr.io/k8s-mcp-agent/operator:$version
chart_repository=oci://ghcr.io/k8s-mcp-agent/charts
chart=ghcr.io/k8s-mcp-agent/charts/k8s-mcp-agent:$version"
[ "$plan" = "$expected" ] || fail "plan v$version printed:"$'\n'"$plan"$'\n'"expected:"$'\n'"$expected"
[ "$(cat "$tmp/github-output")" = "$expected" ] || fail "plan did not write the same lines to \$GITHUB_OUTPUT"

for helm in helm3 helm4; do
  HELM="$TOOLS/$helm" hack/release.sh chart "v$version" --out "$tmp/$helm" 2>"$tmp/log" \
    || { cat "$tmp/log" >&2; fail "hack/release.sh chart v$version failed with $helm"; }
  meta=$(tar -xzOf "$tmp/$helm/k8s-mcp-agent-$version.tgz" k8s-mcp-agent/Chart.yaml)
  grep -qx "version: $version" <<<"$meta" && grep -qx "appVersion: \"\?$version\"\?" <<<"$meta" \
    || fail "$helm packaged a Chart.yaml without version/appVersion $version:"$'\n'"$meta"
done
echo "release dry run: v$version -> $(sed -n 2p <<<"$plan" | cut -d= -f2), $(sed -n 3p <<<"$plan" | cut -d= -f2)," \
  "chart k8s-mcp-agent-$version.tgz (helm 3 and 4)" >&2

refuse() { # $1 = tag, $2 = part of the expected message
  local status=0 message
  message=$(hack/release.sh plan "$1" 2>&1) || status=$?
  [ "$status" -eq 1 ] && grep -qF "$2" <<<"$message" \
    || fail "tag '$1': expected exit 1 saying '$2', got exit $status: $message"
}
refuse "$version" "is not a version tag"
refuse "v$version.1" "is not a semantic version"
refuse "v$version+build.1" "is not a semantic version"
refuse "v999.0.0" "does not match the Cargo workspace version $version"
echo "release dry run: tags without a v, non-semver tags and tags other than the Cargo version are refused" >&2
