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

VARIANTS = {
    "defaults": ({}, {22, 443, 5222, 5280, 8080}),
    "console-closed": ({"firewall_console_from_lan": False}, {22, 443, 5222, 5280}),
    "ssh-and-console-closed": (
        {"firewall_ssh": False, "firewall_console_from_lan": False},
        {443, 5222, 5280},
    ),
    "federation-on": (
        {"ejabberd_listeners": ["c2s", "http", "s2s"]},
        {22, 443, 5222, 5269, 5280, 8080},
    ),
    "c2s-only": ({"ejabberd_listeners": ["c2s"], "admin_service_port": 8443}, {22, 5222, 8443}),
    "standard-https-port-off": ({"ejabberd_https_port": 0}, {22, 5222, 5280, 8080}),
    "extra-port": ({"firewall_extra_tcp_ports": [15672, 22]}, {22, 443, 5222, 5280, 8080, 15672}),
}

# One play per variant: its options file comes after the role's defaults, so it wins.
PLAY = """
- name: Render the firewall rules, {name}
  hosts: localhost
  connection: local
  gather_facts: false
  vars_files: [{role}/defaults/main.yml, {role}/vars/main.yml, {options}]
  tasks:
    - name: Render the rule file
      ansible.builtin.template:
        src: {role}/templates/firewall.nft.j2
        dest: {out}
        mode: "0600"
"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every variant's rule file, from one ansible-playbook run (its start-up is most of it)."""
    work = tmp_path_factory.mktemp("firewall")
    plays = []
    for name, (options, _) in VARIANTS.items():
        (work / f"{name}.yml").write_text(json.dumps(options))
        plays.append(
            PLAY.format(
                name=name, role=ROLE, options=work / f"{name}.yml", out=work / f"{name}.nft"
            )
        )
    (work / "render.yml").write_text("".join(plays))
    # The controller's own Python does the local work (auto-discovery may find another one).
    interpreter = f"ansible_python_interpreter={sys.executable}"
    subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-e", interpreter, str(work / "render.yml")],
        check=True, capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    rules = {name: (work / f"{name}.nft").read_text() for name in VARIANTS}
    if os.geteuid() == 0 and shutil.which("nft"):
        for name in VARIANTS:
            checked = subprocess.run(
                ["nft", "-c", "-f", str(work / f"{name}.nft")], capture_output=True, text=True
            )
            assert checked.returncode == 0, (name, checked.stderr)
    return rules


def open_ports(rules: str) -> set[int]:
    found = re.search(r"tcp dport \{ ([0-9, ]+) \} accept", rules)
    assert found, rules
    return {int(port) for port in found.group(1).split(", ")}


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_option_opens_exactly_its_port(rendered: dict[str, str], variant: str) -> None:
    rules = rendered[variant]
    assert "policy drop;" in rules
    assert open_ports(rules) == VARIANTS[variant][1]
