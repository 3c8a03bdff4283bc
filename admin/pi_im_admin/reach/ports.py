"""The ports the device listens on, from the kernel's socket tables (/proc/net): which
address each is bound to tells whether only the device itself can reach it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Reach = Literal["all", "loopback", "address"]
# Socket states in /proc/net/{tcp,udp}*: TCP_LISTEN; UDP sockets bound but unconnected show
# TCP_CLOSE (07).
_LISTENING = {"tcp": "0A", "udp": "07"}
_ANY = {"00000000", "00000000000000000000000000000000"}


@dataclass(frozen=True)
class Listening:
    protocol: str
    port: int
    reach: Reach


def _reach(hex_address: str) -> Reach:
    if hex_address in _ANY:
        return "all"
    # 127.0.0.0/8 (little-endian first byte last) and ::1, as the kernel prints them.
    if (len(hex_address) == 8 and hex_address.endswith("7F")) or (
        hex_address == "00000000000000000000000001000000"
    ):
        return "loopback"
    return "address"


def listening(proc_net: Path = Path("/proc/net")) -> set[Listening]:
    found: set[Listening] = set()
    for protocol, state in _LISTENING.items():
        for table in (protocol, f"{protocol}6"):
            try:
                lines = (proc_net / table).read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                if len(fields) < 4 or fields[3] != state:
                    continue
                address, port = fields[1].split(":")
                found.add(Listening(protocol, int(port, 16), _reach(address)))
    return found


def best(found: set[Listening], protocol: str, port: int) -> Reach | None:
    """How far a port is open: to all addresses beats one address beats loopback alone."""
    reaches = {f.reach for f in found if f.protocol == protocol and f.port == port}
    for reach in ("all", "address", "loopback"):
        if reach in reaches:
            return reach  # type: ignore[return-value]
    return None
