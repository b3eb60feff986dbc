#!/usr/bin/env bash
# hack/bench --quick on the debug builds: the benchmark harness still drives the agent, the Python SDK
# peer and the operator end to end (~15 s). It asserts nothing about speed; the harness checks every
# answer it times (reply ids, no errors, exact Xid counts) and fails on any of them.
set -euo pipefail
hack/bench --quick
