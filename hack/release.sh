#!/usr/bin/env bash
# The release's version and chart steps, shared by .github/workflows/release.yml and CI's dry run
# (hack/test.d/71-release.sh), so what CI checks is what a tag publishes.
#
#   hack/release.sh plan TAG                     print the release's names as KEY=VALUE lines (also
#                                                appended to $GITHUB_OUTPUT when set)
#   hack/release.sh chart TAG [--out DIR] [--push]
#                                                `helm package` the chart with version and appVersion from
#                                                TAG into DIR (default target/release-chart), check it, and
#                                                `helm push` it to $REGISTRY/charts with --push
#
# TAG is a version tag, v<semver> (v0.2.0, v0.2.0-rc.1). It must match the Cargo workspace version, which
# the chart's appVersion and the operator's default agent image tag follow: bump it in Cargo.toml and run
# hack/update-generated.sh before tagging.
# Environment: REGISTRY (default ghcr.io/k8s-mcp-agent), HELM (default: helm on PATH).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
die() { echo "release: $*" >&2; exit 1; }

registry=${REGISTRY:-ghcr.io/k8s-mcp-agent}
chart_dir=deployment/helm/k8s-mcp-agent
semver='^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$'

# $1 = TAG; prints the version.
version_of() {
  local tag=$1 version cargo
  [[ "$tag" == v* ]] || die "tag '$tag' is not a version tag: expected v<major>.<minor>.<patch>, e.g. v0.2.0"
  version=${tag#v}
  [[ "$version" =~ $semver ]] \
    || die "tag '$tag': '$version' is not a semantic version (e.g. 0.2.0 or 0.2.0-rc.1; no build metadata)"
  cargo=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
  [ "$version" = "$cargo" ] \
    || die "tag '$tag' does not match the Cargo workspace version $cargo: the operator deploys agent:$cargo" \
      "by default. Set version = \"$version\" in Cargo.toml, run hack/update-generated.sh, commit, then tag."
  echo "$version"
}

plan() { # $1 = TAG
  local version
  version=$(version_of "$1")
  local lines=(
    "version=$version"
    "agent_image=$registry/agent:$version"
    "operator_image=$registry/operator:$version"
    "chart_repository=oci://$registry/charts"
    "chart=$registry/charts/k8s-mcp-agent:$version"
  )
  printf '%s\n' "${lines[@]}"
  if [ -n "${GITHUB_OUTPUT:-}" ]; then printf '%s\n' "${lines[@]}" >>"$GITHUB_OUTPUT"; fi
}

chart() { # $1 = TAG, then --out DIR, --push
  local tag=$1 out=target/release-chart push=false version helm package rendered
  shift
  while [ $# -gt 0 ]; do
    case "$1" in
      --out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift ;;
      --push) push=true ;;
      *) die "unknown argument $1 (chart TAG [--out DIR] [--push])" ;;
    esac
    shift
  done
  version=$(version_of "$tag")
  helm=${HELM:-helm}
  command -v "$helm" >/dev/null 2>&1 || die "$helm not found: install helm 3.8+ or set HELM"
  mkdir -p "$out"
  package="$out/k8s-mcp-agent-$version.tgz"
  rm -f "$package"
  "$helm" package "$chart_dir" --version "$version" --app-version "$version" --destination "$out" >&2
  [ -f "$package" ] || die "helm package did not write $package"

  # The packaged chart installs this release's images: its metadata and its rendered operator image.
  local meta
  meta=$("$helm" show chart "$package")
  grep -qx "version: $version" <<<"$meta" || die "$package: version is not $version:"$'\n'"$meta"
  grep -Eqx "appVersion: \"?$version\"?" <<<"$meta" || die "$package: appVersion is not $version:"$'\n'"$meta"
  rendered=$("$helm" template release-check "$package")
  grep -q "image: \"\?$registry/operator:$version\"\?\$" <<<"$rendered" \
    || die "$package does not render the operator image $registry/operator:$version (the chart's default" \
      "operator.image.repository must be $registry/operator, where this release pushes it)"
  echo "release: $package (version and appVersion $version; operator image $registry/operator:$version)" >&2

  if $push; then
    "$helm" push "$package" "oci://$registry/charts"
    echo "release: pushed oci://$registry/charts/k8s-mcp-agent:$version" >&2
  fi
}

[ $# -ge 2 ] || die "usage: release.sh plan TAG | release.sh chart TAG [--out DIR] [--push]"
command=$1
shift
case "$command" in
  plan) [ $# -eq 1 ] || die "plan takes one argument, the tag"; plan "$1" ;;
  chart) chart "$@" ;;
  *) die "unknown command $command (plan or chart)" ;;
esac
