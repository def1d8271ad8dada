"""Dataset readers: open a file by its suffix, validate it whole, then stream it in chunks of rows.

Every reader is memory-bounded: ``.npy``, ``.fvecs``, ``.bvecs`` and ``.ivecs`` are memory-mapped, HDF5 is
sliced, Parquet is read by record batch and CSV by line. ``validate()`` scans the whole file before anything is
sent, so a truncated or corrupt file is refused with a clear message and nothing is half-imported.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mishards_tools.dataset_types import Chunk, DatasetError, DatasetInfo, as_float32, check_finite

# Chunk size of validation scans: bounded memory whatever the batch size.
SCAN_ROWS = 65536


class Dataset(Protocol):
    @property
    def info(self) -> DatasetInfo: ...

    def validate(self) -> None:
        """Scan every row; raise DatasetError on the first problem."""

    def chunks(self, size: int) -> Iterator[Chunk]:
        """Rows in order, ``size`` at a time (the last chunk may be shorter)."""
        ...


@dataclass(frozen=True)
class ReaderOptions:
    """How to read a file: the HDF5 dataset name, and the id and vector columns of a table."""

    hdf5_dataset: str = "train"
    id_column: str = "id"
    vector_column: str = "vector"


VECS_COMPONENT: dict[str, np.dtype[Any]] = {
    ".fvecs": np.dtype("<f4"), ".ivecs": np.dtype("<i4"), ".bvecs": np.dtype("u1"),
}
SUFFIXES = (".npy", *VECS_COMPONENT, ".hdf5", ".h5", ".parquet", ".csv")


def open_dataset(path: Path, options: ReaderOptions | None = None) -> Dataset:
    """A reader for ``path`` chosen by its suffix; the header is read (and checked) at once."""
    options = options or ReaderOptions()
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    if suffix == ".npy":
        return NpyDataset(path)
    if suffix in VECS_COMPONENT:
        return VecsDataset(path)
    if suffix in (".hdf5", ".h5"):
        from mishards_tools.datasets_hdf5 import Hdf5Dataset

        return Hdf5Dataset(path, options.hdf5_dataset)
    if suffix in (".parquet", ".csv"):
        from mishards_tools.datasets_tabular import open_table

        return open_table(path, options.id_column, options.vector_column)
    raise DatasetError(f"{path}: unknown format {suffix!r} (known: {', '.join(SUFFIXES)})")


class NpyDataset:
    """A 2-D ``.npy`` array, memory-mapped. uint8 rows are binary vectors (8 bits a byte); any other numeric
    dtype is converted to float32."""

    def __init__(self, path: Path) -> None:
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DatasetError(f"{path}: not a readable .npy file ({exc})") from exc
        if array.ndim != 2 or array.shape[1] == 0:
            raise DatasetError(f"{path}: expected a 2-D array of vectors, found shape {array.shape}")
        binary = array.dtype == np.uint8
        if not binary and array.dtype.kind not in "fiu":
            raise DatasetError(f"{path}: vectors of dtype {array.dtype} are not numbers")
        self._array = array
        dim = int(array.shape[1]) * (8 if binary else 1)
        self._info = DatasetInfo(path, "npy", int(array.shape[0]), dim, binary=binary)

    @property
    def info(self) -> DatasetInfo:
        return self._info

    def validate(self) -> None:
        for chunk in self.chunks(SCAN_ROWS):
            check_finite(chunk.vectors, chunk.start, self._info.path)

    def chunks(self, size: int) -> Iterator[Chunk]:
        for start in range(0, self._info.rows, size):
            rows = self._array[start:start + size]
            vectors = np.ascontiguousarray(rows) if self._info.binary else as_float32(rows, self._info.path)
            yield Chunk(start, vectors)


class VecsDataset:
    """TEXMEX ``.fvecs`` (float32), ``.ivecs`` (int32) and ``.bvecs`` (uint8) files: each record is a
    little-endian int32 dimension followed by that many components. Components become float32 vectors."""

    def __init__(self, path: Path) -> None:
        component = VECS_COMPONENT[path.suffix.lower()]
        size = path.stat().st_size
        if size < 4:
            raise DatasetError(f"{path}: empty or truncated (no dimension header)")
        with path.open("rb") as fh:
            dim = int(np.frombuffer(fh.read(4), dtype="<i4")[0])
        if dim <= 0 or dim > 1 << 20:
            raise DatasetError(f"{path}: the first record's dimension header is {dim}: not a {path.suffix} file")
        record = 4 + dim * component.itemsize
        if size % record:
            raise DatasetError(
                f"{path}: truncated or corrupt: {size} bytes is not a whole number of {record}-byte records "
                f"(dimension {dim}); {size // record} whole records, {size % record} bytes left over")
        self._records = np.memmap(path, dtype=np.dtype([("dim", "<i4"), ("vec", component, (dim,))]), mode="r")
        self._info = DatasetInfo(path, path.suffix.lower().lstrip("."), int(size // record), dim)

    @property
    def info(self) -> DatasetInfo:
        return self._info

    def validate(self) -> None:
        dim = self._info.dimension
        for start in range(0, self._info.rows, SCAN_ROWS):
            headers = np.asarray(self._records["dim"][start:start + SCAN_ROWS])
            bad = np.flatnonzero(headers != dim)
            if bad.size:
                row = start + int(bad[0])
                raise DatasetError(f"{self._info.path}: corrupt: record {row} has dimension header "
                                   f"{int(headers[bad[0]])}, expected {dim} (as in record 0)")
            check_finite(np.asarray(self._records["vec"][start:start + SCAN_ROWS]), start, self._info.path)

    def chunks(self, size: int) -> Iterator[Chunk]:
        for start in range(0, self._info.rows, size):
            yield Chunk(start, as_float32(np.asarray(self._records["vec"][start:start + size]), self._info.path))
