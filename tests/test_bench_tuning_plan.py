"""bench/tuning.toml: every variant measures what it names (a misspelt role variable would
converge the appliance as shipped and compare it with itself) under the README's conditions."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml

from pi_im_bench.cli import plan_scenario

ROOT = Path(__file__).resolve().parents[1]
PLAN = tomllib.loads((ROOT / "bench" / "tuning.toml").read_text())
SPECS = yaml.safe_load((ROOT / "roles" / "ejabberd" / "meta" / "argument_specs.yml").read_text())
OPTIONS = SPECS["argument_specs"]["main"]["options"]


@pytest.mark.parametrize("variant", PLAN["variant"], ids=lambda v: v["name"])
def test_each_variant_sets_real_role_options(variant):
    unknown = set(variant.get("vars", {})) - set(OPTIONS)
    assert not unknown, f"not options of the ejabberd role: {sorted(unknown)}"


@pytest.mark.parametrize("variant", PLAN["variant"], ids=lambda v: v["name"])
def test_each_variant_runs_the_readme_conditions(variant):
    chosen = plan_scenario(PLAN, variant, {})
    assert chosen.name == "seed-4000"
    assert [(s.sessions, s.seconds) for s in chosen.steps] == [(4000, 30)]


def test_the_command_line_overrides_the_plan_and_the_variant_overrides_both():
    plain = {"name": "x"}
    assert plan_scenario(PLAN, plain, {"traffic.seconds": 5}).steps[0].seconds == 5
    variant = {"name": "y", "set": {"traffic.seconds": 7}}
    assert plan_scenario(PLAN, variant, {"traffic.seconds": 5}).steps[0].seconds == 7
