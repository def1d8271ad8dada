"""Reading the ``.npy`` files the node writes, without ``ast``.

``numpy.load`` parses every ``.npy`` header with ``ast.literal_eval``, which is not thread-safe on CPython
3.11 (python/cpython#106905: concurrent calls fail with "AST constructor recursion depth mismatch"). Search
threads load segment files and delete logs concurrently, so the node reads the header itself: the format is
fixed (a magic string, a version, a little-endian length, and a dict literal with ``descr``, ``fortran_order``
and ``shape``), and the node only reads files it wrote with ``numpy.save``.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np

MAGIC = b"\x93NUMPY"
_DESCR = re.compile(r"""['"]descr['"]\s*:\s*['"]([^'"]+)['"]""")
_FORTRAN = re.compile(r"""['"]fortran_order['"]\s*:\s*(True|False)""")
_SHAPE = re.compile(r"""['"]shape['"]\s*:\s*\(([^)]*)\)""")


def parse_header(text: str) -> tuple[np.dtype, tuple[int, ...]]:
    """The dtype and shape of a C-order array from an ``.npy`` header dict literal."""
    descr, fortran, shape = _DESCR.search(text), _FORTRAN.search(text), _SHAPE.search(text)
    if descr is None or fortran is None or shape is None:
        raise ValueError(f"unsupported .npy header: {text[:120]!r}")
    if fortran.group(1) == "True":
        raise ValueError("Fortran-ordered .npy files are not supported")
    dims = tuple(int(part) for part in shape.group(1).replace(" ", "").split(",") if part)
    dtype = np.dtype(descr.group(1))
    if dtype.hasobject:
        raise ValueError("object arrays are not supported")
    return dtype, dims


def read_header(fh: object) -> tuple[np.dtype, tuple[int, ...], int]:
    """``(dtype, shape, data offset)`` of an open ``.npy`` file positioned at its start."""
    read = fh.read  # type: ignore[attr-defined]
    prefix = read(8)
    if len(prefix) != 8 or prefix[:6] != MAGIC:
        raise ValueError("not a .npy file")
    major = prefix[6]
    if major == 1:
        (length,) = struct.unpack("<H", read(2))
        start = 10
    elif major in (2, 3):
        (length,) = struct.unpack("<I", read(4))
        start = 12
    else:
        raise ValueError(f"unsupported .npy version {major}")
    raw = read(length)
    if len(raw) != length:
        raise ValueError("truncated .npy header")
    dtype, shape = parse_header(raw.decode("utf-8" if major == 3 else "latin1"))
    return dtype, shape, start + length


def load(path: Path, mmap: bool) -> np.ndarray:
    """The array in ``path``: memory-mapped read-only, or read into memory."""
    with open(path, "rb") as fh:
        dtype, shape, offset = read_header(fh)
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if mmap:
            if count == 0:
                return np.zeros(shape, dtype=dtype)
            return np.memmap(fh, dtype=dtype, mode="r", offset=offset, shape=shape)
        data = np.fromfile(fh, dtype=dtype, count=count)
    if data.size != count:
        raise ValueError(f"truncated .npy data: {data.size} of {count} values")
    return data.reshape(shape)
