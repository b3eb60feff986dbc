#!/usr/bin/env bash
# Builds the two images, ghcr.io/k8s-mcp-agent/{agent,operator}:<tag>, with docker (buildx) or podman, and
# pushes them with --push. Not run in CI (no container engine there); see hack/README.md.
#
#   hack/build-images.sh [--push] [--platforms linux/amd64,linux/arm64]
#
# Environment:
#   REGISTRY  image prefix (default ghcr.io/k8s-mcp-agent): $REGISTRY/agent and $REGISTRY/operator
#   TAG       image tag (default: `git describe --tags --always --dirty` without a leading "v", so tag
#             v0.1.0 gives 0.1.0, the chart's appVersion and the operator's default agent tag)
#   ENGINE    docker or podman (default: whichever is installed, docker first)
# Multi-arch (--platforms with more than one) needs --push with docker buildx (a multi-arch image cannot be
# loaded into the local docker store); podman builds a local manifest list and pushes it with --push.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

die() { echo "build-images: $*" >&2; exit 1; }
push=false
platforms=""
while [ $# -gt 0 ]; do
  case "$1" in
    --push) push=true ;;
    --platforms) [ $# -ge 2 ] || die "--platforms needs a value, e.g. linux/amd64,linux/arm64"; platforms=$2; shift ;;
    --platforms=*) platforms=${1#--platforms=} ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done

registry=${REGISTRY:-ghcr.io/k8s-mcp-agent}
if [ -z "${TAG:-}" ]; then
  TAG=$(git describe --tags --always --dirty 2>/dev/null) || die "cannot run git describe: set TAG"
  TAG=${TAG#v}
fi
engine=${ENGINE:-}
if [ -z "$engine" ]; then
  if command -v docker >/dev/null 2>&1; then engine=docker
  elif command -v podman >/dev/null 2>&1; then engine=podman
  else die "neither docker nor podman found: install one, or set ENGINE"
  fi
fi
command -v "$engine" >/dev/null 2>&1 || die "$engine not found"
multi=false
[[ "$platforms" == *,* ]] && multi=true

build() { # $1 = image name, $2 = Dockerfile
  local image="$registry/$1:$TAG"
  echo "build-images: $image from $2${platforms:+ for $platforms} with $engine" >&2
  case "$engine" in
    docker)
      if [ -n "$platforms" ]; then
        if $multi && ! $push; then
          die "a multi-arch build ($platforms) cannot be loaded locally: add --push, or build one platform"
        fi
        local output=--load
        $push && output=--push
        docker buildx build --platform "$platforms" -f "$2" -t "$image" "$output" .
      else
        docker build -f "$2" -t "$image" .
        if $push; then docker push "$image"; fi
      fi
      ;;
    podman)
      if [ -n "$platforms" ]; then
        podman manifest rm "$image" >/dev/null 2>&1 || true
        podman build --platform "$platforms" --manifest "$image" -f "$2" .
        if $push; then podman manifest push --all "$image" "docker://$image"; fi
      else
        podman build -f "$2" -t "$image" .
        if $push; then podman push "$image"; fi
      fi
      ;;
    *) die "ENGINE must be docker or podman, not $engine" ;;
  esac
}

build agent Dockerfile.agent
build operator Dockerfile.operator

chart_version=$(sed -n 's/^appVersion: "\(.*\)"$/\1/p' deployment/helm/k8s-mcp-agent/Chart.yaml)
echo "build-images: built $registry/agent:$TAG and $registry/operator:$TAG$($push && echo ', pushed')" >&2
if [ "$TAG" != "$chart_version" ] || [ "$registry" != "ghcr.io/k8s-mcp-agent" ]; then
  cat >&2 <<MSG
build-images: the chart defaults to ghcr.io/k8s-mcp-agent/*:$chart_version; install these images with
  --set operator.image.repository=$registry/operator --set operator.image.tag=$TAG \\
  --set image.repository=$registry/agent --set image.tag=$TAG
MSG
fi
