#!/usr/bin/python3
"""The device's certificate from an ACME CA, with Debian's certbot.

`obtain` asks for the certificate, or renews it when it is due (certbot keeps one that is
not), and records the attempt in STATE_DIR/status.json for the console. `obtain --force`
renews at once. `deploy` is certbot's deploy hook: it runs only after a certificate was
issued, and puts it where ejabberd and the console read theirs (DEVICE_CERT), then has them
take it up. A failure changes nothing the device serves. `obtain` prints one JSON object:
{"changed": bool, "state": "issued" | "kept" | "failed", "message": str}.
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LINEAGE = "pi-im"
CERTBOT = "/usr/bin/certbot"
# Lines of certbot's own that say nothing about what went wrong.
NOISE = ("Ask for help or search for solutions", "See the logfile", "Saving debug log")


# Written by the acme role (JSON: only this script reads it).
SETTINGS = json.loads(
    Path(os.environ.get("PI_IM_ACME_SETTINGS", "/etc/pi-im/acme.json")).read_text()
)
STATUS = Path(SETTINGS["STATE_DIR"]) / "status.json"
DEVICE_CERT = Path(SETTINGS["DEVICE_CERT"])


def certbot_command(force: bool) -> list[str]:
    """certbot's certonly for the device's names, with the chosen challenge."""
    command = [
        CERTBOT, "certonly", "--non-interactive", "--agree-tos", "--cert-name", LINEAGE,
        "--server", SETTINGS["SERVER"], "--key-type", "ecdsa",
        "--force-renewal" if force else "--keep-until-expiring",
        "--deploy-hook", f"{Path(sys.argv[0]).resolve()} deploy",
    ]  # fmt: skip
    if SETTINGS["EMAIL"]:
        command += ["--email", SETTINGS["EMAIL"]]
    else:
        command += ["--register-unsafely-without-email"]
    if SETTINGS["CHALLENGE"] == "dns-01":
        plugin = SETTINGS["DNS_PLUGIN"]
        command += [
            f"--dns-{plugin}",
            f"--dns-{plugin}-credentials", SETTINGS["CREDENTIALS"],
            f"--dns-{plugin}-propagation-seconds", str(SETTINGS["PROPAGATION_SECONDS"]),
        ]  # fmt: skip
    else:
        command += ["--standalone", "--preferred-challenges", "http-01"]
    for name in SETTINGS["NAMES"]:
        command += ["-d", name]
    return command


def certbot_environment() -> dict[str, str]:
    environment = dict(os.environ)
    if Path(SETTINGS["CA_BUNDLE"]).exists():
        # A private CA (an internal one, the tests' pebble): certbot's HTTPS trusts it alone.
        environment["REQUESTS_CA_BUNDLE"] = SETTINGS["CA_BUNDLE"]
    return environment


def expiry(pem: Path) -> int | None:
    """When the certificate in pem stops being valid (seconds since the epoch)."""
    if not pem.exists():
        return None
    done = subprocess.run(
        ["openssl", "x509", "-noout", "-enddate", "-in", str(pem)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return None
    stamp = done.stdout.strip().removeprefix("notAfter=")
    return calendar.timegm(time.strptime(stamp, "%b %d %H:%M:%S %Y GMT"))


def reason(output: str) -> str:
    """What went wrong, in certbot's words, without its boilerplate."""
    lines = [
        line.strip()
        for line in output.splitlines()
        if line.strip() and not line.strip().startswith(NOISE)
    ]
    return " ".join(lines[-4:])[:600] or "certbot failed without saying why"


def record(state: str, message: str) -> None:
    status = {
        "state": state,
        "message": message,
        "attempted": int(time.time()),
        "names": SETTINGS["NAMES"],
        "server": SETTINGS["SERVER"],
        "challenge": SETTINGS["CHALLENGE"],
        "expires": expiry(DEVICE_CERT),
    }
    STATUS.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=STATUS.parent, delete=False) as tmp:
        json.dump(status, tmp)
    Path(tmp.name).chmod(0o644)
    Path(tmp.name).replace(STATUS)


def obtain(force: bool) -> int:
    before = DEVICE_CERT.read_bytes() if DEVICE_CERT.exists() else b""
    done = subprocess.run(
        certbot_command(force), capture_output=True, text=True,
        env=certbot_environment(), check=False,
    )  # fmt: skip
    changed = (DEVICE_CERT.read_bytes() if DEVICE_CERT.exists() else b"") != before
    if done.returncode == 0:
        state = "issued" if changed else "kept"
        message = "issued" if changed else "not yet due for renewal"
    else:
        state, message = "failed", reason(done.stdout + "\n" + done.stderr)
    record(state, message)
    print(json.dumps({"changed": changed, "state": state, "message": message}))
    return 0 if done.returncode == 0 else 1


def deploy() -> int:
    """certbot's deploy hook: the new chain and key become what the device serves."""
    lineage = Path(os.environ["RENEWED_LINEAGE"])
    pem = (lineage / "fullchain.pem").read_bytes() + (lineage / "privkey.pem").read_bytes()
    with tempfile.NamedTemporaryFile(dir=DEVICE_CERT.parent, delete=False) as tmp:
        tmp.write(pem)
    subprocess.run(["chown", "root:ejabberd", tmp.name], check=True)
    Path(tmp.name).chmod(0o640)
    Path(tmp.name).replace(DEVICE_CERT)
    # ejabberd reads a certificate file again when its time has moved (a new file has).
    subprocess.run(["ejabberdctl", "reload_config"], check=False)
    # The console reads its certificate when it starts.
    subprocess.run(["systemctl", "try-restart", "pi-im-admin.service"], check=False)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["obtain", "deploy"])
    parser.add_argument("--force", action="store_true", help="renew now, even if not due")
    args = parser.parse_args()
    return obtain(args.force) if args.step == "obtain" else deploy()


if __name__ == "__main__":
    sys.exit(main())
