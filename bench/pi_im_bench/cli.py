"""`python -m pi_im_bench` (or `make bench`): run scenarios, manage benchmark accounts."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import disk_full, faults, hook_cost, moderation, netpath, report, scenario, vanish, wear
from .accounts import Manifest, derive_accounts, helper_rows
from .events import EventCount
from .probe_reader import Probe
from .run import execute
from .target import (
    Target,
    TargetError,
    check_destination,
    check_path,
    docker_target,
    ssh_target,
)

REPO = Path(__file__).resolve().parents[2]
HELPER = "pi-im-bench-accounts"
CHUNK = 5000
VARIANT_KEYS = {"name", "vars", "set", "target", "moderation"}


def parse_target(spec: str, args: argparse.Namespace) -> Target:
    kind, _, rest = spec.partition(":")
    if kind == "docker" and rest:
        return docker_target(rest)
    if kind == "ssh" and rest:
        destination, _, port = rest.partition(":")
        xmpp_host, _, xmpp_port = (args.xmpp or "").partition(":")
        if not xmpp_host:
            xmpp_host = destination.rpartition("@")[2]
        return ssh_target(
            destination,
            int(port or 22),
            xmpp_host,
            int(xmpp_port or 5222),
            args.identity,
            args.known_hosts,
        )
    raise TargetError(f"target {spec!r}: use docker:CONTAINER or ssh:USER@HOST[:PORT]")


def overrides(pairs: list[str]) -> dict[str, Any]:
    """--set login.sessions=50 → {"login.sessions": 50} (values read as TOML)."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise scenario.ScenarioError(f"--set {pair!r}: expected TABLE.KEY=VALUE")
        try:
            result[key] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            result[key] = value
    return result


def helper_info(target: Target) -> dict[str, Any]:
    try:
        return json.loads(target.run([HELPER, "info"], timeout=120))
    except TargetError as error:
        raise TargetError(
            f"{error}\nThe bulk account helper is off by default (never on a production "
            "appliance): set ejabberd_bench_accounts: true for this device and converge."
        ) from error


def manifest_for(target: Target, info: dict[str, Any], state: Path) -> Manifest:
    manifest = Manifest.load(
        state / f"{target.name}.json", info["domain"], info["digest"], info["iterations"]
    )
    if info["accounts"] != len(manifest.accounts):
        manifest.accounts = {}  # the device and our record disagree: make them again
    return manifest


def ensure_accounts(target: Target, count: int, state: Path) -> tuple[Manifest, dict[str, Any]]:
    info = helper_info(target)
    manifest = manifest_for(target, info, state)
    missing = manifest.missing(count)
    if missing:
        began = time.monotonic()
        made = derive_accounts(missing, info["digest"], info["iterations"])
        for start in range(0, len(made), CHUNK):
            target.run([HELPER, "create"], stdin=helper_rows(made[start : start + CHUNK]))
            manifest.accounts.update((a.index, a) for a in made[start : start + CHUNK])
            manifest.save()
        took = time.monotonic() - began
        print(
            f"{target.name}: {len(made):,} benchmark accounts created in {took:.1f} s "
            f"({len(made) / took:,.0f}/s)",
            flush=True,
        )
    return manifest, info


def remove_accounts(target: Target, state: Path) -> None:
    info = helper_info(target)
    removed = json.loads(target.run([HELPER, "remove"]))["removed"]
    manifest_for(target, info, state).remove()
    print(f"{target.name}: {removed:,} benchmark accounts removed", flush=True)


def measure(
    target: Target, chosen: scenario.Scenario, args: argparse.Namespace, label: str | None = None
) -> dict[str, Any]:
    """One scenario against one target, from a clean and idle server; accounts stay."""
    manifest, info = ensure_accounts(target, chosen.max_sessions, args.state)
    target.run([HELPER, "clean"])
    if args.restart:
        # A fresh server: memory is not returned after clients leave, and an earlier
        # run's backlog must not be measured as this run's.
        target.run(["systemctl", "restart", info["service"]], timeout=300)
    probe = Probe(target, info["server"], chosen.max_seconds + 420)
    probe.start()
    # The appliance's event bus: every message sent should become one event.
    events = EventCount(target)
    counting = events.bind()
    try:
        waited = probe.settle()
        print(
            f"{label or target.name}: server idle after {waited:.0f} s; {chosen.name}, "
            f"up to {chosen.max_sessions:,} sessions at {target.host}:{target.port}",
            flush=True,
        )
        accounts = [manifest.accounts[i] for i in range(chosen.max_sessions)]
        result = execute(
            chosen, target, info["domain"], accounts, probe, args.cafile, args.client_cpus
        ).as_dict()
        if counting:
            result["events"] = events.tally(sum(step["sent"] for step in result["steps"]))
    finally:
        probe.stop()
        if counting:
            events.remove()
    if label:
        result["target"] = label
    return result


def finish(
    results: list[dict[str, Any]],
    chosen: scenario.Scenario,
    args: argparse.Namespace,
    extra: str = "",
    judged: bool = True,
) -> int:
    """Write the reports. The exit status is the scenario's verdict when `judged`; a
    comparison (`variants`) is done once every run is measured, whatever its verdicts
    (a peer past a bound is a finding, not a failed command)."""
    out = args.out or REPO / "artifacts" / "bench" / (
        datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + f"-{chosen.name}"
    )
    paths = report.write(results, out, extra)
    print(report.markdown(results) + extra)
    for kind, path in paths.items():
        print(f"{kind:>8}: {path}")
    passed = all(step["verdict"] == "ok" for r in results for step in r["steps"])
    return 0 if passed or chosen.climbs or not judged else 1


def command_run(args: argparse.Namespace) -> int:
    chosen = scenario.load(args.scenario, overrides(args.set))
    targets = [parse_target(spec, args) for spec in args.target]
    for target in targets:
        check_destination(target.host, args.allow_remote)
        check_path(target, chosen.max_sessions)
    results = []
    for target in targets:
        try:
            results.append(measure(target, chosen, args))
        finally:
            if not args.keep_accounts:
                remove_accounts(target, args.state)
    return finish(results, chosen, args)


def converge(inventory: Path, host: str, variables: dict[str, Any]) -> None:
    """The appliance as site.yml makes it, with `variables` on top."""
    began = time.monotonic()
    log = REPO / "artifacts" / "bench" / "converge.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as output:
        done = subprocess.run(
            [
                "ansible-playbook",
                "-i",
                str(inventory),
                str(REPO / "playbooks" / "site.yml"),
                "--limit",
                host,
                "-e",
                json.dumps(variables),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        raise TargetError(f"converging {host} with {variables} failed: see {log}")
    print(
        f"{host}: converged with {json.dumps(variables)} in {time.monotonic() - began:.0f} s",
        flush=True,
    )


def plan_scenario(
    plan: dict[str, Any], variant: dict[str, Any], extra: dict[str, Any]
) -> scenario.Scenario:
    """A variants plan's scenario: the plan's `set`, then the command line's, then the variant's."""
    settings = {**plan.get("set", {}), **extra, **variant.get("set", {})}
    return scenario.load(plan["scenario"], settings)


def command_variants(args: argparse.Namespace) -> int:
    """Variants of a plan, alternating, same scenario: the appliance converged with each
    variant's `vars`, or another server named by the variant's `target` (a peer)."""
    plan = tomllib.loads(args.plan.read_text())
    variants = plan["variant"]
    for variant in variants:
        unknown = set(variant) - VARIANT_KEYS
        if unknown or "name" not in variant:
            raise scenario.ScenarioError(
                f"{args.plan}: a [[variant]] has a name and may have {sorted(VARIANT_KEYS)}; "
                f"got {sorted(variant)}"
            )
    if args.only:
        variants = [v for v in variants if any(part in v["name"] for part in args.only)]
        if not variants:
            raise scenario.ScenarioError(f"{args.plan}: no variant name contains {args.only}")
    appliance = args.target[0]
    targets = {
        spec: parse_target(spec, args)
        for spec in dict.fromkeys([appliance, *(v.get("target", appliance) for v in variants)])
    }
    most = max(plan_scenario(plan, v, overrides(args.set)).max_sessions for v in variants)
    for target in targets.values():
        check_destination(target.host, args.allow_remote)
        check_path(target, most)
    host = appliance.partition(":")[2]
    lists = {v["name"]: moderation.spec(v) for v in variants}
    domain = helper_info(targets[appliance])["domain"] if any(lists.values()) else ""
    results = []
    try:
        for round_number in range(1, args.repeat + 1):
            for variant in variants:
                spec = variant.get("target", appliance)
                if spec == appliance:
                    converge(args.inventory, host, variant.get("vars", {}))
                    if domain:  # the variant's list, or none
                        rules = lists[variant["name"]] or moderation.document(0, 0)
                        moderation.apply(targets[spec], domain, rules)
                chosen = plan_scenario(plan, variant, overrides(args.set))
                label = f"{variant['name']} #{round_number}"
                results.append(measure(targets[spec], chosen, args, label))
    finally:
        if domain:
            moderation.apply(targets[appliance], domain, moderation.document(0, 0))
        converge(args.inventory, host, {})
        if not args.keep_accounts:
            for target in targets.values():
                remove_accounts(target, args.state)
    chosen = plan_scenario(plan, {}, overrides(args.set))
    return finish(results, chosen, args, report.medians(results), judged=False)


def command_vanish(args: argparse.Namespace) -> int:
    """How long a client that vanished without a word still shows online (vanish.py)."""
    target = parse_target(args.target[0], args)
    check_destination(target.host, args.allow_remote)
    manifest, info = ensure_accounts(target, 1, args.state)
    if info["server"] != "ejabberd":
        raise TargetError(f"{target.name}: vanish asks ejabberd for the session")
    try:
        result = asyncio.run(
            vanish.measure_vanish(
                target,
                info["domain"],
                manifest.accounts[0],
                args.cafile,
                args.device_port,
                args.limit,
            )
        )
    finally:
        if not args.keep_accounts:
            remove_accounts(target, args.state)
    k = result.keepalive
    settings = (
        f"keepalive {k['tcp_keepalive_time']} + {k['tcp_keepalive_intvl']} x "
        f"{k['tcp_keepalive_probes']} = {vanish.predicted(k)} s"
    )
    if result.seconds is None:
        print(f"{target.name}: {settings}; still online after {args.limit:.0f} s")
        return 1
    print(f"{target.name}: {settings}; the server ended the session after {result.seconds:.0f} s")
    return 0


def command_hook_cost(args: argparse.Namespace) -> int:
    """What moderation and the event bus add to each message, timed inside ejabberd."""
    target = parse_target(args.target[0], args)
    rows = hook_cost.measure(target, args.count, args.rounds)
    print(
        f"{target.name}: a 200-byte message checked {args.count:,} times per round, "
        f"{hook_cost.EVENTS_PER_ROUND:,} events published per round, {args.rounds} rounds"
    )
    print("| per message | setup ms | µs (median) | each round |")
    print("|---|---:|---:|---|")
    for row in rows:
        rounds = ", ".join(f"{x:.1f}" for x in row["rounds_us"])
        label = row["name"] if row["name"] == "event bus" else f"moderation: {row['name']}"
        print(f"| {label} | {row['setup_ms']:.1f} | {row['median_us']:.1f} | {rounds} |")
    return 0


def command_netpath(args: argparse.Namespace) -> int:
    """Congestion control and qdisc behind a bloated uplink, on the device (netpath.py)."""
    target = parse_target(args.target[0], args)
    script = Path(netpath.__file__).read_bytes()
    argv = ["python3", "-", str(args.seconds), str(args.rounds)]
    cases = len(netpath.VARIANTS) * 2  # with and without an upload
    budget = args.rounds * cases * (args.seconds + 20) + 120
    records = [json.loads(line) for line in target.run(argv, script, budget).splitlines()]
    print(f"{target.name}: chat every 50 ms over 10 Mbit/s, 20 ms, a 1,000-packet queue")
    print("| device | upload beside | chat p50 ms | chat p99 ms | upload Mbit/s | rounds |")
    print("|---|---|---:|---:|---:|---:|")
    for variant in dict.fromkeys(r["variant"] for r in records):
        for bulk in (False, True):
            mine = [r for r in records if r["variant"] == variant and r["bulk"] == bulk]
            p50, p99, rate = (
                statistics.median(r[k] for r in mine) for k in ("p50_ms", "p99_ms", "bulk_mbit_s")
            )
            print(
                f"| {variant} | {'yes' if bulk else 'no'} | {p50:.1f} | {p99:.1f} | "
                f"{rate:.2f} | {len(mine)} |"
            )
    return 0


def command_accounts(args: argparse.Namespace) -> int:
    for spec in args.target:
        target = parse_target(spec, args)
        if args.action == "create":
            ensure_accounts(target, args.count, args.state)
        else:
            remove_accounts(target, args.state)
    return 0


def under_load(
    args: argparse.Namespace, command: str
) -> tuple[Target, Path, Callable[[Path], list[str]]]:
    """For the commands that act on one target while a scenario runs on it: the target, the
    directory for their results, and the scenario's command line writing into a folder."""
    if len(args.target) != 1:
        raise TargetError(f"{command} takes one --target")
    target = parse_target(args.target[0], args)
    check_destination(target.host, args.allow_remote)
    directory = args.out or REPO / "artifacts" / "bench" / (
        datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + f"-{command}-{args.scenario}"
    )
    passed_on = [f"--set={setting}" for setting in args.set]
    if args.client_cpus:
        passed_on.append("--client-cpus=" + ",".join(map(str, args.client_cpus)))
    if not args.restart:
        passed_on.append("--no-restart")

    def run_for(out: Path) -> list[str]:
        command = [sys.executable, "-m", "pi_im_bench", "run", args.scenario]
        return [*command, "--target", args.target[0], "--out", str(out), *passed_on]

    return target, directory, run_for


def command_faults(args: argparse.Namespace) -> int:
    target, directory, run_for = under_load(args, "faults")
    services = args.service or list(faults.KILL)
    return faults.run_all(target, services, run_for, directory, args.after)


def command_disk_full(args: argparse.Namespace) -> int:
    target, directory, run_for = under_load(args, "disk-full")
    outcome = disk_full.fill_under_load(
        target, run_for(directory / "load"), directory / "load", args.after, args.full
    )
    summary = disk_full.table(outcome)
    (directory / "disk-full.md").write_text(summary + "\n")
    print(summary)
    return 0


def command_wear(args: argparse.Namespace) -> int:
    target, directory, run_for = under_load(args, "wear")
    return wear.run(target, run_for, directory, args.idle, args.load)


def command_scenarios(_args: argparse.Namespace) -> int:
    for path in sorted(scenario.SCENARIOS.glob("*.toml")):
        loaded = scenario.load(str(path))
        print(f"{loaded.name:<14} {loaded.description}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="pi_im_bench", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    def target_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--target",
            action="append",
            required=True,
            help="docker:CONTAINER or ssh:USER@HOST[:PORT]; repeat to compare",
        )
        p.add_argument("--xmpp", help="HOST:PORT of XMPP for an ssh target (default HOST:5222)")
        p.add_argument("--identity", help="ssh private key for an ssh target")
        p.add_argument("--known-hosts", help="ssh known_hosts file for an ssh target")
        p.add_argument(
            "--state",
            type=Path,
            default=REPO / ".cache" / "bench",
            help="where account passwords are kept on this machine",
        )

    def client_options(p: argparse.ArgumentParser) -> None:
        """What every command that logs clients in shares."""
        p.add_argument(
            "--allow-remote",
            action="store_true",
            help="allow an address that is neither loopback nor a local container",
        )
        p.add_argument("--cafile", help="verify the server certificate against this file")
        p.add_argument(
            "--keep-accounts",
            action="store_true",
            help="leave the benchmark accounts on the target for the next run",
        )

    def measuring_options(p: argparse.ArgumentParser) -> None:
        """What `run` and `variants` share: how a scenario is measured."""
        target_options(p)
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="TABLE.KEY=VALUE",
            help="override a scenario setting, e.g. login.sessions=50",
        )
        client_options(p)
        p.add_argument(
            "--client-cpus",
            type=lambda s: [int(c) for c in s.split(",")],
            help="pin the load generator to these CPUs (e.g. 1), away from the server",
        )
        p.add_argument(
            "--out", type=Path, help="directory for result.json, summary.md, timeline.png"
        )
        p.add_argument(
            "--no-restart",
            dest="restart",
            action="store_false",
            help="measure the server as it is (default: restart it first)",
        )

    run = sub.add_parser("run", help="run a scenario against one or more targets")
    run.add_argument("scenario", help="name in bench/scenarios/ or a path to a .toml file")
    measuring_options(run)
    run.set_defaults(func=command_run)

    accounts = sub.add_parser("accounts", help="create or remove benchmark accounts in bulk")
    accounts.add_argument("action", choices=["create", "remove"])
    accounts.add_argument("--count", type=int, default=4000)
    target_options(accounts)
    accounts.set_defaults(func=command_accounts)

    variants = sub.add_parser(
        "variants",
        help="the appliance with and without each setting, and peers (bench/tuning.toml, "
        "bench/compare.toml)",
    )
    variants.add_argument(
        "plan",
        type=Path,
        help="a TOML file: scenario and [[variant]] tables; the first --target is the appliance",
    )
    measuring_options(variants)
    variants.add_argument(
        "--inventory", type=Path, default=REPO / "inventory" / "demo" / "hosts.yml"
    )
    variants.add_argument("--repeat", type=int, default=2, help="rounds over all variants")
    variants.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="only the variants whose name contains TEXT (repeat for several)",
    )
    variants.set_defaults(func=command_variants)

    vanished = sub.add_parser(
        "vanish", help="time until a client that vanished without a word shows offline"
    )
    target_options(vanished)
    client_options(vanished)
    vanished.add_argument(
        "--device-port", type=int, default=5222, help="the XMPP port on the device itself"
    )
    vanished.add_argument(
        "--limit", type=float, default=3 * 3600, help="give up after this many seconds"
    )
    vanished.set_defaults(func=command_vanish)

    hooks = sub.add_parser(
        "hook-cost", help="what moderation and the event bus add to each message, in µs"
    )
    target_options(hooks)
    hooks.add_argument("--count", type=int, default=20000, help="moderation checks per round")
    hooks.add_argument("--rounds", type=int, default=7, help="rounds (the median is given)")
    hooks.set_defaults(func=command_hook_cost)

    netpath = sub.add_parser(
        "netpath", help="congestion control and qdisc for chat behind a bloated uplink"
    )
    target_options(netpath)
    netpath.add_argument("--seconds", type=float, default=20, help="chat time per case")
    netpath.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    netpath.set_defaults(func=command_netpath)

    # The commands acting on the target while a scenario's traffic flows on it.
    seconds = {"type": float}
    under_load_commands: list[tuple[str, str, Callable[[argparse.Namespace], int], dict]] = [
        (
            "faults",
            "kill each of the appliance's services under load; time until it answers",
            command_faults,
            {
                "--service": {
                    "action": "append",
                    "choices": list(faults.KILL),
                    "help": "only these (repeat)",
                },
                "--after": {**seconds, "default": 20, "help": "seconds of traffic before the kill"},
            },
        ),
        (
            "disk-full",
            "fill the state's file system under load, then free it; what was lost",
            command_disk_full,
            {
                "--after": {
                    **seconds,
                    "default": 15,
                    "help": "seconds of traffic before the disk fills",
                },
                "--full": {**seconds, "default": 20, "help": "seconds it stays full"},
            },
        ),
        (
            "wear",
            "bytes written to storage per hour, per service: idle, then under load",
            command_wear,
            {
                "--idle": {
                    **seconds,
                    "default": 600,
                    "help": "seconds read at idle (0: under load only)",
                },
                "--load": {
                    **seconds,
                    "default": 45,
                    "help": "seconds read while the traffic flows",
                },
            },
        ),
    ]
    for name, summary, func, options in under_load_commands:
        command = sub.add_parser(name, help=summary)
        command.add_argument("--scenario", default="seed-4000", help="the load (a scenario name)")
        for flag, settings in options.items():
            command.add_argument(flag, **settings)
        measuring_options(command)
        command.set_defaults(func=func)

    listing = sub.add_parser("scenarios", help="list the scenarios")
    listing.set_defaults(func=command_scenarios)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (scenario.ScenarioError, TargetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
