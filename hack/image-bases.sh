#!/usr/bin/env bash
# Assembles local stand-ins for the two distroless runtime bases from Debian packages, with buildah, for
# machines that cannot pull gcr.io/distroless/* (CI). Same shape as the originals: no shell, no package
# manager; users root (0), nobody (65534) and nonroot (65532); /tmp (1777), /home/nonroot (65532, 0700);
# the CA bundle at /etc/ssl/certs/ca-certificates.crt; config user 65532:65532, workdir /home/nonroot.
#
#   hack/image-bases.sh        prints the two image names, one a line: the cc base, then the static base
#
#   localhost/k8s-mcp-agent-base/cc:nonroot      like distroless/cc-debian12: libc6 and libgcc-s1 added
#   localhost/k8s-mcp-agent-base/static:nonroot  like distroless/static-debian12: no libc
#
# Packages come from this machine's apt sources (`apt-get download`, cached in target/images/debs; an
# `apt-get update` is run once when a download fails and this is root). buildah's storage is whatever the
# caller set (CONTAINERS_STORAGE_CONF, STORAGE_DRIVER); hack/test.d/75-images.sh uses vfs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
die() { echo "image-bases: $*" >&2; exit 1; }
command -v buildah >/dev/null 2>&1 || die "buildah not found (Debian: apt-get install buildah)"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: the bases are made from Debian packages"

debs="${CARGO_TARGET_DIR:-target}/images/debs"
mkdir -p "$debs"
debs=$(cd "$debs" && pwd)

# $@ = package names; prints the .deb paths.
download() {
  local pkg missing=()
  for pkg in "$@"; do
    compgen -G "$debs/${pkg}_*.deb" >/dev/null || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if ! (cd "$debs" && apt-get download -q -o APT::Sandbox::User=root "${missing[@]}" >&2); then
      [ "$(id -u)" = 0 ] || die "apt-get download ${missing[*]} failed (run apt-get update as root, then retry)"
      apt-get update -q >&2
      (cd "$debs" && apt-get download -q -o APT::Sandbox::User=root "${missing[@]}" >&2) \
        || die "apt-get download ${missing[*]} failed: check the apt sources (deb.debian.org reachable?)"
    fi
  fi
  for pkg in "$@"; do
    compgen -G "$debs/${pkg}_*.deb" | sort -V | tail -n 1
  done
}

# $1 = rootfs; the files distroless's base layer holds besides packages.
base_files() {
  local fs=$1
  mkdir -p "$fs/etc/ssl/certs" "$fs/tmp" "$fs/root" "$fs/home/nonroot"
  chmod 1777 "$fs/tmp"
  chmod 0700 "$fs/root" "$fs/home/nonroot"
  chown 65532:65532 "$fs/home/nonroot"
  cat >"$fs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
  cat >"$fs/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
EOF
  echo 'hosts: files dns' >"$fs/etc/nsswitch.conf"
  cp /etc/os-release "$fs/etc/os-release"
}

# $1 = rootfs, $2 = the ca-certificates .deb: only the bundle, as update-ca-certificates would write it.
ca_bundle() {
  local fs=$1 tmp
  tmp=$(mktemp -d)
  dpkg-deb -x "$2" "$tmp"
  cat "$tmp"/usr/share/ca-certificates/mozilla/*.crt >"$fs/etc/ssl/certs/ca-certificates.crt"
  mkdir -p "$fs/usr/share/doc/ca-certificates"
  cp "$tmp/usr/share/doc/ca-certificates/copyright" "$fs/usr/share/doc/ca-certificates/"
  rm -rf "$tmp"
}

# $1 = image name, $2.. = .deb files extracted as they are (after ca-certificates, the first).
assemble() {
  local image=$1 ca=$2 deb ctr mnt versions
  shift 2
  ctr=$(buildah from scratch)
  mnt=$(buildah mount "$ctr")
  base_files "$mnt"
  ca_bundle "$mnt" "$ca"
  versions="ca-certificates=$(dpkg-deb -f "$ca" Version)"
  for deb in "$@"; do
    dpkg-deb -x "$deb" "$mnt"
    versions="$versions $(dpkg-deb -f "$deb" Package)=$(dpkg-deb -f "$deb" Version)"
  done
  # Package documentation other than copyright files, as distroless strips it.
  find "$mnt/usr/share/doc" -type f ! -name copyright -delete 2>/dev/null || true
  rm -rf "$mnt/usr/share/lintian" "$mnt/usr/share/man" "$mnt/usr/share/info"
  [ ! -e "$mnt/bin/sh" ] || die "$image would contain /bin/sh"
  buildah umount "$ctr" >/dev/null
  buildah config --user 65532:65532 --workingdir /home/nonroot \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --label "org.opencontainers.image.description=local stand-in for distroless, from Debian packages: $versions" \
    "$ctr"
  buildah commit -q --rm "$ctr" "$image" >/dev/null
  echo "image-bases: $image ($versions)" >&2
  echo "$image"
}

packages=$(download ca-certificates libc6 libgcc-s1)
mapfile -t cc <<<"$packages"
assemble localhost/k8s-mcp-agent-base/cc:nonroot "${cc[@]}"
assemble localhost/k8s-mcp-agent-base/static:nonroot "${cc[0]}"
