"""Value types of the pymilvus 1.1 API: Status, the metric and index enums, and the result classes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from enum import IntEnum
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from .exceptions import ParamError

__all__ = [
    "CollectionSchema",
    "IndexParam",
    "IndexType",
    "MetricType",
    "PartitionParam",
    "QueryResult",
    "RowQueryResult",
    "Status",
    "TopKQueryResult",
]


class Status:
    """Outcome of a call: ``code`` (0 is success, the Milvus 1.1 error codes otherwise) and ``message``."""

    SUCCESS = 0
    UNEXPECTED_ERROR = 1
    CONNECT_FAILED = 2
    PERMISSION_DENIED = 3
    COLLECTION_NOT_EXISTS = 4
    ILLEGAL_ARGUMENT = 5
    ILLEGAL_RANGE = 6
    ILLEGAL_DIMENSION = 7
    ILLEGAL_INDEX_TYPE = 8
    ILLEGAL_COLLECTION_NAME = 9
    ILLEGAL_TOPK = 10
    ILLEGAL_ROWRECORD = 11
    ILLEGAL_VECTOR_ID = 12
    ILLEGAL_SEARCH_RESULT = 13
    FILE_NOT_FOUND = 14
    META_FAILED = 15
    CACHE_FAILED = 16
    CANNOT_CREATE_FOLDER = 17
    CANNOT_CREATE_FILE = 18
    CANNOT_DELETE_FOLDER = 19
    CANNOT_DELETE_FILE = 20
    BUILD_INDEX_ERROR = 21
    ILLEGAL_NLIST = 22
    ILLEGAL_METRIC_TYPE = 23
    OUT_OF_MEMORY = 24

    def __init__(self, code: int = SUCCESS, message: str = "Success") -> None:
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"Status(code={self.code!r}, message={self.message!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, int):
            return self.code == other
        return isinstance(other, Status) and self.code == other.code

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def OK(self) -> bool:
        return self.code == Status.SUCCESS


class IndexType(IntEnum):
    """Index types of Milvus 1.1 (the values of ``IndexParam.index_type`` on the wire)."""

    INVALID = 0
    FLAT = 1
    IVF_FLAT = 2
    IVF_SQ8 = 3
    RNSG = 4
    IVF_SQ8H = 5
    IVF_PQ = 6
    HNSW = 11
    ANNOY = 12
    IVFLAT = IVF_FLAT
    IVF_SQ8_H = IVF_SQ8H

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__}: {self._name_}>"

    def __str__(self) -> str:
        return self._name_


class MetricType(IntEnum):
    """Metric types of Milvus 1.1 (``CollectionSchema.metric_type`` on the wire)."""

    INVALID = 0
    L2 = 1
    IP = 2
    HAMMING = 3
    JACCARD = 4
    TANIMOTO = 5
    SUBSTRUCTURE = 6
    SUPERSTRUCTURE = 7

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__}: {self._name_}>"

    def __str__(self) -> str:
        return self._name_


def _attrs_repr(obj: object) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in vars(obj).items())


class CollectionSchema:
    """What ``get_collection_info`` returns."""

    def __init__(self, collection_name: str, dimension: int, index_file_size: int,
                 metric_type: MetricType | int) -> None:
        self.collection_name = collection_name
        self.dimension = dimension
        self.index_file_size = index_file_size
        self.metric_type = metric_type

    def __repr__(self) -> str:
        return f"CollectionSchema({_attrs_repr(self)})"


class IndexParam:
    """What ``get_index_info`` returns: collection, index type and the index's parameters (a dict)."""

    def __init__(self, collection_name: str, index_type: IndexType | int, params: dict[str, Any] | str) -> None:
        if isinstance(index_type, int) and not isinstance(index_type, IndexType):
            try:
                index_type = IndexType(index_type)
            except ValueError as exc:
                raise ParamError(f"Illegal index_type {index_type}") from exc
        self._collection_name = str(collection_name)
        self._index_type = index_type
        if isinstance(params, dict):
            self._params: dict[str, Any] = params
        else:
            loaded = json.loads(params) if params else {}
            self._params = loaded if isinstance(loaded, dict) else {}

    def __str__(self) -> str:
        return f"(collection_name={self._collection_name!r}, index_type={self._index_type!r}, params={self._params!r})"

    def __repr__(self) -> str:
        return f"IndexParam{self!s}"

    @property
    def collection_name(self) -> str:
        return self._collection_name

    @property
    def index_type(self) -> IndexType | int:
        return self._index_type

    @property
    def params(self) -> dict[str, Any]:
        return self._params


class PartitionParam:
    """One entry of ``list_partitions``: ``collection_name`` and ``tag``."""

    def __init__(self, collection_name: str, tag: str) -> None:
        self.collection_name = collection_name
        self.tag = tag

    def __repr__(self) -> str:
        return f"({_attrs_repr(self)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PartitionParam) and (self.collection_name, self.tag) == (
            other.collection_name, other.tag)

    __hash__ = None  # type: ignore[assignment]


class QueryResult:
    """One hit: ``id`` and ``distance``."""

    def __init__(self, _id: int, _distance: float) -> None:
        self.id = _id
        self.distance = _distance

    def __str__(self) -> str:
        return f"Result(id={self.id}, distance={self.distance})"

    __repr__ = __str__


class RowQueryResult:
    """The hits of one query, best first; indexing gives ``QueryResult``, slicing a list of them."""

    def __init__(self, _id_list: list[int] | None, _dis_list: list[float] | None) -> None:
        self._id_list = _id_list or []
        self._dis_list = _dis_list or []

    @overload
    def __getitem__(self, item: int) -> QueryResult: ...

    @overload
    def __getitem__(self, item: slice) -> list[QueryResult]: ...

    def __getitem__(self, item: int | slice) -> QueryResult | list[QueryResult]:
        if isinstance(item, slice):
            return [self[i] for i in range(*item.indices(len(self)))]
        return QueryResult(self._id_list[item], self._dis_list[item])

    def __len__(self) -> int:
        return len(self._id_list)

    def __iter__(self) -> Iterator[QueryResult]:
        for i in range(len(self)):
            yield self[i]


class TopKQueryResult:
    """Search results, one row per query.

    pymilvus' view: ``len()``, indexing/iteration by query (``RowQueryResult``), ``id_array`` and
    ``distance_array`` (lists of lists; a row ends at its first id -1, as in pymilvus), ``shape``.
    numpy view: ``ids`` (int64) and ``distances`` (float32), both ``(nq, k)`` with the server's padding
    (id -1) kept.
    """

    def __init__(self, ids: npt.NDArray[np.int64], distances: npt.NDArray[np.float32], raw: bytes = b"") -> None:
        if ids.shape != distances.shape or ids.ndim != 2:
            raise ParamError("number of id not match distance")
        self._ids = ids
        self._distances = distances
        self._raw = raw
        self._id_rows: list[list[int]] | None = None
        self._dis_rows: list[list[float]] | None = None

    @property
    def ids(self) -> npt.NDArray[np.int64]:
        return self._ids

    @property
    def distances(self) -> npt.NDArray[np.float32]:
        return self._distances

    def _rows(self) -> tuple[list[list[int]], list[list[float]]]:
        if self._id_rows is None or self._dis_rows is None:
            id_rows: list[list[int]] = []
            dis_rows: list[list[float]] = []
            ids_list = self._ids.tolist()
            dis_list = self._distances.tolist()
            for row_ids, row_dis in zip(ids_list, dis_list, strict=True):
                end = row_ids.index(-1) if -1 in row_ids else len(row_ids)
                id_rows.append(row_ids[:end])
                dis_rows.append(row_dis[:end])
            self._id_rows, self._dis_rows = id_rows, dis_rows
        return self._id_rows, self._dis_rows

    @property
    def id_array(self) -> list[list[int]]:
        return self._rows()[0]

    @property
    def distance_array(self) -> list[list[float]]:
        return self._rows()[1]

    @property
    def shape(self) -> tuple[int, int]:
        return int(self._ids.shape[0]), int(self._ids.shape[1])

    @property
    def raw(self) -> bytes:
        """The reply's wire bytes."""
        return self._raw

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    @overload
    def __getitem__(self, item: int) -> RowQueryResult: ...

    @overload
    def __getitem__(self, item: slice) -> list[RowQueryResult]: ...

    def __getitem__(self, item: int | slice) -> RowQueryResult | list[RowQueryResult]:
        if isinstance(item, slice):
            return [self[i] for i in range(*item.indices(len(self)))]
        id_rows, dis_rows = self._rows()
        return RowQueryResult(id_rows[item], dis_rows[item])

    def __iter__(self) -> Iterator[RowQueryResult]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        def hit(q: QueryResult) -> str:
            return f"(id:{q.id}, distance:{q.distance})"

        rows = [self[i] for i in range(min(len(self), 5))]
        body = ",\n".join("[\n" + ",\n".join(hit(q) for q in row) + "\n]" for row in rows)
        more = "\n......" if len(self) > 5 else ""
        return f"[\n{body}{more}\n]"
