"""gRPC metadata the proxy attaches to the calls it makes to nodes (beyond what Milvus 1.1 clients send)."""

from __future__ import annotations

# The catalog revision the caller has seen: a read node older than that catches up before answering.
MIN_REVISION_HEADER = "mishards-min-revision"
# 32 hex digits identifying one client request across the proxy's retries: the writer answers a retried
# automatic-id insert with the ids the first attempt got (node/idempotency.py).
REQUEST_KEY_HEADER = "mishards-request-key"
