#!/usr/bin/env bash
# hack/gpu-check.sh without a GPU: the unit tests of its nvidia-smi parsing, cross-check rules and report,
# then its driver end to end against the real agent binary on the fake libnvidia-ml with a saved
# `nvidia-smi -q -x` of the same node: once matching (exit 0), once with a GPU running hot (exit 1, named).
set -euo pipefail
python3 -m unittest discover -s hack -p 'gpu_check_test.py'

# The same build as stage 20 (a no-op after it): a narrower one would resolve features differently and rebuild.
cargo build --workspace --all-targets --locked
bin="${CARGO_TARGET_DIR:-target}/debug"
xml=hack/testdata/nvidia-smi-q-x-hgx-h100.xml
check() {
  FAKE_NVML_FIXTURE="$1" python3 hack/gpu_check.py --agent "$bin/agent" --nvidia-smi-xml "$xml" \
    -- --nvml-lib "$bin/libnvidia_ml.so"
}
report=$(mktemp)
trap 'rm -f "$report"' EXIT

check builtin:healthy >"$report" || { cat "$report"; echo "gpu-check self-test: expected a pass" >&2; exit 1; }
grep -q '\*\*155/155 passed\*\*' "$report" || { cat "$report"; exit 1; }

status=0
check builtin:thermal-throttle >"$report" || status=$?
[ "$status" -eq 1 ] || { cat "$report"; echo "gpu-check self-test: expected exit 1, got $status" >&2; exit 1; }
grep -q '| 2 | temperature_c | 33 | 88 |' "$report" || { cat "$report"; exit 1; }
echo "gpu-check self-test: a matching node passes, a mismatching one is reported"
