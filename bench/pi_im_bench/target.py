"""The machine under test: how to run a command on it, and where its XMPP port is.

Traffic goes only where it is allowed to go: loopback, or a container on this machine
(the demo, Molecule's, or one the benchmark started). Another address (your own Pi on
your own network) needs `--allow-remote`, said out loud.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

# Docker's userland proxy for a published port stops accepting for good at about 3,500
# connections (ConnectionRefused until the container is recreated): runs beyond this go to
# the container's own address.
PROXY_SESSIONS = 3_000


class TargetError(Exception):
    """The target cannot be reached or refuses what was asked."""


@dataclass
class Target:
    """`prefix` runs a command on the target (docker exec / ssh); XMPP goes to host:port."""

    name: str
    prefix: list[str]
    host: str
    port: int = 5222
    notes: dict[str, str] = field(default_factory=dict)

    def run(self, argv: list[str], stdin: bytes | None = None, timeout: float = 600) -> bytes:
        command = [*self.prefix, *argv]
        try:
            done = subprocess.run(command, input=stdin, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as error:
            raise TargetError(
                f"{shlex.join(argv)} on {self.name}: no answer in {timeout} s"
            ) from error
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).decode(errors="replace").strip()
            raise TargetError(f"{shlex.join(argv)} on {self.name} failed: {detail}")
        return done.stdout

    def start(self, argv: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*self.prefix, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )


def docker_target(container: str, port: int = 5222) -> Target:
    """A container on this machine, reached on its own bridge address (not through the
    published loopback port, whose userland proxy would double every connection)."""
    try:
        raw = subprocess.run(
            ["docker", "inspect", container], check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise TargetError(f"no container {container!r} on this machine (make demo?)") from error
    info = json.loads(raw)[0]
    if not info["State"]["Running"]:
        raise TargetError(f"container {container} is not running")
    addresses = [n["IPAddress"] for n in info["NetworkSettings"]["Networks"].values()]
    address = next((a for a in addresses if a), None)
    if address is None:
        raise TargetError(f"container {container} has no address")
    return Target(
        name=container,
        prefix=["docker", "exec", "-i", container],
        host=address,
        port=port,
        notes={"kind": "container", "memory_limit": str(info["HostConfig"]["Memory"])},
    )


def ssh_target(
    destination: str,
    ssh_port: int,
    xmpp_host: str,
    xmpp_port: int,
    identity: str | None,
    known_hosts: str | None = None,
) -> Target:
    prefix = ["ssh", "-p", str(ssh_port), "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
    if identity:
        prefix += ["-i", identity, "-o", "IdentitiesOnly=yes"]
    if known_hosts:
        # A device of its own (a QEMU guest): its host key is kept in this file.
        prefix += [
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-o",
            "StrictHostKeyChecking=accept-new",
        ]
    return Target(
        name=destination,
        prefix=[*prefix, destination, "sudo", "-n"],
        host=xmpp_host,
        port=xmpp_port,
        notes={"kind": "ssh"},
    )


def local_container_addresses() -> set[str]:
    try:
        ids = subprocess.run(
            ["docker", "ps", "-q"], check=True, capture_output=True, text=True
        ).stdout.split()
        if not ids:
            return set()
        raw = subprocess.run(
            [
                "docker",
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                *ids,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return set()
    return set(raw.split())


def check_destination(host: str, allow_remote: bool) -> None:
    """Refuse to send load anywhere but loopback or a local container, unless told."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError as error:
        if allow_remote:
            return
        raise TargetError(
            f"{host!r} is a name: give an address (loopback, a local container) "
            "or --allow-remote for your own device"
        ) from error
    if address.is_loopback or host in local_container_addresses() or allow_remote:
        return
    raise TargetError(
        f"{host} is neither loopback nor a container on this machine; "
        "load goes there only with --allow-remote"
    )


def docker_proxy_for(host: str, port: int, proc: Path = Path("/proc")) -> str | None:
    """Where a docker-proxy process forwards host:port to (the container's address:port),
    if one does."""
    for cmdline in proc.glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:  # the process ended while we looked
            continue
        if not argv[0].endswith("docker-proxy"):
            continue
        options = dict(zip(argv[1::2], argv[2::2], strict=False))
        listens = options.get("-host-ip") in (host, "0.0.0.0", "::")
        if listens and options.get("-host-port") == str(port):
            return f"{options.get('-container-ip')}:{options.get('-container-port')}"
    return None


def check_path(target: Target, sessions: int) -> None:
    """Refuse a run the path to the server cannot carry: Docker's userland proxy."""
    behind = docker_proxy_for(target.host, target.port)
    if behind and sessions > PROXY_SESSIONS:
        raise TargetError(
            f"{target.host}:{target.port} is Docker's userland proxy (docker-proxy) for the "
            f"container at {behind}; it stops for good at about 3,500 connections, short of "
            f"{sessions:,} sessions. Load the container on its own address instead: "
            f"--target docker:CONTAINER (make bench does), or --xmpp {behind}"
        )
