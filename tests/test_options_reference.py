"""docs/reference/options.md is generated from the roles' argument specs and kept up to date,
and every option a role's defaults define is in its argument spec."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ROLES = sorted(
    path.parent.parent
    for pattern in ("roles/*/meta/argument_specs.yml", "dev/roles/*/meta/argument_specs.yml")
    for path in ROOT.glob(pattern)
)
REGENERATE = "run `python scripts/options_reference.py --write` and commit the result"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "options_reference", ROOT / "scripts/options_reference.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def spec_options(role_dir: Path) -> dict[str, dict[str, Any]]:
    """The options of all the role's entry points."""
    specs = yaml.safe_load((role_dir / "meta/argument_specs.yml").read_text())["argument_specs"]
    options: dict[str, dict[str, Any]] = {}
    for entry_point in specs.values():
        options.update(entry_point.get("options") or {})
    return options


def role_defaults(role_dir: Path) -> dict[str, Any]:
    path = role_dir / "defaults/main.yml"
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def test_reference_is_up_to_date() -> None:
    diff = load_generator().difference(ROOT)
    assert not diff, f"docs/reference/options.md is out of date: {REGENERATE}.\n{diff}"


def test_every_role_is_in_the_reference() -> None:
    reference = load_generator().render(ROOT)
    for role_dir in ROLES:
        assert f"\n## {role_dir.name}\n" in reference


@pytest.mark.parametrize("role_dir", ROLES, ids=lambda path: path.name)
def test_every_default_is_documented(role_dir: Path) -> None:
    options = spec_options(role_dir)
    undocumented = sorted(
        name
        for name in role_defaults(role_dir)
        if not name.startswith("__") and name not in options
    )
    assert not undocumented, (
        f"{role_dir.relative_to(ROOT)}/defaults/main.yml defines options missing from "
        f"meta/argument_specs.yml: {', '.join(undocumented)}"
    )


@pytest.mark.parametrize("role_dir", ROLES, ids=lambda path: path.name)
def test_spec_defaults_match_the_defaults_file(role_dir: Path) -> None:
    # The reference shows the spec's default first; Ansible applies the defaults file's.
    defaults = role_defaults(role_dir)
    different = sorted(
        name
        for name, option in spec_options(role_dir).items()
        if "default" in option and name in defaults and option["default"] != defaults[name]
    )
    assert not different, (
        f"{role_dir.relative_to(ROOT)}: meta/argument_specs.yml and defaults/main.yml disagree on "
        f"the default of {', '.join(different)}"
    )
