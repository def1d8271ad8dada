"""The client's wheel, built from a copy of ``client/`` as ``pip wheel ./client`` builds it: its metadata (name,
version, Python versions, exactly three dependencies, a protobuf floor no lower than the generated code's
runtime check), its files (every module of the package, the generated message classes and their stubs,
``py.typed``, nothing else), and that it imports from the wheel alone with nothing of the project."""

from __future__ import annotations

import email.parser
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parents[1]
PACKAGE = CLIENT / "mishards_client"
IMPORT_CHECK = r"""
import sys
import mishards_client
from mishards_client import Milvus, MetricType, IndexType, Status
from mishards_client._grpc import milvus_pb2, status_pb2
from mishards_client.aio import AsyncMilvus
from mishards_client.rest import RestMilvus
assert mishards_client.__file__.startswith(sys.argv[1]), mishards_client.__file__
reply = milvus_pb2.BoolReply(status=status_pb2.Status(error_code=0), bool_reply=True).SerializeToString()
assert milvus_pb2.BoolReply.FromString(reply).bool_reply
project = {"node", "coordinator", "mishards", "milvus_wire", "mishards_tools", "tests"}
assert not project & {name.split(".")[0] for name in sys.modules}, sorted(project & set(sys.modules))
print(mishards_client.__version__)
"""


def source_version() -> str:
    match = re.search(r'^__version__ = "([^"]+)"', (PACKAGE / "__init__.py").read_text(), re.MULTILINE)
    assert match is not None
    return match.group(1)


def gencode_version(module: Path) -> tuple[int, int, int]:
    match = re.search(r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*(\d+),\s*(\d+),"
                      r"\s*(\d+),", module.read_text())
    assert match is not None, f"{module.name}: no runtime version check found"
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        import setuptools
    except ImportError:
        pytest.skip("setuptools is not installed in this interpreter (the project's .venv has it)")
    if tuple(int(p) for p in setuptools.__version__.split(".")[:2]) < (77, 0):
        pytest.skip(f"setuptools {setuptools.__version__} < 77 (client/pyproject.toml's build requirement)")
    root = tmp_path_factory.mktemp("client-wheel")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(CLIENT / name, src / name)
    shutil.copytree(PACKAGE, src / "mishards_client", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(root / "dist"), str(src)], capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = (root / "dist").glob("*.whl")
    return built


def test_wheel_name_and_metadata(wheel: Path) -> None:
    version = source_version()
    assert wheel.name == f"mishards_client-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        meta = email.parser.Parser().parsestr(zf.read(f"mishards_client-{version}.dist-info/METADATA").decode())
        top_level = zf.read(f"mishards_client-{version}.dist-info/top_level.txt").decode().split()
    assert meta["Name"] == "mishards-client" and meta["Version"] == version
    assert meta["Requires-Python"] == ">=3.10"
    assert meta["License-Expression"] == "Apache-2.0"
    classifiers = meta.get_all("Classifier") or []
    assert {f"Programming Language :: Python :: 3.{minor}" for minor in (10, 11, 12, 13)} <= set(classifiers)
    requires = meta.get_all("Requires-Dist") or []
    names = {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in requires}  # type: ignore[union-attr]
    assert names == {"grpcio", "protobuf", "numpy"} and len(requires) == 3, requires
    assert not any(";" in r for r in requires), "no conditional (extra or marker) dependency"
    (protobuf,) = [r for r in requires if r.lower().startswith("protobuf")]
    floor = re.search(r">=\s*(\d+)\.(\d+)\.(\d+)", protobuf)
    assert floor is not None, protobuf
    needed = max(gencode_version(PACKAGE / "_grpc" / name) for name in ("milvus_pb2.py", "status_pb2.py"))
    assert tuple(int(g) for g in floor.groups()) >= needed, (protobuf, needed)
    assert top_level == ["mishards_client"]
    assert (meta.get_payload() or "").startswith("# mishards-client")


def test_wheel_holds_the_package_and_its_generated_code(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        files = {n for n in zf.namelist() if not n.startswith("mishards_client-")}
    source = {f"mishards_client/{p.relative_to(PACKAGE).as_posix()}" for p in PACKAGE.rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    assert files == source
    assert {"mishards_client/_grpc/__init__.py", "mishards_client/_grpc/milvus_pb2.py",
            "mishards_client/_grpc/status_pb2.py", "mishards_client/_grpc/milvus_pb2.pyi",
            "mishards_client/_grpc/status_pb2.pyi", "mishards_client/py.typed"} <= files


def test_wheel_imports_alone(wheel: Path, tmp_path: Path) -> None:
    unpacked = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(unpacked)
    # -s: no user site; PYTHONPATH puts the unpacked wheel before any installed copy of the client
    done = subprocess.run([sys.executable, "-s", "-c", IMPORT_CHECK, str(unpacked)], cwd=tmp_path,
                          env={"PYTHONPATH": str(unpacked), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == source_version()
