#!/usr/bin/env bash
# Create .venv with the pinned toolchain (requirements.txt) when it is missing or stale.
set -euo pipefail
venv=${1:-.venv}
stamp="$venv/.requirements.sha256"
# What gets installed: the toolchain pins and the [project] tables of the admin service, the
# benchmark and the events package. Lint settings in the root pyproject.toml must not rebuild
# the virtualenv.
project=$(python3 -c 'import json, sys, tomllib; print(json.dumps([tomllib.load(open(f, "rb"))["project"] for f in sys.argv[1:]], sort_keys=True))' admin/pyproject.toml bench/pyproject.toml events/pyproject.toml 2>/dev/null || cat admin/pyproject.toml bench/pyproject.toml events/pyproject.toml)
want=$( { cat requirements.txt; echo "$project"; } | sha256sum | cut -d' ' -f1)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && exit 0

command -v python3 >/dev/null 2>&1 || die "python3 is missing: install Python 3.11 or newer"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  die "Python 3.11 or newer is needed (ansible-core 2.19), found $(python3 --version)"
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && [ -x /usr/bin/apt-get ]; then
    log "installing python3-venv from Debian's archive"
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq python3-venv >/dev/null
  else
    die "Python's venv module is missing: install it (Debian: 'apt-get install python3-venv')"
  fi
fi

log "creating $venv with the pinned toolchain"
# `make` puts .venv/bin first on PATH: build from the interpreter behind it, not the one
# about to be deleted.
base_python=$(python3 -c 'import sys; print(sys._base_executable)')
rm -rf "$venv"
"$base_python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt
echo "$want" >"$stamp"
