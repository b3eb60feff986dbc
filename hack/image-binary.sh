#!/usr/bin/env bash
# How each image's binary is built, written once: the Dockerfiles' build stages run it inside the Rust
# image, and hack/test.d/75-images.sh runs it on the host when that image cannot be pulled.
#
#   hack/image-binary.sh rust-target agent|operator [TARGETARCH]   print the Rust target triple
#   hack/image-binary.sh build agent|operator OUT_DIR [TARGETARCH]  build it, copy it to OUT_DIR/<name>
#
# agent: a dynamically linked glibc build for the host's architecture (the NVIDIA runtime injects
# libnvidia-ml.so.1 at start, which the agent dlopens). operator: a static musl build, so it runs on an
# image without libc. TARGETARCH is Docker's name (amd64, arm64); the default is this machine's.
set -euo pipefail

die() { echo "image-binary: $*" >&2; exit 1; }

host_arch() {
  case "$(uname -m)" in
    x86_64) echo amd64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) echo "$(uname -m)" ;;
  esac
}

# $1 = agent|operator, $2 = TARGETARCH
rust_target() {
  local arch=${2:-$(host_arch)} cpu
  case "$arch" in
    amd64) cpu=x86_64 ;;
    arm64) cpu=aarch64 ;;
    *) die "unsupported TARGETARCH $arch (amd64 or arm64)" ;;
  esac
  case "$1" in
    agent) echo "$cpu-unknown-linux-gnu" ;;
    operator) echo "$cpu-unknown-linux-musl" ;;
    *) die "unknown image $1 (agent or operator)" ;;
  esac
}

[ $# -ge 2 ] || die "usage: image-binary.sh rust-target|build agent|operator [OUT_DIR] [TARGETARCH]"
case "$1" in
  rust-target)
    rust_target "$2" "${3:-}"
    ;;
  build)
    [ $# -ge 3 ] || die "build needs OUT_DIR, e.g. image-binary.sh build agent target/images/prebuilt"
    name=$2 out=$3
    target=$(rust_target "$name" "${4:-}")
    root=$(cd "$(dirname "$0")/.." && pwd)
    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    cd "$root"
    dir=${CARGO_TARGET_DIR:-target}
    if [ "$name" = agent ]; then
      # The native target without --target, so the build is target/release/agent (what hack/bench runs).
      [ "$target" = "$(rustc -vV | sed -n 's/^host: //p')" ] \
        || die "the agent is built natively ($target is not this machine's target): use an $target machine or emulation"
      cargo build --release --locked -p agent --bin agent
      cp "$dir/release/agent" "$out/agent"
    else
      cargo build --release --locked -p operator --bin operator --target "$target"
      cp "$dir/$target/release/operator" "$out/operator"
    fi
    echo "image-binary: $out/$name ($target, release)" >&2
    ;;
  *) die "unknown command $1 (rust-target or build)" ;;
esac
