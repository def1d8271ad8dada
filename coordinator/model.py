"""Values of the data model: enums, limits and frozen records of catalog rows."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class MetricType(IntEnum):
    L2 = 1
    IP = 2
    HAMMING = 3
    JACCARD = 4
    TANIMOTO = 5
    SUBSTRUCTURE = 6
    SUPERSTRUCTURE = 7

    @property
    def is_binary(self) -> bool:
        return self >= MetricType.HAMMING

    @property
    def higher_is_better(self) -> bool:
        """Only inner product is a similarity (sorted descending); every other metric is a distance."""
        return self is MetricType.IP


class IndexType(IntEnum):
    """``IndexParam.index_type`` values of Milvus 1.1 (7..10 are internal or SPTAG, never exposed)."""

    FLAT = 1
    IVF_FLAT = 2
    IVF_SQ8 = 3
    RNSG = 4
    IVF_SQ8H = 5
    IVF_PQ = 6
    HNSW = 11
    ANNOY = 12


# Name of each index type in ShowCollectionInfo's JSON (``index_name``).
INDEX_NAMES: dict[IndexType, str] = {
    IndexType.FLAT: "IDMAP",
    IndexType.IVF_FLAT: "IVFFLAT",
    IndexType.IVF_SQ8: "IVFSQ8",
    IndexType.RNSG: "NSG",
    IndexType.IVF_SQ8H: "IVFSQ8H",
    IndexType.IVF_PQ: "PQ",
    IndexType.HNSW: "HNSW",
    IndexType.ANNOY: "ANNOY",
}


class IdMode(IntEnum):
    """How a collection's ids are chosen; fixed by its first insert."""

    UNSET = 0
    AUTO = 1
    USER = 2


class SegmentState(IntEnum):
    """Segment (file) states, numbered as Milvus 1.x ``TableFiles.file_type``."""

    NEW = 0
    RAW = 1
    TO_INDEX = 2
    INDEX = 3
    TO_DELETE = 4
    NEW_MERGE = 5
    NEW_INDEX = 6
    BACKUP = 7


SEARCHABLE_STATES = frozenset({SegmentState.RAW, SegmentState.TO_INDEX, SegmentState.INDEX})

DEFAULT_PARTITION = "_default"

MAX_NAME_LENGTH = 255
MAX_DIMENSION = 32768
MAX_INDEX_FILE_SIZE_MB = 4096
MAX_TOPK = 1024 * 1024  # Milvus 1.1.1 on CPU (QUERY_MAX_TOPK; a GPU build allows 16384)
RESULT_SLOT_BYTES = 12  # one search result: an int64 id and a float32 distance
MAX_SEARCH_RESULT_BYTES = 2 * 1024 * 1024 * 1024  # nq * topk * RESULT_SLOT_BYTES must stay under this
MAX_INSERT_BYTES = 256 * 1024 * 1024
MAX_GET_IDS = 1000
MAX_PARTITIONS = 4096
MAX_SEARCH_FILES = 65536
MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Collection:
    id: int
    name: str
    dimension: int
    metric: MetricType
    index_file_size_mb: int
    index_type: IndexType
    index_params: str  # compact JSON object, "{}" when none
    id_mode: IdMode
    created_us: int
    flushed_lsn: int
    # A hybrid collection's schema (coordinator.hybrid.schema.schema_to_json), '' for a plain collection.
    hybrid_schema: str = ""

    @property
    def is_binary(self) -> bool:
        return self.metric.is_binary

    @property
    def is_hybrid(self) -> bool:
        return bool(self.hybrid_schema)

    @property
    def row_bytes(self) -> int:
        """Bytes of one stored vector: float32 per component, or packed bits."""
        return self.dimension // 8 if self.is_binary else self.dimension * 4


@dataclass(frozen=True, slots=True)
class Partition:
    id: int
    collection_id: int
    tag: str


@dataclass(frozen=True, slots=True)
class Segment:
    """One immutable set of rows of one partition, stored in its own folder."""

    id: int  # numeric file id of SearchInFiles / ReloadSegments
    name: str  # string segment id of ShowCollectionInfo / GetVectorIDs
    collection_id: int
    partition_id: int
    state: SegmentState
    row_count: int
    deleted_count: int
    data_size: int
    index_type: IndexType
    delete_version: int
    created_us: int
    index_file: str = ""  # built index in the segment folder ('' = none)
    index_params: str = "{}"
    index_size: int = 0
    index_error: str = ""  # why the last build failed ('' = it did not)

    @property
    def live_count(self) -> int:
        return self.row_count - self.deleted_count
