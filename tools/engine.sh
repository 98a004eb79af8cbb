#!/usr/bin/env bash
# A Docker engine for tests/containers: installs Debian's docker.io, debootstrap,
# qemu-user-static and binfmt-support when missing, starts dockerd when none answers,
# and enables qemu-aarch64 (arm64 root file systems run under emulation). Also a Java
# runtime when no `java` is on PATH: `slml batch --engine spark` is tested on PySpark.
#
# Network rules, for every container and build: no bridge at all (--bridge=none
# --iptables=false), --network host everywhere (tests/containers/engine.py), and
# traffic only to 127.0.0.1.
#
# Idempotent. Without root (a developer's machine) it does what it can and says what
# is missing: the container tests then skip with one line, except under CI=true, where
# they fail. Under CI=true this script fails when it cannot provide an engine.
set -uo pipefail

PACKAGES=(docker.io debootstrap qemu-user-static binfmt-support)
LOG=${SLML_DOCKERD_LOG:-/var/log/slml-dockerd.log}
say() { echo "engine: $*" >&2; }
fail() { say "$*"; if [ "${CI:-}" = "true" ]; then exit 1; fi; exit 0; }

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
command -v java >/dev/null || missing+=(default-jre-headless)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    fail "missing ${missing[*]} and cannot install them (needs root and apt-get)"
  fi
  say "installing ${missing[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || fail "apt-get update failed"
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || fail "apt-get install ${missing[*]} failed"
fi

if ! docker info >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || fail "no Docker engine answers and only root can start dockerd here"
  say "starting dockerd (vfs storage, no bridge, no iptables; log: $LOG)"
  nohup dockerd --storage-driver=vfs --bridge=none --iptables=false --ip6tables=false \
    >"$LOG" 2>&1 </dev/null &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { tail -5 "$LOG" >&2; fail "dockerd did not come up"; }
fi

if [ "$(id -u)" = 0 ] && command -v update-binfmts >/dev/null; then
  [ -e /proc/sys/fs/binfmt_misc/status ] \
    || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
  update-binfmts --enable qemu-aarch64 2>/dev/null || true
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || say "qemu-aarch64 is not enabled: arm64 tests will skip"
fi
say "ready: $(docker version --format 'server {{.Server.Version}}, client {{.Client.Version}}' 2>/dev/null)"
