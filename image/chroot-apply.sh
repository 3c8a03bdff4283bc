#!/usr/bin/env bash
# The step every image builder shares: apply playbooks/site.yml to a root filesystem through
# the community.general.chroot connection, then strip what must differ per device (it is
# made at first boot by pi-im-provision and the services themselves).
#
#   image/chroot-apply.sh [--playbook FILE] ROOTFS [ansible-playbook options, e.g. -e ejabberd_domain=chat.lan]
#
# The playbook is playbooks/site.yml unless given (the Debian builder adds its own boot and
# network set-up with playbooks/sd-image.yml).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
playbook=$here/playbooks/site.yml
if [ "${1:-}" = --playbook ]; then
  playbook=$(realpath "$2")
  shift 2
fi
rootfs=$(realpath "$1")
shift

log() { printf '==> [%4ds] %s\n' "$SECONDS" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (chroot and bind mounts)"
[ -x "$rootfs/usr/bin/python3" ] || die "$rootfs has no python3: not a Debian root filesystem made for this"
command -v ansible-playbook >/dev/null || die "ansible-playbook is missing: run 'make venv' and activate .venv"

mounted=()
# Anything a package left running inside the chroot would keep its mounts busy.
stop_chroot_processes() {
  local pid
  for pid in /proc/[0-9]*; do
    [ "$(readlink "$pid/root" 2>/dev/null)" = "$rootfs" ] && kill -KILL "${pid#/proc/}" 2>/dev/null
  done
  return 0
}
cleanup() {
  rm -f "$rootfs/usr/sbin/policy-rc.d" "$rootfs/etc/dpkg/dpkg.cfg.d/pi-im-build-unsafe-io"
  [ -e "$rootfs/etc/resolv.conf.pi-im" ] && mv -f "$rootfs/etc/resolv.conf.pi-im" "$rootfs/etc/resolv.conf"
  stop_chroot_processes
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    # A mount still busy is detached lazily: it must not end up inside the image.
    umount "${mounted[i]}" 2>/dev/null || umount --lazy "${mounted[i]}" || true
  done
}
trap cleanup EXIT

for fs in proc sys dev dev/pts; do
  mount --bind "/$fs" "$rootfs/$fs"
  mounted+=("$rootfs/$fs")
done
# Packages must not start services in the image (their postinsts call invoke-rc.d).
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
# No fsync per unpacked file while building a tree that is copied into an image afterwards
# (what mmdebstrap does too); gone again when this script ends.
echo force-unsafe-io >"$rootfs/etc/dpkg/dpkg.cfg.d/pi-im-build-unsafe-io"
if [ -e "$rootfs/etc/resolv.conf" ] || [ -L "$rootfs/etc/resolv.conf" ]; then
  mv -f "$rootfs/etc/resolv.conf" "$rootfs/etc/resolv.conf.pi-im"
fi
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"

inventory=$(mktemp -d)
trap 'cleanup; rm -rf "$inventory"' EXIT
cat >"$inventory/hosts.yml" <<YAML
im_servers:
  hosts:
    $rootfs:
      ansible_connection: community.general.chroot
YAML

# The options the image is built with, recorded on it: a device applies them again when it
# updates itself to a newer release (pi-im-update).
ansible_python=$(sed -n '1s/^#! *//p' "$(command -v ansible-playbook)")
$ansible_python "$here/image/recorded_options.py" "$@" >"$inventory/recorded-options.json"

log "applying ${playbook#"$here"/} to $rootfs"
ANSIBLE_CONFIG="$here/ansible.cfg" ansible-playbook -i "$inventory/hosts.yml" "$playbook" "$@" \
  -e "@$inventory/recorded-options.json"

log "removing per-device state (made again at first boot)"
rm -f "$rootfs"/var/lib/rabbitmq/.erlang.cookie "$rootfs"/var/lib/ejabberd/.erlang.cookie
rm -f "$rootfs"/etc/ssh/ssh_host_*
rm -f "$rootfs"/etc/ejabberd/ejabberd.pem
rm -rf "$rootfs"/etc/ejabberd/tls
find "$rootfs/etc/pi-im/secrets" -mindepth 1 -delete 2>/dev/null || true
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
log "done"
