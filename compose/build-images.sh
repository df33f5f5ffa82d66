#!/usr/bin/env bash
# Builds the images of the compose deployment locally; no image registry is needed.
#
#   1. hapg-base:bookworm  a Debian 12 root filesystem made with debootstrap and loaded with
#                          `docker import` (skipped when the image exists; needs root and
#                          debootstrap, and Debian's package mirror).
#   2. hapg-node           PostgreSQL 15 and pgBackRest (apt, inside the build) + ha-agent,
#                          its fence ha-fence, and hactl, which are built on the host
#                          (`cargo build --release`) and copied in.
#   3. hapg-etcd           etcd 3.4 (apt).
#   4. hapg-haproxy        HAProxy 2.6 (apt).
#
# Idempotent: a second run reuses the base image and Docker's build cache, and only rebuilds
# what changed (new binaries -> one new layer of hapg-node).
#
# Environment:
#   HAPG_BIN_DIR            use the ha-agent, ha-fence and hactl found there instead of running cargo
#   HAPG_DEBIAN_MIRROR      default http://deb.debian.org/debian
#   HAPG_DEBIAN_SECURITY    default http://deb.debian.org/debian-security
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
base=hapg-base:bookworm
mirror=${HAPG_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${HAPG_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}

die() {
  echo "build-images: $*" >&2
  exit 1
}

tmp=$(mktemp -d /var/tmp/hapg-build.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

check_docker() {
  command -v docker >/dev/null ||
    die "docker not found: install Docker Engine first (Debian: apt-get install docker.io docker-compose)"
  docker info >/dev/null 2>&1 ||
    die "cannot reach the Docker daemon: is it running (systemctl start docker), and may this user use it (root or group docker)?"
}

# The release binaries: HAPG_BIN_DIR, or built here (a no-op when they are up to date).
binaries() {
  local dir
  if [ -n "${HAPG_BIN_DIR:-}" ]; then
    dir=$HAPG_BIN_DIR
  elif command -v cargo >/dev/null; then
    echo "== cargo build --release -p ha-agent -p hactl" >&2
    (cd "$root" && cargo build --release -q -p ha-agent -p hactl) >&2 ||
      die "cargo build failed (see above)"
    dir=$root/target/release
  else
    dir=$root/target/release
    echo "build-images: cargo not found; using whatever is in $dir" >&2
  fi
  for b in ha-agent ha-fence hactl; do
    [ -x "$dir/$b" ] || die "$dir/$b is missing: build it with 'cargo build --release -p ha-agent -p hactl' (or set HAPG_BIN_DIR)"
  done
  echo "$dir"
}

build_base() {
  if docker image inspect "$base" >/dev/null 2>&1; then
    echo "== $base: already present"
    return
  fi
  command -v debootstrap >/dev/null ||
    die "debootstrap not found; it is needed once, to build $base (Debian: apt-get install debootstrap)"
  [ "$(id -u)" -eq 0 ] || die "debootstrap must run as root, to build $base"
  local rootfs=$tmp/rootfs
  echo "== $base: debootstrap bookworm from $mirror (about a minute)"
  if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1; then
    tail -20 "$tmp/debootstrap.log" >&2
    die "debootstrap failed (last lines above); is $mirror reachable?"
  fi
  # Updates and security fixes too, as Debian's own images have.
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
  # No service may start while a package installs (there is no init in a build).
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 755 "$rootfs/usr/sbin/policy-rc.d"
  # Smaller images: no documentation, no recommended packages, no apt caches.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/hapg-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    >"$rootfs/etc/apt/apt.conf.d/90hapg-norecommends"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  echo "== $base: docker import"
  tar --numeric-owner -C "$rootfs" -c . |
    docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' - "$base" >/dev/null
}

build_image() {
  local name=$1 context=$2
  echo "== $name"
  if ! docker build -q -t "$name:latest" --build-arg "BASE=$base" \
    -f "$here/images/${name#hapg-}.Dockerfile" "$context" >"$tmp/$name.log" 2>&1; then
    cat "$tmp/$name.log" >&2
    die "building $name failed (output above)"
  fi
}

check_docker
bin=$(binaries)
build_base

# hapg-node's context: the three binaries only (without their debug info). The agent starts
# its fence (ha-fence) from the same directory; without it a member never leads.
mkdir -p "$tmp/node/bin" "$tmp/empty"
for b in ha-agent ha-fence hactl; do
  if command -v strip >/dev/null; then
    strip --strip-debug -o "$tmp/node/bin/$b" "$bin/$b"
  else
    cp "$bin/$b" "$tmp/node/bin/$b"
  fi
done
build_image hapg-node "$tmp/node"
build_image hapg-etcd "$tmp/empty"
build_image hapg-haproxy "$tmp/empty"

# The host-built binaries must run in the image (same C library).
docker run --rm --entrypoint ha-agent hapg-node:latest --version >/dev/null ||
  die "ha-agent does not run inside hapg-node (built against a newer C library than bookworm's?)"
docker run --rm --entrypoint hactl hapg-node:latest --version >/dev/null ||
  die "hactl does not run inside hapg-node"
docker run --rm --entrypoint pgbackrest hapg-node:latest version >/dev/null ||
  die "pgbackrest does not run inside hapg-node"

echo "== images ready:"
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' |
  grep -E '^hapg-(base|node|etcd|haproxy):' | sed 's/^/   /' || true
