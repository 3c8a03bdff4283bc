"""The Debian packages the image's roles install, read from the roles themselves.

Installing packages is most of the image build's time under qemu-user (dpkg, maintainer
scripts and debconf's Perl all emulated). The builder installs these packages once into a
cached layer over the bootstrap (build.py), so that the roles' own apt tasks find them there.
The roles stay the truth: what is read here is only what they would install anyway with the
build's options, and a task this cannot evaluate (a condition on a registered result, a filter
only Ansible has) is left to the role. A package no role installs is never added.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateError
from jinja2.nativetypes import NativeEnvironment

APT = "ansible.builtin.apt"
BLOCK_KEYS = ("block", "rescue", "always")
ENV = NativeEnvironment(undefined=StrictUndefined)


class Unknown(Exception):
    """A value only Ansible can work out at run time."""


def play_roles(repo: Path, playbook: str = "playbooks/site.yml") -> list[str]:
    """The roles a playbook applies, each once, with their dependencies first."""
    named: list[str] = []
    for play in yaml.safe_load((repo / playbook).read_text()) or []:
        for entry in play.get("roles", []) or []:
            named.append(entry["role"] if isinstance(entry, dict) else entry)
        for task in walk(play.get("tasks", []) or []):
            include = task.get("ansible.builtin.include_role") or task.get(
                "ansible.builtin.import_role"
            )
            # site.yml's option checks (tasks_from: preflight) apply no role.
            if include and include.get("tasks_from") != "preflight":
                named.append(include["name"])
    ordered: list[str] = []
    for name in named:
        for role in with_dependencies(repo, name):
            if role not in ordered:
                ordered.append(role)
    return ordered


def with_dependencies(repo: Path, role: str) -> list[str]:
    meta = yaml.safe_load((repo / "roles" / role / "meta/main.yml").read_text()) or {}
    found: list[str] = []
    for dependency in meta.get("dependencies", []) or []:
        name = dependency["role"] if isinstance(dependency, dict) else dependency
        found += with_dependencies(repo, name)
    return [*found, role]


def walk(tasks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for task in tasks:
        yield task
        for key in BLOCK_KEYS:
            yield from walk(task.get(key, []) or [])


def role_variables(repo: Path, roles: list[str]) -> dict[str, Any]:
    """Every role's defaults, then every role's vars (which win, as in Ansible)."""
    merged: dict[str, Any] = {}
    for layer in ("defaults", "vars"):
        for role in roles:
            path = repo / "roles" / role / layer / "main.yml"
            if path.is_file():
                merged.update(yaml.safe_load(path.read_text()) or {})
    return merged


def render(value: Any, context: dict[str, Any], depth: int = 0) -> Any:
    """A value as Ansible would template it, for the plain Jinja2 this needs."""
    if depth > 10:
        raise Unknown("templates nest too deeply")
    if isinstance(value, list):
        return [render(item, context, depth + 1) for item in value]
    if not isinstance(value, str) or ("{{" not in value and "{%" not in value):
        return value
    try:
        # A variable whose value is a template itself comes out as that template: again.
        return render(ENV.from_string(value).render(context), context, depth + 1)
    except (TemplateError, TypeError) as error:
        raise Unknown(str(error)) from error


def condition(expression: Any, context: dict[str, Any]) -> bool:
    expressions = expression if isinstance(expression, list) else [expression]
    for item in expressions:
        result = item if isinstance(item, bool) else render(f"{{{{ ({item}) }}}}", context)
        if not isinstance(result, bool):
            raise Unknown(f"condition {item!r} is not a boolean here")
        if not result:
            return False
    return True


def install_groups(repo: Path, extra_vars: dict[str, Any]) -> dict[bool, list[str]]:
    """Packages by whether their task installs Recommends (apt's default: yes)."""
    roles = play_roles(repo)
    context = {**role_variables(repo, roles), **extra_vars}
    groups: dict[bool, list[str]] = {True: [], False: []}
    for role in roles:
        for path in sorted((repo / "roles" / role / "tasks").glob("*.yml")):
            for task in walk(yaml.safe_load(path.read_text()) or []):
                args = task.get(APT)
                if not isinstance(args, dict) or "name" not in args:
                    continue
                if args.get("state", "present") != "present":
                    continue
                try:
                    if "when" in task and not condition(task["when"], context):
                        continue
                    names = render(args["name"], context)
                except Unknown:
                    continue
                recommends = args.get("install_recommends", True) is not False
                for name in [names] if isinstance(names, str) else names:
                    if name not in groups[recommends]:
                        groups[recommends].append(str(name))
    return groups


def parse_extra_vars(values: list[str]) -> dict[str, Any]:
    """`-e` values as ansible-playbook takes them: key=value words, YAML/JSON, or @file."""
    merged: dict[str, Any] = {}
    for value in values:
        try:
            if value.startswith("@"):
                loaded = yaml.safe_load(Path(value[1:]).read_text())
            elif value.lstrip().startswith("{"):
                loaded = yaml.safe_load(value)
            else:
                loaded = dict(word.split("=", 1) for word in value.split() if "=" in word)
        except yaml.YAMLError as error:
            raise ValueError(f"extra vars are not YAML: {value}") from error
        if not isinstance(loaded, dict):
            raise ValueError(f"extra vars must be a mapping: {value}")
        merged.update(loaded)
    return merged
