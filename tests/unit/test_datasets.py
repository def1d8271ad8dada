"""Dataset readers on small files written here: every format read back exactly, in chunks; truncated, corrupt
and inconsistent files refused by ``validate()`` with a message naming the problem."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mishards_tools.dataset_types import DatasetError
from mishards_tools.datasets import ReaderOptions, open_dataset
from mishards_tools.datasets_hdf5 import read_ground_truth
from mishards_tools.datasets_tabular import layout_of

RNG = np.random.default_rng(7)


def write_vecs(path: Path, rows: np.ndarray) -> None:
    """TEXMEX layout: int32 dimension, then the components, per record."""
    dim = np.full((rows.shape[0], 1), rows.shape[1], dtype="<i4")
    path.write_bytes(b"".join(d.tobytes() + r.tobytes() for d, r in zip(dim, rows, strict=True)))


def read_all(path: Path, size: int = 7, options: ReaderOptions | None = None) -> tuple[np.ndarray, list]:
    ds = open_dataset(path, options)
    ds.validate()
    chunks = list(ds.chunks(size))
    assert [c.start for c in chunks] == list(range(0, ds.info.rows, size))
    return np.concatenate([c.vectors for c in chunks]), chunks


@pytest.mark.parametrize(("suffix", "dtype"), [(".fvecs", "<f4"), (".ivecs", "<i4"), (".bvecs", "u1")])
def test_vecs_round_trip(tmp_path: Path, suffix: str, dtype: str) -> None:
    rows = (RNG.random((23, 12)) * 200).astype(dtype)
    path = tmp_path / f"data{suffix}"
    write_vecs(path, rows)
    vectors, _ = read_all(path)
    info = open_dataset(path).info
    assert (info.rows, info.dimension, info.binary, info.has_ids) == (23, 12, False, False)
    assert vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors, rows.astype(np.float32))


def test_fvecs_truncated_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cut.fvecs"
    write_vecs(path, RNG.random((10, 8)).astype("<f4"))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DatasetError, match=r"truncated or corrupt.*9 whole records, 31 bytes left over"):
        open_dataset(path)


def test_fvecs_bad_header_mid_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.fvecs"
    write_vecs(path, RNG.random((10, 8)).astype("<f4"))
    raw = bytearray(path.read_bytes())
    raw[6 * 36:6 * 36 + 4] = np.int32(9).tobytes()  # record 6's header says 9, the size still divides
    path.write_bytes(bytes(raw))
    ds = open_dataset(path)
    with pytest.raises(DatasetError, match="record 6 has dimension header 9, expected 8"):
        ds.validate()


def test_vecs_garbage_header_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "junk.fvecs"
    path.write_bytes(np.int32(-3).tobytes() + b"\0" * 8)
    with pytest.raises(DatasetError, match="dimension header is -3"):
        open_dataset(path)
    path.write_bytes(b"\1")
    with pytest.raises(DatasetError, match="empty or truncated"):
        open_dataset(path)


def test_npy_float_and_binary(tmp_path: Path) -> None:
    floats = RNG.random((30, 5)).astype(np.float64)
    np.save(tmp_path / "f.npy", floats)
    vectors, _ = read_all(tmp_path / "f.npy")
    np.testing.assert_array_equal(vectors, floats.astype(np.float32))
    bits = RNG.integers(0, 256, (9, 4), dtype=np.uint8)
    np.save(tmp_path / "b.npy", bits)
    ds = open_dataset(tmp_path / "b.npy")
    assert (ds.info.binary, ds.info.dimension) == (True, 32)
    vectors, _ = read_all(tmp_path / "b.npy", 4)
    assert vectors.dtype == np.uint8 and vectors.tobytes() == bits.tobytes()


def test_npy_refusals(tmp_path: Path) -> None:
    np.save(tmp_path / "one.npy", np.zeros(5, dtype=np.float32))
    with pytest.raises(DatasetError, match=r"expected a 2-D array.*\(5,\)"):
        open_dataset(tmp_path / "one.npy")
    bad = RNG.random((20, 3)).astype(np.float32)
    bad[13, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(DatasetError, match="row 13 holds NaN or infinity"):
        open_dataset(tmp_path / "nan.npy").validate()
    np.save(tmp_path / "cut.npy", RNG.random((100, 4)).astype(np.float32))
    raw = (tmp_path / "cut.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(raw[:-50])
    with pytest.raises(DatasetError, match=r"not a readable \.npy file"):
        open_dataset(tmp_path / "cut.npy")
    (tmp_path / "x.txt").write_text("1 2 3")
    with pytest.raises(DatasetError, match=r"unknown format '\.txt'"):
        open_dataset(tmp_path / "x.txt")


def write_hdf5(path: Path, distance: str, train: np.ndarray, test: np.ndarray | None = None) -> None:
    with h5py.File(path, "w") as fh:
        fh.attrs["distance"] = distance
        fh.create_dataset("train", data=train)
        if test is not None:
            fh.create_dataset("test", data=test)
            fh.create_dataset("neighbors", data=np.zeros((len(test), 3), dtype=np.int32))
            fh.create_dataset("distances", data=np.zeros((len(test), 3), dtype=np.float32))


def test_hdf5_euclidean_angular_and_ground_truth(tmp_path: Path) -> None:
    train = RNG.random((25, 6)).astype(np.float32)
    write_hdf5(tmp_path / "e.hdf5", "euclidean", train, train[:4])
    vectors, _ = read_all(tmp_path / "e.hdf5", 10)
    assert open_dataset(tmp_path / "e.hdf5").info.metric == "L2"
    np.testing.assert_array_equal(vectors, train)
    queries, neighbors, distances, distance = read_ground_truth(tmp_path / "e.hdf5")
    assert queries.shape == (4, 6) and neighbors.shape == (4, 3)
    assert distances is not None and distance == "euclidean"

    write_hdf5(tmp_path / "a.hdf5", "angular", train * 3, train[:2] * 5)
    vectors, _ = read_all(tmp_path / "a.hdf5")
    assert open_dataset(tmp_path / "a.hdf5").info.metric == "IP"
    np.testing.assert_allclose(vectors, train / np.linalg.norm(train, axis=1, keepdims=True), rtol=1e-6)
    queries, *_ = read_ground_truth(tmp_path / "a.hdf5")
    np.testing.assert_allclose(np.linalg.norm(queries, axis=1), 1.0, rtol=1e-6)

    with pytest.raises(DatasetError, match=r"no dataset 'queries' \(it has: distances, neighbors, test, train\)"):
        open_dataset(tmp_path / "e.hdf5", ReaderOptions(hdf5_dataset="queries"))
    test_rows, _ = read_all(tmp_path / "e.hdf5", options=ReaderOptions(hdf5_dataset="test"))
    np.testing.assert_array_equal(test_rows, train[:4])


def test_hdf5_binary_and_refusals(tmp_path: Path) -> None:
    bits = RNG.integers(0, 2, (12, 16)).astype(bool)
    write_hdf5(tmp_path / "h.hdf5", "hamming", bits)
    ds = open_dataset(tmp_path / "h.hdf5")
    assert (ds.info.binary, ds.info.dimension, ds.info.metric) == (True, 16, "HAMMING")
    vectors, _ = read_all(tmp_path / "h.hdf5", 5)
    np.testing.assert_array_equal(vectors, np.packbits(bits, axis=1))
    write_hdf5(tmp_path / "odd.hdf5", "mahalanobis", RNG.random((3, 2)))
    with pytest.raises(DatasetError, match="unknown ann-benchmarks distance 'mahalanobis'"):
        open_dataset(tmp_path / "odd.hdf5")
    (tmp_path / "fake.hdf5").write_bytes(b"not hdf5 at all")
    with pytest.raises(DatasetError, match="not a readable HDF5 file"):
        open_dataset(tmp_path / "fake.hdf5")
    write_hdf5(tmp_path / "nan.hdf5", "euclidean", np.array([[1.0, 2.0], [np.inf, 0.0]]))
    with pytest.raises(DatasetError, match="row 1 holds NaN or infinity"):
        open_dataset(tmp_path / "nan.hdf5").validate()


def test_parquet_list_vector_ids_and_scalars(tmp_path: Path) -> None:
    n, d = 31, 4
    vecs = RNG.random((n, d)).astype(np.float32)
    ids = RNG.permutation(1000)[:n].astype(np.int64)
    table = pa.table({"id": ids, "vector": pa.array(list(vecs), type=pa.list_(pa.float32())),
                      "age": np.arange(n, dtype=np.int32), "price": RNG.random(n), "ok": np.arange(n) % 2 == 0})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=10)
    ds = open_dataset(tmp_path / "t.parquet")
    assert (ds.info.rows, ds.info.dimension, ds.info.has_ids, ds.info.scalars) == (n, d, True, ("age", "price", "ok"))
    vectors, chunks = read_all(tmp_path / "t.parquet", 8)
    np.testing.assert_array_equal(vectors, vecs)
    np.testing.assert_array_equal(np.concatenate([c.ids for c in chunks]), ids)
    np.testing.assert_array_equal(np.concatenate([c.scalars["age"] for c in chunks]), np.arange(n))
    assert np.concatenate([c.scalars["ok"] for c in chunks]).dtype == np.bool_


def test_parquet_component_columns_and_refusals(tmp_path: Path) -> None:
    vecs = RNG.random((6, 3)).astype(np.float32)
    pq.write_table(pa.table({f"v{i}": vecs[:, i] for i in range(3)}), tmp_path / "c.parquet")
    vectors, chunks = read_all(tmp_path / "c.parquet", 4)
    np.testing.assert_array_equal(vectors, vecs)
    assert chunks[0].ids is None and chunks[0].scalars == {}

    ragged = pa.table({"id": [1, 2, 3], "vector": [[1.0, 2.0], [3.0, 4.0], [5.0]]})
    pq.write_table(ragged, tmp_path / "r.parquet")
    with pytest.raises(DatasetError, match="row 2 has a vector of 1 values, expected 2"):
        open_dataset(tmp_path / "r.parquet").validate()
    dup = pa.table({"id": [5, 6, 5], "vector": [[1.0], [2.0], [3.0]]})
    pq.write_table(dup, tmp_path / "d.parquet")
    with pytest.raises(DatasetError, match="id 5 appears more than once"):
        open_dataset(tmp_path / "d.parquet").validate()
    neg = pa.table({"id": [1, -4], "vector": [[1.0], [2.0]]})
    pq.write_table(neg, tmp_path / "n.parquet")
    with pytest.raises(DatasetError, match="row 1 has a negative id"):
        open_dataset(tmp_path / "n.parquet").validate()
    text = pa.table({"vector": [[1.0], [2.0]], "name": ["a", "b"]})
    pq.write_table(text, tmp_path / "s.parquet")
    with pytest.raises(DatasetError, match=r"scalar column 'name'.*only numbers"):
        open_dataset(tmp_path / "s.parquet").validate()
    raw = (tmp_path / "c.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match="not a readable Parquet file"):
        open_dataset(tmp_path / "cut.parquet")


def write_csv(path: Path, header: list[str], rows: Sequence[Sequence[object]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def test_csv_vector_text_and_scalar_kinds(tmp_path: Path) -> None:
    vecs = RNG.random((9, 3)).astype(np.float32)
    rows = [[i * 10, "[" + ", ".join(repr(float(x)) for x in v) + "]", i - 4, "true" if i % 2 else "false",
             i if i != 5 else 2.5] for i, v in enumerate(vecs)]
    write_csv(tmp_path / "t.csv", ["id", "vector", "age", "flag", "score"], rows)
    vectors, chunks = read_all(tmp_path / "t.csv", 4)
    np.testing.assert_array_equal(vectors, vecs)
    np.testing.assert_array_equal(np.concatenate([c.ids for c in chunks]), np.arange(9) * 10)
    assert chunks[0].scalars["age"].dtype == np.int64 and chunks[0].scalars["flag"].dtype == np.bool_
    assert chunks[0].scalars["score"].dtype == np.float64  # one 2.5 makes the column float
    assert open_dataset(tmp_path / "t.csv").info.scalars == ("age", "flag", "score")

    write_csv(tmp_path / "v.csv", ["v1", "v0"], [[1, 2], [3, 4]])
    vectors, _ = read_all(tmp_path / "v.csv")
    np.testing.assert_array_equal(vectors, [[2, 1], [4, 3]])


def test_csv_refusals(tmp_path: Path) -> None:
    write_csv(tmp_path / "f.csv", ["id", "vector"], [[1, "1 2"], [2, "3 4"], [3]])
    with pytest.raises(DatasetError, match=r"f.csv:4: 1 fields, the header has 2"):
        open_dataset(tmp_path / "f.csv").validate()
    write_csv(tmp_path / "d.csv", ["id", "vector"], [[1, "1 2"], [2, "3 4 5"]])
    with pytest.raises(DatasetError, match=r"d.csv:3: a vector of 3 values, expected 2"):
        open_dataset(tmp_path / "d.csv").validate()
    write_csv(tmp_path / "s.csv", ["vector", "name"], [["1", "bob"]])
    with pytest.raises(DatasetError, match=r"s.csv:2: column 'name': 'bob' is not a number"):
        open_dataset(tmp_path / "s.csv").validate()
    write_csv(tmp_path / "u.csv", ["id", "vector"], [[1, "1"], [1, "2"]])
    with pytest.raises(DatasetError, match="id 1 appears more than once"):
        open_dataset(tmp_path / "u.csv").validate()
    write_csv(tmp_path / "x.csv", ["id", "vector"], [[1, "[1, nope]"]])
    with pytest.raises(DatasetError, match="not a list of numbers"):
        open_dataset(tmp_path / "x.csv").validate()
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(DatasetError, match="empty CSV file"):
        open_dataset(tmp_path / "e.csv")
    # a bad component or id deep in a chunk: the message names its own line, column and text
    good = [[i, 0.5, 1.5] for i in range(1, 8)]
    write_csv(tmp_path / "c.csv", ["id", "v0", "v1"], [*good, [8, 0.5, "1,5"], [9, 0.5, 0.5]])
    with pytest.raises(DatasetError, match=r"c.csv:9: column 'v1': '1,5' is not a number"):
        open_dataset(tmp_path / "c.csv").validate()
    write_csv(tmp_path / "i.csv", ["id", "vector"], [[1, "1 2"], [2, "3 4"], ["3.5", "5 6"]])
    with pytest.raises(DatasetError, match=r"i.csv:4: column 'id': '3.5' is not an integer"):
        open_dataset(tmp_path / "i.csv").validate()


def test_layout_of_names() -> None:
    lay = layout_of(["x", "v1", "id", "v0", "y"], "id", "vector", Path("f"))
    assert (lay.id_column, lay.vector, lay.components, lay.scalars) == ("id", None, ("v0", "v1"), ("x", "y"))
    with pytest.raises(DatasetError, match="without gaps"):
        layout_of(["v0", "v2"], "id", "vector", Path("f"))
    with pytest.raises(DatasetError, match="no vector"):
        layout_of(["id", "a"], "id", "vector", Path("f"))
    assert layout_of(["emb", "key"], "key", "emb", Path("f")).vector == "emb"
