#!/usr/bin/env bash
# Black-box tests of the agent binary through the official MCP Python SDK client (both protocol eras).
set -euo pipefail
# The same build as stage 20 (a no-op after it): a narrower one would resolve features differently and rebuild.
cargo build --workspace --all-targets --locked
"$TOOLS/python" -m pytest -q -p no:cacheprovider agent/tests/python "$@"
