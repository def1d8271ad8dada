"""In-memory insert buffers: acknowledged rows (and deletes) of one collection awaiting a flush."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from node.row_parts import RowParts, live_part

ALL_PARTITIONS = 0


@dataclass
class Chunk:
    partition_id: int
    ids: np.ndarray
    vectors: np.ndarray
    alive: np.ndarray  # bool per row; deletes clear it
    scalars: tuple[np.ndarray, ...] = ()  # a hybrid collection's scalar columns (schema order), row-aligned


@dataclass
class PendingDelete:
    """Ids deleted after the last flush, to be applied to already flushed segments."""

    partition_id: int  # ALL_PARTITIONS or one partition
    ids: np.ndarray


@dataclass
class MemBuffer:
    chunks: list[Chunk] = field(default_factory=list)
    deletes: list[PendingDelete] = field(default_factory=list)
    first_lsn: int = 0
    last_lsn: int = 0
    nbytes: int = 0
    first_at: float = 0.0  # monotonic time the first buffered record was acknowledged (its flush deadline)

    @property
    def empty(self) -> bool:
        return not self.chunks and not self.deletes

    def _touch(self, lsn: int) -> None:
        if not self.first_lsn:
            self.first_lsn = lsn
        self.last_lsn = max(self.last_lsn, lsn)

    def insert(self, lsn: int, partition_id: int, ids: np.ndarray, vectors: np.ndarray,
               scalars: tuple[np.ndarray, ...] = ()) -> None:
        self._touch(lsn)
        self.chunks.append(Chunk(partition_id, ids, vectors, np.ones(ids.shape[0], dtype=bool), scalars))
        self.nbytes += int(ids.nbytes + vectors.nbytes) + sum(int(c.nbytes) for c in scalars)

    def delete(self, lsn: int, partition_id: int, ids: np.ndarray) -> None:
        self._touch(lsn)
        self._kill(self.chunks, partition_id, ids)
        self.deletes.append(PendingDelete(partition_id, ids))

    @staticmethod
    def _kill(chunks: list[Chunk], partition_id: int, ids: np.ndarray) -> None:
        for chunk in chunks:
            if partition_id in (ALL_PARTITIONS, chunk.partition_id):
                chunk.alive &= ~np.isin(chunk.ids, ids)

    def drop_partition(self, partition_id: int) -> None:
        for chunk in self.chunks:
            if chunk.partition_id == partition_id:
                chunk.alive[:] = False

    def restore_before(self, older: MemBuffer) -> None:
        """Put back an older buffer whose flush failed, in front of this one.

        Deletes that arrived after ``older`` was taken also apply to its rows.
        """
        for pending in self.deletes:
            self._kill(older.chunks, pending.partition_id, pending.ids)
        self.chunks = older.chunks + self.chunks
        self.deletes = older.deletes + self.deletes
        self.first_lsn = older.first_lsn or self.first_lsn
        self.first_at = older.first_at or self.first_at
        self.last_lsn = max(self.last_lsn, older.last_lsn)
        self.nbytes += older.nbytes

    def partition_rows(self) -> dict[int, RowParts]:
        """Live buffered rows grouped by partition, in insertion order, with their scalar columns: views of the
        buffered chunks (a chunk with deleted rows gives a copy of its live ones), not joined into one array."""
        grouped: dict[int, list[Chunk]] = {}
        for chunk in self.chunks:
            grouped.setdefault(chunk.partition_id, []).append(chunk)
        out: dict[int, RowParts] = {}
        for pid, chunks in grouped.items():
            try:
                rows = RowParts.of([live_part(c.ids, c.vectors, c.scalars, c.alive) for c in chunks])
            except ValueError as exc:
                raise ValueError(f"buffered rows of partition {pid}: {exc}") from exc
            if rows.count:
                out[pid] = rows
        return out

    def rows_by_partition(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Live buffered rows grouped by partition, in insertion order (ids and vectors, each one array)."""
        out = {}
        for pid, parts in self.partition_rows().items():
            rows = parts.joined()
            out[pid] = (rows.ids, rows.vectors)
        return out

    def delete_ids_for(self, partition_id: int) -> np.ndarray:
        """All pending delete ids that apply to segments of ``partition_id``."""
        parts = [d.ids for d in self.deletes if d.partition_id in (ALL_PARTITIONS, partition_id)]
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate(parts))
