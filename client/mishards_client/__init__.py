"""Python client of the Milvus 1.1 protocol (Mishards): pymilvus 1.1's API, numpy in and out.

``from mishards_client import Milvus, MetricType, IndexType, Status`` replaces ``from milvus import ...``.
"""

from __future__ import annotations

from .client import Milvus
from .exceptions import (
    ConnectError,
    NotConnectError,
    ParamError,
    RepeatingConnectError,
    VersionError,
)
from .prepare import Prepare
from .types import IndexType, MetricType, Status, TopKQueryResult

__version__ = "0.1.0"

__all__ = [
    "ConnectError",
    "IndexType",
    "MetricType",
    "Milvus",
    "NotConnectError",
    "ParamError",
    "Prepare",
    "RepeatingConnectError",
    "Status",
    "TopKQueryResult",
    "VersionError",
    "__version__",
]
