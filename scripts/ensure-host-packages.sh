#!/usr/bin/env bash
# Make sure Debian packages the tests run on the host are there (e.g. chromium for the
# browser tests). Installs them as root on Debian; elsewhere names what is missing.
set -euo pipefail
missing=()
for package in "$@"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || [ ! -x /usr/bin/apt-get ]; then
  printf 'error: missing packages: %s (Debian: apt-get install %s)\n' "${missing[*]}" "${missing[*]}" >&2
  exit 1
fi
printf '==> installing %s from Debian'"'"'s archive\n' "${missing[*]}" >&2
apt-get -o DPkg::Lock::Timeout=300 update -qq
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
