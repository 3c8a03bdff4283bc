#!/usr/bin/python3
"""Per-device provisioning of ejabberd: the XMPP domain, the TLS certificate, the admin account
and the console's account on the admin API.

Runs on the device (from Ansible, or from the first-boot unit when baked into an image), so
private keys and passwords are created here and never leave it. Accounts are made through
the Erlang node itself (erl_call reads the expression on stdin and the cookie from ejabberd's
home): no password is ever on a command line, and the admin API stays closed to all but the
console. Prints one JSON object: {"changed": bool, "actions": [...]}.
"""

from __future__ import annotations

import argparse
import base64
import grp
import json
import os
import re
import shlex
import socket
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
DOMAIN_FILE = Path(SETTINGS["DOMAIN_FILE"])
DEVICE_MACROS = Path(SETTINGS["DEVICE_MACROS"])
HOSTNAME_FILE = Path(os.environ.get("PI_IM_HOSTNAME_FILE", "/etc/hostname"))
FALLBACK_DOMAIN = "pi-im.local"
# The role's __ejabberd_domain_pattern: a lower-case DNS name.
DOMAIN_PATTERN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
# (account, device secret holding its password)
ACCOUNTS = [
    (SETTINGS["ADMIN_USER"], SETTINGS["ADMIN_SECRET"]),
    (SETTINGS["API_USER"], SETTINGS["API_SECRET"]),
]
ERL_CALL = ["/usr/lib/erlang/bin/erl_call", "-sname", "ejabberd@localhost", "-e"]
DEVICE_CERT = Path(SETTINGS["DEVICE_CERT"])
USER_CERT = SETTINGS["USER_CERT"]


def from_host_name(name: str) -> tuple[str, str]:
    """The domain a host name gives, and why: `chat` is chat.local on the home network (mDNS),
    a name with dots is taken as it is."""
    name = name.strip().lower().rstrip(".")
    if not DOMAIN_PATTERN.match(name) or name in ("localhost", "localhost.localdomain"):
        return FALLBACK_DOMAIN, f"the host name {name!r} cannot name a domain: the fallback"
    if "." in name:
        return name, "the host name"
    return f"{name}.local", "the host name on the home network"


def chosen_domain(configured: str, current: str, host_name: str) -> tuple[str, str]:
    """The option wins; otherwise a domain once chosen stays (every account and room belongs
    to it); otherwise the host name decides."""
    if configured:
        return configured, "ejabberd_domain"
    if current:
        return current, "chosen earlier"
    return from_host_name(host_name)


def lan_address() -> str:
    """The IPv4 address the device reaches the rest of the network from: the source of its
    default route. Connecting a UDP socket only looks the route up; nothing is sent."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: any address off the device will do
        except OSError:
            return "127.0.0.1"  # no network yet: calls get no relay until ejabberd restarts
        return str(probe.getsockname()[0])


def turn_address(lan: str) -> str:
    """The address the TURN relay announces: the owner's (the router's public address, with
    its ports forwarded), else the device's own on the LAN."""
    return SETTINGS["TURN_ADDRESS"] or lan


def web_origins(domain: str, host_name: str, address: str) -> list[str]:
    """The origins a browser sends from the device's own web chat, which it serves by any name
    it is reached by (its domain, its host name bare and .local, its LAN address) on each port
    of the web listener (443 is no port in an origin); then the pages elsewhere the owner
    named (ejabberd_web_client_origins)."""
    names = [domain]
    short = host_name.strip().lower()
    if DOMAIN_PATTERN.match(short) and "." not in short:
        names += [short, f"{short}.local"]
    ports = [int(port) for port in SETTINGS["WEB_PORTS"].split()]
    own = [
        f"https://{name}" + ("" if port == 443 else f":{port}")
        for port in ports
        for name in [*names, address]
    ]
    return list(dict.fromkeys([*own, *SETTINGS["WEB_CLIENT_ORIGINS"].split()]))


def web_chat_policy(domain: str) -> str:
    """The web chat's Content-Security-Policy: the role's, its FILES the origin of the shared
    files (announced under the domain on the web listener's own port), which a page on the
    standard HTTPS port loads and uploads across."""
    ports = SETTINGS["WEB_PORTS"].split()
    files = f"https://{domain}:{ports[0]}" if ports else ""
    return " ".join(SETTINGS["WEB_CHAT_CSP"].replace("FILES", files).split())


def macros(domain: str, turn: str, origins: list[str]) -> str:
    return (
        "# Written by pi-im-ejabberd-provision: what this device settled for ejabberd.yml\n"
        "# (include_config_file): its XMPP domain, the origins of its own web pages and its\n"
        "# web chat's policy, and its address for calls.\n"
        "define_macro:\n"
        f"  PI_IM_DOMAIN: {json.dumps(domain)}\n"
        f"  PI_IM_WEB_ORIGINS: {json.dumps(origins)}\n"
        f"  PI_IM_WEB_CHAT_CSP: {json.dumps(web_chat_policy(domain))}\n"
        f"  PI_IM_TURN_ADDRESS: {json.dumps(turn)}\n"
    )


def events_password() -> list[str]:
    """The event bus's password where ejabberd reads it (root:ejabberd 0640), from its device
    secret, which the rabbitmq role's provisioning gives the publishing user."""
    path = Path(SETTINGS["EVENTS_PASSWORD_FILE"])
    if SETTINGS.get("EVENTS_SECRET"):
        text = secret(SETTINGS["EVENTS_SECRET"]) + "\n"
        return [f"wrote {path}"] if replace(path, text, 0o640, group="ejabberd") else []
    if path.exists():
        path.unlink()
        return [f"removed {path} (no events published)"]
    return []


def device_macros() -> list[str]:
    """ejabberd's macros from the settled domain, the host name and the address as they are
    now (run at every start of ejabberd: DHCP may have given the device another address)."""
    domain, lan = device_domain(), lan_address()
    turn = turn_address(lan)
    host_name = HOSTNAME_FILE.read_text() if HOSTNAME_FILE.exists() else ""
    origins = web_origins(domain, host_name, lan)
    actions = events_password()
    if replace(DEVICE_MACROS, macros(domain, turn, origins), 0o644):
        actions.append(f"wrote {DEVICE_MACROS} (calls relayed at {turn})")
    return actions


def replace(path: Path, text: str, mode: int, group: str | None = None) -> bool:
    """Write text to path atomically (mode and group set before the text goes in, so a
    secret is never readable by others); whether it changed."""
    if path.exists() and path.read_text() == text:
        return False
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as tmp:
        os.fchmod(tmp.fileno(), mode)
        if group:
            os.fchown(tmp.fileno(), 0, grp.getgrnam(group).gr_gid)
        tmp.write(text)
    Path(tmp.name).replace(path)
    return True


def domain() -> list[str]:
    """Settle the device's XMPP domain in DOMAIN_FILE and ejabberd's macros for it."""
    current = DOMAIN_FILE.read_text().strip() if DOMAIN_FILE.exists() else ""
    host_name = HOSTNAME_FILE.read_text() if HOSTNAME_FILE.exists() else ""
    chosen, why = chosen_domain(SETTINGS["CONFIGURED_DOMAIN"], current, host_name)
    actions = []
    if replace(DOMAIN_FILE, chosen + "\n", 0o644):
        actions.append(f"XMPP domain {chosen} (from {why})")
    return actions + device_macros()


def device_domain() -> str:
    return DOMAIN_FILE.read_text().strip()


def serves(pem: Path, name: str) -> bool:
    """Whether the certificate in pem names the domain and has not run out (the device's own,
    or one from the ACME CA, which the acme role's deploy step puts in its place)."""
    # One openssl: the names printed, and -checkend's answer in the exit status.
    shown = subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-checkend", "0", "-in", str(pem)],
        capture_output=True,
        text=True,
        check=False,
    )
    names = {part.strip() for part in shown.stdout.replace("\n", ",").split(",")}
    return shown.returncode == 0 and f"DNS:{name}" in names


def certificate() -> list[str]:
    """Create a self-signed certificate for the domain unless one for it is there already."""
    if USER_CERT:
        return []
    name = device_domain()
    if DEVICE_CERT.exists() and serves(DEVICE_CERT, name):
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
                f"/CN={name}",
                "-addext",
                f"subjectAltName=DNS:{name},DNS:*.{name}",
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
    return [f"created a self-signed certificate for {name}"]


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
    name = device_domain()
    done = erlang(
        f"U = {binary(user)}, H = {binary(name)}, P = {binary(password)},"
        " case ejabberd_auth:user_exists(U, H) of"
        "   false -> ok = ejabberd_auth:try_register(U, H, P), registered;"
        "   true -> case ejabberd_auth:check_password(U, <<>>, H, P) of"
        "     true -> unchanged;"
        "     false -> ok = ejabberd_auth:set_password(U, H, P), reset end end."
    )
    return {
        "registered": f"registered {user}@{name}",
        "reset": f"reset the password of {user}@{name} to the device secret",
    }.get(done)


def accounts(timeout: float) -> list[str]:
    """The admin account and the console's, each with its generated password."""
    passwords = [(user, secret(name)) for user, name in ACCOUNTS]
    wait_for_node(timeout)
    return [done for user, password in passwords if (done := account(user, password))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("step", choices=["domain", "macros", "certificate", "admin"])
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for ejabberd (admin step)"
    )
    args = parser.parse_args()
    steps = {
        "domain": domain,
        "macros": device_macros,
        "certificate": certificate,
        "admin": lambda: accounts(args.timeout),
    }
    actions = steps[args.step]()
    print(json.dumps({"changed": bool(actions), "actions": actions}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
