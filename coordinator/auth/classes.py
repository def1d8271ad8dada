"""Every MilvusService RPC in a class (read, write, DDL, admin, open) and the collection a request names.

The table must cover every method of the generated service: a method added to the protocol without a class
is refused (as admin) until it is given one, and the unit tests fail on it. ``Cmd`` is classed by its command:
``set_config`` and ``user ...`` (user management) are admin, ``mishards_workers`` (asked by every proxy of every
node) is open, the rest are reads.
"""

from __future__ import annotations

from typing import Any

from coordinator.auth.model import RpcClass
from coordinator.auth.user_commands import Invalid, is_user_command, parse_user_command

R, W, D = RpcClass.READ, RpcClass.WRITE, RpcClass.DDL

CLASSES: dict[str, RpcClass] = {
    # collections, partitions and indexes: definitions
    "CreateCollection": D, "DropCollection": D, "CreateIndex": D, "DropIndex": D,
    "CreatePartition": D, "DropPartition": D, "CreateHybridCollection": D, "DropHybridCollection": D,
    # metadata reads
    "HasCollection": R, "DescribeCollection": R, "CountCollection": R, "ShowCollections": R,
    "ShowCollectionInfo": R, "DescribeIndex": R, "HasPartition": R, "ShowPartitions": R,
    "HasHybridCollection": R, "DescribeHybridCollection": R, "CountHybridCollection": R,
    "ShowHybridCollections": R, "ShowHybridCollectionInfo": R,
    # data reads and searches (preloading only warms the cache)
    "GetVectorsByID": R, "GetVectorIDs": R, "Search": R, "SearchByID": R, "SearchInFiles": R,
    "HybridSearch": R, "HybridSearchInSegments": R, "GetEntityByID": R, "GetEntityIDs": R,
    "PreloadCollection": R, "PreloadHybridCollection": R,
    # writes and what changes stored data or the serving state
    "Insert": W, "DeleteByID": W, "Flush": W, "Compact": W, "InsertEntity": W, "DeleteEntitiesByID": W,
    "ReleaseCollection": W, "ReloadSegments": W,
    # by its command: see command_class
    "Cmd": R,
}
# Calls the audit log records besides the DDL ones: deletions.
DELETES = frozenset({"DeleteByID", "DeleteEntitiesByID"})
# Lists of collections, filtered to what the caller may read.
LISTS = frozenset({"ShowCollections", "ShowHybridCollections"})
OPEN_COMMANDS = frozenset({"mishards_workers"})


def command_class(cmd: str) -> RpcClass:
    """The class of a ``Cmd`` command."""
    if cmd in OPEN_COMMANDS:
        return RpcClass.OPEN
    if cmd.lstrip()[:10] == "set_config" or is_user_command(cmd):
        return RpcClass.ADMIN
    return RpcClass.READ


def rpc_class(method: str, request: Any = None) -> RpcClass:
    """The class of ``method`` (with ``request``, a parsed ``Command``, for ``Cmd``); unknown methods are admin."""
    cls = CLASSES.get(method, RpcClass.ADMIN)
    if method == "Cmd" and request is not None:
        return command_class(str(getattr(request, "cmd", "")))
    return cls


def collections_of(method: str, request: Any) -> tuple[str, ...]:
    """The collections a parsed request names (none for ``Cmd`` and the lists; each of a ``Flush``'s; a
    ``Flush`` of everything names none)."""
    if method == "Flush":
        return tuple(str(n) for n in request.collection_name_array)
    if method in ("SearchInFiles", "HybridSearchInSegments"):
        return (str(request.search_param.collection_name),)
    name = getattr(request, "collection_name", None)
    return () if name is None else (str(name),)


def is_user_management(method: str, request: Any) -> bool:
    """Whether a parsed request is a ``Cmd("user ...")``."""
    return method == "Cmd" and request is not None and is_user_command(str(getattr(request, "cmd", "")))


def command_of(method: str, request: Any) -> str:
    """What an audited ``Cmd`` does, without values: ``user add NAME`` (a command that does not parse:
    ``user (invalid)``), ``set_config KEY``; '' for other methods."""
    if method != "Cmd" or request is None:
        return ""
    cmd = str(getattr(request, "cmd", ""))
    if is_user_command(cmd):
        parsed = parse_user_command(cmd)
        return "user (invalid)" if isinstance(parsed, Invalid) else parsed.summary()
    words = cmd[:200].split()
    if words and words[0] == "set_config":
        return " ".join(words[:2])[:100]
    return words[0][:40] if words else ""
