"""``mishards bench`` against a real node on a small generated ann-benchmarks file: the table, results.json with
recall checked against an exact numpy oracle (FLAT is exact; an IVF sweep's recall grows with nprobe) and a PNG
that opens; ``--compare`` overlays a second run; bad arguments are refused clearly."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from mishards_client import Milvus

from mishards_tools import bench_cli
from mishards_tools.bench_plan import DEFAULT_SWEEP, default_nlist, default_pq_m, parse_pairs, plan_indexes, recall
from mishards_tools.connection import ToolError
from tests.support.cluster import LocalCluster
from tests.support.nodeproc import NodeProcess

ROWS, DIM, QUERIES, K = 5000, 16, 60, 10


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with NodeProcess(tmp_path_factory.mktemp("bench-node")) as n:
        yield n


def write_ann_file(path: Path, distance: str = "euclidean") -> None:
    """An ann-benchmarks file: clustered train rows, queries near them, exact neighbours by numpy."""
    rng = np.random.default_rng(3)
    centers = rng.standard_normal((40, DIM)) * 3
    train = (centers[rng.integers(0, 40, ROWS)] + rng.standard_normal((ROWS, DIM))).astype(np.float32)
    test = (centers[rng.integers(0, 40, QUERIES)] + rng.standard_normal((QUERIES, DIM))).astype(np.float32)
    if distance == "angular":  # 1 - cosine, as ann-benchmarks stores it
        unit = train / np.linalg.norm(train, axis=1, keepdims=True)
        dist = 1.0 - (test / np.linalg.norm(test, axis=1, keepdims=True)).astype(np.float64) @ unit.T.astype(np.float64)
    else:
        dist = np.sqrt(((test[:, None, :].astype(np.float64) - train[None, :, :]) ** 2).sum(-1))
    neighbors = np.argsort(dist, axis=1, kind="stable")[:, :20]
    with h5py.File(path, "w") as fh:
        fh.attrs["distance"] = distance
        fh.create_dataset("train", data=train)
        fh.create_dataset("test", data=test)
        fh.create_dataset("neighbors", data=neighbors.astype(np.int32))
        fh.create_dataset("distances", data=np.take_along_axis(dist, neighbors, 1).astype(np.float32))


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the signature and the chunk's CRC."""
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    length, kind = struct.unpack(">I4s", raw[8:16])
    assert kind == b"IHDR" and length == 13
    body = raw[16:16 + length]
    assert struct.unpack(">I", raw[29:33])[0] == zlib.crc32(kind + body)
    assert raw.rstrip(b"\0")[-8:-4] == b"IEND"
    width, height = struct.unpack(">II", body[:8])
    return width, height


def plotted(image: Any) -> set[str]:
    """The curves a plot says it draws (its PNG text), without the nq=... suffix: one entry per run and index."""
    described = image.text["Description"].split("; ")
    assert all(" nq=" in d for d in described) and len(described) % 2 == 0
    return {d.split(" nq=")[0] for d in described}


def test_bench_run_table_json_png_and_compare(node: NodeProcess, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "small.hdf5"
    write_ann_file(data)
    code = bench_cli.main([str(data), "--uri", node.address, "--index", "FLAT,IVF_FLAT,HNSW",
                           "--params", "nprobe=1,16 ef=10,64", "--build", "nlist=64 M=8 efConstruction=40",
                           "--threads", "1,2", "--out", str(tmp_path / "a"), "--label", "first",
                           "--collection", "bench_a"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "small.hdf5: 5,000 x 16 (euclidean), 60 queries, k=10" in out.out
    for row in ("FLAT       -", "IVF_FLAT   nprobe=1 ", "IVF_FLAT   nprobe=16", "HNSW       ef=10", "HNSW       ef=64"):
        assert row in out.out, row
    assert "q/s nq=1 x2" in out.out and "q/s nq=100" in out.out

    run = json.loads((tmp_path / "a" / "results.json").read_text())
    assert (run["rows"], run["dimension"], run["queries"], run["k"], run["label"]) == (ROWS, DIM, QUERIES, K, "first")
    points = {(p["index"], p["value"]): p for p in run["points"]}
    assert set(points) == {("FLAT", 0), ("IVF_FLAT", 1), ("IVF_FLAT", 16), ("HNSW", 10), ("HNSW", 64)}
    assert points[("FLAT", 0)]["recall"] == 1.0  # exact search finds the numpy oracle's neighbours
    assert points[("IVF_FLAT", 1)]["build"] == {"nlist": 64}
    assert points[("IVF_FLAT", 1)]["recall"] < points[("IVF_FLAT", 16)]["recall"]  # the sweep matters
    assert points[("HNSW", 64)]["recall"] >= 0.9
    for p in run["points"]:
        assert set(p["qps_nq1"]) == {"1", "2"} and min(p["qps_nq1"].values()) > 0 and p["qps_batched"] > 0
        assert 0 < p["p50_ms"] <= p["p99_ms"]
    with Milvus(host=node.address.rsplit(":", 1)[0], port=int(node.address.rsplit(":", 1)[1])) as client:
        assert client.has_collection("bench_a")[1] is False  # dropped afterwards

    width, height = png_size(tmp_path / "a" / "plot.png")
    assert (width, height) == (800, 550)
    from PIL import Image

    with Image.open(tmp_path / "a" / "plot.png") as image:
        image.load()  # decodes every pixel
        assert image.size == (800, 550) and image.getextrema() != ((255, 255), (255, 255), (255, 255), (255, 255))
        assert plotted(image) == {"first: FLAT", "first: IVF_FLAT", "first: HNSW"}

    # a second run overlaid on the first: both tables printed, one plot with both
    code = bench_cli.main([str(data), "--uri", node.address, "--index", "IVF_FLAT", "--params", "nprobe=4",
                           "--build", "nlist=64", "--threads", "1", "--queries", "20", "--out", str(tmp_path / "b"),
                           "--compare", str(tmp_path / "a" / "results.json"), "--label", "second"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert out.out.count("small.hdf5: 5,000 x 16") == 2 and "20 queries" in out.out
    assert png_size(tmp_path / "b" / "plot.png") == (800, 550)
    with Image.open(tmp_path / "b" / "plot.png") as image:
        assert plotted(image) == {"second: IVF_FLAT", "first: FLAT", "first: IVF_FLAT", "first: HNSW"}
    assert json.loads((tmp_path / "b" / "results.json").read_text())["label"] == "second"


def test_bench_angular_file_is_searched_with_ip(node: NodeProcess, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """An angular file: normalised vectors in an IP collection; exact search finds every true neighbour."""
    data = tmp_path / "angular.hdf5"
    write_ann_file(data, "angular")
    code = bench_cli.main([str(data), "--uri", node.address, "--index", "FLAT", "--threads", "1", "--queries", "30",
                           "--out", str(tmp_path / "o")])
    out = capsys.readouterr()
    assert code == 0, out.err
    run = json.loads((tmp_path / "o" / "results.json").read_text())
    assert run["distance"] == "angular" and [p["recall"] for p in run["points"]] == [1.0]


def test_bench_hamming_file_with_ties(node: NodeProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Binary vectors (boolean rows, packed on the way): hamming distances tie often, and exact search still
    counts as recall 1; an IVF probing every list is exact too."""
    rng = np.random.default_rng(9)
    train = rng.integers(0, 2, (ROWS, 64)).astype(bool)
    test = rng.integers(0, 2, (20, 64)).astype(bool)
    dist = (test[:, None, :] != train[None, :, :]).sum(-1)
    neighbors = np.argsort(dist, axis=1, kind="stable")[:, :K]
    with h5py.File(tmp_path / "bits.hdf5", "w") as fh:
        fh.attrs["distance"] = "hamming"
        fh.create_dataset("train", data=train)
        fh.create_dataset("test", data=test)
        fh.create_dataset("neighbors", data=neighbors)
        fh.create_dataset("distances", data=np.take_along_axis(dist, neighbors, 1).astype(np.float32))
    code = bench_cli.main([str(tmp_path / "bits.hdf5"), "--uri", node.address, "--index", "FLAT,IVF_FLAT",
                           "--build", "nlist=16", "--params", "nprobe=1,16", "--threads", "1",
                           "--out", str(tmp_path / "o")])
    out = capsys.readouterr()
    assert code == 0, out.err
    run = json.loads((tmp_path / "o" / "results.json").read_text())
    assert (run["distance"], run["dimension"]) == ("hamming", 64)
    recalls = {(p["index"], p["value"]): p["recall"] for p in run["points"]}
    assert recalls[("FLAT", 0)] == 1.0 and recalls[("IVF_FLAT", 16)] == 1.0
    assert recalls[("IVF_FLAT", 1)] < 1.0


def test_index_the_server_refuses_is_reported_and_the_run_goes_on(node: NodeProcess, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "small.hdf5"
    write_ann_file(data)
    code = bench_cli.main([str(data), "--uri", node.address, "--index", "IVF_PQ,FLAT", "--build", "m=7",
                           "--threads", "1", "--queries", "10", "--out", str(tmp_path / "o")])
    out = capsys.readouterr()
    assert code == 1, out.err
    assert "IVF_PQ     failed: create_index IVF_PQ:" in out.out and "FLAT       -" in out.out
    run = json.loads((tmp_path / "o" / "results.json").read_text())
    assert list(run["failures"]) == ["IVF_PQ"] and [p["index"] for p in run["points"]] == ["FLAT"]
    assert png_size(tmp_path / "o" / "plot.png") == (800, 550)


def test_bench_refusals(node: NodeProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "small.hdf5"
    write_ann_file(data)
    cases = [
        (["--index", "BOGUS"], "unknown index 'BOGUS'"),
        (["--params", "nprobe=a"], "--params 'nprobe=a': expected NAME=V1,V2"),
        (["--k", "50"], "the ground truth has 20 neighbours a query; --k 50 needs as many"),
        (["--compare", str(data)], "not a readable results.json"),
        (["--threads", "0"], "must be positive"),
    ]
    for extra, message in cases:
        code = bench_cli.main([str(data), "--uri", node.address, "--out", str(tmp_path / "x"), *extra])
        err = capsys.readouterr().err
        assert code == 1 and message in err, (extra, err)
    with h5py.File(tmp_path / "plain.hdf5", "w") as fh:
        fh.create_dataset("train", data=np.zeros((3, 2), np.float32))
    assert bench_cli.main([str(tmp_path / "plain.hdf5"), "--uri", node.address]) == 1
    assert "no 'test' dataset: not an ann-benchmarks file" in capsys.readouterr().err


def test_recall_counts_ties_as_hits() -> None:
    truth = np.array([[0, 1, 2]])
    truth_d = np.array([[1.0, 2.0, 2.0]])
    ids = np.array([[0, 5, 1]])  # id 5 is at distance 2.0 too: a tie with id 2, not a miss
    dist = np.array([[1.0, 4.0, 4.0]])  # squared L2 from the server
    assert recall(ids, dist, truth, truth_d, 3, "euclidean") == 1.0
    assert recall(ids, dist, truth, None, 3, "euclidean") == pytest.approx(2 / 3)
    far = np.array([[1.0, 4.0, 9.0]])
    assert recall(ids, far, truth, truth_d, 3, "euclidean") == pytest.approx(2 / 3)


def test_plan_indexes_defaults_overrides_and_limits() -> None:
    plans = plan_indexes(["ivf_flat", "HNSW", "FLAT", "ANNOY", "IVF_PQ"], 100_000, 96, 10,
                         parse_pairs("nprobe=1,64,4096 ef=5,10,80", "--params"), parse_pairs("M=8", "--build"))
    ivf, hnsw, flat, annoy, pq = plans
    assert ivf.build == {"nlist": 1264} and ivf.values == (1, 64)  # nprobe above nlist dropped
    assert hnsw.build == {"M": 8, "efConstruction": 200} and hnsw.values == (10, 80)  # ef below k dropped
    assert (flat.param, flat.values) == ("", (0,))
    assert annoy.param == "search_k" and annoy.values == DEFAULT_SWEEP["search_k"]
    assert pq.build == {"nlist": 1264, "m": 16}
    assert default_nlist(1000) == 25 and default_nlist(10**9) == 16384
    assert default_pq_m(12) == 4
    with pytest.raises(ToolError, match="unknown index 'IVF'"):
        plan_indexes(["IVF"], 10, 4, 1, {}, {})
    with pytest.raises(ToolError, match="expected NAME=V1,V2"):
        parse_pairs("nprobe", "--params")


def test_bench_through_a_proxy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same run through a proxy with one read node: the writer builds, the read node answers."""
    data = tmp_path / "small.hdf5"
    write_ann_file(data)
    with LocalCluster(tmp_path / "cluster", readers=1) as cluster:
        code = bench_cli.main([str(data), "--uri", cluster.proxy.address, "--index", "FLAT,IVF_FLAT",
                               "--params", "nprobe=2,32", "--build", "nlist=64", "--threads", "2",
                               "--queries", "30", "--out", str(tmp_path / "p")])
        assert code == 0, capsys.readouterr().err
        # the same file against the writer node directly, overlaid on the proxy's run: two endpoints, one plot
        code = bench_cli.main([str(data), "--uri", cluster.writer.address, "--index", "IVF_FLAT",
                               "--params", "nprobe=2,32", "--build", "nlist=64", "--threads", "1",
                               "--queries", "30", "--out", str(tmp_path / "w"),
                               "--compare", str(tmp_path / "p" / "results.json")])
    out = capsys.readouterr()
    assert code == 0, out.err
    from PIL import Image

    with Image.open(tmp_path / "w" / "plot.png") as image:
        assert plotted(image) == {f"{cluster.writer.address}: IVF_FLAT", f"{cluster.proxy.address}: FLAT",
                                  f"{cluster.proxy.address}: IVF_FLAT"}
    run = json.loads((tmp_path / "p" / "results.json").read_text())
    assert run["endpoint"] == cluster.proxy.address
    recalls = {(p["index"], p["value"]): p["recall"] for p in run["points"]}
    assert recalls[("FLAT", 0)] == 1.0 and recalls[("IVF_FLAT", 2)] < recalls[("IVF_FLAT", 32)]
