"""The firewall role's options each open or close exactly their port: its own defaults, vars and
rule template rendered by Ansible, and the result checked by nft (Molecule runs the defaults on a
device; these are the other branches)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
ROLE = REPO / "roles/firewall"

PLAY = """
- name: Render the firewall rules
  hosts: localhost
  connection: local
  gather_facts: false
  vars_files: [{role}/defaults/main.yml, {role}/vars/main.yml]
  tasks:
    - name: Render the rule file
      ansible.builtin.template:
        src: {role}/templates/firewall.nft.j2
        dest: "{{{{ rules_out }}}}"
        mode: "0600"
"""


def rendered(tmp_path: Path, options: dict[str, object]) -> str:
    playbook = tmp_path / "render.yml"
    playbook.write_text(PLAY.format(role=ROLE))
    out = tmp_path / "firewall.nft"
    # The controller's own Python does the local work (auto-discovery may find another one).
    extra = json.dumps(
        {"rules_out": str(out), "ansible_python_interpreter": sys.executable, **options}
    )
    subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-e", extra, str(playbook)],
        check=True, capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    rules = out.read_text()
    if os.geteuid() == 0 and shutil.which("nft"):
        checked = subprocess.run(["nft", "-c", "-f", str(out)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
    return rules


def open_ports(rules: str) -> set[int]:
    found = re.search(r"tcp dport \{ ([0-9, ]+) \} accept", rules)
    assert found, rules
    return {int(port) for port in found.group(1).split(", ")}


@pytest.mark.parametrize(
    ("options", "ports"),
    [
        ({}, {22, 5222, 5280, 8080}),
        ({"firewall_console_from_lan": False}, {22, 5222, 5280}),
        ({"firewall_ssh": False, "firewall_console_from_lan": False}, {5222, 5280}),
        ({"ejabberd_listeners": ["c2s", "http", "s2s"]}, {22, 5222, 5269, 5280, 8080}),
        ({"ejabberd_listeners": ["c2s"], "admin_service_port": 8443}, {22, 5222, 8443}),
        ({"firewall_extra_tcp_ports": [15672, 22]}, {22, 5222, 5280, 8080, 15672}),
    ],
    ids=["defaults", "console-closed", "ssh-and-console-closed", "federation-on", "c2s-only",
         "extra-port"],
)  # fmt: skip
def test_each_option_opens_exactly_its_port(
    tmp_path: Path, options: dict[str, object], ports: set[int]
) -> None:
    rules = rendered(tmp_path, options)
    assert "policy drop;" in rules
    assert open_ports(rules) == ports
