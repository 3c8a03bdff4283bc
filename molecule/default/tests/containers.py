"""The test containers as seen from the host (shared by the default and bake scenarios)."""

from __future__ import annotations

import subprocess


def inspect(container: str, template: str) -> str:
    return subprocess.run(
        ["docker", "inspect", "-f", template, container],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def address_of(container: str) -> str:
    """The container's own address: test traffic goes only to containers we created."""
    return inspect(container, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
