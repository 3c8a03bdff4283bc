"""Debian packages made on the device for update tests: Debian's archive holds one version of
a package per suite, so a newer one is the device's own package repacked with a higher
version (and, to make it break, with files left out), served from a local archive of its own
origin when unattended-upgrades is to find it."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable

INSTALL = "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y"
UPDATES_STATUS = "/var/lib/pi-im/updates/status.json"
# DEB VERSION OUT [PATH...]: the package with another version, the paths (globs) left out.
REPACK = r"""
set -eu
deb=$1 version=$2 out=$3; shift 3
d=$(mktemp -d); dpkg-deb -R "$deb" "$d/p"
sed -i "s/^Version: .*/Version: $version/" "$d/p/DEBIAN/control"
for gone in "$@"; do rm -f "$d"/p/$gone; done
dpkg-deb --root-owner-group -Zxz -z1 -b "$d/p" "$out" >/dev/null; rm -rf "$d"
"""
# DIR ORIGIN: a flat archive of DIR's .debs whose Release names ORIGIN (for unattended-upgrades'
# Origins-Pattern); dpkg-dev and apt-utils are not on the device, so written by hand.
ARCHIVE = r"""
set -eu
cd "$1"; : > Packages
for deb in *.deb; do
  dpkg-deb --field "$deb" >> Packages
  printf 'Filename: ./%s\nSize: %s\nSHA256: %s\n\n' "$deb" "$(stat -c %s "$deb")" \
    "$(sha256sum "$deb" | cut -d' ' -f1)" >> Packages
done
printf 'Origin: %s\nLabel: %s\nSuite: %s\nCodename: %s\nDate: %s\nSHA256:\n %s %s Packages\n' \
  "$2" "$2" "$2" "$2" "$(date -Ru)" "$(sha256sum Packages | cut -d' ' -f1)" \
  "$(stat -c %s Packages)" > Release
"""


def installed_version(host, package: str) -> str:  # type: ignore[no-untyped-def]
    return host.check_output(f"dpkg-query --showformat='${{Version}}' --show {package}")


def download(host, package: str, version: str, into: str) -> str:  # type: ignore[no-untyped-def]
    """The package's .deb from the device's archive, in `into` (created)."""
    host.check_output(f"mkdir -p {into} && cd {into} && apt-get -qq download {package}={version}")
    return host.check_output(f"ls {into}/{package}_*.deb")


def repack(host, deb: str, version: str, out: str, leave_out: tuple[str, ...] = ()) -> str:  # type: ignore[no-untyped-def]
    gone = " ".join(shlex.quote(path) for path in leave_out)
    host.check_output(f"sh -c {shlex.quote(REPACK)} repack {deb} {version} {out} {gone}")
    return out


def archive(host, directory: str, origin: str) -> None:  # type: ignore[no-untyped-def]
    """Index `directory`'s .debs as a flat archive of `origin`."""
    host.check_output(f"sh -c {shlex.quote(ARCHIVE)} archive {directory} {origin}")


def install(host, deb: str):  # type: ignore[no-untyped-def]
    """apt installs a .deb (downgrades allowed), as a person would; all of apt's output."""
    return host.run(f"{INSTALL} --allow-downgrades {deb} 2>&1")


def nightly_run(host) -> None:  # type: ignore[no-untyped-def]
    """What apt's daily timers do: refresh the lists, then the nightly run through the device's
    own unit (apt's daily script runs unattended-upgrades once a day: its stamp goes first).

    Finished when the unit is inactive again and its last step (the status writer) has written
    since the start. systemd's own view alone will not do: needrestart re-executes systemd when
    systemd uses a library an update replaced (libssl), which cuts off a `systemctl start`
    waiting on the job and, for a moment, shows the unit as inactive."""
    unit = "apt-daily-upgrade.service"

    def state() -> str:
        return host.check_output(f"systemctl show --value -p ActiveState {unit}")

    def wait(done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 900
        while not done():
            assert time.monotonic() < deadline, f"{unit}: {what} within 15 minutes"
            time.sleep(1)

    # A run already going (the timer's, at boot after a missed night) is waited for first.
    wait(lambda: state() in ("inactive", "failed"), "an earlier run not finished")
    host.check_output("apt-get -qq update && rm -f /var/lib/apt/periodic/upgrade-stamp")
    began = float(host.check_output("date +%s.%N"))
    host.check_output(f"systemctl start --no-block {unit}")

    def recorded() -> bool:
        written = host.run(f"date -r {UPDATES_STATUS} +%s.%N").stdout.strip()
        return bool(written) and float(written) > began and state() in ("inactive", "failed")

    wait(recorded, "the run not recorded")
