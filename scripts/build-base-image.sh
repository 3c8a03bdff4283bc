#!/usr/bin/env bash
# Build the local stand-in for a Raspberry Pi: a Debian root filesystem with systemd as
# init, made from Debian's archive (no registry is needed) and imported into Docker as
# pi-im-appliance/<suite>-systemd. Skips the build when an image of the same recipe is
# already there. Usage: build-base-image.sh [trixie|bookworm] (default trixie).
set -euo pipefail

suite=${1:-trixie}
case $suite in
  trixie | bookworm) ;;
  *) printf 'error: unsupported Debian release %s (trixie or bookworm)\n' "$suite" >&2; exit 2 ;;
esac
image=pi-im-appliance/$suite-systemd
# What a fresh Raspberry Pi OS Lite / Debian install already has: init, Python for
# Ansible, TLS roots, SSH and sudo (the way site.yml reaches a Pi). Everything else is the
# roles' job.
packages=systemd-sysv,dbus,python3,python3-apt,ca-certificates,iproute2,procps,sudo,openssh-server

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The tag names this script's content: a changed recipe builds a new image.
recipe=$( { cat "${BASH_SOURCE[0]}"; echo "$suite"; } | sha256sum | cut -c1-12)
tag="$image:$recipe"

if docker image inspect "$tag" >/dev/null 2>&1; then
  exit 0
fi

if ! command -v mmdebstrap >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && [ -x /usr/bin/apt-get ]; then
    log "installing mmdebstrap from Debian's archive"
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq mmdebstrap >/dev/null
  else
    die "mmdebstrap is missing: install it ('apt-get install mmdebstrap') or run as root on Debian"
  fi
fi

log "building $tag from Debian $suite (about a minute)"
start=$SECONDS
# The container boots systemd; getty and the udev trigger only slow that down.
# No SSH host keys in the image: the base role's first-boot step makes each container's own.
# shellcheck disable=SC2016  # mmdebstrap expands the hooks' "$1" (the root tree), not we.
mmdebstrap --quiet --variant=minbase --include="$packages" \
  --customize-hook='chroot "$1" systemctl mask getty@tty1.service console-getty.service systemd-udev-trigger.service systemd-firstboot.service >/dev/null 2>&1' \
  --customize-hook='rm -f "$1"/etc/machine-id; touch "$1"/etc/machine-id' \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
  "$suite" - |
  docker import --change 'CMD ["/lib/systemd/systemd"]' --change 'ENV container=docker' - "$tag" >/dev/null
docker tag "$tag" "$image:latest"
log "built $tag in $((SECONDS - start)) s"
