"""Bad options stop the playbook before it changes anything, with a message naming them;
a configuration ejabberd would reject never replaces the running one."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from conftest import REPO, SCENARIO


def converge(*extra_vars: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOG_PATH="/dev/null",
    )
    command = [
        "ansible-playbook",
        "-i",
        str(SCENARIO / "inventory/hosts.yml"),
        str(REPO / "playbooks/site.yml"),
    ]
    for extra in extra_vars:
        command += ["-e", extra]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=900, check=False
    )


def recap(output: str) -> dict[str, int]:
    line = re.search(r"^pi-im-molecule\s*:(.*)$", output, re.MULTILINE)
    assert line, output[-2000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line.group(1))}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            json.dumps({"ejabberd_max_users": "lots"}),
            "argument 'ejabberd_max_users' is of type str and we were unable to convert to int",
        ),
        (
            json.dumps({"ejabberd_listeners": ["c2s", "xmpp"]}),
            "value of ejabberd_listeners must be one or more of: c2s, s2s, http",
        ),
        (
            json.dumps({"rabbitmq_amqp_port": "5672/tcp"}),
            "argument 'rabbitmq_amqp_port' is of type str",
        ),
    ],
    ids=["non-integer-user-count", "unknown-listener", "non-integer-port"],
)
def test_invalid_option_fails_before_any_change(extra: str, message: str) -> None:
    result = converge(extra)
    raw = result.stdout + result.stderr
    output = " ".join(raw.split())  # the callback folds long messages
    assert result.returncode != 0
    assert "Invalid options, nothing was changed" in output
    assert message in output
    counts = recap(raw)
    assert counts["changed"] == 0
    assert counts["failed"] == 1
    # Nothing past the validation play ran: no facts gathered, no role started.
    assert "Gathering Facts" not in output


def test_rejected_ejabberd_config_keeps_the_running_server(host, beam_pid: int) -> None:
    before = host.file("/etc/ejabberd/ejabberd.yml").content_string
    # Passes the option types (an int) but ejabberd itself refuses a negative stanza size.
    result = converge(json.dumps({"ejabberd_max_stanza_size": -1}))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "invalid ejabberd configuration" in output
    assert "max_stanza_size" in output
    assert host.file("/etc/ejabberd/ejabberd.yml").content_string == before
    assert int(host.check_output("pgrep -f -- '-sname ejabberd@localhost'").split()[0]) == beam_pid
    assert host.service("ejabberd").is_running
