#!/bin/bash -e
# pi-gen (host side): apply the appliance's playbook to the image through the chroot
# connection, with the step the Debian-only builder shares. PI_IM_APPLIANCE points at a
# checkout of pi-im-appliance with `make venv` done; PI_IM_EXTRA_VARS may name a vars file.
: "${PI_IM_APPLIANCE:?set PI_IM_APPLIANCE to the pi-im-appliance checkout}"
# shellcheck disable=SC1091
source "${PI_IM_APPLIANCE}/.venv/bin/activate"
# No ejabberd_domain: the device chooses it at first boot from its host name (Imager's, or
# TARGET_HOSTNAME's); PI_IM_EXTRA_VARS can set one.
extra=()
if [ -n "${PI_IM_EXTRA_VARS:-}" ]; then
	extra+=(--extra-vars "@${PI_IM_EXTRA_VARS}")
fi
"${PI_IM_APPLIANCE}/image/chroot-apply.sh" "${ROOTFS_DIR}" "${extra[@]}"
