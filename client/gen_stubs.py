"""Regenerate ``mishards_client/_grpc`` from the repository's ``proto/status.proto`` and ``proto/milvus.proto``.

Usage (from the repository root, with grpcio-tools installed)::

    python client/gen_stubs.py

Only the message modules (``*_pb2.py`` and their ``.pyi``) are kept: the client builds its gRPC method
handles itself (``mishards_client/transport.py``), so no ``*_pb2_grpc.py`` is needed. The absolute imports
protoc emits are made package-relative.
"""

from __future__ import annotations

import re
import sys
import tempfile
from importlib import resources
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO_DIR = HERE.parent / "proto"
OUT_DIR = HERE / "mishards_client" / "_grpc"
PROTOS = ("status.proto", "milvus.proto")
KEEP = ("status_pb2.py", "status_pb2.pyi", "milvus_pb2.py", "milvus_pb2.pyi")
_IMPORT = re.compile(r"^import (status_pb2|milvus_pb2) as (\w+)$", re.MULTILINE)


def main() -> int:
    from grpc_tools import protoc

    include = resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = ["protoc", f"--proto_path={PROTO_DIR}", f"--proto_path={include}", f"--python_out={tmp}",
                f"--pyi_out={tmp}", *(str(PROTO_DIR / p) for p in PROTOS)]
        if protoc.main(args) != 0:
            return 1
        for name in KEEP:
            text = _IMPORT.sub(r"from . import \1 as \2", (Path(tmp) / name).read_text(encoding="utf-8"))
            (OUT_DIR / name).write_text(text, encoding="utf-8")
            print(OUT_DIR / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
