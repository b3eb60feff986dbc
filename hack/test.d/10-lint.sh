#!/usr/bin/env bash
# Formatting and lints: cargo fmt and clippy with warnings as errors, over every target of the workspace.
set -euo pipefail
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
