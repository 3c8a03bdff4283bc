"""Server-side sampler, run ON the target (`python3 - ARGS` with this file on stdin).

Standard library only, because it runs wherever the server runs. Prints one JSON line
per interval: the server process's resident memory and CPU seconds and, for ejabberd,
the Erlang VM's own memory split (erl_call) and the CPU seconds of RabbitMQ, which takes
its events, until the time bound or a broken pipe.
"""

import json
import os
import re
import subprocess
import sys
import time

PATTERNS = {
    "ejabberd": re.compile(r"beam\.smp.*-sname ejabberd"),
    "prosody": re.compile(r"lua.*prosody"),
}
# RabbitMQ's VM (Debian's unit starts it with `-s rabbit boot`).
BROKER = re.compile(r"beam\.smp.* -s rabbit boot")
ERL_CALL = "/usr/lib/erlang/bin/erl_call"
# The VM's memory split, how many ports and processes it holds (sized by ejabberdctl.cfg) and
# ejabberd's own session count (exact, where the process count moves with transient work).
ERLANG_QUERY = (
    "[{port_count, erlang:system_info(port_count)},"
    " {process_count, erlang:system_info(process_count)},"
    " {sessions, catch ejabberd_sm:connected_users_number()} | erlang:memory()].\n"
)


def processes():
    """(pid, command line) of every process that can be read."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                yield int(pid), f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue


def find_server(kind):
    kinds = PATTERNS if kind == "auto" else {kind: PATTERNS[kind]}
    for pid, cmdline in processes():
        for name, pattern in kinds.items():
            if pattern.search(cmdline):
                return name, pid, cmdline
    return None, None, ""


def find_broker():
    return next((pid for pid, cmdline in processes() if BROKER.search(cmdline)), None)


def broker_cpu_seconds(pid):
    """None without a broker, or once it went away (a run that restarts it)."""
    if pid is None:
        return None
    try:
        return cpu_seconds(pid)
    except OSError:
        return None


def status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    parts = stat[stat.rindex(")") + 2 :].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def erlang_memory(cmdline):
    node = re.search(r"-sname (\S+)", cmdline)
    if node is None or not os.path.exists(ERL_CALL):
        return None
    try:
        with open("/var/lib/ejabberd/.erlang.cookie") as f:
            cookie = f.read().strip()
        out = subprocess.run(
            [ERL_CALL, "-sname", node.group(1), "-c", cookie, "-e"],
            input=ERLANG_QUERY,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {k: int(v) for k, v in re.findall(r"\{(\w+),\s*(\d+)\}", out)} or None


def info(kind, pid, cmdline):
    fields = status(pid)
    with open(f"/proc/{pid}/limits") as f:
        limits = f.read()
    nofile = re.search(r"Max open files\s+(\S+)", limits)
    return {
        "type": "info",
        "server": kind,
        "pid": pid,
        "cmdline": cmdline[:2000],
        "cpus_allowed": fields.get("Cpus_allowed_list"),
        "nofile": nofile.group(1) if nofile else None,
        "online_cpus": os.cpu_count(),
        "kernel": os.uname().release,
        "machine": os.uname().machine,
    }


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else "auto"
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 600
    interval = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
    deadline = time.monotonic() + seconds
    found, pid, cmdline = find_server(kind)
    if pid is None:
        print(json.dumps({"type": "error", "error": f"no {kind} server process"}), flush=True)
        return 1
    print(json.dumps(info(found, pid, cmdline)), flush=True)
    broker = find_broker() if found == "ejabberd" else None
    while time.monotonic() < deadline:
        try:
            sample = {
                "type": "sample",
                "rss_kb": int(status(pid)["VmRSS"].split()[0]),
                "cpu_s": cpu_seconds(pid),
            }
        except (OSError, KeyError):
            print(json.dumps({"type": "error", "error": "server process went away"}), flush=True)
            return 1
        if found == "ejabberd":
            sample["erlang"] = erlang_memory(cmdline)
            sample["broker_cpu_s"] = broker_cpu_seconds(broker)
        try:
            print(json.dumps(sample), flush=True)
        except BrokenPipeError:
            return 0
        time.sleep(interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
