"""The audit log: one JSON line per DDL call, deletion, admin call and refused call, on the logger
``mishards.audit``.

Each line says who (``user:NAME``, ``anonymous`` or ``peer:NAME``), what (the RPC, its class, the collection and
partition it names), when (UTC, ISO 8601), the result (the Milvus status code, and the reason of a refusal) and
the peer address the call came from; a ``Cmd`` line also says which command, without its values (``user add
alice``, ``set_config cache.cache_size``). Tokens never appear: a line is built from the identity, never the header.
"""

from __future__ import annotations

import datetime
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

AUDIT_LOGGER = "mishards.audit"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    when: str
    who: str
    rpc: str
    rpc_class: str
    collection: str
    partition: str
    result: int
    peer: str
    reason: str = ""
    command: str = ""  # what a Cmd did, without values (``user add NAME``, ``set_config KEY``); only on Cmd lines

    def line(self) -> str:
        fields = asdict(self)
        if not self.command:
            del fields["command"]
        return json.dumps({"audit": True, **fields}, separators=(",", ":"), ensure_ascii=False)


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def partition_of(request: Any) -> str:
    """The partition a request names, if any (``tag`` or ``partition_tag``)."""
    for name in ("partition_tag", "tag"):
        value = getattr(request, name, None)
        if isinstance(value, str) and value:
            return value
    return ""


class Audit:
    """Writes audit records to ``logger`` (default ``mishards.audit``) at INFO."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(AUDIT_LOGGER)

    def record(self, record: AuditRecord) -> None:
        self.logger.info("%s", record.line())
