#!/usr/bin/env python3
"""Name the tests that failed, last thing on the screen.

Molecule's verifier prints pytest's own summary in the middle of a long log, followed by the
clean-up and destroy steps; a reader of only the end of `make test` (a CI page) would not see
which test failed. The verifiers write JUnit XML to build/test-results/ and this prints, from
those files, each failed or erroring test with the first lines of its message.

    scripts/failed_tests.py build/test-results
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

MESSAGE_LINES = 3
MESSAGE_WIDTH = 200


@dataclass(frozen=True)
class Failure:
    suite: str
    test: str
    kind: str
    message: str


def failures(report: Path) -> list[Failure]:
    """Every testcase of one JUnit XML file that ended in <failure> or <error>."""
    found: list[Failure] = []
    for case in ET.parse(report).getroot().iter("testcase"):
        for kind in ("failure", "error"):
            for outcome in case.findall(kind):
                text = (outcome.get("message") or outcome.text or "").strip()
                lines = [line[:MESSAGE_WIDTH] for line in text.splitlines()[:MESSAGE_LINES]]
                name = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
                found.append(Failure(report.stem, name, kind, "\n".join(lines)))
    return found


def summary(results: Path) -> str:
    """What to print, over every *.xml in results."""
    reports = sorted(results.glob("*.xml")) if results.is_dir() else []
    if not reports:
        return f"no test results in {results}: the tests did not get as far as running"
    found = [failure for report in reports for failure in failures(report)]
    if not found:
        return f"no failed test in {', '.join(r.name for r in reports)}"
    text = [f"{len(found)} failed test(s):"]
    for failure in found:
        text.append(f"  [{failure.suite}] {failure.test} ({failure.kind})")
        text.extend(f"      {line}" for line in failure.message.splitlines())
    return "\n".join(text)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    print(summary(Path(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
