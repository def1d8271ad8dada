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


# Values encoded per pass of the vectorised varint writer: bounds its temporaries (about 40 bytes a value).
VARINT_BLOCK = 1 << 20


def varint_sizes(values: np.ndarray) -> np.ndarray:
    """Bytes of the protobuf varint of each int64 value (1..10), as uint8."""
    v = np.ascontiguousarray(values, dtype=np.int64).view(np.uint64)
    sizes = np.ones(v.shape, dtype=np.uint8)
    rest = v >> np.uint64(7)
    while rest.any():
        sizes += rest != 0
        rest >>= np.uint64(7)
    return sizes


def _write_varints(values: np.ndarray, sizes: np.ndarray, out: np.ndarray) -> None:
    """Write the varints of ``values`` (of the given ``sizes``) into the uint8 array ``out``, end to end."""
    v = np.ascontiguousarray(values, dtype=np.int64).view(np.uint64)
    wide = sizes.astype(np.int64)
    starts = np.cumsum(wide) - wide
    for j in range(int(sizes.max())):
        has = sizes > j
        chunk = ((v[has] >> np.uint64(7 * j)) & np.uint64(0x7F)).astype(np.uint8)
        more = (sizes[has] > j + 1).astype(np.uint8) << 7
        out[starts[has] + j] = chunk | more


def varints(values: np.ndarray) -> bytes:
    """Protobuf varints of int64 values (two's complement, so -1 takes 10 bytes), vectorised."""
    flat = np.ascontiguousarray(values, dtype=np.int64).ravel()
    if flat.size == 0:
        return b""
    if flat.size <= SMALL:  # a few ids (nq=1 replies): a plain loop beats the array passes
        packed = bytearray()
        for value in flat.view(np.uint64).tolist():
            while value > 0x7F:
                packed.append((value & 0x7F) | 0x80)
                value >>= 7
            packed.append(value)
        return bytes(packed)
    out = np.empty(_varints_length(flat), dtype=np.uint8)
    _fill_varints(flat, out)
    return out.tobytes()


def _varints_length(flat: np.ndarray) -> int:
    return sum(int(varint_sizes(flat[i:i + VARINT_BLOCK]).sum(dtype=np.int64))
               for i in range(0, flat.size, VARINT_BLOCK))


def _fill_varints(flat: np.ndarray, out: np.ndarray) -> None:
    """The varints of ``flat`` into ``out`` (exactly their length), a block of values at a time."""
    pos = 0
    for i in range(0, flat.size, VARINT_BLOCK):
        block = flat[i:i + VARINT_BLOCK]
        sizes = varint_sizes(block)
        length = int(sizes.sum(dtype=np.int64))
        _write_varints(block, sizes, out[pos:pos + length])
        pos += length


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (field numbers below 16: a one-byte tag)."""
    return bytes([number << 3 | 2]) + varint(len(payload)) + payload


# The reason of every successful status: Milvus 1.1 sends its ``Status::message()``, "OK" when it succeeded.
SUCCESS_REASON = "OK"
# A successful ``Status`` as field 1 of a reply, byte for byte ``Status(reason="OK")`` (error_code 0 is not
# written). Milvus 1.1 always sends it; clients on other protobuf runtimes read an absent message as null, so
# every reply that has a status carries it.
SUCCESS_STATUS = b"\x0a\x04\x12\x02OK"


def encode_topk(result: TopK) -> bytes:
    """A serialized rectangular TopKQueryResult with a success status; ``row_num`` 0 when there are no columns
    (no rows in the searched files, as Milvus 1.1).

    Written straight in the wire format, byte for byte what protobuf serializes for
    ``TopKQueryResult(status=Status(reason="OK"), row_num=nq, ids=..., distances=...)``, and much cheaper than filling
    the repeated fields element by element for large nq x topk. Memory: the message is built once in a buffer
    (the ids' varints a block at a time) and copied once into the returned bytes, so a reply costs at most
    twice its own size (up to 14 bytes per result each) on top of the result.
    """
    if result.k == 0 or result.nq == 0:
        return SUCCESS_STATUS
    ids = np.ascontiguousarray(result.ids, dtype=np.int64).ravel()
    distances = np.ascontiguousarray(result.distances, dtype="<f4").ravel()
    if ids.size <= SMALL:  # a few results (nq=1 replies): joining bytes beats the array passes below
        packed = varints(ids)
        return b"".join((SUCCESS_STATUS, b"\x10", varint(result.nq), b"\x1a", varint(len(packed)), packed,
                         b"\x22", varint(distances.nbytes), distances.tobytes()))
    ids_length = _varints_length(ids)
    head = SUCCESS_STATUS + b"\x10" + varint(result.nq) + bytes([3 << 3 | 2]) + varint(ids_length)
    middle = bytes([4 << 3 | 2]) + varint(distances.nbytes)
    out = np.empty(len(head) + ids_length + len(middle) + distances.nbytes, dtype=np.uint8)
    out[:len(head)] = np.frombuffer(head, dtype=np.uint8)
    pos = len(head)
    _fill_varints(ids, out[pos:pos + ids_length])
    pos += ids_length
    out[pos:pos + len(middle)] = np.frombuffer(middle, dtype=np.uint8)
    pos += len(middle)
    out[pos:] = distances.view(np.uint8)
    return out.tobytes()


def encode_vector_ids(ids: np.ndarray) -> bytes:
    """A serialized ``VectorIds`` with a success status and ``ids`` packed, byte for byte what protobuf
    writes for ``VectorIds(status=Status(reason="OK"), vector_id_array=ids)``, without a Python int per id."""
    flat = np.ascontiguousarray(ids, dtype=np.int64).ravel()
    if flat.size == 0:
        return SUCCESS_STATUS
    return SUCCESS_STATUS + field(2, varints(flat))
