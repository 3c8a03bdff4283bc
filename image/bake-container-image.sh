#!/usr/bin/env bash
# The fast path of the image test: bake an amd64 Debian root filesystem with the same
# chroot step the SD-card builders use, and import it as a container image that boots
# systemd, so first boot can be tested without emulation.
#
#   image/bake-container-image.sh TAG [ansible-playbook options]
set -euo pipefail
tag=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
packages=systemd-sysv,dbus,python3,python3-apt,ca-certificates,iproute2,procps,sudo,openssh-server

log() { printf '==> [%4ds] %s\n' "$SECONDS" "$*" >&2; }

work=$(mktemp -d /var/tmp/pi-im-bake.XXXXXX)
trap 'rm -rf "$work"' EXIT

log "bootstrapping Debian trixie (amd64) into $work/rootfs"
# shellcheck disable=SC2016  # mmdebstrap expands the hook's "$1" (the root tree), not we.
mmdebstrap --quiet --variant=minbase --include="$packages" \
  --customize-hook='chroot "$1" systemctl mask getty@tty1.service console-getty.service systemd-udev-trigger.service systemd-firstboot.service >/dev/null 2>&1' \
  trixie "$work/rootfs"

"$here/chroot-apply.sh" "$work/rootfs" "$@"

log "importing the baked root filesystem as $tag"
tar -C "$work/rootfs" -c . |
  docker import --change 'CMD ["/lib/systemd/systemd"]' --change 'ENV container=docker' - "$tag" >/dev/null
log "baked $tag"
