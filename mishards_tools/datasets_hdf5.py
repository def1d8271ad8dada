"""ann-benchmarks HDF5 files: ``train`` (the base vectors), ``test`` (queries), ``neighbors`` and ``distances``
(the exact k nearest of each query), and a ``distance`` attribute naming the metric."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mishards_tools.dataset_types import Chunk, DatasetError, DatasetInfo, as_float32, check_finite

SCAN_ROWS = 65536

# ann-benchmarks distance name -> Milvus metric. "angular" is cosine: vectors are normalised, then IP.
METRICS = {"euclidean": "L2", "angular": "IP", "cosine": "IP", "dot": "IP", "ip": "IP", "hamming": "HAMMING",
           "jaccard": "JACCARD"}


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as exc:  # an optional extra
        raise DatasetError("reading .hdf5 files needs h5py: pip install 'mishards[tools]'") from exc
    return h5py


def metric_of(distance: str) -> str:
    metric = METRICS.get(distance.lower())
    if metric is None:
        raise DatasetError(f"unknown ann-benchmarks distance {distance!r} (known: {', '.join(METRICS)})")
    return metric


def normalized(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero): cosine similarity as inner product."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.where(norms == 0, 1, norms), dtype=np.float32)


class Hdf5Dataset:
    """One dataset of an ann-benchmarks file (``train`` by default) as rows. Under a hamming/jaccard distance
    the rows are binary vectors (booleans one bit each, or uint8 already packed 8 bits a byte); anything else
    becomes float32, and an ``angular`` file's vectors are normalised (searched with IP)."""

    def __init__(self, path: Path, name: str = "train") -> None:
        h5py = _h5py()
        try:
            self._file = h5py.File(path, "r")
        except OSError as exc:
            raise DatasetError(f"{path}: not a readable HDF5 file ({exc})") from exc
        if name not in self._file:
            raise DatasetError(f"{path}: no dataset {name!r} (it has: {', '.join(sorted(self._file.keys()))})")
        self._data = self._file[name]
        if len(self._data.shape) != 2 or self._data.shape[1] == 0:
            raise DatasetError(f"{path}: dataset {name!r} has shape {self._data.shape}, expected (rows, dim)")
        distance = self._file.attrs.get("distance", "euclidean")
        distance = distance.decode() if isinstance(distance, bytes) else str(distance)
        metric = metric_of(distance)
        self._angular = distance.lower() in ("angular", "cosine")
        binary = metric in ("HAMMING", "JACCARD")
        if binary and self._data.dtype.kind not in "bu":
            raise DatasetError(f"{path}: a {distance} file needs boolean or uint8 vectors, found {self._data.dtype}")
        # Booleans are one bit each (packed here); uint8 rows are already packed, 8 bits a byte.
        self._pack = binary and self._data.dtype == np.bool_
        cols = int(self._data.shape[1])
        if self._pack and cols % 8:
            raise DatasetError(f"{path}: binary vectors of {cols} bits: not a multiple of 8")
        if binary and not self._pack:
            cols *= 8
        self._info = DatasetInfo(path, "hdf5", int(self._data.shape[0]), cols, binary=binary, metric=metric)

    @property
    def info(self) -> DatasetInfo:
        return self._info

    def validate(self) -> None:
        for chunk in self.chunks(SCAN_ROWS):
            check_finite(chunk.vectors, chunk.start, self._info.path)

    def _convert(self, rows: np.ndarray) -> np.ndarray:
        if self._pack:
            return np.packbits(rows, axis=1)
        if self._info.binary:
            return np.ascontiguousarray(rows, dtype=np.uint8)
        vectors = as_float32(rows, self._info.path)
        return normalized(vectors) if self._angular else vectors

    def chunks(self, size: int) -> Iterator[Chunk]:
        for start in range(0, self._info.rows, size):
            yield Chunk(start, self._convert(np.asarray(self._data[start:start + size])))

    def close(self) -> None:
        self._file.close()


def read_ground_truth(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str]:
    """(queries, neighbors, distances or None, distance name) of an ann-benchmarks file, queries converted like
    the train rows (normalised for angular, bits packed for hamming/jaccard)."""
    h5py = _h5py()
    with h5py.File(path, "r") as fh:
        for name in ("test", "neighbors"):
            if name not in fh:
                raise DatasetError(f"{path}: no {name!r} dataset: not an ann-benchmarks file")
        distance = fh.attrs.get("distance", "euclidean")
        distance = distance.decode() if isinstance(distance, bytes) else str(distance)
        metric = metric_of(distance)
        raw = np.asarray(fh["test"])
        if metric in ("HAMMING", "JACCARD"):
            if raw.ndim != 2 or raw.dtype.kind not in "bu":
                raise DatasetError(f"{path}: a {distance} file needs dense boolean or uint8 test rows (sets of "
                                   f"varying size are not supported)")
            queries = np.packbits(raw, axis=1) if raw.dtype == np.bool_ else np.ascontiguousarray(raw, np.uint8)
        else:
            queries = as_float32(raw, path)
            if distance.lower() in ("angular", "cosine"):
                queries = normalized(queries)
        neighbors = np.asarray(fh["neighbors"], dtype=np.int64)
        distances = np.asarray(fh["distances"], dtype=np.float64) if "distances" in fh else None
    if neighbors.shape[0] != queries.shape[0]:
        raise DatasetError(f"{path}: {queries.shape[0]} test queries but {neighbors.shape[0]} neighbor rows")
    return queries, neighbors, distances, distance.lower()
