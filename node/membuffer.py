"""In-memory insert buffers: acknowledged rows (and deletes) of one collection awaiting a flush."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ALL_PARTITIONS = 0


@dataclass
class Chunk:
    partition_id: int
    ids: np.ndarray
    vectors: np.ndarray
    alive: np.ndarray  # bool per row; deletes clear it


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

    @property
    def empty(self) -> bool:
        return not self.chunks and not self.deletes

    def _touch(self, lsn: int) -> None:
        if not self.first_lsn:
            self.first_lsn = lsn
        self.last_lsn = max(self.last_lsn, lsn)

    def insert(self, lsn: int, partition_id: int, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._touch(lsn)
        self.chunks.append(Chunk(partition_id, ids, vectors, np.ones(ids.shape[0], dtype=bool)))
        self.nbytes += int(ids.nbytes + vectors.nbytes)

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
        self.last_lsn = max(self.last_lsn, older.last_lsn)
        self.nbytes += older.nbytes

    def rows_by_partition(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Live buffered rows grouped by partition, in insertion order."""
        grouped: dict[int, list[Chunk]] = {}
        for chunk in self.chunks:
            grouped.setdefault(chunk.partition_id, []).append(chunk)
        out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for pid, chunks in grouped.items():
            ids = np.concatenate([c.ids[c.alive] for c in chunks])
            if ids.size == 0:
                continue
            vectors = np.concatenate([c.vectors[c.alive] for c in chunks])
            out[pid] = (ids, vectors)
        return out

    def delete_ids_for(self, partition_id: int) -> np.ndarray:
        """All pending delete ids that apply to segments of ``partition_id``."""
        parts = [d.ids for d in self.deletes if d.partition_id in (ALL_PARTITIONS, partition_id)]
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate(parts))
