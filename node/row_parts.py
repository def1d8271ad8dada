"""Rows held as consecutive parts: what a flush takes from the insert buffer and a merge reads from its segments,
written to a segment's files end to end without first joining the parts into one array (which would cost a copy of
every row and, for a large flush, the page faults of a fresh array as large as the segment)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True, eq=False)
class Rows:
    """Rows of one partition: ids, vectors and scalar columns, row ``r`` of each one entity."""

    ids: np.ndarray
    vectors: np.ndarray
    scalars: tuple[np.ndarray, ...] = ()

    @property
    def count(self) -> int:
        return int(self.ids.shape[0])


@dataclass(frozen=True, slots=True, eq=False)
class RowParts:
    """Rows as consecutive parts (each a :class:`Rows`, usually views of buffered chunks or of segment files), in
    order; every part has the same scalar columns."""

    parts: tuple[Rows, ...]

    @classmethod
    def of(cls, parts: Sequence[Rows]) -> RowParts:
        kept = tuple(p for p in parts if p.count)
        widths = {len(p.scalars) for p in kept}
        if len(widths) > 1:
            raise ValueError("row parts differ in their scalar columns")
        return cls(kept)

    @property
    def count(self) -> int:
        return sum(p.count for p in self.parts)

    @property
    def width(self) -> int:
        """How many scalar columns every row has."""
        return len(self.parts[0].scalars) if self.parts else 0

    def sliced(self, start: int, stop: int) -> RowParts:
        """Rows ``start`` to ``stop`` (exclusive) of the whole, as views of the parts they fall in."""
        out: list[Rows] = []
        base = 0
        for part in self.parts:
            lo, hi = max(start - base, 0), min(stop - base, part.count)
            if lo < hi:
                out.append(Rows(part.ids[lo:hi], part.vectors[lo:hi], tuple(c[lo:hi] for c in part.scalars)))
            base += part.count
            if base >= stop:
                break
        return RowParts(tuple(out))

    def ids(self) -> list[np.ndarray]:
        return [p.ids for p in self.parts]

    def vectors(self) -> list[np.ndarray]:
        return [p.vectors for p in self.parts]

    def scalar(self, position: int) -> list[np.ndarray]:
        return [p.scalars[position] for p in self.parts]

    def joined(self) -> Rows:
        """The rows in one array per column (a copy unless there is a single part)."""
        if len(self.parts) == 1:
            return self.parts[0]
        if not self.parts:
            return Rows(np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32))
        return Rows(np.concatenate(self.ids()), np.concatenate(self.vectors()),
                    tuple(np.concatenate(self.scalar(i)) for i in range(self.width)))


def live_part(ids: np.ndarray, vectors: np.ndarray, scalars: Sequence[np.ndarray], keep: np.ndarray | None) -> Rows:
    """The rows ``keep`` marks (a bool per row; None or all true: every row, as views, with no copy)."""
    if keep is None or bool(keep.all()):
        return Rows(ids, vectors, tuple(scalars))
    return Rows(ids[keep], vectors[keep], tuple(c[keep] for c in scalars))
