"""``RowRecord`` messages decoded one by one into one array (the node's and the hybrid model's general path)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from coordinator import validation
from coordinator.errors import IllegalDimension


def decode_row_records(records: Sequence[Any], dimension: int, binary: bool) -> np.ndarray:
    """``binary_data`` rows as uint8 (n, dimension / 8), or ``float_data`` rows as finite float32 (n, dimension).

    A row of another width is ILLEGAL_DIMENSION, NaN or infinity ILLEGAL_ROWRECORD. The binary array is a
    read-only view of the joined bytes."""
    n = len(records)
    if binary:
        width = dimension // 8
        if any(len(r.binary_data) != width for r in records):
            raise IllegalDimension(validation.WRONG_DIMENSION)
        return np.frombuffer(b"".join(r.binary_data for r in records), dtype=np.uint8).reshape(n, width)
    out = np.empty((n, dimension), dtype=np.float32)
    for i, rec in enumerate(records):
        data = rec.float_data
        if len(data) != dimension:
            raise IllegalDimension(validation.WRONG_DIMENSION)
        out[i] = data
    validation.finite(out)
    return out
