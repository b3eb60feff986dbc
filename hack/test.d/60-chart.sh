#!/usr/bin/env bash
# The Helm chart with the real helm 3.17 and 4.1, kubectl and kubernetes-validate (deployment/tests/, pytest):
# lint, render and validate every documented command, refuse bad values, RBAC = the operator's table, and
# install / upgrade / uninstall against testing/test-apiserver with the real operator binary.
set -euo pipefail
# The same build as stage 20 (a no-op after it): a narrower one would resolve features differently and rebuild.
cargo build --workspace --all-targets --locked
"$TOOLS/python" -m pytest -q -p no:cacheprovider deployment/tests "$@"
