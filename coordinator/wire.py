"""The Milvus wire format written directly, where building protobuf messages element by element is slow.

Shared by the node and the proxy: varints, length-delimited fields, and a serialized rectangular
``TopKQueryResult`` byte-identical to protobuf's own encoding (tests pin that).
"""

from __future__ import annotations

import numpy as np

from coordinator.topk import TopK


def varint(value: int) -> bytes:
    """Protobuf varint of a non-negative integer."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


SMALL = 64


def varints(values: np.ndarray) -> bytes:
    """Protobuf varints of int64 values (two's complement, so -1 takes 10 bytes), vectorised."""
    v = np.ascontiguousarray(values, dtype=np.int64).view(np.uint64)
    if v.size == 0:
        return b""
    if v.size <= SMALL:  # a few ids (nq=1 replies): a plain loop beats the array passes
        return b"".join(varint(int(x)) for x in v.ravel().tolist())
    sizes = np.ones(v.shape, dtype=np.int64)
    rest = v >> np.uint64(7)
    while rest.any():
        sizes += rest != 0
        rest >>= np.uint64(7)
    starts = np.cumsum(sizes) - sizes
    out = np.zeros(int(sizes.sum()), dtype=np.uint8)
    for j in range(int(sizes.max())):
        has = sizes > j
        chunk = ((v[has] >> np.uint64(7 * j)) & np.uint64(0x7F)).astype(np.uint8)
        more = (sizes[has] > j + 1).astype(np.uint8) << 7
        out[starts[has] + j] = chunk | more
    return out.tobytes()


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (field numbers below 16: a one-byte tag)."""
    return bytes([number << 3 | 2]) + varint(len(payload)) + payload


def encode_topk(result: TopK) -> bytes:
    """A serialized rectangular TopKQueryResult with a success status; ``row_num`` 0 when there are no columns.

    Written straight in the wire format, byte for byte what protobuf serializes for
    ``TopKQueryResult(row_num=nq, ids=..., distances=...)`` (an absent status reads as SUCCESS), and much
    cheaper than filling the repeated fields element by element for large nq x topk.
    """
    if result.k == 0 or result.nq == 0:
        return b""
    ids = varints(result.ids.ravel())
    distances = np.ascontiguousarray(result.distances.ravel(), dtype="<f4").tobytes()
    return b"".join((b"\x10", varint(result.nq), field(3, ids), field(4, distances)))
