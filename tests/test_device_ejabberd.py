"""The ejabberd role's provisioning script: it reads the same settings file as the role's shell
scripts, exactly as the shell does, and hands any text to Erlang without quoting trouble."""

from __future__ import annotations

import base64
import runpy
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).parents[1] / "roles/ejabberd/files/pi_im_ejabberd_provision.py"
VALUES = {
    "DOMAIN": "chat.example.org",
    "ADMIN_USER": "admin",
    "ADMIN_SECRET": "ejabberd-admin-password",
    "API_USER": "pi-im-console",
    "API_SECRET": "ejabberd-api-password",
    "DEVICE_CERT": "/etc/ejabberd/tls/device.pem",
    "USER_CERT": "",
    "PUBLIC_PORTS": "5222, 5280",
    "ODD": 'it\'s "quoted" $HOME `x` ;',
}


@pytest.fixture
def provision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The script loaded with a settings file written as the role's template writes it."""
    settings = tmp_path / "ejabberd.env"
    lines = ["# Ansible managed", *(f"{key}={shlex.quote(v)}" for key, v in VALUES.items())]
    settings.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("PI_IM_EJABBERD_SETTINGS", str(settings))
    return runpy.run_path(str(SCRIPT))


def test_settings_read_as_the_shell_reads_them(provision: dict[str, Any], tmp_path: Path) -> None:
    settings = provision["SETTINGS"]
    assert settings == VALUES
    for key, value in VALUES.items():
        shell = subprocess.run(
            ["sh", "-c", f'. "$0"; printf %s "${key}"', str(tmp_path / "ejabberd.env")],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert shell.stdout == value == settings[key]
    assert provision["ACCOUNTS"] == [
        ("admin", "ejabberd-admin-password"),
        ("pi-im-console", "ejabberd-api-password"),
    ]


@pytest.mark.parametrize("text", ["plain", 'quo"te>>, <<"x', "ünï ✓", "a\nb", ""])
def test_any_text_becomes_one_erlang_binary(provision: dict[str, Any], text: str) -> None:
    expression = provision["binary"](text)
    prefix, suffix = 'base64:decode(<<"', '">>)'
    assert expression.startswith(prefix)
    assert expression.endswith(suffix)
    encoded = expression[len(prefix) : -len(suffix)]
    assert set(encoded) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    assert base64.b64decode(encoded).decode() == text
