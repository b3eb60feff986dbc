#!/usr/bin/env bash
# Real-GPU check, for a machine with an NVIDIA GPU (H100/H200 class) and its driver: builds the
# agent (release), runs every tool over stdio with real NVML, cross-checks the inventory against
# `nvidia-smi -q -x` (names, UUIDs, PCI bus ids, memory totals exactly; temperature and power within a
# tolerance), times cold start and each tool, and prints a markdown report.
#
#   hack/gpu-check.sh [--out docs/gpu-check-<gpu>.md] [-- EXTRA_AGENT_FLAGS...]
#   AGENT_BIN=/path/to/agent hack/gpu-check.sh ...   # use a prebuilt agent, skip the build
#
# Exit status: 0 every check passed, 1 a cross-check failed (see "Mismatches"), 2 the check could not run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

die() { echo "gpu-check: $*" >&2; exit 2; }
command -v python3 >/dev/null || die "python3 not found (the report driver needs only its standard library)"
command -v nvidia-smi >/dev/null || die "nvidia-smi not found: run this on a GPU machine with the NVIDIA driver installed"
nvidia-smi -L >&2 || die "nvidia-smi cannot talk to the driver (see its message above)"

build_args=()
if [ -z "${AGENT_BIN:-}" ]; then
  command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) or set AGENT_BIN"
  started=$(date +%s)
  cargo build --release --locked -p agent >&2
  build_args=(--build-seconds "$(( $(date +%s) - started ))")
  AGENT_BIN="${CARGO_TARGET_DIR:-$root/target}/release/agent"
fi
[ -x "$AGENT_BIN" ] || die "no agent binary at $AGENT_BIN"
exec python3 hack/gpu_check.py --agent "$AGENT_BIN" "${build_args[@]}" "$@"
