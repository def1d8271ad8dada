"""Open product defects the campaign finds, with the problem kinds each explains. A scenario whose only problems
are of those kinds is reported as an expected failure (xfail) naming the defect, until the fix lands and the
entry is removed; any other problem fails it. Defects found and fixed are listed in e2e/README.md."""

from __future__ import annotations

ETCD_MEMBERSHIP_CATALOG_ELECTION = (
    "with etcd membership and --election catalog the proxy looks for the writer only under the etcd writer key "
    "(coordinator/writer_lookup.current_writer), never at the catalog lease: every write fails CONNECT_FAILED "
    "'No writable node is available right now' although a node holds the lease")

# An open defect that a scenario's figures can show: reason -> the problem kinds (checker.DataReport.problems,
# scenario.run) it explains; a scenario passes the ones that concern it to Result.expect. None at the moment:
# the defect above shows as a TimeoutError before any load (a plain xfail of its test).
OPEN: dict[str, frozenset[str]] = {}
