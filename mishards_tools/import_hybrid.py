"""A file with scalar columns goes into a hybrid collection (``mishards_client``'s hybrid methods): checked, or
created with ``--create`` from the columns' types, before any row is sent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from mishards_tools.connection import ToolError, check
from mishards_tools.dataset_types import DatasetInfo

if TYPE_CHECKING:
    from mishards_tools.importer import ImportSettings

HYBRID_METHODS = ("has_hybrid_collection", "create_hybrid_collection", "describe_hybrid_collection",
                  "insert_entities", "delete_entities_by_id")

# numpy dtype -> hybrid field type name; unsigned types take the next wider signed type
_TYPES = {"b1": "BOOL", "i1": "INT8", "i2": "INT16", "i4": "INT32", "i8": "INT64", "u1": "INT16", "u2": "INT32",
          "u4": "INT64", "f4": "FLOAT", "f8": "DOUBLE"}


def field_type(name: str, dtype: np.dtype[Any]) -> str:
    """Pure: the hybrid field type holding a column of ``dtype``."""
    kind = _TYPES.get(f"{dtype.kind}{dtype.itemsize}")
    if kind is None:
        raise ToolError(f"scalar column {name!r} of type {dtype} has no hybrid field type (uint64 and the like)")
    return kind


def supports_hybrid(client: Any) -> bool:
    return all(callable(getattr(client, m, None)) for m in HYBRID_METHODS)


def prepare_hybrid(client: Any, settings: ImportSettings, info: DatasetInfo, dtypes: Mapping[str, np.dtype[Any]],
                   metric: str) -> None:
    name = settings.collection
    status, exists = client.has_hybrid_collection(name)
    check(status, f"has_hybrid_collection {name!r}")
    if not exists:
        if not settings.create:
            raise ToolError(f"hybrid collection {name!r} does not exist; pass --create to create it with fields "
                            f"{', '.join(f'{n} {field_type(n, d)}' for n, d in dtypes.items())}")
        from mishards_client.hybrid import DataType, scalar_field, vector_field

        fields = [scalar_field(n, DataType[field_type(n, d)]) for n, d in dtypes.items()]
        fields.append(vector_field(settings.reader.vector_column, info.dimension, metric_type=metric,
                                   index_file_size=settings.index_file_size))
        check(client.create_hybrid_collection(name, fields), f"create_hybrid_collection {name!r}")
        return
    status, schema = client.describe_hybrid_collection(name)
    check(status, f"describe_hybrid_collection {name!r}")
    names = {f.name for f in schema.scalars}
    if names != set(info.scalars):
        raise ToolError(f"hybrid collection {name!r} has scalar fields {sorted(names)}; the file's scalar columns "
                        f"are {sorted(info.scalars)}")
    if schema.vector.dimension != info.dimension:
        raise ToolError(f"collection {name!r} has dimension {schema.vector.dimension}, the file's vectors "
                        f"{info.dimension}")
