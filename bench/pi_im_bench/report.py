"""What a run leaves behind: result.json (everything), summary.md (the table people read),
timeline.png (sessions against server memory, and latency percentiles, over time)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def markdown(results: list[dict[str, Any]]) -> str:
    """One table row per step of every run (several runs: a side-by-side comparison)."""
    lines = [
        "| target | server | sessions up | failed | login wall s | login p99 ms "
        "| login CPU ms/session | RSS KB/session | msg/s | sent | lost | p50 ms | p99 ms "
        "| verdict |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in results:
        server = result["server"].get("server", "?")
        for step in result["steps"]:
            failed = sum(step["login_failures"].values()) + sum(step["dropped"].values())
            lines.append(
                f"| {result['target']} | {server} | {step['sessions_up']:,}/{step['sessions']:,} "
                f"| {failed} | {_ms(step['login_wall_s'])} | {_ms(step['login_ms']['p99'])} "
                f"| {_ms(step['login_server_cpu_ms_per_session'])} "
                f"| {_ms(step['rss_per_session_kb'])} | {step['messages_per_second']:g} "
                f"| {step['sent']:,} | {step['lost']:,} | {_ms(step['latency_ms']['p50'])} "
                f"| {_ms(step['latency_ms']['p99'])} | {step['verdict']} |"
            )
    lines.extend(_calls(results))
    header = []
    for result in results:
        info = result["server"]
        header.append(
            f"- **{result['target']}** ({info.get('server')}, {info.get('machine')}, "
            f"CPUs allowed {info.get('cpus_allowed')}, nofile {info.get('nofile')}): "
            f"scenario `{result['scenario']}`, {result['wall_s']} s, "
            f"stopped: {result['stopped_because']}" + events_line(result.get("events"))
        )
    return "\n".join(["# Benchmark summary", "", *header, "", *lines, ""])


def _calls(results: list[dict[str, Any]]) -> list[str]:
    """One row per step of relayed calls, where a scenario placed them."""
    rows = [
        f"| {result['target']} | {step['sessions_up']:,} | {step['idle_server_cpu_percent']} "
        f"| {call['calls']} | {call.get('allocations_failed', '-')} | {call.get('sent', 0):,} "
        f"| {call.get('lost_percent', '-')} | {_ms(call.get('latency_ms', {}).get('p50'))} "
        f"| {_ms(call.get('latency_ms', {}).get('p99'))} | {call.get('server_cpu_percent', '-')} "
        f"| {round(call['server_rss_kb'] / 1024) if 'server_rss_kb' in call else '-'} "
        f"| {call.get('client_cpu_percent', '-')} | {call.get('error', 'ok')} |"
        for result in results
        for step in result["steps"]
        for call in step.get("calls", [])
    ]
    if not rows:
        return []
    return [
        "",
        "## Relayed calls (sessions online and idle)",
        "",
        "| target | sessions | idle server CPU % | calls | allocations failed | packets sent "
        "| lost % | p50 ms | p99 ms | server CPU % | server RSS MB | client CPU % | outcome |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *rows,
    ]


def plot(results: list[dict[str, Any]], path: Path) -> None:
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    memory = top.twinx()
    for result in results:
        timeline = result["timeline"]
        t = [p["t"] for p in timeline]
        label = result["target"]
        top.plot(t, [p["sessions"] for p in timeline], label=f"{label} sessions")
        memory.plot(
            t,
            [p["server_rss_kb"] / 1024 for p in timeline],
            linestyle="--",
            label=f"{label} server RSS",
        )
        for key, style in (("latency_p50_ms", ":"), ("latency_p99_ms", "-")):
            points = [(p["t"], p[key]) for p in timeline if p[key] is not None]
            if points:
                xs, ys = zip(*points, strict=True)
                bottom.plot(xs, ys, style, label=f"{label} {key.split('_')[1]}")
    top.set_ylabel("sessions")
    memory.set_ylabel("server RSS (MB, dashed)")
    top.legend(loc="upper left", fontsize="small")
    memory.legend(loc="lower right", fontsize="small")
    bottom.set_ylabel("delivery latency (ms)")
    bottom.set_xlabel("seconds since start")
    bottom.set_yscale("symlog", linthresh=10)
    bottom.legend(loc="upper left", fontsize="small")
    top.set_title(
        ", ".join(r["scenario"] for r in results[:1])
        + " — "
        + " vs ".join(r["target"] for r in results)
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def events_line(events: dict[str, int] | None) -> str:
    if not events:
        return ""
    return (
        f"; events: {events['published']:,} published for {events['sent']:,} messages "
        f"({events['lost']:,} lost, {events['repeated']:,} repeated)"
    )


def per_message(step: dict[str, Any], cpu_s: float) -> float | None:
    """Microseconds of CPU per message sent."""
    return 1e6 * cpu_s / step["sent"] if step["sent"] else None


def medians(results: list[dict[str, Any]]) -> str:
    """Runs labelled "NAME #n": one row per NAME with the median over its rounds."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        events = result.get("events") or {}
        first = [{**step, "events_lost": events.get("lost")} for step in result["steps"][:1]]
        groups.setdefault(result["target"].rsplit(" #", 1)[0], []).extend(first)
    columns = {
        "RSS KB/session": lambda s: s["rss_per_session_kb"],
        "login CPU ms/session": lambda s: s["login_server_cpu_ms_per_session"],
        "login wall s": lambda s: s["login_wall_s"],
        "delivered msg/s": lambda s: s["received"] / max(1e-9, s["traffic_seconds"]),
        "p50 ms": lambda s: s["latency_ms"]["p50"],
        "p99 ms": lambda s: s["latency_ms"]["p99"],
        "lost": lambda s: s["lost"],
        "events lost": lambda s: s["events_lost"],
        # What a message costs the server over the traffic; with RabbitMQ's share beside.
        "server CPU µs/msg": lambda s: per_message(s, s["traffic_server_cpu_s"]),
        "+ RabbitMQ µs/msg": lambda s: per_message(
            s, s["traffic_server_cpu_s"] + (s.get("traffic_broker_cpu_s") or 0)
        ),
    }
    lines = [
        "",
        "## Medians per variant",
        "",
        "| variant | runs | " + " | ".join(columns) + " |",
        "|---|---:|" + "---:|" * len(columns),
    ]
    for name, steps in groups.items():
        cells = []
        for pick in columns.values():
            values = [v for v in (pick(step) for step in steps) if v is not None]
            cells.append(_ms(statistics.median(values)) if values else "-")
        lines.append(f"| {name} | {len(steps)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write(results: list[dict[str, Any]], directory: Path, extra: str = "") -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": directory / "result.json",
        "markdown": directory / "summary.md",
        "plot": directory / "timeline.png",
    }
    paths["json"].write_text(json.dumps(results if len(results) > 1 else results[0], indent=1))
    paths["markdown"].write_text(markdown(results) + extra)
    plot(results, paths["plot"])
    return paths
