"""scripts/failed_tests.py names the tests that failed from real pytest JUnit XML."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import failed_tests

SUITE = """
def test_passes():
    assert True

def test_fails():
    assert 1 + 1 == 3, "arithmetic is broken"

def test_errors(missing_fixture):
    pass
"""


def run_suite(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / f"test_{name}.py"
    source.write_text(SUITE)
    report = directory / "results" / f"{name}.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(source),
            f"--junitxml={report}",
        ],
        capture_output=True,
        check=False,
    )
    return report


def test_names_each_failed_and_erroring_test_with_its_message(tmp_path: Path) -> None:
    report = run_suite(tmp_path, "default")
    text = failed_tests.summary(report.parent)
    assert text.startswith("2 failed test(s):")
    assert "test_fails (failure)" in text
    assert "arithmetic is broken" in text
    assert "test_errors (error)" in text
    assert "test_passes" not in text
    assert "[default]" in text


def test_says_when_nothing_failed(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "empty.xml").write_text(
        '<testsuites><testsuite name="pytest" tests="1"><testcase classname="t" name="ok"/>'
        "</testsuite></testsuites>"
    )
    assert failed_tests.summary(results) == "no failed test in empty.xml"


def test_says_when_no_test_ran(tmp_path: Path) -> None:
    assert "did not get as far as running" in failed_tests.summary(tmp_path / "absent")


def test_command_line_prints_the_summary(tmp_path: Path) -> None:
    report = run_suite(tmp_path, "bake")
    script = Path(failed_tests.__file__)
    done = subprocess.run(
        [sys.executable, str(script), str(report.parent)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "2 failed test(s)" in done.stdout
