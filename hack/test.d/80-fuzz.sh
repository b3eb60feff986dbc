#!/usr/bin/env bash
# Fuzzes every target of fuzz/ (cargo-fuzz, libFuzzer) for FUZZ_SECONDS each (default 25; 0 skips), starting
# from the committed corpora in fuzz/corpus/, when a nightly toolchain is installed; says so and
# passes when it is not (stage 20 replays the corpora on stable either way: the crates' fuzz_corpus
# tests). cargo-fuzz is installed once into .tools/cargo/. New inputs go to fuzz/target/corpus-run/
# (git-ignored), builds to fuzz/target/. A crash fails the stage and names the input to commit as a
# regression test (fuzz/corpus/TARGET/).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
seconds=${FUZZ_SECONDS:-25}
CARGO_FUZZ_VERSION=0.13.2

if [ "$seconds" = 0 ]; then
  echo "80-fuzz: SKIPPED — FUZZ_SECONDS=0; the corpora were still replayed on stable by stage 20" >&2
  exit 0
fi
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "80-fuzz: SKIPPED — no nightly Rust toolchain (rustup toolchain install nightly); the corpora were" \
       "still replayed on stable by stage 20" >&2
  exit 0
fi
tools="$root/.tools/cargo"
if ! [ -x "$tools/bin/cargo-fuzz" ] || [ "$(cat "$tools/cargo-fuzz.stamp" 2>/dev/null)" != "$CARGO_FUZZ_VERSION" ]; then
  echo "80-fuzz: cargo install cargo-fuzz $CARGO_FUZZ_VERSION -> $tools" >&2
  cargo install --quiet --locked --root "$tools" --version "$CARGO_FUZZ_VERSION" cargo-fuzz
  echo "$CARGO_FUZZ_VERSION" > "$tools/cargo-fuzz.stamp"
fi
export PATH="$tools/bin:$PATH"

# Coverage-guided, unoptimised (debug assertions and overflow checks on) and without a sanitizer:
# the fuzzed code is safe Rust, and a dev build of the ~290 crates takes a fraction of a release
# ASan build on 2 cores. fuzz/target keeps the build, so a second run only fuzzes.
flags=(--fuzz-dir fuzz --sanitizer none --dev)
cargo +nightly fuzz build "${flags[@]}"
for target in $(cargo +nightly fuzz list --fuzz-dir fuzz); do
  work="fuzz/target/corpus-run/$target"
  mkdir -p "$work"
  echo "80-fuzz: $target for ${seconds}s" >&2
  if ! cargo +nightly fuzz run "${flags[@]}" "$target" "$work" "fuzz/corpus/$target" -- \
      -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 2>"$work.log"; then
    tail -n 40 "$work.log" >&2
    echo "80-fuzz: $target crashed or hung; the input is in fuzz/artifacts/$target/. Copy it into" \
         "fuzz/corpus/$target/ (the fuzz_corpus tests then replay it on stable), fix the bug, rerun." >&2
    exit 1
  fi
  grep -E '^stat::number_of_executed_units|^stat::new_units_added' "$work.log" | tr '\n' ' ' >&2 || true
  echo >&2
done
