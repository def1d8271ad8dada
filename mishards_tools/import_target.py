"""The collection an import writes into: checked (dimension, vector kind, partition) or created with
``--create``, before any row is sent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from mishards_tools.connection import ToolError, check
from mishards_tools.dataset_types import DatasetInfo
from mishards_tools.import_hybrid import prepare_hybrid, supports_hybrid

if TYPE_CHECKING:
    from mishards_tools.importer import ImportSettings

BINARY_METRICS = ("HAMMING", "JACCARD", "TANIMOTO", "SUBSTRUCTURE", "SUPERSTRUCTURE")
FLOAT_METRICS = ("L2", "IP")


def choose_metric(requested: str | None, info: DatasetInfo) -> str:
    """Pure: --metric, else the file's (an ann-benchmarks distance), else L2 / HAMMING by vector kind."""
    metric = (requested or info.metric or ("HAMMING" if info.binary else "L2")).upper()
    allowed = BINARY_METRICS if info.binary else FLOAT_METRICS
    if metric not in allowed:
        kind = "binary" if info.binary else "float"
        raise ToolError(f"metric {metric} does not fit {kind} vectors (use one of {', '.join(allowed)})")
    return metric


def _metric_name(value: Any) -> str:
    name = getattr(value, "name", None)
    return str(name if name is not None else value).upper()


def prepare_collection(client: Any, settings: ImportSettings, info: DatasetInfo,
                       scalar_dtypes: Mapping[str, np.dtype[Any]]) -> None:
    name = settings.collection
    if info.scalars:
        if not supports_hybrid(client):
            raise ToolError(f"{info.path} has scalar columns ({', '.join(info.scalars)}) but this client cannot "
                            f"insert them (no insert_entities); remove those columns to import the vectors only")
        prepare_hybrid(client, settings, info, scalar_dtypes, choose_metric(settings.metric, info))
    else:
        status, exists = client.has_collection(name)
        check(status, f"has_collection {name!r}")
        if not exists:
            _create(client, settings, info)
        else:
            _check_existing(client, name, info)
    if settings.partition:
        status, has = client.has_partition(name, settings.partition)
        check(status, f"has_partition {settings.partition!r}")
        if not has:
            if not settings.create:
                raise ToolError(f"collection {name!r} has no partition {settings.partition!r}; pass --create to "
                                f"create it")
            check(client.create_partition(name, settings.partition), f"create_partition {settings.partition!r}")


def _create(client: Any, settings: ImportSettings, info: DatasetInfo) -> None:
    if not settings.create:
        raise ToolError(f"collection {settings.collection!r} does not exist; pass --create (with --metric) to "
                        f"create it")
    from mishards_client import MetricType

    metric = choose_metric(settings.metric, info)
    param = {"collection_name": settings.collection, "dimension": info.dimension,
             "index_file_size": settings.index_file_size, "metric_type": MetricType[metric]}
    check(client.create_collection(param), f"create_collection {settings.collection!r}")


def _check_existing(client: Any, name: str, info: DatasetInfo) -> None:
    status, schema = client.get_collection_info(name)
    check(status, f"get_collection_info {name!r}")
    dimension = int(getattr(schema, "dimension", 0))
    if dimension != info.dimension:
        raise ToolError(f"collection {name!r} has dimension {dimension}, the file's vectors {info.dimension}")
    metric = _metric_name(getattr(schema, "metric_type", ""))
    if (metric in BINARY_METRICS) != info.binary:
        kind = "binary" if info.binary else "float"
        raise ToolError(f"collection {name!r} uses {metric}; the file holds {kind} vectors")
