#!/usr/bin/env bash
# Fails when a committed generated file differs from what the Rust types (and the chart templates) produce now.
# Regenerates everything into a temporary folder with hack/update-generated.sh and compares file by file.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
hack/update-generated.sh "$tmp"

status=0
while IFS= read -r file; do
  if ! diff -u "$root/$file" "$tmp/$file" > "$tmp.diff" 2>&1; then
    echo "verify-generated: $file is out of date:" >&2
    head -n 40 "$tmp.diff" >&2
    status=1
  fi
done < <(cd "$tmp" && find . -type f | sed 's|^\./||' | sort)
rm -f "$tmp.diff"
if [ "$status" -ne 0 ]; then
  echo "verify-generated: generated files differ from the sources: run hack/update-generated.sh and commit the result" >&2
  exit 1
fi
echo "verify-generated: $(cd "$tmp" && find . -type f | wc -l) files match their sources"
