"""A fresh read node's warm-up reads the segment files it maps (real processes, page cache dropped first): with
the default limit its share's index files are in memory when it reports ready, with ``--warm-read-limit 0``
they are only mapped; either way searches answer exactly as the index does (IVF probing every list: exact)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from milvus_wire import milvus_pb2
from node.page_in import resident_share
from tests.support import requests as rq
from tests.support.nodeproc import NodeProcess
from tests.support.waiting import free_port, poll_for
from tests.test_reader_warmup import _health

DIM = 32
ROWS = 20_000
NLIST = 16
NAME = "warm_reads"


def index_files(storage: Path) -> list[Path]:
    return [p for p in storage.rglob("index-*") if p.is_file()]


def drop_from_page_cache(files: list[Path]) -> None:
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, np.ndarray]]:
    root = tmp_path_factory.mktemp("warm_reads")
    base = np.random.default_rng(4).random((ROWS, DIM), dtype=np.float32)
    with NodeProcess(root / "writer", ["--auto-flush-interval", "0"], storage=root / "storage") as writer:
        stub = writer.stub()
        rq.ok(rq.create(stub, NAME, DIM, rq.L2, ifs=2))  # two segments of 10k rows (1.25 MB each): none merge
        for half in range(2):
            part = slice(half * ROWS // 2, (half + 1) * ROWS // 2)
            rq.insert_ok(stub, NAME, base[part], np.arange(ROWS)[part])
            rq.ok(rq.flush(stub, NAME))
        rq.ok(stub.CreateIndex(milvus_pb2.IndexParam(collection_name=NAME, index_type=2,
                                                     extra_params=rq.extra_params({"nlist": NLIST})), timeout=300))
    assert len(index_files(root / "storage")) == 2
    yield root / "storage", base


def fresh_reader(storage: Path, workdir: Path, extra: list[str]) -> NodeProcess:
    """A read node over ``storage`` whose index files are not in the page cache, once it reports ready."""
    files = index_files(storage)
    drop_from_page_cache(files)
    assert resident_share(files) < 0.1
    port = free_port()
    node = NodeProcess(workdir, ["--role", "ro", "--port", str(port), "--membership", f"static://127.0.0.1:{port}=ro",
                                 *extra], meta_uri=f"sqlite:///{storage / 'meta.sqlite'}", storage=storage)
    node.start()
    poll_for(lambda: _health(node.address) == 1, 60, interval=0.1, what="the read node SERVING")  # warm
    return node


@pytest.mark.parametrize("limit", ["", "0"])
def test_warm_up_reads_the_index_files_unless_told_not_to(storage: tuple[Path, np.ndarray], tmp_path: Path,
                                                          limit: str) -> None:
    path, base = storage
    node = fresh_reader(path, tmp_path / "ro", ["--warm-read-limit", limit] if limit else [])
    try:
        share = resident_share(index_files(path))
        if limit == "0":
            assert share < 0.5, share  # mapped: the header and the coarse centroids only
        else:
            assert share == 1.0, share
        queries = base[:3] + 0.01
        status, got_ids, got_dist = rq.search(node.stub(), NAME, queries, 5, params={"nprobe": NLIST})
        assert status.error_code == 0, status.reason
        rq.assert_search_exact(got_ids, got_dist, base, np.arange(ROWS), queries, 5, rq.L2)
    finally:
        node.stop()
