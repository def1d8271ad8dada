"""Generate the Milvus 1.1 wire stubs (package ``milvus_wire``) from ``proto/``.

Usage::

    python scripts/gen_proto.py [--out DIR]

Runs ``grpc_tools.protoc`` on ``proto/status.proto`` and ``proto/milvus.proto`` and writes
``status_pb2.py``, ``milvus_pb2.py``, ``milvus_pb2_grpc.py`` and their ``.pyi`` stubs into
DIR (default: ``milvus_wire/`` at the repository root). The absolute imports emitted by
protoc (``import status_pb2 as ...``) are rewritten into package-relative ones
(``from . import status_pb2 as ...``) so the output works as a package. ``__init__.py`` is
never written. The output only depends on the .proto files and the grpcio-tools version,
so repeated runs produce identical bytes.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = REPO_ROOT / "proto"
DEFAULT_OUT = REPO_ROOT / "milvus_wire"

# Order matters: status.proto is imported by milvus.proto.
PROTO_FILES: tuple[str, ...] = ("status.proto", "milvus.proto", "wire_fastpath.proto")

# Files copied from protoc's output into the package (status.proto has no service, so
# its empty status_pb2_grpc.py is not kept).
GENERATED_FILES: tuple[str, ...] = (
    "status_pb2.py",
    "status_pb2.pyi",
    "milvus_pb2.py",
    "milvus_pb2.pyi",
    "milvus_pb2_grpc.py",
    "wire_fastpath_pb2.py",
    "wire_fastpath_pb2.pyi",
)

_MODULES = "|".join(re.escape(Path(name).stem + "_pb2") for name in PROTO_FILES)
_ABSOLUTE_IMPORT = re.compile(rf"^import ({_MODULES}) as (\w+)$", re.MULTILINE)


def make_relative_imports(source: str) -> str:
    """Rewrite ``import X_pb2 as alias`` (X one of our protos) into ``from . import X_pb2 as alias``."""
    return _ABSOLUTE_IMPORT.sub(r"from . import \1 as \2", source)


def run_protoc(proto_dir: Path, out_dir: Path) -> None:
    """Run grpc_tools.protoc on PROTO_FILES, writing raw output into ``out_dir``."""
    from grpc_tools import protoc

    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"--proto_path={proto_dir}",
        f"--proto_path={well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(proto_dir / name) for name in PROTO_FILES),
    ]
    rc = protoc.main(args)
    if rc != 0:
        raise RuntimeError(f"protoc failed with exit code {rc}")


def generate(out_dir: Path, proto_dir: Path = PROTO_DIR) -> list[Path]:
    """Generate the stubs into ``out_dir`` and return the written paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="gen_proto_") as tmp:
        raw_dir = Path(tmp)
        run_protoc(proto_dir, raw_dir)
        for name in GENERATED_FILES:
            raw = raw_dir / name
            if not raw.is_file():
                raise RuntimeError(f"protoc did not produce {name}")
            text = make_relative_imports(raw.read_text(encoding="utf-8"))
            target = out_dir / name
            with target.open("w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
            written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the Milvus 1.1 wire stubs from proto/.")
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"output directory (default: {DEFAULT_OUT.relative_to(REPO_ROOT)})",
    )
    args = parser.parse_args(argv)
    for path in generate(args.out.resolve()):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
