#!/usr/bin/env bash
# Black-box tests of the agent binary through the official MCP Python SDK client (both protocol eras).
set -euo pipefail
cargo build -p agent --locked
"$TOOLS/python" -m pytest -q -p no:cacheprovider agent/tests/python "$@"
