"""Services, listeners, kernel settings and the running Erlang VM's tuning."""

from __future__ import annotations

import re
import secrets
import subprocess

import pytest

from conftest import DOMAIN, REPO, erlang_binary, fields, probe

PUBLIC = {
    5222: "ejabberd c2s",
    5280: "ejabberd https",
    443: "ejabberd https, the standard port",
    3478: "ejabberd stun/turn",
    8080: "admin console",
}
# The call relay's ports (ejabberd_turn_relay_ports), bound while a call is relayed.
RELAY_PORTS = range(61000, 62000)
LOOPBACK = {
    5281: "ejabberd api",
    5672: "amqp",
    15672: "rabbitmq management",
    61613: "stomp (the event bus)",
    4369: "epmd",
    25672: "rabbitmq distribution",
}
WILDCARD = {"*", "0.0.0.0", "[::]", "::"}


def listeners(host) -> list[tuple[str, int, str]]:
    """(address, port, process) of every listening TCP socket and every bound UDP one."""
    found = []
    for line in host.check_output("ss -Hltunp").splitlines():
        fields = line.split()
        address, _, port = fields[4].rpartition(":")
        process = re.search(r'\(\("([^"]+)"', line)
        found.append((address, int(port), process.group(1) if process else "?"))
    return found


def journal(host, unit: str) -> str:
    return host.run(f"journalctl -u {unit} -n 40 --no-pager").stdout


@pytest.mark.parametrize(
    "unit",
    [
        "ejabberd",
        "rabbitmq-server",
        "docker",
        "epmd.socket",
        "pi-im-ejabberd-cleanup.timer",
        "pi-im-admin",
        "pi-im-webhooks",
    ],
)
def test_service_enabled_and_running(host, unit: str) -> None:
    service = host.service(unit)
    assert service.is_enabled, journal(host, unit)
    assert service.is_running, journal(host, unit)


def test_time_sync_enabled(host) -> None:
    # It runs on a Pi; in a container systemd skips it (the host keeps the clock).
    assert host.service("systemd-timesyncd").is_enabled


@pytest.mark.parametrize(("port", "name"), PUBLIC.items())
def test_public_listener_on_all_addresses(host, port: int, name: str) -> None:
    addresses = {a for a, p, _ in listeners(host) if p == port}
    assert addresses, f"{name} does not listen"
    assert addresses <= WILDCARD, f"{name} listens on {addresses}"


@pytest.mark.parametrize(("port", "name"), LOOPBACK.items())
def test_private_listener_on_loopback_only(host, port: int, name: str) -> None:
    addresses = {a for a, p, _ in listeners(host) if p == port}
    assert addresses == {"127.0.0.1"}, f"{name} listens on {addresses}"


def test_nothing_else_listens_beyond_loopback(host) -> None:
    exposed = [
        (a, p, proc)
        for a, p, proc in listeners(host)
        if p not in PUBLIC
        and not a.startswith("127.")
        and a != "[::1]"
        and not (p in RELAY_PORTS and proc == "beam.smp")
    ]
    # The system's own SSH server, there before the appliance (as on every Pi OS Lite).
    assert [entry for entry in exposed if entry[1:] != (22, "sshd")] == []


def test_federation_is_off_by_default(host) -> None:
    """Finding 14: a .local domain cannot federate; no server-to-server port, no s2s."""
    assert not [p for _, p, _ in listeners(host) if p == 5269]
    assert "s2s_access: none" in host.file("/etc/ejabberd/ejabberd.yml").content_string


def test_sysctl_file(host) -> None:
    conf = host.file("/etc/sysctl.d/60-pi-im.conf")
    assert conf.user == "root"
    assert conf.mode == 0o644
    settings = {
        k.strip(): v.strip()
        for k, v in (
            line.split("=", 1)
            for line in conf.content_string.splitlines()
            if line and not line.startswith("#")
        )
    }
    # Only what was measured to help (roles/tuning/vars/main.yml); the seed's no-ops are gone.
    assert settings == {
        "net.ipv4.tcp_congestion_control": "bbr",
        "net.ipv4.tcp_keepalive_time": "300",
        "net.ipv4.tcp_keepalive_intvl": "30",
        "net.ipv4.tcp_keepalive_probes": "5",
    }
    assert host.file("/etc/modules-load.d/60-pi-im-bbr.conf").contains("^tcp_bbr$")


def test_seed_kernel_block_absent(host) -> None:
    config = host.file("/etc/ejabberd/ejabberd.yml").content_string
    assert not re.search(r"^(kernel|memory|sync_workers):", config, re.MULTILINE)


def test_ejabberd_runs_with_tuned_flags(host, beam_pid: int) -> None:
    cfg = dict(
        re.findall(
            r'^(ERL_\w+)="?([^"\n]*)"?$',
            host.file("/etc/default/ejabberd").content_string,
            re.MULTILINE,
        )
    )
    args = host.file(f"/proc/{beam_pid}/cmdline").content.split(b"\0")
    args = [a.decode() for a in args]

    def flag(name: str) -> str:
        return args[args.index(name) + 1]

    # erl turns +P/+Q into -P/-Q on beam.smp's command line.
    assert flag("-P") == cfg["ERL_PROCESSES"]
    assert flag("-Q") == cfg["ERL_MAX_PORTS"]
    assert int(flag("-Q")) >= 3 * 4000
    assert flag("-sbwt") == flag("-sbwtdcpu") == flag("-sbwtdio") == "none"
    assert flag("-kernel") == "inet_dist_use_interface"
    assert flag("inet_dist_use_interface") == "{127,0,0,1}"
    assert "-sname" in args
    assert flag("-sname") == "ejabberd@localhost"


def test_ejabberd_open_file_limit(host, beam_pid: int) -> None:
    def soft_nofile(pid: int | str) -> int:
        limits = host.file(f"/proc/{pid}/limits").content_string.splitlines()
        line = next(row for row in limits if row.startswith("Max open files"))
        return int(line.split()[3])

    configured = int(host.check_output("systemctl show -P LimitNOFILE ejabberd"))
    assert configured >= 2 * 4000
    # A container cannot raise its limit above its host's hard limit (20000 here); on a Pi
    # the configured value applies as it is.
    ceiling = int(host.check_output("sh -c 'ulimit -Hn'"))
    assert soft_nofile(beam_pid) == min(configured, ceiling)


def test_first_boot_units_enabled(host) -> None:
    for unit in ("pi-im-provision-early", "pi-im-provision-late"):
        assert host.service(unit).is_enabled


@pytest.mark.parametrize("phase", ["early", "late"])
def test_provisioning_steps_have_nothing_left_to_do(host, phase: str) -> None:
    # The live path ran the same steps role by role; running them again changes nothing.
    result = host.run(f"pi-im-provision {phase}")
    assert result.rc == 0, result.stdout + result.stderr
    steps = result.stdout.splitlines()
    assert steps
    assert all(": ok" in step for step in steps), steps
    assert '"changed": true' not in result.stdout
    assert "created" not in result.stdout


def test_ejabberd_caches_hold_every_user(host) -> None:
    """ejabberd empties a cache that outgrows its size: the node's must fit twice 4,000 users."""
    caches = [
        "archive_prefs_cache",
        "privacy_list_cache",
        "push_cache",
        "roster_cache",
        "ejabberd_auth_sql_cache",
    ]
    answer = probe(host, "cache_sizes", f"[{', '.join(caches)}]")
    sizes = dict(re.findall(r"\{(\w+), *(\w+)\}", answer))
    assert sizes == dict.fromkeys(caches, "8000"), answer


def test_ejabberd_finds_its_own_files_and_ours(host) -> None:
    """Our modules' directory comes after ejabberd's and is not named like it: ejabberd must
    still find its own SQL schema and translations (a fresh database gets its tables)."""
    answer = probe(host, "code_paths")
    lib_dir, beam = re.findall(r'"([^"]+)"', answer)
    assert re.fullmatch(r"/usr/lib/[^/]+/ejabberd-[^/]+", lib_dir), answer
    assert beam == "/usr/local/lib/pi-im/pi_im_ejabberd/ebin/mod_mam_sql_grouped.beam", answer
    assert host.file(f"{lib_dir}/priv/sql/lite.sql").exists


def queue_one_group(host, bad: str = "none") -> dict:
    """Suspend the archive writer, queue 20 stores (copy 7 bad as `bad` says), resume it:
    what the callers got, what the database holds once the queue is written, and what the
    writer counted (pi_im_probe:queue_one_group/2)."""
    answer = probe(host, "queue_one_group", erlang_binary(f"gc{secrets.token_hex(4)}"), bad)
    return fields(answer) | {"answer": answer}


def test_archive_commits_queued_copies_together(host) -> None:
    """Archive copies that queue while the writer is busy are committed in one statement,
    each caller answered only after it, and every copy is in the database."""
    got = queue_one_group(host)
    answer = got.pop("answer")
    assert got == {
        "queued": "true",
        "oks": "20",
        "failed": "none",
        "rows": "20",
        "stores": "20",
        "commits": "1",
    }, answer


# One bad copy in a group of 20: SQLite refuses the group's INSERT (nothing of it is
# written, so the writer writes each copy alone), or the writer cannot build the copy's row
# (it is logged and left out). Either way the other 19 are archived.
# refused_by_sqlite: a trigger refuses copy 7; without_a_row: its message has a child that
# is not XML.
BAD_COPY = {"refused by SQLite": "refused_by_sqlite", "without a row": "without_a_row"}


@pytest.mark.parametrize("bad_copy", BAD_COPY.values(), ids=BAD_COPY.keys())
def test_archive_group_with_a_bad_copy_loses_only_that_copy(host, bad_copy) -> None:
    """As shipped nobody waits for a copy, so every caller got `ok` at once."""
    got = queue_one_group(host, bad_copy)
    answer = got.pop("answer")
    assert got == {
        "queued": "true",
        "oks": "20",
        "failed": "none",
        "rows": "19",
        "stores": "20",
        "commits": "1",
    }, answer


@pytest.mark.usefixtures("archive_waits_for_disk")
@pytest.mark.parametrize("bad_copy", BAD_COPY.values(), ids=BAD_COPY.keys())
def test_waiting_for_disk_only_the_bad_copys_caller_gets_an_error(host, bad_copy) -> None:
    """With `wait_for_disk: true` each caller waits for its copy's commit and learns its
    outcome: only the bad copy's caller (copy 7) gets an error."""
    got = queue_one_group(host, bad_copy)
    answer = got.pop("answer")
    assert got == {
        "queued": "true",
        "oks": "19",
        "failed": "7",
        "rows": "19",
        "stores": "20",
        "commits": "1",
    }, answer


def test_archive_rows_are_the_ones_ejabberd_writes(host) -> None:
    """The group-commit backend builds its rows itself (one INSERT per group): for chat and
    groupchat copies with quotes, non-ASCII, markup and no body, every column is what
    ejabberd's own mod_mam_sql writes for the same copy, so history reads them alike."""
    theirs, ours = (erlang_binary(f"gc{secrets.token_hex(4)}") for _ in range(2))
    answer = probe(host, "rows_as_ejabberd_writes", theirs, ours)
    flat = answer.replace(" ", "").replace("\n", "")
    assert "rows=>{3,3}" in flat, answer
    assert "same=>true" in flat, answer
    assert "stored=>{[ok,ok,ok],[ok,ok,ok]}" in flat, answer


def test_a_retraction_deletes_the_retracted_copy_even_while_it_is_queued(
    host, ejabberd_version: str
) -> None:
    """ejabberd 24.12 hands the backend a retraction (XEP-0424) with the retracted message's
    origin-id: the copy goes from the archive, though it may still wait in the writer's queue
    when the retraction arrives; the retraction itself is archived, the other copy stays."""
    if not ejabberd_version.startswith("24.12"):
        pytest.skip("retractions reach the archive backend from ejabberd 24.12 on")
    user = erlang_binary(f"gc{secrets.token_hex(4)}")
    try:
        answer = probe(host, "retraction", user).replace(" ", "").replace("\n", "")
        assert answer == '{[ok,ok,ok],["keep","retracted"]}', answer
    finally:
        probe(host, "remove_archive", user)


def test_archive_preferences_survive_a_reload_of_their_set_and_go_with_the_user(host) -> None:
    """The backend answers "no preferences" from its set of users who have a row, without
    asking SQL: a user's own preferences are read back, still after the set's owner
    restarts (the set reloads from the database), and are gone with the user."""
    user = erlang_binary(f"gc{secrets.token_hex(4)}")
    got = fields(probe(host, "archive_prefs_round_trip", user))
    assert got == {"none": "error", "written": "true", "reloaded": "true", "removed": "error"}


def test_archive_clean_up_deletes_only_expired_messages(host) -> None:
    """The daily clean-up unit expires history through the group-commit backend: a copy
    archived ten years ago goes, one archived now stays."""
    user = erlang_binary(f"gc{secrets.token_hex(4)}")
    try:
        assert probe(host, "store_aged_copies", user).replace(" ", "") == "[ok,ok,ok]"
        assert probe(host, "archived_texts", user).replace(" ", "") == '["old","new"]'
        cleaned = host.run("systemctl start pi-im-ejabberd-cleanup.service")
        assert cleaned.rc == 0, cleaned.stdout + cleaned.stderr
        assert probe(host, "archived_texts", user).replace(" ", "") == '["new"]'
    finally:
        probe(host, "remove_archive", user)


@pytest.mark.parametrize(
    "unit", ["ejabberd", "rabbitmq-server", "pi-im-admin", "pi-im-firewall", "pi-im-backup"]
)
def test_every_unit_has_a_memory_ceiling(host, unit: str) -> None:
    """Finding 3/10: a runaway unit is stopped at its own ceiling; ejabberd is the last the
    kernel picks."""
    ceiling = host.check_output(f"systemctl show -P MemoryMax {unit}")
    assert ceiling.isdigit(), f"{unit}: MemoryMax={ceiling}"
    assert host.check_output("systemctl show -P OOMScoreAdjust ejabberd") == "-500"


def test_ejabberds_ceiling_is_three_quarters_of_the_devices_own_memory(host) -> None:
    """Worked out by systemd on the device (MemoryMax=75%), not by Ansible where it runs: an
    SD-card image built on a big machine must not carry that machine's figure to a Pi."""
    assert (
        "MemoryMax=75%"
        in host.file("/etc/systemd/system/ejabberd.service.d/60-pi-im.conf").content_string
    )
    total = int(host.check_output("awk '/^MemTotal:/ {print $2 * 1024}' /proc/meminfo"))
    ceiling = int(host.check_output("systemctl show -P MemoryMax ejabberd"))
    assert abs(ceiling - total * 0.75) <= total * 0.01


def recorded_exposure() -> dict[str, float]:
    """The `systemd-analyze security` levels recorded in docs/security.md: unit -> level."""
    rows = re.findall(
        r"^\| `([\w.-]+\.service)` \| ([0-9.]+) \|",
        (REPO / "docs/security.md").read_text(),
        re.MULTILINE,
    )
    return {unit: float(level) for unit, level in rows}


# Units that exist only with an option this scenario leaves off; their scenario checks them
# (molecule/acme: pi-im-acme.service).
OPTIONAL_UNITS = {"pi-im-acme.service"}


@pytest.mark.parametrize("unit", sorted(set(recorded_exposure()) - OPTIONAL_UNITS))
def test_no_unit_is_more_exposed_than_recorded(host, unit: str) -> None:
    """Finding 10: every unit the appliance ships or overrides is sandboxed as far as it
    allows, and stays so."""
    report = host.check_output(f"systemd-analyze security --no-pager {unit}")
    level = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", report).group(1))
    assert level <= recorded_exposure()[unit], report[-3000:]


WEAK_SUITES = [
    "ECDHE-ECDSA-AES128-SHA",  # CBC with SHA-1
    "ECDHE-ECDSA-AES256-CCM8",
    "ECDHE-ECDSA-CAMELLIA128-SHA256",
    "ECDHE-ECDSA-ARIA128-GCM-SHA256",
]
STRONG_SUITES = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"]
TLS_PORTS = {5222: ["-starttls", "xmpp", "-xmpphost", DOMAIN], 5280: [], 443: [], 8080: []}


def negotiated(address: str, port: int, suite: str) -> str:
    """The TLS 1.2 suite the device agrees to when a client offers only `suite` ("" if none)."""
    done = subprocess.run(
        ["openssl", "s_client", "-connect", f"{address}:{port}", *TLS_PORTS[port], "-tls1_2",
         "-cipher", f"{suite}:@SECLEVEL=0"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    found = re.search(r"Cipher is (\S+)", done.stdout)
    return "" if not found or found.group(1) == "(NONE)" else found.group(1)


@pytest.mark.parametrize("port", sorted(TLS_PORTS))
def test_tls_offers_only_forward_secret_aead_suites(address: str, port: int) -> None:
    """Finding 9: ECDHE with AES-GCM or ChaCha20-Poly1305, nothing else, on every TLS port."""
    for suite in WEAK_SUITES:
        assert negotiated(address, port, suite) == "", suite
    for suite in STRONG_SUITES:
        assert negotiated(address, port, suite) == suite
