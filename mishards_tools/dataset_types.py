"""The values every dataset reader hands out: what a file holds, and one chunk of its rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class DatasetError(ValueError):
    """The file cannot be imported as it is (unknown format, corrupt, truncated, inconsistent)."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a file holds. ``dimension`` is the collection dimension (bits for binary vectors)."""

    path: Path
    format: str
    rows: int
    dimension: int
    binary: bool = False
    has_ids: bool = False
    scalars: tuple[str, ...] = ()
    metric: str | None = None  # from an ann-benchmarks file's ``distance`` attribute


@dataclass(frozen=True)
class Chunk:
    """Rows ``start .. start + len(vectors)`` of a file: float32 (n, d) or packed uint8 (n, d/8) vectors,
    the file's ids (int64) when it has an id column, and its scalar columns by name."""

    start: int
    vectors: np.ndarray
    ids: np.ndarray | None = None
    scalars: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def stop(self) -> int:
        return self.start + int(self.vectors.shape[0])


def check_finite(vectors: np.ndarray, start: int, path: Path) -> None:
    """Refuse NaN and infinity (a server refuses them too, but only after earlier batches went in)."""
    if vectors.dtype.kind != "f":
        return
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        row = start + int(np.argmin(finite))
        raise DatasetError(f"{path}: row {row} holds NaN or infinity")


def check_ids(ids: np.ndarray, start: int, path: Path) -> None:
    if ids.size and int(ids.min()) < 0:
        row = start + int(np.argmin(ids))
        raise DatasetError(f"{path}: row {row} has a negative id ({int(ids[row - start])})")


def check_unique(ids: np.ndarray, path: Path) -> None:
    """Every id once (8 bytes per row: the whole id column is sorted once)."""
    if ids.size < 2:
        return
    ordered = np.sort(ids, kind="stable")
    dup = np.flatnonzero(ordered[1:] == ordered[:-1])
    if dup.size:
        raise DatasetError(f"{path}: id {int(ordered[dup[0]])} appears more than once")


def as_float32(values: np.ndarray, path: Path) -> np.ndarray:
    if values.dtype.kind not in "fiub":
        raise DatasetError(f"{path}: vectors of dtype {values.dtype} are not numbers")
    return np.ascontiguousarray(values, dtype=np.float32)
