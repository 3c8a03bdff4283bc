#!/usr/bin/python3
"""Check an ejabberd update before dpkg unpacks it: apt's DPkg::Pre-Install-Pkgs hook
(protocol version 3, the package actions on stdin).

When apt is about to unpack ejabberd or one of its libraries (erlang-p1-*) or Erlang itself,
the new packages are unpacked aside, the appliance's own modules are compiled against them
and the device's ejabberd.yml is read by the new ejabberd's own parser. If either fails, or
the new ejabberd is a release the modules were not written for, the hook fails, apt stops
before dpkg changes anything, and ejabberd goes on as it was. Whatever the outcome, it is
written where the console reads it. Erlang/OTP itself cannot run from an unpacked copy: its
update is checked with the installed compiler (a stable release keeps its OTP version).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# The variables are for tests.
STATUS = Path(
    os.environ.get("PI_IM_EJABBERD_UPDATE_STATUS", "/var/lib/pi-im/updates/ejabberd.json")
)
CONFIG = os.environ.get("PI_IM_EJABBERD_CONFIG", "/etc/ejabberd/ejabberd.yml")
CHECK_CONFIG = os.environ.get(
    "PI_IM_EJABBERD_CHECK_CONFIG", "/usr/local/sbin/pi-im-ejabberd-check-config"
)
# Unpacked on disk, not in /run (a tmpfs sized for a 2 GB Pi's runtime files).
STAGE_DIR = os.environ.get("PI_IM_EJABBERD_STAGE_DIR", "/var/tmp")
# Unpacked and used in place of the installed ones: ejabberd and the libraries packaged with it.
STAGED = re.compile(r"^(ejabberd|erlang-p1-.*)$")
WATCHED = re.compile(r"^(ejabberd|erlang-.*)$")
# How much of a tool's output is kept as the reason: its first lines say why, and the console
# shows it to everyone.
REASON_CHARS = 2000


@dataclass(frozen=True)
class Unpack:
    package: str
    old: str  # "-" when not installed
    new: str
    deb: str


def unpacks(hook_input: str) -> list[Unpack]:
    """The packages apt is about to unpack. Protocol 3: a "VERSION 3" line, apt's configuration,
    an empty line, then one action per line: package, old version, architecture and
    multi-arch, a direction, the same three for the new version, and the .deb (or
    **CONFIGURE** / **REMOVE**)."""
    _, _, actions = hook_input.partition("\n\n")
    found = []
    for line in actions.splitlines():
        fields = line.split()
        if len(fields) == 9 and fields[8].endswith(".deb"):
            found.append(Unpack(fields[0], fields[1], fields[5], fields[8]))
    return found


def release(version: str) -> str:
    """ejabberd's upstream release in a Debian version: 1:24.12-3+deb13u2 -> 24.12."""
    return re.sub(r"^[0-9]+:", "", version).split("-")[0]


def installed(package: str) -> str | None:
    done = subprocess.run(
        ["dpkg-query", "--showformat=${db:Status-Abbrev}${Version}", "--show", package],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or not done.stdout.startswith("ii"):
        return None
    return done.stdout[2:].strip()


class Refused(Exception):
    """Why the update would break ejabberd: shown by apt, kept for the console."""


def said(done: subprocess.CompletedProcess[str]) -> str:
    """A tool's output on one line, bounded."""
    text = " ".join(f"{done.stdout}\n{done.stderr}".split())
    return text if len(text) <= REASON_CHARS else text[:REASON_CHARS] + " …"


def check(changes: list[Unpack], config: argparse.Namespace, current: str) -> None:
    """Raise Refused unless the modules build against the new packages and ejabberd.yml
    passes the new ejabberd's parser."""
    new = next((u.new for u in changes if u.package == "ejabberd"), current)
    written_for = config.written_for.split()
    if release(new) not in written_for:
        raise Refused(
            f"ejabberd {new} is release {release(new)}; the appliance's modules were written for "
            f"{' and '.join(written_for)} and must be ported first"
        )
    installed_ebin = sorted(glob.glob(config.package_ebin))
    if not installed_ebin:
        raise Refused("ejabberd's modules are not where the package keeps them")
    with tempfile.TemporaryDirectory(prefix="pi-im-package-check.", dir=STAGE_DIR) as stage:
        root = Path(stage, "root")
        for change in changes:
            if STAGED.match(change.package):
                unpacked = subprocess.run(
                    ["dpkg-deb", "-x", change.deb, str(root)], capture_output=True, text=True
                )
                if unpacked.returncode != 0:
                    raise Refused(f"{change.deb} could not be unpacked: {said(unpacked)}")
        staged_ebin = sorted(glob.glob(str(root) + config.package_ebin))
        ebin = staged_ebin[0] if staged_ebin else installed_ebin[0]
        libs = [str(Path(ebin).parent.parent)]
        if (root / "usr/lib/erlang/lib").is_dir():
            libs.append(str(root / "usr/lib/erlang/lib"))
        built = Path(stage, "ebin")
        built.mkdir()
        sources = sorted(glob.glob(f"{config.modules}/src/*.erl"))
        env = {**os.environ, "ERL_LIBS": ":".join(libs)}
        compiled = subprocess.run(
            ["erlc", "-Werror", "-pa", ebin, "-o", str(built), *sources],
            capture_output=True,
            text=True,
            env=env,
        )
        if compiled.returncode != 0:
            raise Refused(
                f"the appliance's modules do not compile against ejabberd {new}: " + said(compiled)
            )
        checked = subprocess.run(
            [CHECK_CONFIG, CONFIG],
            capture_output=True,
            text=True,
            env={**env, "CHECK_ERL_LIBS": env["ERL_LIBS"], "CHECK_MODULES_EBIN": str(built)},
        )
        if checked.returncode != 0:
            raise Refused(
                f"ejabberd {new} does not accept the device's configuration: " + said(checked)
            )


def write_status(status: dict[str, object]) -> None:
    STATUS.parent.mkdir(parents=True, exist_ok=True)
    partial = STATUS.with_suffix(".partial")
    partial.write_text(json.dumps(status, indent=2) + "\n")
    partial.chmod(0o644)
    partial.replace(STATUS)


def arguments() -> argparse.Namespace:
    # Given by the ejabberd role in apt's configuration (80pi-im-ejabberd-package-check).
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", required=True, help="the appliance's modules (src/, ebin/)")
    parser.add_argument("--written-for", required=True, help="the releases, separated by spaces")
    parser.add_argument(
        "--package-ebin", required=True, help="where ejabberd's modules are (a glob)"
    )
    return parser.parse_args()


def main() -> int:
    config = arguments()
    changes = [u for u in unpacks(sys.stdin.read()) if WATCHED.match(u.package)]
    current = installed("ejabberd") if changes else None
    # Nothing to keep working until the modules were built on the device for what is
    # installed: an image being baked (where Erlang may not run at all) or a first install.
    if current is None or not Path(config.modules, "ebin/.built-for").exists():
        return 0
    # erlc and erl are Erlang VMs, which size their port table by the open-file limit.
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (1024, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    )
    status: dict[str, object] = {
        "checked": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "installed": current,
        "packages": {u.package: {"from": u.old, "to": u.new} for u in changes},
    }
    try:
        check(changes, config, current)
    except (Refused, OSError) as error:
        # A tool missing or /var/tmp full (OSError) refuses the update all the same, said so.
        why = str(error) if isinstance(error, Refused) else f"the check could not run: {error}"
        write_status({**status, "result": "refused", "reason": why})
        print(
            f"pi-im: this update is not installed: {why.rstrip('.')}. Nothing was changed; "
            f"ejabberd stays on {current}.",
            file=sys.stderr,
        )
        return 1
    write_status({**status, "result": "passed", "reason": None})
    count = f"{len(changes)} package{'' if len(changes) == 1 else 's'}"
    print(f"pi-im: the ejabberd update passed its checks ({count})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
