"""Open product defects the campaign finds, with the problem kinds each explains. A scenario whose only problems
are of those kinds is reported as an expected failure (xfail) naming the defect, until the fix lands and the
entry is removed; any other problem fails it. Defects found and fixed are listed in e2e/README.md."""

from __future__ import annotations

# Open defects a scenario's figures can show: reason -> the problem kinds (checker.DataReport.problems,
# scenario.run) each explains; a scenario passes the ones that concern it to Result.expect.
OPEN: dict[str, frozenset[str]] = {}  # none open today


def known(*reasons: str) -> dict[str, frozenset[str]]:
    return {r: OPEN[r] for r in reasons}
