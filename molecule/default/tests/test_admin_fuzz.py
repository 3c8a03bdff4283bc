"""The REST API fuzzed from its own OpenAPI schema with schemathesis: whatever the input,
never a server error. Bounded: a fixed number of cases per operation, a fixed seed."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from admin_console import Console
from conftest import REPO, secret

CASES_PER_OPERATION = 25


@pytest.fixture
def no_deliveries(host, owner_api: httpx.Client) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """The webhook dispatcher stopped while the fuzzer registers webhooks to whatever URLs
    it makes up (they would get this machine's events, and test traffic must not leave it);
    those webhooks are deleted before it starts again."""
    host.check_output("systemctl stop pi-im-webhooks")
    yield
    for webhook in owner_api.get("/webhooks").json():
        owner_api.delete(f"/webhooks/{webhook['id']}")
    host.check_output("systemctl start pi-im-webhooks")


@pytest.fixture
def no_moderation_list(owner_api: httpx.Client) -> Iterator[None]:
    """The words and patterns the fuzzer adds are removed: they would block or mask the
    messages of the tests after it."""
    yield
    for rule in owner_api.get("/moderation").json()["rules"]:
        owner_api.delete(f"/moderation/rules/{rule['id']}")


@pytest.fixture
def no_bots(owner_api: httpx.Client) -> Iterator[None]:
    """The bots and the assistant the fuzzer makes are removed, before the dispatcher starts
    again (their webhooks and the assistant's service are URLs it made up)."""
    yield
    owner_api.delete("/assistant")
    for bot in owner_api.get("/bots").json():
        owner_api.delete(f"/bots/{bot['name']}")


@pytest.mark.usefixtures("no_deliveries", "no_moderation_list", "no_bots")
def test_no_server_errors(host, address: str, device_tls: ssl.SSLContext) -> None:
    base = f"https://{address}:8080"
    console = Console(base, device_tls)
    assert console.sign_in("owner", secret(host, "admin-owner-password")).status_code == 303
    # An admin token: everything but touching owners, so the fuzzer cannot lock the tests out
    # by deleting or demoting the device's owner (which the rules allow an owner to do).
    token = console.create_token("fuzz", "admin")
    st = shutil.which("st")
    assert st, "schemathesis is missing from the virtualenv"
    report = REPO / "artifacts" / "schemathesis"
    report.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            st,
            "run",
            f"{base}/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(CASES_PER_OPERATION),
            "--seed",
            "2026",
            "--workers",
            "1",
            # The device's own certificate, reached by address: the fuzzer cannot check the
            # name; the tests that can (device_tls) do.
            "--tls-verify",
            "false",
            "--request-timeout",
            "30",
            "--report",
            "junit",
            "--report-dir",
            str(report),
        ],
        capture_output=True,
        text=True,
        # Its crash cache (.schemathesis/, with this run's address) goes beside the reports.
        cwd=report,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:]
