"""``mishards import`` against real processes: every format into a node and through a proxy (read back exactly),
a SIGKILL mid-import then a resume without duplicates, a batch of unknown outcome deleted and re-sent, and corrupt
files refused with nothing inserted. One writer node and one proxy serve the whole module."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mishards_client import Milvus

from mishards_tools import import_cli
from mishards_tools.journal import Journal, JournalHeader, journal_path
from tests.support.cluster import LocalCluster
from tests.support.nodeproc import ROOT
from tests.support.waiting import poll_for

RNG = np.random.default_rng(11)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    # No idempotency window (as Milvus 1.1): a batch sent twice is stored twice, unless the import deletes first.
    with LocalCluster(tmp_path_factory.mktemp("import-cluster"), readers=0,
                      writer_args=("--auto-flush-interval", "0", "--idempotency-window", "0")) as c:
        yield c


def client_of(address: str) -> Milvus:
    host, port = address.rsplit(":", 1)
    return Milvus(host=host, port=int(port))


@pytest.fixture(scope="module")
def node(cluster: LocalCluster) -> Iterator[Milvus]:
    with client_of(cluster.writer.address) as c:
        yield c


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = import_cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_stored(client: Milvus, name: str, ids: np.ndarray, vectors: np.ndarray) -> None:
    """Exactly these rows: the count matches, every id is present once with its exact vector."""
    status, count = client.count_entities(name)
    assert status.OK() and count == len(ids), (status, count, len(ids))
    status, stats = client.get_collection_stats(name)
    assert status.OK() and stats is not None
    stored: list[int] = []
    for part in stats["partitions"]:
        for seg in part.get("segments") or []:
            status, seg_ids = client.list_id_in_segment(name, seg["name"])
            assert status.OK(), status
            stored += seg_ids
    assert sorted(stored) == sorted(ids.tolist()), "ids stored differ from the file's (or repeat)"
    got: list[Any] = []
    for at in range(0, len(ids), 1000):  # the server's limit per call
        status, part = client.get_entity_by_id(name, ids[at:at + 1000].tolist())
        assert status.OK(), status
        got += part
    if vectors.dtype == np.uint8:
        assert b"".join(got) == vectors.tobytes()
    else:
        np.testing.assert_array_equal(np.array(got, dtype=np.float32), vectors)


def write_vecs(path: Path, rows: np.ndarray) -> None:
    dim = np.int32(rows.shape[1]).tobytes()
    path.write_bytes(b"".join(dim + r.tobytes() for r in rows))


def make_file(tmp: Path, fmt: str, n: int, d: int) -> tuple[Path, np.ndarray, np.ndarray]:
    """A file of ``fmt`` and the (ids, float32 or packed binary vectors) it must import as."""
    vecs = RNG.random((n, d)).astype(np.float32)
    seq = np.arange(n, dtype=np.int64)
    own = RNG.permutation(10 * n)[:n].astype(np.int64)
    if fmt == "npy":
        np.save(tmp / "f.npy", vecs)
        return tmp / "f.npy", seq, vecs
    if fmt == "npy-binary":
        bits = RNG.integers(0, 256, (n, d // 8), dtype=np.uint8)
        np.save(tmp / "b.npy", bits)
        return tmp / "b.npy", seq, bits
    if fmt == "fvecs":
        write_vecs(tmp / "f.fvecs", vecs)
        return tmp / "f.fvecs", seq, vecs
    if fmt == "bvecs":
        raw = RNG.integers(0, 256, (n, d), dtype=np.uint8)
        write_vecs(tmp / "f.bvecs", raw)
        return tmp / "f.bvecs", seq, raw.astype(np.float32)
    if fmt == "ivecs":
        ints = RNG.integers(-(2**20), 2**20, (n, d)).astype("<i4")  # exact in float32
        write_vecs(tmp / "f.ivecs", ints)
        return tmp / "f.ivecs", seq, ints.astype(np.float32)
    if fmt == "hdf5":
        with h5py.File(tmp / "f.hdf5", "w") as fh:
            fh.attrs["distance"] = "euclidean"
            fh.create_dataset("train", data=vecs)
        return tmp / "f.hdf5", seq, vecs
    if fmt == "hdf5-hamming":
        bools = RNG.integers(0, 2, (n, d)).astype(bool)
        with h5py.File(tmp / "h.hdf5", "w") as fh:
            fh.attrs["distance"] = "hamming"
            fh.create_dataset("train", data=bools)
        return tmp / "h.hdf5", seq, np.packbits(bools, axis=1)
    if fmt == "parquet":
        pq.write_table(pa.table({"id": own, "vector": pa.array(list(vecs), type=pa.list_(pa.float32()))}),
                       tmp / "f.parquet", row_group_size=97)
        return tmp / "f.parquet", own, vecs
    if fmt == "csv-list":
        with (tmp / "l.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "vector"])
            writer.writerows([int(i), "[" + ", ".join(repr(float(x)) for x in v) + "]"]
                             for i, v in zip(own, vecs, strict=True))
        return tmp / "l.csv", own, vecs
    assert fmt == "csv"
    with (tmp / "f.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", *(f"v{i}" for i in range(d))])
        writer.writerows([int(i), *(repr(float(x)) for x in v)] for i, v in zip(own, vecs, strict=True))
    return tmp / "f.csv", own, vecs


@pytest.mark.parametrize("fmt", ["npy", "npy-binary", "fvecs", "bvecs", "ivecs", "hdf5", "hdf5-hamming", "parquet",
                                 "csv", "csv-list"])
def test_each_format_into_the_node(cluster: LocalCluster, node: Milvus, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    path, ids, vectors = make_file(tmp_path, fmt, 530, 16)
    name = f"imp_{fmt.replace('-', '_')}"
    code, out, err = run(capsys, str(path), "--collection", name, "--uri", cluster.writer.address, "--create",
                         "--batch", "100", "--parallel", "3")
    assert code == 0, err
    assert "import complete: 530 rows sent" in out and "6 batches" in out
    assert re.search(r"rows sent in \d+\.\d s \([\d,]+ rows/s, the final flush included\)", out), out
    assert "file rows 530; already imported before this run 0; re-sent after an unknown outcome 0 batches; " \
           "failed batches 0" in out
    # the progress bar: percentage, rows, rate, elapsed time and ETA (one plain line at the end off a terminal)
    assert re.search(r"100\.0%  530/530 rows  [\d,]+ rows/s  elapsed \d+:\d\d  ETA 0:00", err), err
    assert_stored(node, name, ids, vectors)


def test_hdf5_test_dataset(cluster: LocalCluster, node: Milvus, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    """``--dataset test`` imports an ann-benchmarks file's queries instead of its train rows."""
    train, test = RNG.random((300, 8)).astype(np.float32), RNG.random((45, 8)).astype(np.float32)
    with h5py.File(tmp_path / "ab.hdf5", "w") as fh:
        fh.attrs["distance"] = "euclidean"
        fh.create_dataset("train", data=train)
        fh.create_dataset("test", data=test)
        fh.create_dataset("neighbors", data=np.zeros((45, 10), dtype=np.int32))
    code, out, err = run(capsys, str(tmp_path / "ab.hdf5"), "--collection", "imp_hdf5_test", "--uri",
                         cluster.writer.address, "--create", "--dataset", "test", "--batch", "20")
    assert code == 0, err
    assert "import complete: 45 rows sent" in out
    assert_stored(node, "imp_hdf5_test", np.arange(45), test)


@pytest.mark.parametrize("fmt", ["npy", "parquet"])
def test_through_the_proxy_into_a_partition(cluster: LocalCluster, node: Milvus, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    path, ids, vectors = make_file(tmp_path, fmt, 260, 8)
    name = f"imp_proxy_{fmt}"
    code, out, err = run(capsys, str(path), "--collection", name, "--uri", cluster.proxy.address, "--create",
                         "--partition", "p1", "--batch", "50", "--state-dir", str(tmp_path / "state"))
    assert code == 0, err
    assert "import complete: 260 rows sent" in out
    assert journal_path(path, name, "p1", tmp_path / "state").exists()
    assert_stored(node, name, ids, vectors)
    status, rows = node.get_collection_stats(name)
    assert status.OK() and rows is not None
    assert {p["tag"]: p["row_count"] for p in rows["partitions"]}["p1"] == 260


def test_sigkill_mid_import_then_resume_without_duplicates(cluster: LocalCluster, node: Milvus, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    n = 12_000
    path, ids, vectors = make_file(tmp_path, "npy", n, 8)
    name = "imp_killed"
    args = [str(path), "--collection", name, "--uri", cluster.writer.address, "--create", "--batch", "40",
            "--parallel", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "mishards_tools.import_cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = journal_path(path, name, "", None)
    try:
        poll_for(lambda: journal.exists() and len(Journal(journal).read().acked) >= 30, 30, what="30 acks")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    state = Journal(journal).read()
    assert not state.done and 30 <= len(state.acked) < n // 40, "the import was not interrupted mid-way"

    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert f"{len(state.acked)} batches acknowledged before" in err
    assert f"already imported before this run {len(state.acked) * 40:,}" in out
    assert f"re-sent after an unknown outcome {len(state.unknown)} batches" in out
    assert_stored(node, name, ids, vectors)


def test_ctrl_c_then_resume(cluster: LocalCluster, node: Milvus, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    n = 12_000
    path, ids, vectors = make_file(tmp_path, "npy", n, 8)
    args = [str(path), "--collection", "imp_interrupted", "--uri", cluster.writer.address, "--create", "--batch", "40"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "mishards_tools.import_cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = journal_path(path, "imp_interrupted", "", None)
    try:
        poll_for(lambda: journal.exists() and len(Journal(journal).read().acked) >= 10, 30, what="10 acks")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == 130 and "interrupted; run the same command again to resume" in err, err
    assert not Journal(journal).read().done
    code, out, err = run(capsys, *args)
    assert code == 0 and "import complete" in out, err
    assert_stored(node, "imp_interrupted", ids, vectors)


def test_unknown_outcome_batch_is_deleted_and_resent(cluster: LocalCluster, node: Milvus, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Rows 100..199 reached the server but their acknowledgement never reached the journal."""
    path, ids, vectors = make_file(tmp_path, "npy", 300, 8)
    name = "imp_unknown"
    args = [str(path), "--collection", name, "--uri", cluster.writer.address, "--batch", "100"]
    code, _, err = run(capsys, *args)
    assert code == 1 and f"collection {name!r} does not exist; pass --create" in err
    from mishards_client import MetricType

    assert node.create_collection({"collection_name": name, "dimension": 8, "metric_type": MetricType.L2}).OK()
    status, _ = node.insert(name, vectors[100:200], ids=ids[100:200])
    assert status.OK()
    status, _ = node.insert(name, vectors[:1], ids=ids[:1])  # the server keeps repeats: this row is now twice
    assert status.OK() and node.insert(name, vectors[:1], ids=ids[:1])[0].OK()
    assert node.flush([name]).OK() and node.count_entities(name)[1] == 102
    assert node.delete_entity_by_id(name, [int(ids[0])]).OK()
    stat = path.stat()
    journal = Journal(journal_path(path, name, "", None))
    journal.open(JournalHeader(str(path.resolve()), stat.st_size, stat.st_mtime_ns, name, "", 100, 300, 0))
    journal.sent(100, 200)
    journal.close()

    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert "1 of unknown outcome" in err and "re-sent after an unknown outcome 1 batches" in out
    assert "300 rows sent" in out
    assert node.flush([name]).OK()
    assert_stored(node, name, ids, vectors)

    code, out, err = run(capsys, *args)  # complete: a rerun sends nothing
    assert code == 0 and "nothing to send" in err and "0 rows sent" in out
    code, out, err = run(capsys, *args[:-1], "50")
    assert code == 1 and "belongs to another import (batch was 100, now 50)" in err
    assert_stored(node, name, ids, vectors)


def test_corrupt_files_are_refused_with_nothing_inserted(cluster: LocalCluster, node: Milvus, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    vecs = RNG.random((400, 8)).astype(np.float32)
    write_vecs(tmp_path / "cut.fvecs", vecs)
    raw = (tmp_path / "cut.fvecs").read_bytes()
    (tmp_path / "cut.fvecs").write_bytes(raw[:-7])
    code, out, err = run(capsys, str(tmp_path / "cut.fvecs"), "--collection", "imp_cut", "--uri",
                         cluster.writer.address, "--create", "--batch", "50")
    assert code == 2 and "refused, nothing sent" in err and "truncated or corrupt" in err and out == ""
    assert node.has_collection("imp_cut") == (node.has_collection("imp_cut")[0], False)

    # the last record's header is damaged: found before any batch goes, the existing collection stays empty
    from mishards_client import MetricType

    assert node.create_collection({"collection_name": "imp_bad", "dimension": 8, "metric_type": MetricType.L2}).OK()
    bad = bytearray(raw)
    bad[399 * 36:399 * 36 + 4] = np.int32(7).tobytes()
    (tmp_path / "bad.fvecs").write_bytes(bytes(bad))
    code, _, err = run(capsys, str(tmp_path / "bad.fvecs"), "--collection", "imp_bad", "--uri",
                       cluster.writer.address, "--batch", "50")
    assert code == 2 and "record 399 has dimension header 7, expected 8" in err
    assert node.flush(["imp_bad"]).OK()
    assert node.count_entities("imp_bad")[1] == 0
    assert not journal_path(tmp_path / "bad.fvecs", "imp_bad", "", None).exists()

    # a dimension that does not fit the collection: refused before sending
    np.save(tmp_path / "wide.npy", RNG.random((10, 9)).astype(np.float32))
    code, _, err = run(capsys, str(tmp_path / "wide.npy"), "--collection", "imp_bad", "--uri",
                       cluster.writer.address)
    assert code == 1 and "collection 'imp_bad' has dimension 8, the file's vectors 9" in err
    # scalar columns need a client with insert_entities
    pq.write_table(pa.table({"vector": pa.array(list(vecs[:5]), type=pa.list_(pa.float32())),
                             "age": np.arange(5)}), tmp_path / "s.parquet")
    code, _, err = run(capsys, str(tmp_path / "s.parquet"), "--collection", "imp_bad", "--uri",
                       cluster.writer.address)
    assert code == 1 and "hybrid collection 'imp_bad' does not exist; pass --create" in err and "age INT64" in err
    assert node.count_entities("imp_bad")[1] == 0


def corrupt_file(tmp: Path, fmt: str, n: int, d: int) -> tuple[Path, str]:
    """A file of ``fmt`` whose last row is bad, and the reason the import must give."""
    vecs = RNG.random((n, d)).astype(np.float32)
    if fmt == "npy":
        vecs[-1, 3] = np.nan
        np.save(tmp / "c.npy", vecs)
        return tmp / "c.npy", f"row {n - 1} holds NaN or infinity"
    if fmt == "hdf5":
        vecs[-1, 0] = np.inf
        with h5py.File(tmp / "c.hdf5", "w") as fh:
            fh.attrs["distance"] = "euclidean"
            fh.create_dataset("train", data=vecs)
        return tmp / "c.hdf5", f"row {n - 1} holds NaN or infinity"
    if fmt == "parquet":
        rows = [*list(vecs[:-1]), vecs[-1, :-1]]  # the last vector one component short
        pq.write_table(pa.table({"vector": pa.array(rows, type=pa.list_(pa.float32()))}), tmp / "c.parquet",
                       row_group_size=50)
        return tmp / "c.parquet", f"row {n - 1} has a vector of {d - 1} values, expected {d}"
    assert fmt == "csv"
    with (tmp / "c.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([f"v{i}" for i in range(d)])
        writer.writerows([repr(float(x)) for x in v] for v in vecs[:-1])
        writer.writerow(["0.5"] * (d - 1) + ["oops"])
    return tmp / "c.csv", f"c.csv:{n + 1}: column 'v{d - 1}': 'oops' is not a number"


@pytest.mark.parametrize("fmt", ["npy", "hdf5", "parquet", "csv"])
def test_corrupt_last_row_refused_before_anything_is_sent(cluster: LocalCluster, node: Milvus, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    """The bad row is the last one, after many good batches: the whole file is checked before the first batch, so
    the existing collection stays empty and no journal is written; with --create no collection is made."""
    from mishards_client import MetricType

    path, reason = corrupt_file(tmp_path, fmt, 450, 8)
    name = f"imp_corrupt_{fmt}"
    assert node.create_collection({"collection_name": name, "dimension": 8, "metric_type": MetricType.L2}).OK()
    code, out, err = run(capsys, str(path), "--collection", name, "--uri", cluster.writer.address, "--batch", "50")
    assert code == 2 and "refused, nothing sent" in err and reason in err and str(path) in err, err
    assert out == ""
    assert node.flush([name]).OK() and node.count_entities(name)[1] == 0
    assert not journal_path(path, name, "", None).exists()
    code, _, err = run(capsys, str(path), "--collection", name + "_new", "--uri", cluster.writer.address,
                       "--create")
    assert code == 2 and reason in err
    assert node.has_collection(name + "_new")[1] is False


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_scalar_columns_into_a_hybrid_collection(cluster: LocalCluster, node: Milvus, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    n, d = 340, 8
    vecs = RNG.random((n, d)).astype(np.float32)
    ids = RNG.permutation(5 * n)[:n].astype(np.int64)
    age = RNG.integers(-1000, 1000, n).astype(np.int32)
    price = RNG.random(n) * 100
    flag = RNG.integers(0, 2, n).astype(bool)
    if fmt == "parquet":
        path = tmp_path / "h.parquet"
        pq.write_table(pa.table({"id": ids, "vector": pa.array(list(vecs), type=pa.list_(pa.float32())),
                                 "age": age, "price": price, "flag": flag}), path)
        types = {"age": "INT32", "price": "DOUBLE", "flag": "BOOL"}
    else:
        path = tmp_path / "h.csv"
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "vector", "age", "price", "flag"])
            writer.writerows([int(i), " ".join(repr(float(x)) for x in v), int(a), repr(float(p)), str(bool(f)).lower()]
                             for i, v, a, p, f in zip(ids, vecs, age, price, flag, strict=True))
        types = {"age": "INT64", "price": "DOUBLE", "flag": "BOOL"}
    name = f"imp_hybrid_{fmt}"
    code, out, err = run(capsys, str(path), "--collection", name, "--uri", cluster.proxy.address, "--create",
                         "--batch", "100", "--parallel", "2")
    assert code == 0, err
    assert "scalars age, price, flag" in err and f"import complete: {n} rows sent" in out
    status, schema = node.describe_hybrid_collection(name)
    assert status.OK() and schema is not None
    assert {f.name: f.type.name for f in schema.scalars} == types
    assert node.count_hybrid_collection(name) == (node.count_hybrid_collection(name)[0], n)
    picked = [0, 1, 77, n - 1]
    status, entities = node.get_entities_by_id(name, [int(ids[i]) for i in picked])
    assert status.OK(), status
    for row, entity in zip(picked, entities, strict=True):
        assert entity is not None
        assert int(entity["age"]) == int(age[row]) and float(entity["price"]) == float(price[row])
        assert bool(entity["flag"]) == bool(flag[row])
        np.testing.assert_array_equal(np.asarray(entity["vector"], dtype=np.float32), vecs[row])
    if fmt == "csv":
        return
    # rows 100..199 of unknown outcome (stored, acknowledgement lost): deleted and sent again, present once
    journal = Journal(journal_path(path, name, "", None))
    header = journal.read().header
    journal.open(header)
    for start in range(0, n, 100):
        journal.sent(start, min(start + 100, n))
        if start != 100:
            journal.ack(start, min(start + 100, n))
    journal.close()
    code, out, err = run(capsys, str(path), "--collection", name, "--uri", cluster.proxy.address, "--batch", "100")
    assert code == 0, err
    assert "re-sent after an unknown outcome 1 batches" in out and "import complete: 100 rows sent" in out
    assert node.count_hybrid_collection(name)[1] == n
    status, entities = node.get_entities_by_id(name, [int(i) for i in ids[100:200]])
    assert status.OK() and all(e is not None for e in entities)
    assert [int(e["age"]) for e in entities if e is not None] == age[100:200].tolist()


def test_node_killed_mid_import_batches_retried_without_duplicates(cluster: LocalCluster, node: Milvus,
                                                                   tmp_path: Path) -> None:
    """The server dies with batches in flight (outcomes unknown: some were durable, their replies lost) and comes
    back on the same port: the import deletes and re-sends those batches and finishes with every row once."""
    n = 8_000
    path, ids, vectors = make_file(tmp_path, "npy", n, 8)
    name = "imp_server_killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "mishards_tools.import_cli", str(path), "--collection", name,
                             "--uri", cluster.writer.address, "--create", "--batch", "40", "--parallel", "3",
                             "--retries", "10"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = journal_path(path, name, "", None)
    try:
        poll_for(lambda: journal.exists() and len(Journal(journal).read().acked) >= 20, 30, what="20 acks")
        cluster.writer.kill()
        cluster.writer.start()  # the same port and storage: the log is replayed
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == 0, err
    assert "retrying" in err, "no batch failed while the server was down"
    assert "import complete" in out
    assert_stored(node, name, ids, vectors)
