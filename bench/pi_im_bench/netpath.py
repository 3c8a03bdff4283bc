"""Runs ON the device as root (`python3 -`, standard library only): what TCP congestion
control and the interface's queueing discipline do for chat on a slow, bloated uplink.

Three network namespaces of its own stand in for the path to a client: `pi` (the device:
its congestion control, its interface's qdisc), `router` (a home router's uplink: 10 Mbit/s,
20 ms, a 1,000-packet queue) and `phone`. No traffic leaves them. Chat is a 200-byte
message every 50 ms, its one-way delay taken on the one monotonic clock all namespaces
share; beside it, in the second case, one bulk upload from the device fills the path (a
backup going out, a large file served). Prints one JSON line per variant and case.

    python3 - [SECONDS [ROUNDS]] < netpath.py
"""

from __future__ import annotations

import ctypes
import json
import os
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

CLONE_NEWNET = 0x40000000
NAMESPACES = ("pi", "router", "phone")
PREFIX = "pi-im-netpath-"
CHAT_PORT, BULK_PORT = 5001, 5002
PI, PHONE = "10.254.1.1", "10.254.2.2"
MESSAGE = 200
VARIANTS = {
    # Debian's defaults: CUBIC, and systemd's fq_codel as the default qdisc.
    "cubic + fq_codel": ("cubic", "fq_codel"),
    # BBR alone: since Linux 4.13 it paces without fq.
    "bbr + fq_codel": ("bbr", "fq_codel"),
    # What the seed asked for.
    "bbr + fq": ("bbr", "fq"),
}


def sh(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: {done.stderr.strip()}")


def in_ns(name: str, *argv: str) -> None:
    sh("ip", "netns", "exec", PREFIX + name, *argv)


def enter(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    with open(f"/run/netns/{PREFIX}{name}") as handle:
        if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {name}")


def build() -> None:
    for module in ("tcp_bbr", "sch_fq", "sch_fq_codel", "sch_netem"):
        sh("modprobe", module)
    teardown()
    for name in NAMESPACES:
        sh("ip", "netns", "add", PREFIX + name)
        in_ns(name, "ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", "np-pi", "netns", PREFIX + "pi", "type", "veth",
       "peer", "np-r0", "netns", PREFIX + "router")  # fmt: skip
    sh("ip", "link", "add", "np-r1", "netns", PREFIX + "router", "type", "veth",
       "peer", "np-phone", "netns", PREFIX + "phone")  # fmt: skip
    for ns, dev, address in (
        ("pi", "np-pi", "10.254.1.1/24"),
        ("router", "np-r0", "10.254.1.254/24"),
        ("router", "np-r1", "10.254.2.254/24"),
        ("phone", "np-phone", "10.254.2.2/24"),
    ):
        in_ns(ns, "ip", "addr", "add", address, "dev", dev)
        in_ns(ns, "ip", "link", "set", dev, "up")
    in_ns("pi", "ip", "route", "add", "default", "via", "10.254.1.254")
    in_ns("phone", "ip", "route", "add", "default", "via", "10.254.2.254")
    in_ns("router", "sysctl", "-qw", "net.ipv4.ip_forward=1")
    # The uplink: the router's queue toward the client is where a bulk upload piles up.
    in_ns("router", "tc", "qdisc", "add", "dev", "np-r1", "root", "netem",
          "delay", "20ms", "rate", "10mbit", "limit", "1000")  # fmt: skip


def teardown() -> None:
    for name in NAMESPACES:
        subprocess.run(["ip", "netns", "del", PREFIX + name], capture_output=True, check=False)


def configure(congestion: str, qdisc: str) -> None:
    in_ns("pi", "sysctl", "-qw", f"net.ipv4.tcp_congestion_control={congestion}")
    in_ns("pi", "tc", "qdisc", "replace", "dev", "np-pi", "root", qdisc)


def phone(seconds: float, ready: int) -> None:
    """Receives chat and bulk; prints chat delays (ms) and bulk bytes as JSON."""
    enter("phone")
    selector = selectors.DefaultSelector()
    for port in (CHAT_PORT, BULK_PORT):
        listener = socket.create_server((PHONE, port))
        listener.setblocking(False)
        selector.register(listener, selectors.EVENT_READ, "accept")
    os.write(ready, b"x")
    delays: list[float] = []
    bulk_bytes = 0
    buffer = b""
    deadline = time.monotonic() + seconds + 10
    open_streams = 0
    while time.monotonic() < deadline:
        for key, _ in selector.select(0.5):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if key.data == "accept":
                connection, _ = sock.accept()
                connection.setblocking(False)
                kind = "chat" if sock.getsockname()[1] == CHAT_PORT else "bulk"
                selector.register(connection, selectors.EVENT_READ, kind)
                open_streams += 1
                continue
            data = sock.recv(1 << 16)
            if not data:
                selector.unregister(sock)
                sock.close()
                open_streams -= 1
                if key.data == "chat":
                    deadline = 0  # the chat sender is done: so is the case
                continue
            if key.data == "bulk":
                bulk_bytes += len(data)
                continue
            now = time.monotonic()
            buffer += data
            while len(buffer) >= MESSAGE:
                sent = float(buffer[:MESSAGE].split(b" ", 1)[0])
                delays.append((now - sent) * 1000)
                buffer = buffer[MESSAGE:]
    print(json.dumps({"delays": delays, "bulk_bytes": bulk_bytes}), flush=True)


def chat_sender(seconds: float) -> None:
    enter("pi")
    connection = socket.create_connection((PHONE, CHAT_PORT))
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        connection.sendall(f"{time.monotonic():.6f} ".encode().ljust(MESSAGE, b"."))
        time.sleep(0.05)
    connection.close()


def bulk_sender() -> None:
    """Runs until the chat is over (killed by the parent): the queue never empties."""
    enter("pi")
    connection = socket.create_connection((PHONE, BULK_PORT))
    chunk = b"\0" * (1 << 16)
    while True:
        connection.sendall(chunk)


def child(work: Callable[[], None]) -> int:
    """Fork; the child does `work` and exits, never running the parent's clean-up."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            work()
        except OSError:
            code = 1  # the bulk upload's connection ends under it: expected
        finally:
            os._exit(code)
    return pid


def case(seconds: float, with_bulk: bool) -> dict[str, float]:
    read, write = os.pipe()
    out_read, out_write = os.pipe()

    def receive() -> None:
        os.dup2(out_write, 1)
        phone(seconds, write)

    receiver = child(receive)
    os.read(read, 1)
    bulk = 0
    if with_bulk:
        bulk = child(bulk_sender)
        time.sleep(3)  # the upload fills the router's queue first
    began = time.monotonic()
    os.waitpid(child(lambda: chat_sender(seconds)), 0)
    took = time.monotonic() - began
    if bulk:
        os.kill(bulk, signal.SIGKILL)
        os.waitpid(bulk, 0)
    os.close(out_write)
    with os.fdopen(out_read) as output:
        record = json.loads(output.read())
    os.waitpid(receiver, 0)
    delays = sorted(record["delays"])
    return {
        "messages": len(delays),
        "p50_ms": round(statistics.median(delays), 1),
        "p99_ms": round(delays[min(len(delays) - 1, int(len(delays) * 0.99))], 1),
        "bulk_mbit_s": round(record["bulk_bytes"] * 8 / (took + 3) / 1e6, 2),
    }


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    build()
    try:
        for round_number in range(1, rounds + 1):  # alternating: drift hits both alike
            for name, (congestion, qdisc) in VARIANTS.items():
                configure(congestion, qdisc)
                for with_bulk in (False, True):
                    result = case(seconds, with_bulk)
                    record = {"variant": name, "bulk": with_bulk, "round": round_number}
                    print(json.dumps({**record, **result}), flush=True)
    finally:
        teardown()


if __name__ == "__main__":
    main()
