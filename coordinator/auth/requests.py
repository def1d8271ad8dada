"""Reading a serialized MilvusService request as far as a decision needs it (the proxy forwards bytes and
parses a request only for a caller with per-collection grants, a ``Cmd`` or an audited call), and narrowing a
serialized collection list to what the caller may read."""

from __future__ import annotations

import functools
from typing import Any

from coordinator.auth.model import Identity, visible
from milvus_wire import milvus_pb2, status_pb2, wire_fastpath_pb2

# Requests read without decoding their vectors (wire-identical messages that keep RowRecords as bytes).
_RAW = {"Insert": wire_fastpath_pb2.InsertParamRaw, "Search": wire_fastpath_pb2.SearchParamRaw,
        "SearchInFiles": wire_fastpath_pb2.SearchInFilesParamRaw, "InsertEntity": wire_fastpath_pb2.HInsertParamRaw}


def _message_class(full_name: str) -> Any:
    name = full_name.rpartition(".")[2]
    return getattr(milvus_pb2, name, None) or getattr(status_pb2, name)


@functools.cache
def request_classes() -> dict[str, Any]:
    methods = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"].methods
    return {m.name: _RAW.get(m.name) or _message_class(m.input_type.full_name) for m in methods}


def parse_request(method: str, data: bytes) -> Any:
    """The request of ``method`` read from ``data``; an empty request when the bytes do not parse (it names no
    collection, so only a caller with a global role may send it; the node then refuses the bytes itself)."""
    cls = request_classes().get(method)
    if cls is None:
        return None
    try:
        return cls.FromString(data)
    except Exception:  # protobuf's DecodeError: bytes that are not this message
        return cls()


def narrow_list(method: str, reply: bytes, identity: Identity) -> bytes:
    """A serialized ``ShowCollections`` / ``ShowHybridCollections`` reply with only the collections
    ``identity`` may read."""
    if method == "ShowCollections":
        names = milvus_pb2.CollectionNameList.FromString(reply)
        shown = visible(identity, list(names.collection_names))
        del names.collection_names[:]
        names.collection_names.extend(shown)
        return bytes(names.SerializeToString())
    mappings = milvus_pb2.MappingList.FromString(reply)
    keep = set(visible(identity, [m.collection_name for m in mappings.mapping_list]))
    kept = [m for m in mappings.mapping_list if m.collection_name in keep]
    del mappings.mapping_list[:]
    mappings.mapping_list.extend(kept)
    return bytes(mappings.SerializeToString())
