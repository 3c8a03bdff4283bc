"""The REST API fuzzed from its own OpenAPI schema with schemathesis: whatever the input,
never a server error. Bounded: a fixed number of cases per operation, a fixed seed."""

from __future__ import annotations

import shutil
import ssl
import subprocess

from admin_console import Console
from conftest import REPO, secret

CASES_PER_OPERATION = 25


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
