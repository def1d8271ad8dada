"""Parquet and CSV tables: an id column (optional), the vector as one list column (Parquet list, CSV text such
as ``[0.1, 0.2]`` or ``0.1 0.2``) or as columns ``v0 .. vN``, and any other columns as scalar fields."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mishards_tools.dataset_types import (
    Chunk,
    DatasetError,
    DatasetInfo,
    as_float32,
    check_finite,
    check_ids,
    check_unique,
)

SCAN_ROWS = 65536
_V_COLUMN = re.compile(r"^v(\d+)$")
_SPLIT = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class Layout:
    """Which columns hold what: ``vector`` is one list column, or ``components`` the v0..vN columns in order."""

    id_column: str | None
    vector: str | None
    components: tuple[str, ...]
    scalars: tuple[str, ...]


def layout_of(columns: Sequence[str], id_column: str, vector_column: str, path: Path) -> Layout:
    """Pure: the columns' roles from their names."""
    if len(set(columns)) != len(columns):
        raise DatasetError(f"{path}: a column name appears twice")
    ident = id_column if id_column in columns else None
    components: tuple[str, ...] = ()
    vector: str | None = vector_column
    if vector_column not in columns:
        numbered = sorted((int(m.group(1)), c) for c in columns if (m := _V_COLUMN.match(c)))
        if not numbered:
            raise DatasetError(f"{path}: no vector: expected a column {vector_column!r} or columns v0, v1, ...")
        if [n for n, _ in numbered] != list(range(len(numbered))):
            raise DatasetError(f"{path}: vector columns must be v0 .. v{len(numbered) - 1} without gaps")
        vector, components = None, tuple(c for _, c in numbered)
    taken = {ident, vector, *components}
    scalars = tuple(c for c in columns if c not in taken)
    return Layout(ident, vector, components, scalars)


def open_table(path: Path, id_column: str, vector_column: str) -> ParquetDataset | CsvDataset:
    if path.suffix.lower() == ".parquet":
        return ParquetDataset(path, id_column, vector_column)
    return CsvDataset(path, id_column, vector_column)


def _check_chunk(chunk: Chunk, dim: int, path: Path) -> None:
    if chunk.vectors.shape[1] != dim:
        raise DatasetError(f"{path}: vectors of dimension {chunk.vectors.shape[1]} from row {chunk.start}, "
                           f"expected {dim}")
    check_finite(chunk.vectors, chunk.start, path)
    if chunk.ids is not None:
        check_ids(chunk.ids, chunk.start, path)
    for name, column in chunk.scalars.items():
        check_finite(column.reshape(-1, 1), chunk.start, path / name)


class ParquetDataset:
    def __init__(self, path: Path, id_column: str, vector_column: str) -> None:
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:  # an optional extra
            raise DatasetError("reading .parquet files needs pyarrow: pip install 'mishards[tools]'") from exc
        try:
            self._file = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for a damaged footer
            raise DatasetError(f"{path}: not a readable Parquet file ({exc})") from exc
        self._path = path
        self._layout = layout_of(self._file.schema_arrow.names, id_column, vector_column, path)
        rows = int(self._file.metadata.num_rows)
        dim = len(self._layout.components)
        if self._layout.vector is not None:
            dim = 0
            if rows:
                first = next(self._file.iter_batches(batch_size=1, columns=[self._layout.vector]))
                dim = len(first.column(0)[0].as_py() or [])
        if rows and dim == 0:
            raise DatasetError(f"{path}: the first vector is empty")
        self._info = DatasetInfo(path, "parquet", rows, dim, has_ids=self._layout.id_column is not None,
                                 scalars=self._layout.scalars)

    @property
    def info(self) -> DatasetInfo:
        return self._info

    def validate(self) -> None:
        ids: list[np.ndarray] = []
        try:
            for chunk in self.chunks(SCAN_ROWS):
                _check_chunk(chunk, self._info.dimension, self._path)
                if chunk.ids is not None:
                    ids.append(chunk.ids)
        except DatasetError:
            raise
        except Exception as exc:  # a damaged page
            raise DatasetError(f"{self._path}: corrupt Parquet data ({exc})") from exc
        if ids:
            check_unique(np.concatenate(ids), self._path)

    def chunks(self, size: int) -> Iterator[Chunk]:
        """Exactly ``size`` rows a chunk (batches that a row group boundary cut short are joined up)."""
        import pyarrow as pa

        start = 0
        rest: Any = None
        for batch in self._file.iter_batches(batch_size=size):
            table = pa.Table.from_batches([batch])
            if rest is not None:
                table = pa.concat_tables([rest, table])
            while table.num_rows >= size:
                yield self._chunk(table.slice(0, size).combine_chunks().to_batches()[0], start)
                start += size
                table = table.slice(size)
            rest = table
        if rest is not None and rest.num_rows:
            yield self._chunk(rest.combine_chunks().to_batches()[0], start)

    def _column(self, batch: Any, name: str) -> Any:
        column = batch.column(batch.schema.get_field_index(name))
        if column.null_count:
            raise DatasetError(f"{self._path}: column {name!r} has empty values")
        return column

    def _chunk(self, batch: Any, start: int) -> Chunk:
        n = batch.num_rows
        lay = self._layout
        if lay.vector is not None:
            import pyarrow as pa
            import pyarrow.compute as pc

            column = self._column(batch, lay.vector)
            kind = column.type
            if not (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)):
                raise DatasetError(f"{self._path}: column {lay.vector!r} is {kind}, not a list of numbers")
            lengths = np.asarray(pc.list_value_length(column))
            values = np.asarray(pc.list_flatten(column).to_numpy(zero_copy_only=False))
            bad = np.flatnonzero(lengths != self._info.dimension)
            if bad.size:
                raise DatasetError(f"{self._path}: row {start + int(bad[0])} has a vector of {int(lengths[bad[0]])} "
                                   f"values, expected {self._info.dimension}")
            vectors = as_float32(values.reshape(n, self._info.dimension), self._path)
        else:
            vectors = as_float32(np.column_stack(
                [self._column(batch, c).to_numpy(zero_copy_only=False) for c in lay.components]), self._path)
        ids = None
        if lay.id_column is not None:
            raw = self._column(batch, lay.id_column).to_numpy(zero_copy_only=False)
            if raw.dtype.kind not in "iu":
                raise DatasetError(f"{self._path}: id column {lay.id_column!r} is {raw.dtype}, not integers")
            ids = raw.astype(np.int64)
        scalars = {}
        for name in lay.scalars:
            raw = self._column(batch, name).to_numpy(zero_copy_only=False)
            if raw.dtype.kind not in "biuf":
                raise DatasetError(f"{self._path}: scalar column {name!r} is {raw.dtype}: only numbers and "
                                   f"booleans can be imported")
            scalars[name] = raw
        return Chunk(start, vectors, ids, scalars)


def _parse_vector(text: str, line: int, path: Path) -> list[float]:
    body = text.strip().strip("[]()")
    try:
        return [float(v) for v in _SPLIT.split(body) if v]
    except ValueError as exc:
        raise DatasetError(f"{path}:{line}: the vector {text[:40]!r} is not a list of numbers") from exc


def _scalar_kind(value: str) -> str:
    """'bool', 'int' or 'float' (the narrowest that holds this text); ValueError otherwise."""
    if value.lower() in ("true", "false"):
        return "bool"
    try:
        int(value)
        return "int"
    except ValueError:
        float(value)
        return "float"


_KIND_ORDER = {"bool": 0, "int": 1, "float": 2}


class CsvDataset:
    """A CSV file with a header line. Scalar columns are booleans (true/false), int64 or float64: the widest kind
    any of its values needs, found by ``validate()``."""

    def __init__(self, path: Path, id_column: str, vector_column: str) -> None:
        self._path = path
        with path.open(newline="") as fh:
            header = next(csv.reader(fh), None)
            if not header:
                raise DatasetError(f"{path}: empty CSV file (no header line)")
            first = next(csv.reader(fh), None)
        self._header = header
        self._layout = layout_of(header, id_column, vector_column, path)
        self._kinds: dict[str, str] = {}
        self._rows = -1
        dim = len(self._layout.components)
        if self._layout.vector is not None and first is not None and len(first) == len(header):
            dim = len(_parse_vector(first[header.index(self._layout.vector)], 2, path))
        self._info = DatasetInfo(path, "csv", 0, dim, has_ids=self._layout.id_column is not None,
                                 scalars=self._layout.scalars)

    @property
    def info(self) -> DatasetInfo:
        return self._info

    def validate(self) -> None:
        kinds = dict.fromkeys(self._layout.scalars, "bool")
        ids: list[np.ndarray] = []
        rows = 0
        for _, records in self._records(SCAN_ROWS):
            for name in self._layout.scalars:
                col = self._header.index(name)
                for line, record in records:
                    try:
                        kind = _scalar_kind(record[col].strip())
                    except ValueError as exc:
                        raise DatasetError(f"{self._path}:{line}: column {name!r}: {record[col][:40]!r} is not a "
                                           f"number or boolean") from exc
                    if _KIND_ORDER[kind] > _KIND_ORDER[kinds[name]]:
                        kinds[name] = kind
            self._kinds = dict(kinds)
            chunk = self._chunk(rows, records)
            _check_chunk(chunk, self._info.dimension, self._path)
            if chunk.ids is not None:
                ids.append(chunk.ids)
            rows += len(records)
        if ids:
            check_unique(np.concatenate(ids), self._path)
        self._kinds = kinds
        self._rows = rows
        self._info = DatasetInfo(self._path, "csv", rows, self._info.dimension, has_ids=self._info.has_ids,
                                 scalars=self._info.scalars)

    def _records(self, size: int) -> Iterator[tuple[int, list[tuple[int, list[str]]]]]:
        with self._path.open(newline="") as fh:
            reader = csv.reader(fh)
            next(reader)
            batch: list[tuple[int, list[str]]] = []
            start = 0
            for record in reader:
                line = reader.line_num
                if not record:
                    continue
                if len(record) != len(self._header):
                    raise DatasetError(f"{self._path}:{line}: {len(record)} fields, the header has "
                                       f"{len(self._header)}")
                batch.append((line, record))
                if len(batch) == size:
                    yield start, batch
                    start += size
                    batch = []
            if batch:
                yield start, batch

    def chunks(self, size: int) -> Iterator[Chunk]:
        if self._rows < 0:
            self.validate()
        for start, records in self._records(size):
            yield self._chunk(start, records)

    def _first_unparsable(self, records: list[tuple[int, list[str]]]) -> str | None:
        """Where a chunk failed to parse: the line, column and text of its first vector component or id that is
        not a number (looked for only after a failure)."""
        lay, header = self._layout, self._header
        fields: list[tuple[str, type]] = [(c, float) for c in lay.components]
        if lay.id_column is not None:
            fields.append((lay.id_column, int))
        for line, record in records:
            for name, parse in fields:
                text = record[header.index(name)]
                try:
                    parse(text)
                except ValueError:
                    kind = "an integer" if parse is int else "a number"
                    return f"{self._path}:{line}: column {name!r}: {text[:40]!r} is not {kind}"
        return None

    def _chunk(self, start: int, records: list[tuple[int, list[str]]]) -> Chunk:
        lay, header = self._layout, self._header
        try:
            if lay.vector is not None:
                col = header.index(lay.vector)
                parsed = [_parse_vector(r[col], line, self._path) for line, r in records]
                for (line, _), vec in zip(records, parsed, strict=True):
                    if len(vec) != self._info.dimension:
                        raise DatasetError(f"{self._path}:{line}: a vector of {len(vec)} values, expected "
                                           f"{self._info.dimension}")
                vectors = np.array(parsed, dtype=np.float32).reshape(len(records), self._info.dimension)
            else:
                cols = [header.index(c) for c in lay.components]
                vectors = np.array([[float(r[c]) for c in cols] for _, r in records], dtype=np.float32)
            ids = None
            if lay.id_column is not None:
                col = header.index(lay.id_column)
                ids = np.array([int(r[col]) for _, r in records], dtype=np.int64)
        except ValueError as exc:
            where = self._first_unparsable(records) or f"{self._path}: rows from line {records[0][0]}: {exc}"
            raise DatasetError(where) from exc
        scalars = {}
        for name in lay.scalars:
            col = header.index(name)
            kind = self._kinds.get(name, "float")
            if kind == "bool":
                scalars[name] = np.array([r[col].strip().lower() == "true" for _, r in records], dtype=np.bool_)
            elif kind == "int":
                scalars[name] = np.array([int(r[col]) for _, r in records], dtype=np.int64)
            else:
                scalars[name] = np.array([float(r[col]) for _, r in records], dtype=np.float64)
        return Chunk(start, vectors, ids, scalars)
