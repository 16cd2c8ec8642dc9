#!/usr/bin/env bash
# Builds airbyte/source-smstools:dev with podman, on machines with no Docker engine and no image
# registry (the recipe of ../shared/CONTAINERS.md):
#
#   bash integration_tests/image/image.sh build    # what `make image` and the image test run
#   bash integration_tests/image/image.sh env      # prints the CONTAINERS_CONF line to `eval` before calling podman
#
# Safe to run twice and concurrently: the steps are serialised by a lock, and each one is skipped
# when its result is already there (for the base: there and of the current BASE_VERSION).
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE="${IMAGE:-airbyte/source-smstools:dev}"
BASE="localhost/python-base:3.11"
# The stand-in's version, kept as a label on it: bump it whenever build_base changes what goes in,
# so that a base cached on a machine by an older image.sh is rebuilt rather than silently reused.
# 2: the `airbyte` user (uid 1000) that the Dockerfile ends on.
BASE_VERSION=2
BASE_LABEL=io.source-smstools.stand-in-version
CONF="${CONTAINERS_CONF:-/tmp/source-smstools-containers.conf}"
LOCK="/tmp/source-smstools-image.lock"
CA=/etc/ssl/certs/ca-certificates.crt

step() { printf '[image] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

install_tools() {
  local missing=()
  for tool in podman debootstrap runc; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [ ${#missing[@]} -eq 0 ] && return
  step "installing ${missing[*]} with apt (once per machine)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman debootstrap runc >/dev/null
}

write_conf() {
  # crun (podman's default runtime) fails on this host's cgroup setup, and podman's default
  # ulimits exceed the hard limits here, so containers would not start without these two.
  local hard
  hard="$(ulimit -Hn)"
  [ "$hard" = unlimited ] && hard=1048576
  local wanted
  wanted="$(printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=4096:4096"]\n[engine]\nruntime = "runc"\n' "$hard" "$hard")"
  if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$wanted" ]; then
    printf '%s\n' "$wanted" >"$CONF.tmp.$$" && mv "$CONF.tmp.$$" "$CONF"
  fi
  export CONTAINERS_CONF="$CONF"
}

build_base() {
  local have
  have="$(podman image inspect --format "{{ index .Labels \"$BASE_LABEL\" }}" "$BASE" 2>/dev/null || true)"
  if [ "$have" = "$BASE_VERSION" ]; then
    step "stand-in base $BASE: already built"
    return
  fi
  if podman image exists "$BASE"; then
    step "stand-in base $BASE is out of date (version ${have:-1}, now $BASE_VERSION): building it again"
  fi
  # No registry is reachable, so Airbyte's python-connector-base cannot be pulled: Debian
  # bookworm's Python 3.11 stands in for it. Kept in podman's store for the next runs.
  rootfs="$(mktemp -d /tmp/source-smstools-rootfs.XXXXXX)"
  trap 'as_root rm -rf "$rootfs" "$rootfs.log"' EXIT
  step "building the stand-in base $BASE with debootstrap (about a minute, once per machine)"
  local started=$SECONDS
  if ! as_root debootstrap --variant=minbase \
      --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
      bookworm "$rootfs" http://deb.debian.org/debian >"$rootfs.log" 2>&1; then
    tail -20 "$rootfs.log" >&2
    step "debootstrap failed"
    return 1
  fi
  # TLS from here goes through a proxy with its own CA: pip in the build must trust it.
  [ -f "$CA" ] && cp "$CA" "$rootfs/etc/ssl/certs/"
  # The user of Airbyte's python-connector-base (3.0 and later), made as airbyte-ci's base_images
  # code makes it (`adduser --uid 1000 --system --group --no-create-home airbyte`, then /airbyte
  # owned by it): the Dockerfile ends on `USER airbyte`, so the image is tested as it runs there.
  as_root chroot "$rootfs" groupadd --system --gid 1000 airbyte
  as_root chroot "$rootfs" useradd --system --uid 1000 --gid airbyte --no-create-home airbyte
  as_root install -d -m 755 -o 1000 -g 1000 "$rootfs/airbyte"
  step "importing the base into podman"
  tar -C "$rootfs" -c . | podman import --quiet \
    --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' --change "LABEL $BASE_LABEL=$BASE_VERSION" \
    - "$BASE" >/dev/null
  step "stand-in base built in $((SECONDS - started)) s"
}

build_image() {
  step "building $IMAGE (the dependencies layer takes a minute or two the first time)"
  local started=$SECONDS
  local mounts=()
  [ -f "$CA" ] && mounts=(-v "$CA:$CA:ro")
  podman build --network host "${mounts[@]}" --layers \
    --build-arg BASE_IMAGE="$BASE" -t "$IMAGE" . >&2
  step "$IMAGE built in $((SECONDS - started)) s"
}

case "${1:-build}" in
  build)
    exec 9>"$LOCK"
    flock 9
    install_tools
    write_conf
    build_base
    build_image
    ;;
  env)
    write_conf
    echo "export CONTAINERS_CONF=$CONF"
    ;;
  *)
    echo "usage: $0 [build|env]" >&2
    exit 2
    ;;
esac
