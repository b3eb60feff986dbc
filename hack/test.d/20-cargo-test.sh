#!/usr/bin/env bash
# Unit, snapshot and black-box Rust tests of every workspace crate (nextest when installed).
set -euo pipefail
cargo build --workspace --all-targets --locked
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  cargo test --workspace --doc --locked
else
  cargo test --workspace --locked --no-fail-fast
fi
