"""`make demo` keeps the device: its state on volumes of its own, and an existing container
never recreated unasked. Run through playbooks/demo.yml against this scenario's device after a
base-image rebuild: once as it comes (nothing changes), then with DEMO_RECREATE (the same
device on the new image). The second recreates the device, so this module runs last
(conftest)."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

import family
from admin_console import Console
from conftest import REPO, SCENARIO, Account, create_user
from containers import address_of, inspect
from playbook_run import Run, converge
from test_xmpp import log_in

# Run by the operations scenario, on a device of its own (molecule/operations).
pytestmark = pytest.mark.operations

DEMO = yaml.safe_load((REPO / "playbooks/vars/demo.yml").read_text())
KEPT: list[str] = DEMO["demo_container_kept_paths"]
REBUILT = "pi-im-appliance/rebuilt:test"
# What identifies the device to its apps (its SSH host keys are not kept: made anew at boot).
CERTIFICATE = "openssl x509 -in /etc/ejabberd/tls/device.pem -noout -fingerprint -sha256"


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


def make_demo(container: str, **extra: object) -> Run:
    """`make demo` (playbooks/demo.yml) with this scenario's device standing in for the demo;
    no published ports, which a demo of this machine's own may hold."""
    settings = {
        "demo_container_name": container,
        "demo_container_image": REBUILT,
        "demo_container_published_ports": [],
        "demo_container_memory": "",
        **extra,
    }
    return converge(settings, host=container, playbook="demo.yml")


def volumes_of(container: str) -> dict[str, str]:
    mounts = json.loads(inspect(container, "{{json .Mounts}}"))
    return {m["Destination"]: m["Name"] for m in mounts if m["Type"] == "volume"}


@pytest.fixture(scope="module")
def rebuilt(container: str) -> Iterator[str]:
    """The base image built again: the same tree, another image ID (what `make` does when
    scripts/build-base-image.sh changes or its image is removed)."""
    made = docker("create", inspect(container, "{{.Image}}")).stdout.strip()
    docker("commit", "--change", "LABEL pi-im.rebuilt=test", made, REBUILT)
    docker("rm", made)
    yield docker("image", "inspect", "--format", "{{.Id}}", REBUILT).stdout.strip()
    docker("rmi", "--force", REBUILT, check=False)


@pytest.fixture(scope="module")
def member(owner_api: httpx.Client) -> Account:
    return create_user(owner_api)


def test_make_demo_after_a_rebuild_keeps_the_container_and_says_why(
    host, container: str, rebuilt: str, member: Account
) -> None:
    image = inspect(container, "{{.Image}}")
    users = host.check_output("ejabberdctl registered_users $(cat /etc/pi-im/domain)")

    run = make_demo(container)

    assert run.returncode == 0, run.messages
    assert run.all_stats["localhost"]["changed"] == 0
    assert run.stats["changed"] == 0
    said = run.said["demo_container : Say that the existing container is kept as it is"]
    assert f"it runs an image other than the one {REBUILT} names now" in said
    assert {f"{path} is not on a volume of its own" for path in KEPT} <= set(said)
    assert "make demo DEMO_RECREATE=1" in said[-1]
    assert inspect(container, "{{.Image}}") == image != rebuilt
    assert host.check_output("ejabberdctl registered_users $(cat /etc/pi-im/domain)") == users


def test_recreated_from_the_rebuilt_image_it_is_the_same_device(
    host,
    container: str,
    rebuilt: str,
    member: Account,
    device_cert: Path,
    device_tls: ssl.SSLContext,
) -> None:
    identity = host.check_output(CERTIFICATE)
    secrets = family.device_secrets(host)

    run = make_demo(container, demo_container_recreate=True)

    assert run.returncode == 0, run.messages
    assert inspect(container, "{{.Image}}") == rebuilt
    assert set(volumes_of(container)) == set(KEPT)
    assert host.check_output(CERTIFICATE) == identity
    assert family.device_secrets(host) == secrets
    assert host.check_output("systemctl --failed --no-legend --plain") == ""

    address = address_of(container)  # the new container's: Docker may have given it another

    async def logs_in() -> str:
        client = await log_in(member, device_cert, address)
        client.disconnect()
        return client.outcome.result()

    assert asyncio.run(logs_in()).startswith("session started, encrypted=True")
    # The console and the broker know their old passwords too (the certificate pinned).
    console = Console(f"https://{address}:8080", device_tls)
    assert console.sign_in("owner", secrets["admin-owner-password"]).status_code == 303
    assert family.broker_takes(host, secrets["rabbitmq-admin-password"])

    again = make_demo(container)
    assert again.returncode == 0, again.messages
    assert again.all_stats["localhost"]["changed"] == again.stats["changed"] == 0


def test_demo_down_keeps_the_devices_state_unless_told_to_forget(rebuilt: str) -> None:
    """On a container of its own, through the scenario's create and destroy (the role alone,
    no converge): removed, started again, removed and forgotten."""
    name, path = "pi-im-demo-down-test", "/var/lib/pi-im-admin"
    role = {
        "demo_container_name": name,
        "demo_container_image": REBUILT,
        "demo_container_kept_paths": [path],
    }

    def demo_container(**extra: object) -> Run:
        return converge({**role, **extra}, host="localhost", playbook=SCENARIO / "create.yml")

    try:
        assert demo_container().returncode == 0
        docker("exec", name, "sh", "-c", f"echo kept > {path}/mark && chmod 600 {path}/mark")
        down = converge(
            {**role, "demo_container_forget": False},
            host="localhost",
            playbook=SCENARIO / "destroy.yml",
        )
        assert down.returncode == 0, down.messages
        assert (
            f"{name}-var-lib-pi-im-admin"
            in down.said["demo_container : Say where the device's state is kept"]
        )
        assert demo_container().returncode == 0
        assert docker("exec", name, "stat", "-c", "%a %s", f"{path}/mark").stdout == "600 5\n"
        forgot = converge(role, host="localhost", playbook=SCENARIO / "destroy.yml")
        assert forgot.returncode == 0, forgot.messages
        assert docker("volume", "inspect", f"{name}-var-lib-pi-im-admin", check=False).returncode
    finally:
        docker("rm", "--force", "--volumes", name, check=False)
        docker("volume", "rm", f"{name}-var-lib-pi-im-admin", check=False)
