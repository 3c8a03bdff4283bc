"""The image builder's package layer holds what the roles would install with the build's
options and nothing else (image/debian/packages.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import packages

ROOT = Path(__file__).resolve().parents[1]


def role(repo: Path, name: str, tasks: list[dict[str, Any]], **files: Any) -> None:
    base = repo / "roles" / name
    (base / "tasks").mkdir(parents=True)
    (base / "meta").mkdir()
    (base / "tasks/main.yml").write_text(yaml.safe_dump(tasks))
    meta = {"dependencies": files.pop("dependencies", [])}
    (base / "meta/main.yml").write_text(yaml.safe_dump(meta))
    for layer, values in files.items():
        (base / layer).mkdir()
        (base / layer / "main.yml").write_text(yaml.safe_dump(values))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    role(tmp_path, "common", [{"name": "Base", "ansible.builtin.apt": {"name": "curl"}}])
    role(
        tmp_path,
        "chat",
        [
            {
                "name": "Install",
                "ansible.builtin.apt": {"name": "{{ chat_packages + chat_extra }}"},
            },
            {
                "block": [
                    {
                        "name": "Optional",
                        "ansible.builtin.apt": {"name": "{{ chat_optional }}"},
                        "when": "chat_optional_enabled",
                    },
                    {
                        "name": "A filter only Ansible has",
                        "ansible.builtin.apt": {"name": "socat"},
                        "when": "chat_optional_enabled | bool",
                    },
                    {
                        "name": "Plain Jinja2 cannot tell",
                        "ansible.builtin.apt": {"name": "jq"},
                        "when": "__chat_probe.rc == 0",
                    },
                ]
            },
            {"name": "Remove", "ansible.builtin.apt": {"name": "telnet", "state": "absent"}},
            {"name": "Lists", "ansible.builtin.apt": {"update_cache": True}},
        ],
        dependencies=[{"role": "common"}],
        defaults={
            "chat_packages": ["ejabberd"],
            "chat_extra": [],
            "chat_optional": "{{ chat_optional_name }}",
            "chat_optional_name": "erlang-p1-sqlite3",
            "chat_optional_enabled": True,
        },
    )
    role(
        tmp_path,
        "image",
        [
            {
                "name": "Image",
                "ansible.builtin.apt": {"name": ["cloud-init"], "install_recommends": False},
            }
        ],
    )
    (tmp_path / "playbooks").mkdir()
    site = [
        {"hosts": "all", "roles": [{"role": "chat"}, "common"]},
        {
            "hosts": "all",
            "tasks": [{"ansible.builtin.include_role": {"name": "image"}, "when": "flag"}],
        },
    ]
    (tmp_path / "playbooks/site.yml").write_text(yaml.safe_dump(site))
    return tmp_path


def test_roles_in_order_with_dependencies_first_and_once(repo: Path) -> None:
    assert packages.play_roles(repo) == ["common", "chat", "image"]


def test_what_the_roles_install_by_default(repo: Path) -> None:
    groups = packages.install_groups(repo, {})
    assert groups[True] == ["curl", "ejabberd", "erlang-p1-sqlite3"]
    assert groups[False] == ["cloud-init"]


def test_options_change_it_as_they_change_the_roles(repo: Path) -> None:
    groups = packages.install_groups(
        repo, {"chat_extra": ["ejabberd-contrib"], "chat_optional_enabled": False}
    )
    assert groups[True] == ["curl", "ejabberd", "ejabberd-contrib"]


def test_nothing_is_added_that_only_ansible_could_decide(repo: Path) -> None:
    groups = packages.install_groups(repo, {})
    everything = groups[True] + groups[False]
    assert "jq" not in everything
    assert "socat" not in everything
    assert "telnet" not in everything


def test_a_template_it_cannot_render_leaves_the_package_to_the_role(repo: Path) -> None:
    groups = packages.install_groups(repo, {"chat_extra": "{{ undefined_thing }}"})
    assert "ejabberd" not in groups[True]
    assert groups[True] == ["curl", "erlang-p1-sqlite3"]


def test_extra_vars_as_ansible_playbook_takes_them(tmp_path: Path) -> None:
    varsfile = tmp_path / "vars.yml"
    varsfile.write_text("docker_compose_enabled: false\n")
    parsed = packages.parse_extra_vars(
        ["ejabberd_domain=chat.lan sd_image_hostname=chat", f"@{varsfile}", '{"x": [1]}']
    )
    assert parsed == {
        "ejabberd_domain": "chat.lan",
        "sd_image_hostname": "chat",
        "docker_compose_enabled": False,
        "x": [1],
    }
    with pytest.raises(ValueError, match="not YAML"):
        packages.parse_extra_vars(["{[1, 2]}"])
    varsfile.write_text("- a list\n")
    with pytest.raises(ValueError, match="mapping"):
        packages.parse_extra_vars([f"@{varsfile}"])


def test_the_appliance_roles() -> None:
    """This repository's roles: the image's play, and what its options take away."""
    assert packages.play_roles(ROOT)[-1] == "sd_image"
    groups = packages.install_groups(ROOT, {})
    assert {"ejabberd", "rabbitmq-server", "docker.io", "docker-compose", "nftables"} <= set(
        groups[True]
    )
    assert {"cloud-init", "netplan.io"} <= set(groups[False])
    fewer = packages.install_groups(ROOT, {"docker_compose_enabled": False})
    assert "docker-compose" not in fewer[True]
