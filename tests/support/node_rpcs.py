"""Helpers of the node RPC tests (tests/test_node_*.py): request messages, random vectors, GetVectorsByID
replies as arrays, and multi-segment collections.

Collections that need several segments use ``index_file_size`` 1 MB and batches of a bit more than half a
megabyte, so each flush makes one segment and no two segments are small enough to be merged in background.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from milvus_wire import milvus_pb2
from tests.support.requests import (
    BINARY_METRICS,
    METRIC_NAMES,
    create,
    flush,
    insert_ok,
    ok,
    unique_name,
)

UNEXPECTED_ERROR = 1

# Sizing of the multi-segment collections: 1 KiB rows, 1 MiB segments, 600 rows per flush.
FLOAT_DIM = 256
BINARY_DIM = 8192
SEG_ROWS = 600
SEGMENTS = 3


def not_found(name: str) -> str:
    """The reason Milvus 1.1 gives for a collection that does not exist."""
    return (
        f"Collection {name} does not exist. Use milvus.has_collection to verify whether the collection "
        "exists. You also can check whether the collection name exists."
    )


def cname(name: str) -> Any:
    return milvus_pb2.CollectionName(collection_name=name)


def partition(name: str, tag: str) -> Any:
    return milvus_pb2.PartitionParam(collection_name=name, tag=tag)


def floats(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return rng.random((n, dim), dtype=np.float32)


@dataclass(frozen=True)
class Filled:
    """A filled collection: its name, rows and ids in insertion order, and (binary) row families."""

    name: str
    base: np.ndarray
    ids: np.ndarray
    patterns: np.ndarray  # (families, bytes) packed bits; empty for float collections
    family: np.ndarray  # family of each row of ``base``


def binary_families(rng: np.random.Generator, rows: int, per_family: int,
                    dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Packed bit rows in families, shuffled: a row of family f is ``pattern[f] | noise`` (sparse bits).

    So exactly the rows of family f contain ``pattern[f]``, and exactly they are contained in the OR
    of family f's rows. Returns (rows, patterns, family of each row).
    """
    families = rows // per_family
    patterns = rng.random((families, dim)) < 0.02
    noise = rng.random((rows, dim)) < 0.02
    family = np.repeat(np.arange(families), per_family)[rng.permutation(rows)]
    bits = patterns[family] | noise
    return np.packbits(bits, axis=1), np.packbits(patterns, axis=1), family


def vectors_of(reply: Any, binary: bool) -> list[np.ndarray | None]:
    """The vectors of a GetVectorsByID reply; None for an empty RowRecord (id not found)."""
    out: list[np.ndarray | None] = []
    for rec in ok(reply).vectors_data:
        if binary:
            out.append(np.frombuffer(rec.binary_data, dtype=np.uint8) if rec.binary_data else None)
        else:
            out.append(np.array(rec.float_data, dtype=np.float32) if len(rec.float_data) else None)
    return out


def multi_segment_collection(api: Any, metric: int, rng: np.random.Generator) -> Filled:
    """A collection of SEGMENTS flushed segments."""
    name = unique_name(METRIC_NAMES[metric].lower())
    binary = metric in BINARY_METRICS
    ok(create(api, name, BINARY_DIM if binary else FLOAT_DIM, metric, ifs=1))
    total = SEG_ROWS * SEGMENTS
    if binary:
        base, patterns, family = binary_families(rng, total, 6, BINARY_DIM)
    else:
        base, patterns, family = floats(rng, total, FLOAT_DIM), np.zeros((0, 0), np.uint8), np.zeros(total, int)
    ids = []
    for start in range(0, total, SEG_ROWS):
        ids.append(insert_ok(api, name, base[start : start + SEG_ROWS]))
        ok(flush(api, name))
    return Filled(name, base, np.concatenate(ids), patterns, family)
