#!/usr/bin/env bash
# The whole test suite: README command 2, and exactly what .ci/run executes.
# Installs its tools into .tools/ (idempotent), builds the workspace once into target/, then runs every
# stage in hack/test.d/ in name order. Each stage is a standalone script; run one alone with
#   hack/test.sh <stage-name-substring>
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export ROOT="$root" TOOLS="$root/.tools"
hack/install-test-tools.sh
started=$(date +%s)
for stage in hack/test.d/*.sh; do
  if [ $# -gt 0 ] && [[ "$stage" != *"$1"* ]]; then continue; fi
  t0=$(date +%s)
  echo "=== stage $(basename "$stage")" >&2
  bash "$stage"
  echo "=== stage $(basename "$stage") passed in $(( $(date +%s) - t0 ))s" >&2
done
echo "=== all stages passed in $(( $(date +%s) - started ))s" >&2
