"""ejabberd's admin API as the console calls it, and the device's certificate to trust
(shared by the default and bake scenarios)."""

from __future__ import annotations

import json
import shlex
import ssl
import tempfile
from pathlib import Path

from pi_im_admin.ejabberd import trusting

# The device secret holding each account's password.
# As the console asks (admin/pi_im_admin/ejabberd.py): the forms of both ejabberd releases.
API_VERSION = 1
SECRETS = {"pi-im-console": "ejabberd-api-password", "admin": "ejabberd-admin-password"}


def call(host, domain: str, command: str, body: dict[str, str], user: str = "pi-im-console"):  # type: ignore[no-untyped-def]
    """POST to the API over TLS on the device's loopback, signed in as `user` with its device
    secret (on curl's standard input, never its command line), the certificate checked.
    stdout is the answer, a newline, and the HTTP status."""
    return host.run(
        f"pw=$(pi-im-secret show {SECRETS[user]}) && printf 'user = \"%s\"\\n' "
        f'"{user}@{domain}:$pw" | curl -sS -K - -w "\\n%{{http_code}}" '
        f"--cacert /etc/ejabberd/tls/device.pem --resolve {domain}:5281:127.0.0.1 "
        f"-H 'Content-Type: application/json' -d {shlex.quote(json.dumps(body))} "
        f"https://{domain}:5281/api/v{API_VERSION}/{command}"
    )


def succeed(host, domain: str, command: str, body: dict[str, str]) -> object:  # type: ignore[no-untyped-def]
    """The console's call of `command`, which must succeed; its result."""
    result = call(host, domain, command, body)
    answer, _, status = result.stdout.rpartition("\n")
    assert result.rc == 0, f"API {command} failed: {result.stdout} {result.stderr}"
    assert status == "200", f"API {command} answered {status}: {answer}"
    return json.loads(answer)


def device_tls(host) -> ssl.SSLContext:  # type: ignore[no-untyped-def]
    """TLS trusting the device's own certificate (never its key)."""
    pem = host.check_output("openssl x509 -in /etc/ejabberd/tls/device.pem")
    with tempfile.NamedTemporaryFile("w", suffix=".crt") as cert:
        cert.write(pem + "\n")
        cert.flush()
        return trusting(Path(cert.name))
