#!/usr/bin/env bash
# Builds the two images, ghcr.io/k8s-mcp-agent/{agent,operator}:<tag>, with docker (buildx), podman or
# buildah (no daemon needed), pushes them with --push and writes OCI archives with --oci-dir.
# CI builds and runs the images with buildah in hack/test.d/75-images.sh; see hack/README.md.
#
#   hack/build-images.sh [--push] [--oci-dir DIR] [--platforms linux/amd64,linux/arm64]
#                        [--prebuilt] [--local-bases] [--agent-base IMAGE] [--operator-base IMAGE]
#                        [--build-arg NAME=VALUE]...
#
#   --oci-dir DIR   also write DIR/agent.oci.tar and DIR/operator.oci.tar (OCI image archives; every
#                   platform built, as an index): load them with `podman load`, copy them with skopeo
#   --prebuilt      build the binaries on this machine (hack/image-binary.sh: cargo, and the musl target
#                   and musl-gcc for the operator) instead of in the Rust image: BINARY_FROM=prebuilt
#   --agent-base, --operator-base
#                   the runtime base of each image (BASE_IMAGE) instead of distroless cc / static
#   --local-bases   buildah or podman: assemble both bases from Debian packages (hack/image-bases.sh) and
#                   use them; with --prebuilt nothing is pulled
#   --build-arg     passed to both builds, e.g. BUILDER_IMAGE=... (see the Dockerfiles)
#
# Environment:
#   REGISTRY  image prefix (default ghcr.io/k8s-mcp-agent): $REGISTRY/agent and $REGISTRY/operator
#   TAG       image tag (default: `git describe --tags --always --dirty` without a leading "v", so tag
#             v0.1.0 gives 0.1.0, the chart's appVersion and the operator's default agent tag)
#   ENGINE    docker, podman or buildah (default: the first installed, in that order)
# Multi-arch (--platforms with more than one): docker buildx needs --push or --oci-dir (a multi-arch image
# cannot be loaded into the local docker store); podman and buildah build a local manifest list.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

die() { echo "build-images: $*" >&2; exit 1; }
push=false
platforms=""
oci_dir=""
prebuilt=false
local_bases=false
agent_base=""
operator_base=""
build_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --push) push=true ;;
    --platforms) [ $# -ge 2 ] || die "--platforms needs a value, e.g. linux/amd64,linux/arm64"; platforms=$2; shift ;;
    --platforms=*) platforms=${1#--platforms=} ;;
    --oci-dir) [ $# -ge 2 ] || die "--oci-dir needs a directory"; oci_dir=$2; shift ;;
    --oci-dir=*) oci_dir=${1#--oci-dir=} ;;
    --prebuilt) prebuilt=true ;;
    --local-bases) local_bases=true ;;
    --agent-base) [ $# -ge 2 ] || die "--agent-base needs an image"; agent_base=$2; shift ;;
    --operator-base) [ $# -ge 2 ] || die "--operator-base needs an image"; operator_base=$2; shift ;;
    --build-arg) [ $# -ge 2 ] || die "--build-arg needs NAME=VALUE"; build_args+=(--build-arg "$2"); shift ;;
    --build-arg=*) build_args+=(--build-arg "${1#--build-arg=}") ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
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
  for candidate in docker podman buildah; do
    if command -v "$candidate" >/dev/null 2>&1; then engine=$candidate; break; fi
  done
  [ -n "$engine" ] || die "none of docker, podman or buildah found: install one, or set ENGINE"
fi
command -v "$engine" >/dev/null 2>&1 || die "$engine not found"
multi=false
[[ "$platforms" == *,* ]] && multi=true
if [ -n "$oci_dir" ]; then
  mkdir -p "$oci_dir"
  oci_dir=$(cd "$oci_dir" && pwd)
fi

if $prebuilt; then
  [[ -z "$platforms" || "$platforms" != *,* ]] \
    || die "--prebuilt builds for this machine only: build one platform, or drop --prebuilt"
  for name in agent operator; do
    hack/image-binary.sh build "$name" target/images/prebuilt
  done
  build_args+=(--build-arg BINARY_FROM=prebuilt)
fi

if $local_bases; then
  [ "$engine" != docker ] || die "--local-bases needs buildah or podman (docker cannot see buildah's images)"
  bases=$(hack/image-bases.sh)
  agent_base=$(sed -n 1p <<<"$bases")
  operator_base=$(sed -n 2p <<<"$bases")
  build_args+=(--pull=never)
fi

build() { # $1 = image name, $2 = Dockerfile, $3 = base image (empty: the Dockerfile's)
  local image="$registry/$1:$TAG" archive="$oci_dir/$1.oci.tar"
  local platform_flag=() build_args=("${build_args[@]}")
  [ -z "$platforms" ] || platform_flag=(--platform "$platforms")
  [ -z "$3" ] || build_args+=(--build-arg "BASE_IMAGE=$3")
  echo "build-images: $image from $2${platforms:+ for $platforms} with $engine" >&2
  case "$engine" in
    docker)
      if [ -n "$platforms" ] || [ -n "$oci_dir" ]; then
        local outputs=()
        [ -z "$oci_dir" ] || outputs+=(--output "type=oci,dest=$archive")
        if $push; then outputs+=(--push); fi
        if [ ${#outputs[@]} -eq 0 ]; then
          $multi && die "a multi-arch build ($platforms) cannot be loaded locally: add --push or --oci-dir, or build one platform"
          outputs=(--load)
        fi
        docker buildx build "${platform_flag[@]}" "${build_args[@]}" -f "$2" -t "$image" "${outputs[@]}" .
      else
        docker build "${build_args[@]}" -f "$2" -t "$image" .
        if $push; then docker push "$image"; fi
      fi
      ;;
    podman | buildah)
      if $multi; then
        "$engine" manifest rm "$image" >/dev/null 2>&1 || true
        "$engine" build "${platform_flag[@]}" "${build_args[@]}" --manifest "$image" -f "$2" .
        if $push; then "$engine" manifest push --all "$image" "docker://$image"; fi
        [ -z "$oci_dir" ] || "$engine" manifest push --all "$image" "oci-archive:$archive:$image"
      else
        "$engine" build "${platform_flag[@]}" "${build_args[@]}" -t "$image" -f "$2" .
        if $push; then "$engine" push "$image" "docker://$image"; fi
        if [ -n "$oci_dir" ]; then
          rm -f "$archive"
          "$engine" push "$image" "oci-archive:$archive:$image"
        fi
      fi
      ;;
    *) die "ENGINE must be docker, podman or buildah, not $engine" ;;
  esac
  [ -z "$oci_dir" ] || echo "build-images: wrote $archive" >&2
}

build agent Dockerfile.agent "$agent_base"
build operator Dockerfile.operator "$operator_base"

chart_version=$(sed -n 's/^appVersion: "\(.*\)"$/\1/p' deployment/helm/k8s-mcp-agent/Chart.yaml)
echo "build-images: built $registry/agent:$TAG and $registry/operator:$TAG$($push && echo ', pushed')" >&2
if [ "$TAG" != "$chart_version" ] || [ "$registry" != "ghcr.io/k8s-mcp-agent" ]; then
  cat >&2 <<MSG
build-images: the chart defaults to ghcr.io/k8s-mcp-agent/*:$chart_version; install these images with
  --set operator.image.repository=$registry/operator --set operator.image.tag=$TAG \\
  --set image.repository=$registry/agent --set image.tag=$TAG
MSG
fi
