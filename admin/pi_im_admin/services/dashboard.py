"""What the appliance is doing: users, uptime, the services' memory and CPU, storage,
and a history of online users sampled in the background."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .. import validation
from ..context import Context
from ..errors import Problem
from ..security import Principal
from ..settings import Settings
from . import moderation, webhooks

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
# How each service's Erlang VM shows up in its command line.
SERVICES = {"ejabberd": "-sname ejabberd@", "rabbitmq": "-s rabbit boot"}


@dataclass(frozen=True)
class ProcessStats:
    name: str
    pid: int | None
    rss_mb: float
    cpu_seconds: float


def _process(name: str, marker: str) -> ProcessStats:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if "beam" not in cmdline or marker not in cmdline:
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            rss_pages = int((proc / "statm").read_text().split()[1])
        except OSError:
            continue
        cpu = (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime
        return ProcessStats(name, int(proc.name), rss_pages * _PAGE / 2**20, cpu)
    return ProcessStats(name, None, 0.0, 0.0)


def storage(settings: Settings) -> dict[str, object]:
    """The file system holding the device's state (the card's, on a Pi) with the least room,
    as the services see it: what a process other than root may still write."""
    found = []
    for path in settings.storage_paths:
        try:
            fs = os.statvfs(path)
        except OSError:  # a component not installed
            continue
        found.append((fs.f_bavail * fs.f_frsize, fs.f_blocks * fs.f_frsize))
    if not found:
        usage = shutil.disk_usage("/var/lib")
        found.append((usage.free, usage.total))
    free, total = min(found)
    free_mb = free // 2**20
    full, low = settings.storage_full_mb, settings.storage_low_mb
    return {
        "total_gb": round(total / 2**30, 1),
        "free_gb": round(free / 2**30, 1),
        "free_mb": free_mb,
        "used_percent": round(100 * (total - free) / total, 1) if total else 100.0,
        "state": "full" if free_mb < full else "low" if free_mb < low else "ok",
        "full_mb": full,
        "low_mb": low,
    }


async def overview(ctx: Context) -> dict[str, object]:
    shared = await ctx.ejabberd.upload_usage()
    return {
        "domain": ctx.ejabberd.domain,
        "registered": await ctx.ejabberd.stat("registeredusers"),
        "online": await ctx.ejabberd.stat("onlineusers"),
        "uptime_seconds": await ctx.ejabberd.stat("uptimeseconds"),
        "processes": [_process(n, m).__dict__ for n, m in SERVICES.items()],
        "disk": storage(ctx.settings),
        "history": history(ctx),
        "federation": ctx.settings.federation,
        "certificate": certificate(ctx),
        "backup": status_file(ctx.settings.backup_status),
        "release": status_file(ctx.settings.release_file),
        "appliance_update": status_file(ctx.settings.appliance_update_status),
        "updates": status_file(ctx.settings.updates_status),
        "ejabberd_update": status_file(ctx.settings.ejabberd_update_status),
        "shared_files": (
            {"megabytes": round(shared[0] / 2**20, 1), "files": shared[1]} if shared else None
        ),
        "event_bus": await ctx.ejabberd.event_bus_status(),
        "paused_webhooks": [
            {"id": w["id"], "name": w["name"], "reason": w["pause_reason"]}
            for w in webhooks.listing(ctx)
            if w["paused"]
        ],
        "spam_reports": moderation.recent_reports(ctx),
    }


def certificate(ctx: Context) -> dict[str, object] | None:
    """The device's last attempt to get its certificate from the ACME CA, if it uses one."""
    return status_file(ctx.settings.acme_status)


def status_file(path: Path) -> dict[str, object] | None:
    """A device step's last outcome as it wrote it (certificate, backup, updates), if it ran."""
    try:
        status = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def history(ctx: Context, hours: int = 24) -> list[dict[str, float]]:
    rows = ctx.db.all(
        "SELECT at, online, registered FROM samples WHERE at > ? ORDER BY at",
        time.time() - hours * 3600,
    )
    return [dict(r) for r in rows]


async def sample(ctx: Context) -> None:
    online = await ctx.ejabberd.stat("onlineusers")
    registered = await ctx.ejabberd.stat("registeredusers")
    # One commit, not two: each is a sync of the database's log on the card.
    with ctx.db.transaction() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO samples (at, online, registered) VALUES (?, ?, ?)",
            (time.time(), online, registered),
        )
        conn.execute("DELETE FROM samples WHERE at < ?", (time.time() - 7 * 86400,))


def chart(points: list[dict[str, float]], width: int = 600, height: int = 120) -> str:
    """An SVG polyline of online users over time: no JavaScript needed."""
    if len(points) < 2:
        return ""
    t0, t1 = points[0]["at"], points[-1]["at"]
    top = max(1.0, max(p["online"] for p in points))
    span = max(1.0, t1 - t0)
    coords = " ".join(
        f"{(p['at'] - t0) / span * width:.1f},{height - p['online'] / top * height:.1f}"
        for p in points
    )
    return (
        f'<svg viewBox="0 0 {width} {height}" width="100%" height="{height}" role="img" '
        f'aria-label="online users, peak {int(top)}"><polyline fill="none" stroke="#2b6cb0" '
        f'stroke-width="2" points="{coords}"/></svg>'
    )


async def broadcast(ctx: Context, actor: Principal, audience: str, subject: str, body: str) -> None:
    """An announcement through mod_announce: to every account (kept offline for those not
    connected) or only to the connected ones. Type "normal": headlines are not stored
    offline."""
    if audience not in ("all", "online"):
        raise Problem("Send to 'all' users or to 'online' users.")
    subject = validation.text(subject, "subject", 200)
    body = validation.text(body, "announcement", 10000, multiline=True)
    if not body:
        raise Problem("The announcement is empty.")
    await ctx.ejabberd.send(
        ctx.settings.announce_from, f"{ctx.ejabberd.domain}/announce/{audience}", subject, body
    )
    ctx.db.audit(actor.name, "broadcast", audience, subject[:100])


def audit_log(ctx: Context, limit: int = 200, offset: int = 0) -> list[dict[str, object]]:
    return [
        dict(r)
        for r in ctx.db.all(
            "SELECT at, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT ? OFFSET ?",
            limit,
            offset,
        )
    ]
