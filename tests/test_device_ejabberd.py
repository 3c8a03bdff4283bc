"""The ejabberd role's provisioning script: it reads the same settings file as the role's shell
scripts, exactly as the shell does, and hands any text to Erlang without quoting trouble."""

from __future__ import annotations

import base64
import ipaddress
import runpy
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import certs

SCRIPT = Path(__file__).parents[1] / "roles/ejabberd/files/pi_im_ejabberd_provision.py"
VALUES = {
    "CONFIGURED_DOMAIN": "",
    "DOMAIN_FILE": "/etc/pi-im/domain",
    "DEVICE_MACROS": "/etc/ejabberd/device.yml",
    "WEB_PORTS": "5280",
    "WEB_CHAT_CSP": "default-src 'self'; img-src 'self' FILES; connect-src 'self' FILES",
    "WEB_CLIENT_ORIGINS": "https://chat.example.org",
    "TURN_ADDRESS": "203.0.113.7",
    "ADMIN_USER": "admin",
    "ADMIN_SECRET": "ejabberd-admin-password",
    "API_USER": "pi-im-console",
    "API_SECRET": "ejabberd-api-password",
    "DEVICE_CERT": "/etc/ejabberd/tls/device.pem",
    "USER_CERT": "",
    "PUBLIC_PORTS": "5222, 5280",
    "EVENTS_SECRET": "",
    "EVENTS_PASSWORD_FILE": "/etc/ejabberd/event-bus.password",
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


@pytest.mark.parametrize(
    ("host_name", "domain"),
    [
        ("kitchen-pi\n", "kitchen-pi.local"),
        ("Chat\n", "chat.local"),
        ("chat.example.org\n", "chat.example.org"),
        ("localhost\n", "pi-im.local"),
        ("-bad-\n", "pi-im.local"),
        ("", "pi-im.local"),
    ],
)
def test_a_host_name_gives_a_domain(provision: dict[str, Any], host_name: str, domain: str) -> None:
    assert provision["from_host_name"](host_name)[0] == domain


def test_the_option_wins_then_the_domain_once_chosen(provision: dict[str, Any]) -> None:
    chosen = provision["chosen_domain"]
    assert chosen("chat.example.org", "kitchen.local", "kitchen")[0] == "chat.example.org"
    # A new host name later does not move the accounts to another domain.
    assert chosen("", "kitchen.local", "garage")[0] == "kitchen.local"
    assert chosen("", "", "garage")[0] == "garage.local"


def test_the_domain_step_writes_the_file_and_the_macros_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = tmp_path / "ejabberd.env"
    values = {
        **VALUES,
        "DOMAIN_FILE": str(tmp_path / "domain"),
        "DEVICE_MACROS": str(tmp_path / "device.yml"),
        "EVENTS_PASSWORD_FILE": str(tmp_path / "event-bus.password"),
    }
    settings.write_text("".join(f"{key}={shlex.quote(v)}\n" for key, v in values.items()))
    # Left by a run that published events; they are off now (EVENTS_SECRET empty).
    (tmp_path / "event-bus.password").write_text("old\n")
    (tmp_path / "hostname").write_text("kitchen-pi\n")
    monkeypatch.setenv("PI_IM_EJABBERD_SETTINGS", str(settings))
    monkeypatch.setenv("PI_IM_HOSTNAME_FILE", str(tmp_path / "hostname"))
    script = runpy.run_path(str(SCRIPT))
    assert script["domain"]() == [
        "XMPP domain kitchen-pi.local (from the host name on the home network)",
        f"removed {tmp_path / 'event-bus.password'} (no events published)",
        f"wrote {tmp_path / 'device.yml'} (calls relayed at 203.0.113.7)",
    ]
    assert not (tmp_path / "event-bus.password").exists()
    assert (tmp_path / "domain").read_text() == "kitchen-pi.local\n"
    macros = yaml.safe_load((tmp_path / "device.yml").read_text())["define_macro"]
    assert macros["PI_IM_DOMAIN"] == "kitchen-pi.local"
    assert macros["PI_IM_TURN_ADDRESS"] == "203.0.113.7"
    assert macros["PI_IM_WEB_ORIGINS"][0] == "https://kitchen-pi.local:5280"
    assert "https://kitchen-pi:5280" in macros["PI_IM_WEB_ORIGINS"]
    assert script["domain"]() == []
    # A new host name: the domain stays (accounts do not move), the page answers by the name.
    (tmp_path / "hostname").write_text("garage\n")
    assert script["domain"]() == [f"wrote {tmp_path / 'device.yml'} (calls relayed at 203.0.113.7)"]
    assert (tmp_path / "domain").read_text() == "kitchen-pi.local\n"
    macros = yaml.safe_load((tmp_path / "device.yml").read_text())["define_macro"]
    assert macros["PI_IM_DOMAIN"] == "kitchen-pi.local"
    assert "https://garage.local:5280" in macros["PI_IM_WEB_ORIGINS"]


def test_without_an_address_set_the_relay_announces_the_devices_own(
    provision: dict[str, Any],
) -> None:
    lan = provision["lan_address"]()
    address = ipaddress.ip_address(lan)
    assert address.version == 4
    routes = subprocess.run(
        ["ip", "-4", "route", "show", "default"], capture_output=True, text=True
    )
    # This machine's default route's source, or loopback where it has none.
    assert address.is_loopback == (routes.stdout.strip() == "")
    provision["SETTINGS"]["TURN_ADDRESS"] = ""
    assert provision["turn_address"](lan) == lan
    provision["SETTINGS"]["TURN_ADDRESS"] = "203.0.113.7"
    assert provision["turn_address"](lan) == "203.0.113.7"


@pytest.mark.parametrize(
    ("domain", "host_name", "origins"),
    [
        (
            "kitchen.local",
            "kitchen\n",
            ["https://kitchen.local:5280", "https://kitchen:5280", "https://192.168.1.20:5280"],
        ),
        (
            "chat.example.org",
            "Garage\n",
            [
                "https://chat.example.org:5280",
                "https://garage:5280",
                "https://garage.local:5280",
                "https://192.168.1.20:5280",
            ],
        ),
        # A dotted host name is the domain already; none at all leaves the domain and address.
        (
            "chat.example.org",
            "chat.example.org\n",
            ["https://chat.example.org:5280", "https://192.168.1.20:5280"],
        ),
        ("pi-im.local", "", ["https://pi-im.local:5280", "https://192.168.1.20:5280"]),
    ],
)
def test_the_web_chat_opens_the_websocket_by_every_name_of_the_device(
    provision: dict[str, Any], domain: str, host_name: str, origins: list[str]
) -> None:
    """The device's own page, served by any name, then the pages elsewhere the owner named."""
    assert provision["web_origins"](domain, host_name, "192.168.1.20") == [
        *origins,
        "https://chat.example.org",
    ]


def test_on_the_standard_https_port_an_origin_names_no_port(provision: dict[str, Any]) -> None:
    provision["SETTINGS"]["WEB_PORTS"] = "5280 443"
    assert provision["web_origins"]("kitchen.local", "kitchen\n", "192.168.1.20") == [
        "https://kitchen.local:5280",
        "https://kitchen:5280",
        "https://192.168.1.20:5280",
        "https://kitchen.local",
        "https://kitchen",
        "https://192.168.1.20",
        "https://chat.example.org",
    ]


def test_the_web_chat_may_reach_the_shared_files_of_the_domain(provision: dict[str, Any]) -> None:
    """A page on the standard port uploads to, and shows files from, the web listener's port."""
    assert provision["web_chat_policy"]("kitchen.local") == (
        "default-src 'self'; img-src 'self' https://kitchen.local:5280; "
        "connect-src 'self' https://kitchen.local:5280"
    )


def pem_for(path: Path, names: list[str], days: int) -> Path:
    """A self-signed certificate naming names, valid until days from now (past if < 0)."""
    path.write_bytes(certs.pem(certs.issue(names[0], certs.key(), names, days=days)))
    return path


@pytest.mark.parametrize(
    ("names", "days", "kept"),
    [
        (["chat.example.org", "*.chat.example.org"], 3650, True),  # the device's own
        (["chat.example.org"], 90, True),  # an ACME CA's, one name
        (["chat.example.org", "upload.chat.example.org"], 90, True),
        (["other.example.org"], 90, False),
        (["chat.example.org"], -1, False),  # run out: the device makes its own again
    ],
)
def test_a_certificate_for_the_domain_is_kept_until_it_runs_out(
    provision: dict[str, Any], tmp_path: Path, names: list[str], days: int, kept: bool
) -> None:
    pem = pem_for(tmp_path / "device.pem", names, days)
    assert provision["serves"](pem, "chat.example.org") is kept
