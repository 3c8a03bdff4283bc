"""site.yml run from the host against the test container, its outcome read as data. The
scenario is the one whose conftest the tests load (the default one's, or acme's)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from conftest import REPO, SCENARIO

# The inventory of the scenario under test: bookworm's runs these tests against a device of
# its own name; run by hand, this directory's scenario.
INVENTORY = Path(os.environ.get("MOLECULE_SCENARIO_DIRECTORY", SCENARIO)) / "inventory/hosts.yml"
HOST: str = next(iter(yaml.safe_load(INVENTORY.read_text())["im_servers"]["hosts"]))


@dataclass
class Run:
    returncode: int
    stats: dict[str, int]
    tasks: list[str]
    messages: str
    # Every host's counts, and what each task said (a debug task's msg), by task name.
    all_stats: dict[str, dict[str, int]] = field(default_factory=dict)
    said: dict[str, object] = field(default_factory=dict)


def converge(
    extra_vars: dict[str, object],
    inventories: Sequence[Path] = (),
    host: str = HOST,
    tags: str = "",
    playbook: str | Path = "site.yml",
) -> Run:
    """site.yml against the test container, read through the JSON callback (no colours,
    no folding: what the playbook said, as data). `inventories` are read after the scenario's
    own, so their host variables win (another connection to the same device); `tags` runs
    only those roles' tasks; `playbook` names another of
    playbooks/ (demo.yml) or one elsewhere (a path)."""
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_LOG_PATH="/dev/null",
    )
    sources = [INVENTORY, *inventories]
    command = [
        "ansible-playbook",
        *(argument for source in sources for argument in ("-i", str(source))),
        str(REPO / "playbooks" / playbook),
        "-e",
        json.dumps(extra_vars),
        *(["--tags", tags] if tags else []),
    ]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    report = json.loads(result.stdout)
    tasks = [task for play in report["plays"] for task in play["tasks"]]
    return Run(
        returncode=result.returncode,
        stats=report["stats"].get(host, {}),
        all_stats=report["stats"],
        said={
            task["task"]["name"]: outcome["msg"]
            for task in tasks
            for outcome in task["hosts"].values()
            if "msg" in outcome and not outcome.get("failed")
        },
        tasks=[task["task"]["name"] for task in tasks],
        # A failed validate: has "failed to validate" as msg and the reason in stderr.
        messages=" ".join(
            " ".join(str(outcome.get(key, "")) for key in ("msg", "stderr"))
            for task in tasks
            for outcome in task["hosts"].values()
            if outcome.get("failed") or outcome.get("unreachable")
        ),
    )
