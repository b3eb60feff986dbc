#!/usr/bin/env bash
# Lints both Dockerfiles with hadolint (pinned bases, no shell-form entrypoints, clean apt usage).
set -euo pipefail
"$TOOLS/hadolint" Dockerfile.agent Dockerfile.operator
echo "hadolint: Dockerfile.agent and Dockerfile.operator are clean"
