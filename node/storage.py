"""Segment files on the storage folder, written atomically and read through mmap.

Layout (collection *ids*, never names, become paths)::

    <root>/collections/<collection id>/<segment name>/ids.npy       int64 row ids
                                                      vectors.npy   float32 (rows, dim) or uint8 packed bits
                                                      deleted.<v>.npy  sorted int64 offsets (delete log v)
                                                      scalar.<i>.npy   hybrid collections: the i-th scalar
                                                                       field (schema order), one value a row

Scalar columns are named by the field's position among the schema's scalar fields (schemas never change), so
no field name becomes a path and none can collide with the other files. Row ``r`` of every file of a segment is
the same entity.

Every file is written under a temporary name, fsynced, and renamed; a segment folder is renamed into
place only when complete, and becomes visible to readers only when its catalog row commits.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from coordinator.errors import FileNotFound, StorageError
from node import npy

if TYPE_CHECKING:
    from coordinator.hybrid.schema import HybridSchema

log = logging.getLogger(__name__)

IDS = "ids.npy"
VECTORS = "vectors.npy"


def scalar_file(position: int) -> str:
    """The file of the scalar field at ``position`` among a hybrid schema's scalar fields."""
    return f"scalar.{int(position)}.npy"


def scalar_positions(schema: HybridSchema, fields: Iterable[str]) -> dict[str, int]:
    """Each named scalar field's position among the schema's scalar fields (StorageError for any other name)."""
    where = {f.name: i for i, f in enumerate(schema.scalars)}
    out: dict[str, int] = {}
    for name in fields:
        if name not in where:
            raise StorageError(f"Collection {schema.collection_name} has no scalar field {name!r}")
        out[name] = where[name]
    return out


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


Parts = np.ndarray | Sequence[np.ndarray]  # one array, or arrays of one dtype and row shape written end to end


def _write_array(path: Path, array: Parts) -> int:
    """Write ``array`` (or its parts, as one array of their rows in order) as a .npy file, byte for byte what
    ``np.save`` writes for the joined array, and fsync it; returns the file's size. Parts are written one after
    the other from where they are: they are never joined in memory."""
    parts = _parts(array)
    if not parts:
        raise StorageError(f"Nothing to write to {path.name}")
    first = parts[0]
    for part in parts[1:]:
        if part.dtype != first.dtype or part.shape[1:] != first.shape[1:]:
            raise StorageError(f"{path.name}: parts of {first.dtype}{first.shape[1:]} and "
                               f"{part.dtype}{part.shape[1:]} cannot form one array")
    shape = (sum(int(p.shape[0]) for p in parts), *first.shape[1:])
    header = {"descr": np.lib.format.dtype_to_descr(first.dtype), "fortran_order": False, "shape": shape}
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        for part in parts:
            fh.write(np.ascontiguousarray(part).data)
        fh.flush()
        os.fsync(fh.fileno())
    return path.stat().st_size


def _parts(array: Parts) -> list[np.ndarray]:
    return [array] if isinstance(array, np.ndarray) else list(array)


def _rows_of(array: Parts) -> int:
    return sum(int(p.shape[0]) for p in _parts(array))


def _check_name(name: str) -> None:
    # Segment names are generated numbers; anything else must never reach the file system.
    if not name.isdigit():
        raise StorageError(f"Invalid segment name: {name!r}")


class SegmentStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.collections_root = root / "collections"

    def prepare(self) -> None:
        try:
            self.collections_root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"Cannot create storage folder {self.collections_root}: {exc}") from exc

    def collection_dir(self, collection_id: int) -> Path:
        return self.collections_root / str(int(collection_id))

    def segment_dir(self, collection_id: int, name: str) -> Path:
        _check_name(name)
        return self.collection_dir(collection_id) / name

    def write_segment(self, collection_id: int, name: str, ids: Parts, vectors: Parts,
                      scalars: Sequence[Parts] = ()) -> int:
        """Write a complete segment folder atomically; returns its size in bytes.

        ``scalars``: a hybrid collection's scalar columns in schema order, each with a value per row. Each column
        is one array or its parts in order (all columns cut alike)."""
        rows = _rows_of(ids)
        for column in scalars:
            if _rows_of(column) != rows or any(p.ndim != 1 for p in _parts(column)):
                raise StorageError(f"Segment {name}: a scalar column of {_rows_of(column)} values for {rows} rows")
        final = self.segment_dir(collection_id, name)
        parent = final.parent
        tmp = parent / f".tmp-{name}"
        try:
            parent.mkdir(parents=True, exist_ok=True)
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir()
            size = _write_array(tmp / IDS, [np.asarray(p, dtype=np.int64) for p in _parts(ids)])
            size += _write_array(tmp / VECTORS, vectors)
            for position, column in enumerate(scalars):
                size += _write_array(tmp / scalar_file(position), column)
            _fsync_dir(tmp)
            os.replace(tmp, final)
            _fsync_dir(parent)
            return size
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise StorageError(f"Cannot write segment {name}: {exc}") from exc

    def write_deletes(self, collection_id: int, name: str, version: int, offsets: np.ndarray) -> None:
        folder = self.segment_dir(collection_id, name)
        final = folder / f"deleted.{int(version)}.npy"
        tmp = folder / f".tmp-deleted.{int(version)}.npy"
        try:
            _write_array(tmp, np.asarray(offsets, dtype=np.int64))
            os.replace(tmp, final)
            _fsync_dir(folder)
        except OSError as exc:
            raise StorageError(f"Cannot write the delete log of segment {name}: {exc}") from exc

    def index_path(self, collection_id: int, name: str, file: str) -> Path:
        if not (file.startswith("index-") and file.replace("-", "").replace(".", "").isalnum()):
            raise StorageError(f"Invalid index file name: {file!r}")
        return self.segment_dir(collection_id, name) / file

    def write_index(self, collection_id: int, name: str, file: str, save: Callable[[Path], None]) -> int:
        """Write an index file next to its segment atomically; returns its size in bytes."""
        final = self.index_path(collection_id, name, file)
        tmp = final.with_name(f".tmp-{file}")
        try:
            save(tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            size = tmp.stat().st_size
            os.replace(tmp, final)
            _fsync_dir(final.parent)
            return size
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StorageError(f"Cannot write the index of segment {name}: {exc}") from exc

    def stale_index_files(self, collection_id: int, name: str, current: str, older_than: float) -> list[Path]:
        """Index files of a segment other than ``current`` last modified before ``older_than``."""
        folder = self.segment_dir(collection_id, name)
        out = []
        for path in folder.glob("index-*"):
            try:
                if path.name != current and path.stat().st_mtime < older_than:
                    out.append(path)
            except FileNotFoundError:
                continue
        return out

    def _load(self, path: Path, mmap: bool) -> np.ndarray:
        try:
            return npy.load(path, mmap)
        except FileNotFoundError:
            raise FileNotFound(f"Segment file missing: {path.parent.name}/{path.name}") from None
        except (OSError, ValueError) as exc:
            raise StorageError(f"Cannot read {path.parent.name}/{path.name}: {exc}") from exc

    def ids(self, collection_id: int, name: str) -> np.ndarray:
        return self._load(self.segment_dir(collection_id, name) / IDS, mmap=True)

    def vectors(self, collection_id: int, name: str) -> np.ndarray:
        return self._load(self.segment_dir(collection_id, name) / VECTORS, mmap=True)

    def scalar(self, collection_id: int, name: str, position: int) -> np.ndarray:
        """One scalar column of a segment (memory-mapped, aligned with :meth:`ids`)."""
        return self._load(self.segment_dir(collection_id, name) / scalar_file(position), mmap=True)

    def load_scalars(self, collection_id: int, segment_name: str, schema: HybridSchema,
                     fields: Iterable[str]) -> dict[str, np.ndarray]:
        """The named scalar columns of a segment of a hybrid collection, memory-mapped, row ``r`` of each being
        the entity of ``ids(...)[r]``; in their storage dtypes (int8/16/32/64, bool, float32, float64)."""
        return {field: self.scalar(collection_id, segment_name, position)
                for field, position in scalar_positions(schema, fields).items()}

    def deletes(self, collection_id: int, name: str, version: int) -> np.ndarray:
        if version <= 0:
            return np.zeros(0, dtype=np.int64)
        return self._load(self.segment_dir(collection_id, name) / f"deleted.{int(version)}.npy", mmap=False)

    def prune_deletes(self, collection_id: int, name: str, keep_from: int) -> None:
        """Remove delete logs older than ``keep_from`` (readers use only the current version)."""
        folder = self.segment_dir(collection_id, name)
        for path in folder.glob("deleted.*.npy"):
            try:
                version = int(path.name.split(".")[1])
            except (IndexError, ValueError):
                continue
            if version < keep_from:
                path.unlink(missing_ok=True)

    def remove_segment(self, collection_id: int, name: str) -> None:
        shutil.rmtree(self.segment_dir(collection_id, name), ignore_errors=True)

    def remove_collection(self, collection_id: int) -> None:
        shutil.rmtree(self.collection_dir(collection_id), ignore_errors=True)

    def segment_names(self, collection_id: int) -> list[str]:
        folder = self.collection_dir(collection_id)
        if not folder.is_dir():
            return []
        return [p.name for p in folder.iterdir() if p.is_dir()]

    def collection_ids(self) -> list[int]:
        if not self.collections_root.is_dir():
            return []
        return [int(p.name) for p in self.collections_root.iterdir() if p.name.isdigit()]
