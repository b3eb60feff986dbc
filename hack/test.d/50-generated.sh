#!/usr/bin/env bash
# Generated files (CRD YAML, chart values/schema/RBAC, README tables, kubectl manifests) match the Rust types.
set -euo pipefail
hack/verify-generated.sh
