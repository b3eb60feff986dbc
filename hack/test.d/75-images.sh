#!/usr/bin/env bash
# Builds both images from Dockerfile.agent and Dockerfile.operator with buildah (vfs storage, chroot
# isolation: no daemon), exports them as OCI archives (target/images/agent.oci.tar, operator.oci.tar) and
# runs what the pod specs run. Nothing is pulled: the runtime bases are local stand-ins for distroless made
# from Debian packages (hack/image-bases.sh) and the binaries are built on the host with the Dockerfiles'
# own recipe (hack/image-binary.sh), passed in with BINARY_FROM=prebuilt.
# As root it installs buildah and musl-tools with apt-get when missing; otherwise it says why it skipped.
set -euo pipefail
root=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root"
say() { echo "images: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

apt_install() {
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends
    -o DPkg::Lock::Timeout=300 "$@")
  "${apt[@]}" >&2 || { apt-get update -q >&2 && "${apt[@]}" >&2; }
}

if [ "$(id -u)" != 0 ]; then
  say "SKIPPED: needs root (uid $(id -u) here): it installs buildah and musl-tools with apt-get, and" \
    "buildah runs the images with chroot isolation, which takes root. CI runs as root; so can you:" \
    "sudo hack/test.sh images"
  exit 0
fi
if ! command -v buildah >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "SKIPPED: buildah is not installed and there is no apt-get to install it; install buildah" \
      "(https://github.com/containers/buildah/blob/main/install.md), then rerun this stage"
    exit 0
  fi
  say "installing buildah (apt-get)"
  apt_install buildah || fail "apt-get install buildah failed (see above)"
fi

target=${CARGO_TARGET_DIR:-target}
out="$target/images"
mkdir -p "$out"
out=$(cd "$out" && pwd)
# The build context: only the prebuilt binaries, at the path the Dockerfiles' `prebuilt` stage copies.
context="$out/context"
prebuilt="$context/target/images/prebuilt"
rm -rf "$context"
mkdir -p "$prebuilt"

# The shipped operator is a static musl build; without the musl target or musl-gcc the operator image is
# built from the glibc binary on the glibc base instead, and the stage says so.
musl_target=$(hack/image-binary.sh rust-target operator)
musl=true
if ! rustup target list --installed 2>/dev/null | grep -qx "$musl_target"; then
  rustup target add "$musl_target" >&2 || musl=false
fi
if $musl && ! command -v musl-gcc >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then apt_install musl-tools || musl=false; else musl=false; fi
fi

t0=$(date +%s)
hack/image-binary.sh build agent "$prebuilt"
if $musl; then
  hack/image-binary.sh build operator "$prebuilt"
else
  say "WARNING: no $musl_target target or musl-gcc (rustup target add $musl_target; apt-get install" \
    "musl-tools): the operator image is checked with the glibc build on the glibc base, not the shipped" \
    "static musl build"
  cargo build --release --locked -p operator --bin operator
  cp "$target/release/operator" "$prebuilt/operator"
fi
# The fake libnvidia-ml, from the same build as stage 20 (a no-op after it).
cargo build --workspace --all-targets --locked --quiet
fake_nvml=$(realpath "$target/debug/libnvidia_ml.so")
say "binaries ready in $(($(date +%s) - t0))s"

# buildah's own storage under target/, so the stage leaves the machine's container storage alone.
export CONTAINERS_STORAGE_CONF="$out/storage.conf"
cat >"$CONTAINERS_STORAGE_CONF" <<CONF
[storage]
driver = "vfs"
graphroot = "$out/storage"
runroot = "$out/run"
CONF
bah() { buildah --storage-driver vfs "$@"; }
bah rm --all >/dev/null
bah rmi --prune >/dev/null 2>&1 || true

bases=$(hack/image-bases.sh)
cc_base=$(sed -n 1p <<<"$bases")
static_base=$(sed -n 2p <<<"$bases")
operator_base=$static_base
$musl || operator_base=$cc_base

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
# Docker's name for this machine's architecture (buildah 1.28 does not set TARGETARCH by itself).
case "$(uname -m)" in
  aarch64 | arm64) arch=arm64 ;;
  *) arch=amd64 ;;
esac
build() { # $1 = image, $2 = Dockerfile, $3 = base image, then more build flags
  local name=$1 image="localhost/k8s-mcp-agent/$1:ci" dockerfile=$2 base=$3
  shift 3
  bah build --isolation chroot --pull=never -q -f "$dockerfile" -t "$image" \
    --build-arg BASE_IMAGE="$base" --build-arg BINARY_FROM=prebuilt "$@" "$context" >/dev/null
  rm -f "$out/$name.oci.tar"
  bah push -q "$image" "oci-archive:$out/$name.oci.tar:ghcr.io/k8s-mcp-agent/$name:$version"
  say "built $image from $dockerfile on $base -> ${out#"$root/"}/$name.oci.tar"
}
# The exported archive itself: its tag, and the entrypoint and user of the image it holds.
check_archive() { # $1 = image, $2 = entrypoint, $3 = user
  python3 - "$out/$1.oci.tar" "ghcr.io/k8s-mcp-agent/$1:$version" "$2" "$3" <<'PY' || fail "$1.oci.tar: see above"
import json, sys, tarfile
path, ref, entrypoint, user = sys.argv[1:]
with tarfile.open(path) as tar:
    blob = lambda digest: json.load(tar.extractfile("blobs/" + digest.replace(":", "/")))
    [manifest] = json.load(tar.extractfile("index.json"))["manifests"]
    got = manifest.get("annotations", {}).get("org.opencontainers.image.ref.name")
    config = blob(blob(manifest["digest"])["config"]["digest"])["config"]
if got != ref:
    sys.exit(f"{path}: tagged {got}, expected {ref}")
if config.get("Entrypoint") != [entrypoint] or config.get("User") != user:
    sys.exit(f"{path}: entrypoint {config.get('Entrypoint')} user {config.get('User')}, "
             f"expected [{entrypoint}] {user}")
PY
}
build agent Dockerfile.agent "$cc_base"
build operator Dockerfile.operator "$operator_base" --build-arg TARGETARCH="$arch"
check_archive agent /agent 0:0
check_archive operator /operator 65532:65532

# Runs a command in a fresh container of the image (chroot isolation, the image's user).
run() { # $1 = image, [buildah run flags], --, command...
  local image=$1 ctr status=0 flags=()
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do flags+=("$1"); shift; done
  shift
  ctr=$(bah from --pull=never -q "localhost/k8s-mcp-agent/$image:ci")
  bah run --isolation chroot "${flags[@]}" "$ctr" -- "$@" || status=$?
  bah rm "$ctr" >/dev/null
  return "$status"
}
expect_config() { # $1 = image, $2 = Go template, $3 = expected
  local got
  got=$(bah inspect --type image --format "$2" "localhost/k8s-mcp-agent/$1:ci")
  [ "$got" = "$3" ] || fail "$1 image: $2 is '$got', expected '$3'"
}
expect_config agent '{{.OCIv1.Config.Entrypoint}}' '[/agent]'
expect_config agent '{{.OCIv1.Config.Cmd}}' '[idle]'
expect_config agent '{{.OCIv1.Config.User}}' '0:0'
expect_config operator '{{.OCIv1.Config.Entrypoint}}' '[/operator]'
expect_config operator '{{.OCIv1.Config.User}}' '65532:65532'
say "entrypoints and users are the pod specs' (agent: /agent idle as 0:0; operator: /operator as 65532:65532)"

# No shell in either image: neither on disk nor runnable.
for image in agent operator; do
  ctr=$(bah from --pull=never -q "localhost/k8s-mcp-agent/$image:ci")
  mnt=$(bah mount "$ctr")
  for shell in bin/sh usr/bin/sh bin/bash usr/bin/bash bin/dash usr/bin/dash bin/busybox; do
    [ ! -e "$mnt/$shell" ] && [ ! -L "$mnt/$shell" ] || { bah rm "$ctr" >/dev/null; fail "$image image contains /$shell"; }
  done
  bah umount "$ctr" >/dev/null
  bah rm "$ctr" >/dev/null
  if run "$image" -- /bin/sh -c true 2>/dev/null; then fail "$image image: /bin/sh -c true ran"; fi
done
say "no shell in either image"

got=$(run agent -- /agent --version)
[ "$got" = "agent $version" ] || fail "/agent --version printed '$got', expected 'agent $version'"
got=$(run operator -- /operator --version)
[ "$got" = "operator $version" ] || fail "/operator --version (as 65532:65532) printed '$got', expected 'operator $version'"
say "/agent --version: $(run agent -- /agent --version); /operator --version as uid 65532: $got"

# The original chart's inventory query through the image's agent: mock data, then the real NVML path on
# the fake libnvidia-ml mounted where the NVIDIA container runtime injects the driver's.
inventory() { # $1 = label, then `run` arguments; prints the reply's GPU UUIDs, checks the data source
  local label=$1 replies
  shift
  replies=$(run agent "$@" <examples/inventory-query.jsonl) || fail "$label: the agent exited with an error"
  python3 - "$label" "$replies" <<'PY'
import json, sys
label, text = sys.argv[1], sys.argv[2]
replies = {m.get("id"): m for m in map(json.loads, text.splitlines())}
if set(replies) != {0, 1}:
    sys.exit(f"{label}: expected replies to ids 0 and 1, got {sorted(replies, key=str)}:\n{text}")
if replies[0]["result"]["serverInfo"]["name"] != "k8s-mcp-agent":
    sys.exit(f"{label}: the initialize reply names another server:\n{text}")
inventory = replies[1]["result"]["structuredContent"]
print(inventory["data_source"])
for gpu in inventory["gpus"]:
    print(gpu["uuid"])
PY
}
mock=$(inventory "mock inventory" -- /agent --nvml-mode=mock)
[ "$(sed -n 1p <<<"$mock")" = mock:healthy ] || fail "mock inventory: data source is not mock:healthy: $mock"
[ "$(sed 1d <<<"$mock" | wc -l)" -eq 8 ] || fail "mock inventory: expected 8 GPUs, got: $mock"
say "the original chart's inventory query (examples/inventory-query.jsonl) through /agent --nvml-mode=mock: 8 GPUs"

status=0
message=$(run agent -- /agent check 2>&1) || status=$?
[ "$status" -eq 1 ] || fail "/agent check without a driver exited $status, expected 1: $message"
grep -q 'libnvidia-ml.so.1 could not be loaded' <<<"$message" \
  && grep -q 'NVIDIA runtime' <<<"$message" \
  || fail "/agent check without a driver: expected the missing-NVML message, got: $message"
say "/agent check without a driver: exit 1, '${message:0:80}...'"

# Where the NVIDIA container toolkit mounts the driver's library on a Debian-based image.
nvml_path="/usr/lib/$(uname -m)-linux-gnu/libnvidia-ml.so.1"
inject=(-v "$fake_nvml:$nvml_path:ro")
run agent "${inject[@]}" -- /agent check || fail "/agent check with the fake libnvidia-ml injected failed"
real=$(inventory "NVML inventory" "${inject[@]}" -- /agent)
[ "$(sed -n 1p <<<"$real")" = nvml ] || fail "NVML inventory: data source is not nvml: $real"
[ "$(sed 1d <<<"$real")" = "$(sed 1d <<<"$mock")" ] \
  || fail "NVML inventory on the fake library lists other GPUs than the mock: $real vs $mock"
say "with the fake libnvidia-ml at $nvml_path: /agent check passes and" \
  "the inventory lists the same 8 GPUs through the real NVML path"

for image in agent operator; do
  size=$(bah images --format '{{.Size}}' "localhost/k8s-mcp-agent/$image:ci")
  archive=$(du -h "$out/$image.oci.tar" | cut -f1)
  say "$image image: $size uncompressed; ${out#"$root/"}/$image.oci.tar $archive"
done
$musl || say "WARNING: the operator image was checked with a glibc build (see above), not the shipped musl one"
