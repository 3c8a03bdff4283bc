"""File sharing (XEP-0363) with a real client: slixmpp's plugin uploads, curl downloads from
the announced URL over verified HTTPS; the size limit, the per-user quota and the floor of
free space as a client meets them; and the space files take, on the console's dashboard."""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from admin_console import Console
from conftest import DOMAIN, Account, api, ejabberd_configured, ejabberd_log, ejabberd_log_size

HTTP_PORT = 5280


def client(address: str, cert: Path, account: Account, *args: str) -> dict[str, object]:
    """upload_client.py as the account, trusting the device's certificate."""
    result = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("upload_client.py")),
            address,
            account.jid,
            *args,
        ],
        input=account.password,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"SSL_CERT_FILE": str(cert), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def download(address: str, cert: Path, url: str, into: Path) -> tuple[int, dict[str, str]]:
    """curl fetches `url` (its host resolved to the device), the certificate and its name
    checked; the status and the response's headers (lower-case names)."""
    assert url.startswith(f"https://{DOMAIN}:{HTTP_PORT}/upload/"), url
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "--cacert",
            str(cert),
            "--resolve",
            f"{DOMAIN}:{HTTP_PORT}:{address}",
            "-D",
            "-",
            "-o",
            str(into),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    status_line, *lines = result.stdout.strip().splitlines()
    headers = dict(line.split(":", 1) for line in lines if ":" in line)
    return int(status_line.split()[1]), {k.strip().lower(): v.strip() for k, v in headers.items()}


def random_file(directory: Path, name: str, size: int) -> Path:
    path = directory / name
    path.write_bytes(secrets.token_bytes(size))
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def member(accounts: list[Account]) -> Account:
    return accounts[0]


def test_a_file_downloads_byte_identical_over_https(
    host, member: Account, address: str, device_cert: Path, tmp_path: Path
) -> None:
    photo = random_file(tmp_path, "holiday photo.jpg", 300_000)
    [url] = client(address, device_cert, member, "upload", str(photo))["urls"]

    status, headers = download(address, device_cert, url, tmp_path / "fetched")

    assert status == 200
    assert digest(tmp_path / "fetched") == digest(photo)
    assert headers["content-type"] == "image/jpeg"
    # Where the files live: the data partition, ejabberd's alone.
    assert host.check_output("stat -c %U:%a /var/lib/ejabberd") == "ejabberd:700"
    kept = host.check_output("find /var/lib/ejabberd/upload -name '*photo.jpg' -size 300000c")
    assert len(kept.splitlines()) == 1


def test_nothing_in_a_shared_file_runs_in_a_browser(
    member: Account, address: str, device_cert: Path, tmp_path: Path
) -> None:
    """An SVG is served inline as an image: the headers keep its scripts from running in
    the origin where the web clients live."""
    drawing = tmp_path / "drawing.svg"
    drawing.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script></svg>'
    )
    [url] = client(address, device_cert, member, "upload", str(drawing))["urls"]

    status, headers = download(address, device_cert, url, tmp_path / "fetched.svg")

    assert status == 200
    assert headers["content-type"] == "image/svg+xml"
    policy = headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "sandbox" in policy
    assert headers["x-content-type-options"] == "nosniff"


def test_a_file_over_the_limit_is_refused_with_the_protocols_error(
    host, member: Account, address: str, device_cert: Path
) -> None:
    limit = 32 * 2**20  # ejabberd_upload_max_file_size's default
    since = ejabberd_log_size(host)

    refused = client(address, device_cert, member, "slot", "film.mp4", str(limit + 1))
    allowed = client(address, device_cert, member, "slot", "film.mp4", str(limit))

    assert refused["error"] == {
        "condition": "not-acceptable",
        "text": f"File larger than {limit} bytes",
        "max_file_size": limit,
    }
    assert allowed["put"].startswith(f"https://{DOMAIN}:{HTTP_PORT}/upload/")
    assert ejabberd_log(host, "too large", since=since)


@pytest.fixture
def one_mebibyte_quota(host) -> Iterator[None]:
    quota = {
        f"  {kind}_upload_quota: 256": f"  {kind}_upload_quota: 1" for kind in ("hard", "soft")
    }
    with ejabberd_configured(host, quota):
        yield


def test_the_quota_removes_the_oldest_files(
    one_mebibyte_quota: None, member: Account, address: str, device_cert: Path, tmp_path: Path
) -> None:
    files = [random_file(tmp_path, f"scan{n}.pdf", 400 * 1024) for n in range(3)]
    urls = client(address, device_cert, member, "upload", *map(str, files))["urls"]

    # The quota makes room when the third slot is asked for, in its own process.
    for _ in range(50):
        statuses = [download(address, device_cert, url, tmp_path / "x")[0] for url in urls]
        if statuses[0] == 404:
            break
        time.sleep(0.2)

    assert statuses == [404, 200, 200]
    assert digest(tmp_path / "x") == digest(files[2])


@pytest.fixture
def card_nearly_full(host) -> Iterator[None]:
    """The floor raised above what the card has free: the same as a nearly full card."""
    with ejabberd_configured(host, {"    min_free_mb: .*": "    min_free_mb: 100000000"}):
        yield


def test_uploads_stop_short_of_filling_the_card(
    host, card_nearly_full: None, member: Account, address: str, device_cert: Path
) -> None:
    since = ejabberd_log_size(host)

    refused = client(address, device_cert, member, "slot", "video.mp4", "1000")

    assert refused["error"]["condition"] == "resource-constraint"
    assert "short of space" in refused["error"]["text"]
    assert ejabberd_log(host, "Refusing an upload slot", since=since)


def test_the_dashboard_shows_the_space_files_take(
    host,
    member: Account,
    address: str,
    device_cert: Path,
    tmp_path: Path,
    owner_api: httpx.Client,
) -> None:
    before = api(host, "upload_usage", {"host": DOMAIN})
    clip = random_file(tmp_path, "clip.mp4", 3 * 2**20)
    client(address, device_cert, member, "upload", str(clip))

    after = api(host, "upload_usage", {"host": DOMAIN})
    board = owner_api.get("/dashboard").json()

    assert after["files"] == before["files"] + 1
    assert after["bytes"] == before["bytes"] + 3 * 2**20
    assert board["shared_files"] == {
        "megabytes": round(after["bytes"] / 2**20, 1),
        "files": after["files"],
    }


def test_without_the_space_module_the_dashboard_leaves_shared_files_out(
    host, owner_api: httpx.Client, owner: Console
) -> None:
    """File sharing off (or its module not loaded): ejabberd has no upload_usage command, and
    the dashboard, page and API, goes without the tile instead of failing."""
    assert owner_api.get("/dashboard").json()["shared_files"] is not None
    unloaded = {"  mod_upload_space:": "  # mod_upload_space:", "    min_free_mb: .*": "    # gone"}
    with ejabberd_configured(host, unloaded):
        board = owner_api.get("/dashboard")
        page = owner.get("/")
    assert board.status_code == 200
    assert board.json()["shared_files"] is None
    assert page.status_code == 200
    assert 'id="shared-files"' not in page.text
