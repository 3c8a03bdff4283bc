#!/usr/bin/env python3
"""Generate docs/reference/options.md from every role's meta/argument_specs.yml.

    python scripts/options_reference.py --write   rewrite the reference
    python scripts/options_reference.py --check   exit 1 with a diff when it is out of date
    python scripts/options_reference.py           print it

A default comes from the argument spec, else from the role's defaults/main.yml."""

from __future__ import annotations

import argparse
import difflib
import html
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path("docs/reference/options.md")
PRODUCTION_ROLES = (
    "base",
    "tuning",
    "firewall",
    "docker",
    "epmd",
    "ejabberd",
    "rabbitmq",
    "admin_service",
    "acme",
    "sd_image",
)
DEVELOPMENT_ROLES = ("demo_container", "bench_peer")
MAX_DEFAULT_CHARS = 60
NO_DEFAULT = "—"

# Ansible's doc markup: C(code), I(italic), B(bold), U(url), L(text,url), V(value),
# O(option), E(environment variable), M(module), RV(return value). The argument ends at
# the first ")".
MARKUP = re.compile(r"\b(RV|[BCEILMOUV])\(([^)]*)\)")
CODE_MARKUP = frozenset({"C", "I", "V", "O", "E", "M", "RV"})
# Characters encoded inside an HTML <code> cell so that neither a table nor Markdown splits
# or formats them; an underscore inside a word formats nothing and is left as it is.
HTML_CODE_ESCAPES = {"|": "&#124;", "`": "&#96;", "*": "&#42;", "\\": "&#92;"}
LOOSE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")

Options = Mapping[str, Mapping[str, Any]]


class _Dumper(yaml.SafeDumper):
    """YAML as the roles write it: double quotes where a scalar needs quoting."""

    def choose_scalar_style(self) -> str:
        style = super().choose_scalar_style()
        return '"' if style == "'" else style


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def role_order(roles_dir: Path, known: tuple[str, ...]) -> list[str]:
    """The roles of one directory: those named in `known` in that order, then any other."""
    found = {path.parent.parent.name for path in roles_dir.glob("*/meta/argument_specs.yml")}
    return [role for role in known if role in found] + sorted(found - set(known))


def entry_points(role_dir: Path) -> dict[str, dict[str, Any]]:
    """The role's entry points, main first."""
    specs: dict[str, dict[str, Any]] = load_yaml(role_dir / "meta/argument_specs.yml")[
        "argument_specs"
    ]
    return {name: specs[name] for name in sorted(specs, key=lambda name: (name != "main", name))}


def role_defaults(role_dir: Path) -> dict[str, Any]:
    path = role_dir / "defaults/main.yml"
    return (load_yaml(path) or {}) if path.exists() else {}


def as_paragraphs(description: str | list[str] | None) -> list[str]:
    if description is None:
        return []
    items = [description] if isinstance(description, str) else description
    return [" ".join(str(item).split()) for item in items]


def code(text: str, table: bool) -> str:
    """An inline code span. In a table a pipe would split the cell (GitHub) or show its
    escape (Python-Markdown), so such a span is written as HTML with the pipe encoded."""
    if table and "|" in text:
        escaped = "".join(HTML_CODE_ESCAPES.get(char, char) for char in html.escape(text, False))
        return f"<code>{LOOSE_UNDERSCORE.sub('&#95;', escaped)}</code>"
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{padding}{text}{padding}{fence}"


def plain(text: str, table: bool) -> str:
    return text.replace("|", r"\|") if table else text


def markup_element(kind: str, argument: str, table: bool) -> str:
    if kind in CODE_MARKUP:
        return code(argument, table)
    if kind == "B":
        return f"**{plain(argument, table)}**"
    if kind == "U":
        return f"<{argument}>"
    text, _, url = argument.rpartition(",")
    return f"[{plain(text.strip(), table)}]({url.strip()})"


def to_markdown(text: str, table: bool = False) -> str:
    """Ansible doc markup to Markdown; in a table, pipes are escaped."""
    parts: list[str] = []
    position = 0
    for match in MARKUP.finditer(text):
        parts.append(plain(text[position : match.start()], table))
        parts.append(markup_element(match.group(1), match.group(2), table))
        position = match.end()
    parts.append(plain(text[position:], table))
    return "".join(parts)


def yaml_text(value: Any) -> str:
    """A value as YAML writes it on one line (flow style) where it can."""
    dumped = yaml.dump(
        value,
        Dumper=_Dumper,
        default_flow_style=True,
        sort_keys=False,
        width=10_000,
        allow_unicode=True,
    )
    return dumped.removesuffix("\n...\n").removesuffix("\n")


def is_jinja(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def render_default(value: Any, role: str) -> str:
    """A default in a table cell; a long or multi-line one points at the defaults file."""
    text = yaml_text(value)
    if len(text) <= MAX_DEFAULT_CHARS and "\n" not in text:
        return code(text, table=True)
    where = f"see {code(f'{role}/defaults/main.yml', table=True)}"
    return f"computed — {where}" if is_jinja(value) else where


def type_cell(spec: Mapping[str, Any]) -> str:
    kind = str(spec.get("type", "str"))
    elements = spec.get("elements")
    return f"{kind} of {elements}" if elements else kind


def default_cell(name: str, spec: Mapping[str, Any], defaults: Mapping[str, Any], role: str) -> str:
    if spec.get("required"):
        return "**required**"
    if "default" in spec:
        return render_default(spec["default"], role)
    if name in defaults:
        return render_default(defaults[name], role)
    return NO_DEFAULT


def description_cell(spec: Mapping[str, Any]) -> str:
    sentences = [to_markdown(text, table=True) for text in as_paragraphs(spec.get("description"))]
    choices = spec.get("choices")
    if choices:
        lead = "Any of" if spec.get("type") == "list" else "One of"
        values = ", ".join(code(yaml_text(choice), table=True) for choice in choices)
        sentences.append(f"{lead}: {values}.")
    aliases = spec.get("aliases")
    if aliases:
        sentences.append(
            "Aliases: " + ", ".join(code(alias, table=True) for alias in aliases) + "."
        )
    return " ".join(sentences) or NO_DEFAULT


def option_rows(
    options: Options, defaults: Mapping[str, Any], role: str, prefix: str = ""
) -> Iterator[str]:
    """Table rows, alphabetical; suboptions follow their option as parent.child."""
    for name in sorted(options):
        if name.startswith("__"):
            continue
        spec = options[name]
        full_name = prefix + name
        cells = (
            code(full_name, table=True),
            type_cell(spec),
            default_cell(full_name, spec, defaults if not prefix else {}, role),
            description_cell(spec),
        )
        yield "| " + " | ".join(cells) + " |"
        yield from option_rows(spec.get("options") or {}, defaults, role, f"{full_name}.")


def options_table(options: Options, defaults: Mapping[str, Any], role: str) -> list[str]:
    rows = list(option_rows(options, defaults, role))
    if not rows:
        return ["This entry point takes no options."]
    return ["| Option | Type | Default | Description |", "| --- | --- | --- | --- |", *rows]


def entry_point_section(spec: Mapping[str, Any], defaults: Mapping[str, Any], role: str) -> str:
    blocks: list[str] = []
    if spec.get("short_description"):
        blocks.append(f"*{to_markdown(' '.join(str(spec['short_description']).split()))}*")
    blocks += [to_markdown(paragraph) for paragraph in as_paragraphs(spec.get("description"))]
    blocks.append("\n".join(options_table(spec.get("options") or {}, defaults, role)))
    return "\n\n".join(blocks)


def role_section(root: Path, role: str) -> str:
    """One role's page section; `role` is its directory relative to the repository."""
    role_dir = root / role
    defaults = role_defaults(role_dir)
    sections = [f"## {role_dir.name}"]
    for name, spec in entry_points(role_dir).items():
        if name != "main":
            sections.append(f"### Entry point `{name}`")
        sections.append(entry_point_section(spec, defaults, role))
    return "\n\n".join(sections)


def render(root: Path = ROOT) -> str:
    production = [f"roles/{role}" for role in role_order(root / "roles", PRODUCTION_ROLES)]
    development = [
        f"dev/roles/{role}" for role in role_order(root / "dev/roles", DEVELOPMENT_ROLES)
    ]
    blocks = [
        "# Options reference",
        "Generated from `roles/*/meta/argument_specs.yml` and `dev/roles/*/meta/argument_specs.yml`"
        " by `scripts/options_reference.py`; do not edit by hand"
        " (run `python scripts/options_reference.py --write`).",
        *(role_section(root, role) for role in production),
    ]
    if development:
        blocks.append("# Development roles")
        blocks.append(
            "Used by the demo, the tests and the benchmark (`dev/roles/`);"
            " a device never runs them."
        )
        blocks += [role_section(root, role) for role in development]
    return "\n\n".join(blocks) + "\n"


def difference(root: Path = ROOT) -> str:
    """A unified diff from the committed reference to the generated one; empty when equal."""
    path = root / REFERENCE
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    return "".join(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            render(root).splitlines(keepends=True),
            fromfile=f"{REFERENCE} (committed)",
            tofile=f"{REFERENCE} (generated)",
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 with a diff if out of date")
    mode.add_argument("--write", action="store_true", help=f"rewrite {REFERENCE}")
    arguments = parser.parse_args(argv)
    if arguments.write:
        (ROOT / REFERENCE).parent.mkdir(parents=True, exist_ok=True)
        (ROOT / REFERENCE).write_text(render(), encoding="utf-8")
        return 0
    if arguments.check:
        diff = difference()
        if diff:
            sys.stdout.write(diff)
            print(f"{REFERENCE} is out of date: run python scripts/options_reference.py --write")
            return 1
        return 0
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
