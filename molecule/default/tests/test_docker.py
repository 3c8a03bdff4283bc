"""Docker and Compose on the device, for the owner's own services: Compose v2 (the
`docker compose` plugin trixie ships) starts a project, reports it, and takes it down."""

from __future__ import annotations

import json
import secrets

import pytest

# A one-binary image made on the device from Debian's busybox-static (no registry here).
IMAGE = "pi-im-test/busybox:latest"
PROJECT_FILE = """\
services:
  web:
    image: {image}
    command: ["/busybox", "httpd", "-f", "-p", "8000", "-h", "/"]
    # No bridge: inside this test's own container Docker cannot set IPv6 up on a veth
    # (a limit of nesting, not of a Pi); the service's loopback is enough for its check.
    network_mode: none
    healthcheck:
      test: ["CMD", "/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8000/busybox"]
      interval: 1s
      retries: 30
"""


@pytest.fixture(scope="module")
def busybox_image(host) -> str:
    host.check_output(
        "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -qq install -y "
        "--no-install-recommends busybox-static"
    )
    host.check_output(
        f"tar -C /bin -c busybox | docker import --change 'CMD [\"/busybox\"]' - {IMAGE}"
    )
    yield IMAGE
    host.run(f"docker image rm -f {IMAGE}")


def test_compose_is_version_2(host) -> None:
    version = host.check_output("docker compose version --short")
    assert version.split(".")[0] == "2", version


def test_a_compose_project_comes_up_healthy_and_goes_down(host, busybox_image: str) -> None:
    project = f"pitest{secrets.token_hex(3)}"
    directory = f"/tmp/{project}"
    host.check_output(f"mkdir -p {directory}")
    host.check_output(
        f"cat > {directory}/compose.yaml <<'EOF'\n{PROJECT_FILE.format(image=busybox_image)}EOF"
    )
    compose = f"docker compose --project-directory {directory} --project-name {project}"
    try:
        up = host.run(f"{compose} up --detach --wait --wait-timeout 60")
        assert up.rc == 0, up.stdout + up.stderr
        services = [
            json.loads(line)
            for line in host.check_output(f"{compose} ps --format json").splitlines()
        ]
        assert [(s["Service"], s["State"], s["Health"]) for s in services] == [
            ("web", "running", "healthy")
        ]
    finally:
        down = host.run(f"{compose} down --timeout 5")
        host.run(f"rm -rf {directory}")
    assert down.rc == 0, down.stdout + down.stderr
    left = host.check_output(
        f"docker ps --all --quiet --filter label=com.docker.compose.project={project}"
    )
    assert left == ""
