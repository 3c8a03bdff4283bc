#!/usr/bin/python3
"""Apply Debian's sysconf.txt from the boot partition, then blank what was applied; before
it, the host name from Raspberry Pi Imager's user-data.

Debian's Raspberry Pi images read `root_pw`, `root_authorized_key` and `hostname` from
sysconf.txt on the boot partition at boot; this is the same contract for people who
prepare a card without Raspberry Pi Imager. Values are removed once applied so a password
does not stay on the FAT partition. Imager's host name is cloud-init's to apply, but only
once the network is up: the device's XMPP domain is chosen from it before that (the next
step), so it is set here first (cloud-init later sets the same).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

# Written by the sd_image role (where the boot partition is); the variable is for tests.
SETTINGS = Path(os.environ.get("PI_IM_SD_IMAGE_SETTINGS", "/etc/pi-im/sd-image.json"))
KEYS = ("root_pw", "root_authorized_key", "hostname")
HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def parse(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key.strip() in KEYS and value.strip():
            values[key.strip()] = value.strip()
    return values


def set_hostname(name: str) -> bool:
    if not HOSTNAME.match(name):
        print(f"ignored hostname {name!r}: not a valid host name", file=sys.stderr)
        return False
    Path("/etc/hostname").write_text(name + "\n")
    hosts = Path("/etc/hosts")
    lines = [ln for ln in hosts.read_text().splitlines() if not ln.startswith("127.0.1.1")]
    hosts.write_text("\n".join([*lines, f"127.0.1.1  {name}"]) + "\n")
    subprocess.run(["hostname", name], check=False)
    return True


def imager_hostname(user_data: str) -> str | None:
    """The host name in Imager's cloud-config, if it gives one."""
    try:
        config = yaml.safe_load(user_data)
    except yaml.YAMLError:
        return None
    name = config.get("hostname") if isinstance(config, dict) else None
    return str(name) if name else None


def apply(values: dict[str, str]) -> list[str]:
    done = []
    if "root_pw" in values:
        subprocess.run(["chpasswd"], input=f"root:{values['root_pw']}\n", text=True, check=True)
        done.append("root_pw")
    if "root_authorized_key" in values:
        ssh = Path("/root/.ssh")
        ssh.mkdir(mode=0o700, exist_ok=True)
        keys = ssh / "authorized_keys"
        existing = keys.read_text().splitlines() if keys.exists() else []
        if values["root_authorized_key"] not in existing:
            keys.write_text("\n".join([*existing, values["root_authorized_key"]]) + "\n")
        keys.chmod(0o600)
        done.append("root_authorized_key")
    if "hostname" in values and set_hostname(values["hostname"]):
        done.append("hostname")
    return done


def blank(text: str, applied: list[str]) -> str:
    out = []
    for line in text.splitlines():
        key = line.strip().partition("=")[0].strip()
        out.append(f"{key}=" if key in applied else line)
    return "\n".join(out) + "\n"


def main() -> int:
    boot = Path(json.loads(SETTINGS.read_text())["boot_mount"])
    user_data = boot / "user-data"
    name = imager_hostname(user_data.read_text(errors="replace")) if user_data.is_file() else None
    if name and Path("/etc/hostname").read_text().strip() != name and set_hostname(name):
        print(f"host name {name} from Imager's user-data")
    sysconf = boot / "sysconf.txt"
    if not sysconf.is_file():
        return 0
    text = sysconf.read_text()
    applied = apply(parse(text))
    if applied:
        sysconf.write_text(blank(text, applied))
        print("applied from sysconf.txt: " + ", ".join(applied))
    return 0


if __name__ == "__main__":
    sys.exit(main())
