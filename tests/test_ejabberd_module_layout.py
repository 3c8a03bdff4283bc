"""The modules' folders (ejabberd-contrib's layout) agree with the modules and the role: each
module has its source, tests and README; a module's conf/ lists exactly the options the module
declares, with the module's and the role's defaults; the role installs every module there is."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROLE = Path(__file__).parents[1] / "roles/ejabberd"
MODULES = ROLE / "files/ejabberd_modules"


def module_names() -> list[str]:
    return sorted(p.name for p in MODULES.iterdir() if p.is_dir())


def test_every_module_has_source_tests_and_readme() -> None:
    for name in module_names():
        folder = MODULES / name
        assert (folder / "src" / f"{name}.erl").is_file(), name
        assert (folder / "test" / f"{name}_tests.erl").is_file(), name
        assert (folder / "README.md").is_file(), name


def test_the_role_installs_every_module() -> None:
    role_vars = yaml.safe_load((ROLE / "vars/main.yml").read_text())
    assert sorted(role_vars["__ejabberd_modules"]) == module_names()


def test_conf_lists_the_options_the_module_declares_with_its_defaults() -> None:
    source = (MODULES / "mod_mam_sql_grouped/src/mod_mam_sql_grouped.erl").read_text()
    declared = set(re.findall(r"^mod_opt_type\((\w+)\)", source, re.MULTILINE))
    module_defaults = dict(
        re.findall(r"\{(\w+), (\w+)\}", source.split("mod_options(_Host) ->")[1].split(".\n")[0])
    )
    conf = yaml.safe_load(
        (MODULES / "mod_mam_sql_grouped/conf/mod_mam_sql_grouped.yml").read_text()
    )
    options = conf["modules"]["mod_mam_sql_grouped"]
    assert set(options) == declared
    assert {k: str(v).lower() for k, v in options.items()} == module_defaults
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    assert options == {
        "wait_for_disk": defaults["ejabberd_mam_wait_for_disk"],
        "commit_interval_ms": defaults["ejabberd_mam_commit_interval_ms"],
        "sqlite_cache_mb": defaults["ejabberd_sqlite_cache_mb"],
        "sqlite_checkpoint_pages": defaults["ejabberd_sqlite_checkpoint_pages"],
    }
    assert conf["modules"]["mod_mam"]["db_type"] == "sql_grouped"


def test_conf_names_each_backend_as_ejabberd_finds_it() -> None:
    """ejabberd loads mod_<module>_<db_type>: the db_type in conf/ must name the module."""
    for name, base in (
        ("mod_mam_sql_grouped", "mod_mam"),
        ("mod_offline_sql_known", "mod_offline"),
        ("mod_push_sql_known", "mod_push"),
    ):
        conf = yaml.safe_load((MODULES / name / "conf" / f"{name}.yml").read_text())
        assert f"{base}_{conf['modules'][base]['db_type']}" == name


def test_upload_space_conf_has_the_modules_and_the_roles_default() -> None:
    source = (MODULES / "mod_upload_space/src/mod_upload_space.erl").read_text()
    declared = set(re.findall(r"^mod_opt_type\((\w+)\)", source, re.MULTILINE))
    options_clause = source.split("mod_options(_Host) ->")[1].split(".\n")[0]
    module_defaults = dict(re.findall(r"\{(\w+), (\d+)\}", options_clause))
    conf = yaml.safe_load((MODULES / "mod_upload_space/conf/mod_upload_space.yml").read_text())
    options = conf["modules"]["mod_upload_space"]
    assert set(options) == declared == {"min_free_mb"}
    assert {k: str(v) for k, v in options.items()} == module_defaults
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    assert defaults["ejabberd_upload_min_free"] == "1 GiB"
    assert options["min_free_mb"] == 1024


def test_web_resume_conf_has_the_modules_and_the_roles_default() -> None:
    source = (MODULES / "mod_web_resume/src/mod_web_resume.erl").read_text()
    assert "mod_options(_Host) -> [{resume_timeout, timer:seconds(30)}]." in source
    conf = yaml.safe_load((MODULES / "mod_web_resume/conf/mod_web_resume.yml").read_text())
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    assert conf["modules"]["mod_web_resume"] == {"resume_timeout": 30}
    assert defaults["ejabberd_web_resume_seconds"] == 30
