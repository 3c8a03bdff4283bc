#!/usr/bin/env bash
# Make sure a Docker engine answers. On a Debian host run as root, install and start one;
# anywhere else, say what is missing and stop.
set -euo pipefail

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

if docker info >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ] || [ ! -x /usr/bin/apt-get ]; then
  die "no Docker engine answers. Install and start Docker (Debian: 'apt-get install docker.io'; \
then start dockerd), or run this as root on Debian to have it done for you."
fi

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io from Debian's archive"
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq docker.io >/dev/null
fi

# PID 1 is not systemd on every host (CI, containers): start dockerd directly when
# systemctl cannot.
if ! { [ -d /run/systemd/system ] && systemctl start docker 2>/dev/null; }; then
  log "starting dockerd (log: /var/log/dockerd.log)"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
fi

for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
die "dockerd did not answer within 60 s; see /var/log/dockerd.log"
