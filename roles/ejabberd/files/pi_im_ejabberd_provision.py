#!/usr/bin/python3
"""Per-device provisioning of ejabberd: the TLS certificate, the admin account and the
console's account on the admin API.

Runs on the device (from Ansible, or from the first-boot unit when baked into an image), so
private keys and passwords are created here and never leave it. Accounts are made through
the Erlang node itself (erl_call reads the expression on stdin and the cookie from ejabberd's
home): no password is ever on a command line, and the admin API stays closed to all but the
console. Prints one JSON object: {"changed": bool, "actions": [...]}.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def settings(path: Path) -> dict[str, str]:
    """KEY=value lines as a shell reads them (values quoted for the shell)."""
    pairs = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            pairs[key.strip()] = " ".join(shlex.split(value))
    return pairs


# Written by the ejabberd role, shared with its shell scripts; the variable is for tests.
SETTINGS = settings(Path(os.environ.get("PI_IM_EJABBERD_SETTINGS", "/etc/pi-im/ejabberd.env")))
DOMAIN = SETTINGS["DOMAIN"]
# (account, device secret holding its password)
ACCOUNTS = [
    (SETTINGS["ADMIN_USER"], SETTINGS["ADMIN_SECRET"]),
    (SETTINGS["API_USER"], SETTINGS["API_SECRET"]),
]
ERL_CALL = ["/usr/lib/erlang/bin/erl_call", "-sname", "ejabberd@localhost", "-e"]
DEVICE_CERT = Path(SETTINGS["DEVICE_CERT"])
USER_CERT = SETTINGS["USER_CERT"]


def certificate() -> list[str]:
    """Create a self-signed certificate for DOMAIN unless one for it already exists."""
    if USER_CERT:
        return []
    if DEVICE_CERT.exists():
        names = subprocess.run(
            ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(DEVICE_CERT)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        if f"DNS:{DOMAIN}," in names + ",":
            return []
    DEVICE_CERT.parent.mkdir(mode=0o750, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=DEVICE_CERT.parent) as tmp:
        key, crt = Path(tmp, "key.pem"), Path(tmp, "crt.pem")
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "3650",
                "-subj",
                f"/CN={DOMAIN}",
                "-addext",
                f"subjectAltName=DNS:{DOMAIN},DNS:*.{DOMAIN}",
                "-keyout",
                str(key),
                "-out",
                str(crt),
            ],
            check=True,
            capture_output=True,
        )
        pem = Path(tmp, "device.pem")
        pem.write_bytes(crt.read_bytes() + key.read_bytes())
        subprocess.run(["chown", "root:ejabberd", str(pem)], check=True)
        pem.chmod(0o640)
        pem.replace(DEVICE_CERT)
    subprocess.run(["chown", "root:ejabberd", str(DEVICE_CERT.parent)], check=True)
    return [f"created a self-signed certificate for {DOMAIN}"]


def erlang(expression: str) -> str:
    """Evaluate on the running node; what it returned, printed. Raises if it is not up."""
    done = subprocess.run(
        ERL_CALL,
        input=expression + "\n",
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "HOME": "/var/lib/ejabberd"},
    )
    if done.returncode != 0 or not done.stdout.startswith("{ok,"):
        raise ConnectionError((done.stdout + done.stderr).strip() or f"erl_call: {done.returncode}")
    return done.stdout.strip()[len("{ok,") : -1].strip()


def wait_for_node(timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            started = "lists:keymember(ejabberd, 1, application:which_applications())."
            if erlang(started) == "true":
                return
        except ConnectionError as error:
            if time.monotonic() > deadline:
                raise SystemExit(f"ejabberd did not answer: {error}") from error
        time.sleep(1)


def secret(name: str) -> str:
    subprocess.run(["pi-im-secret", "ensure", name], check=True, capture_output=True)
    path = subprocess.run(
        ["pi-im-secret", "path", name], check=True, capture_output=True, text=True
    ).stdout.strip()
    return Path(path).read_text().strip()


def binary(text: str) -> str:
    """An Erlang binary of any text, safe inside an expression."""
    return f'base64:decode(<<"{base64.b64encode(text.encode()).decode()}">>)'


def account(user: str, password: str) -> str | None:
    """Make sure user@DOMAIN exists with this password; what was done, if anything."""
    done = erlang(
        f"U = {binary(user)}, H = {binary(DOMAIN)}, P = {binary(password)},"
        " case ejabberd_auth:user_exists(U, H) of"
        "   false -> ok = ejabberd_auth:try_register(U, H, P), registered;"
        "   true -> case ejabberd_auth:check_password(U, <<>>, H, P) of"
        "     true -> unchanged;"
        "     false -> ok = ejabberd_auth:set_password(U, H, P), reset end end."
    )
    return {
        "registered": f"registered {user}@{DOMAIN}",
        "reset": f"reset the password of {user}@{DOMAIN} to the device secret",
    }.get(done)


def accounts(timeout: float) -> list[str]:
    """The admin account and the console's, each with its generated password."""
    passwords = [(user, secret(name)) for user, name in ACCOUNTS]
    wait_for_node(timeout)
    return [done for user, password in passwords if (done := account(user, password))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("step", choices=["certificate", "admin"])
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for ejabberd (admin step)"
    )
    args = parser.parse_args()
    actions = certificate() if args.step == "certificate" else accounts(args.timeout)
    print(json.dumps({"changed": bool(actions), "actions": actions}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
