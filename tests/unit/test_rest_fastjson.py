"""The float vectors of a REST insert read straight from the body text (coordinator/rest/fastjson.py) give what
the general path (orjson, then numpy) gives, or are not taken: the insert endpoint answers the same reply and
sends the same request whichever path reads the body, for valid bodies, invalid ones and everything between."""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any
from unittest import mock

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator.rest import app, bodies, fastjson
from coordinator.rest.replies import Reply
from coordinator.rest.routes import Match, match
from milvus_wire import milvus_pb2, wire_fastpath_pb2
from tests.support.rest_backend import FakeBackend


def _route(method: str, path: str) -> Match:
    found = match(method, path)
    assert found is not None
    return found


INSERT = _route("POST", "/collections/c/vectors")


def _insert(body: bytes, fast: bool, binary: bool | None = False,
            metric: int = 1) -> tuple[Reply, list[tuple[str, bytes]]]:
    backend = FakeBackend(binary, metric)
    with contextlib.ExitStack() as stack:
        if not fast:
            stack.enter_context(mock.patch.object(fastjson, "split", lambda body, path=("vectors",): None))
        reply = app.run_endpoint(backend, INSERT, {}, body)
    return reply, backend.calls


def _same_either_way(body: bytes, binary: bool | None = False) -> Reply:
    fast_reply, fast_calls = _insert(body, True, binary)
    general_reply, general_calls = _insert(body, False, binary)
    assert (fast_reply.status, fast_reply.body) == (general_reply.status, general_reply.body), body[:300]
    assert fast_calls == general_calls, body[:300]
    return fast_reply


def _general_rows(body: bytes) -> np.ndarray:
    doc = orjson.loads(body)
    rows = bodies.vectors(doc["vectors"], False, body, outside={**doc, "vectors": 0})
    assert isinstance(rows, np.ndarray)
    return rows


def _bits(rows: np.ndarray) -> list[Any]:
    return rows.view(np.uint32).tolist()  # -0.0 and 0.0 differ, as they do on the wire


# --- bodies the fast path takes ------------------------------------------------------------------------


@pytest.mark.parametrize("dumps", [
    lambda doc: orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY),
    lambda doc: json.dumps({k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in doc.items()}).encode(),
    lambda doc: json.dumps({k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in doc.items()},
                           indent=2).encode(),
])
def test_common_bodies_are_taken_and_equal_the_general_path(dumps: Any) -> None:
    rng = np.random.default_rng(7)
    rows = (rng.standard_normal((50, 16)) * 10).astype(np.float32)
    for doc in ({"vectors": rows}, {"ids": [str(i) for i in range(50)], "vectors": rows, "partition_tag": "p"},
                {"vectors": rows, "ids": [str(i) for i in range(50)]}):
        body = dumps(doc)
        split = fastjson.split(body)
        assert split is not None, body[:100]
        rest, fast_rows = split
        assert rest == {**orjson.loads(body), "vectors": 0}
        assert list(rest) == list(orjson.loads(body))  # the keys in their order
        assert fast_rows.dtype == np.float32 and fast_rows.shape == (50, 16)
        assert _bits(fast_rows) == _bits(_general_rows(body)) == _bits(rows)
        reply = _same_either_way(body)
        assert reply.status == 201


def test_integers_signs_and_exponents() -> None:
    body = b'{"vectors": [[0, -0, -0.0, 1, -7, 1E3, 2.5e-3, 1e+2, 1e-320, 9007199254740991, -9007199254740991.0]]}'
    split = fastjson.split(body)
    assert split is not None
    assert _bits(split[1]) == _bits(_general_rows(body))
    long_digits = ("0." + "1" * 2000, "1" * 15 + "." + "5" * 40 + "e-20", "0." + "0" * 400 + "1")
    body = ('{"vectors": [[' + ", ".join(long_digits) + "]]}").encode()
    split = fastjson.split(body)
    assert split is not None
    assert _bits(split[1]) == _bits(_general_rows(body))
    # Magnitudes from 2**53 (integers there could round differently) are left to the general path: beyond
    # float32 they become infinity there and the insert is refused.
    body = b'{"vectors": [[1, 3.4028235677973366e38, 1e39]]}'
    assert fastjson.split(body) is None
    _same_either_way(body)


def test_locate_is_about_text_only() -> None:
    body = b'{"ids": ["1"],  "vectors" :\n [[1, 2]] ,\t"partition_tag": "x"}'
    start, end = fastjson.locate(body) or (0, 0)
    assert body[start:end] == b"[[1, 2]]"
    assert fastjson.locate(b'{"vectors": [[1, 2]]}') == (12, 20)
    for text in (b'{"vector": [[1]]}', b'{"vectors" 1}', b'{"vectors": {"a": [1]}}', b'{"vectors": [[1]] x}',
                 b'{"vectors": [[1]],, "a": 1}', b'{"vectors": [1, "]"]}'):
        assert fastjson.locate(text) is None, text


# --- bodies it leaves to the general path ----------------------------------------------------------------

REFUSED = [
    b'{"vectors": [[1, 2], [3]]}',  # ragged
    b'{"vectors": [[1, [2]], [3, 4]]}',  # nested (flattening would hide it)
    b'{"vectors": [[[1, 2]], [[3, 4]]]}',
    b'{"vectors": [1, [[2]], [3]]}',
    b'{"vectors": [[1, 2], 3]}',
    b'{"vectors": []}',
    b'{"vectors": [[]]}',
    b'{"vectors": [[], []]}',
    b'{"vectors": [[1, "2"]]}',
    b'{"vectors": [[1, true]]}',
    b'{"vectors": [[1, null]]}',
    b'{"vectors": [[1, NaN]]}',
    b'{"vectors": [[1, Infinity]]}',
    b'{"vectors": [[1, -Infinity]]}',
    b'{"vectors": [[1e999]]}',  # beyond float64: invalid for both parsers
    b'{"vectors": [[18446744073709551616]]}',  # orjson takes it as a float, simdjson refuses it
    b'{"vectors": [[9007199254740993]]}',  # an integer beyond 2**53
    b'{"vectors": [[01]]}',
    b'{"vectors": [[1.]]}',
    b'{"vectors": [[.5]]}',
    b'{"vectors": [[+1]]}',
    b'{"vectors": [[1, 2]],}',
    b'{"vectors": [[1, 2]]',
    b'{"vectors": [[1, 2]] "ids": []}',
    b'{"vectors": [[1, 2],]}',
    b'{"vectors": [[1, 2]]}}',
    b'{"vectors": [[1, 2]], "vectors": [[3, 4]]}',  # a duplicate key (orjson keeps the last)
    b'{"vectors": [[1, 2]], "x": "vectors"}',
    b'{"a\\"vectors": [[1, 2]], "vectors": 0}',  # the first "vectors" is inside another key
    b'{"a\\"vectors": [[1, 2]], "vec\\u0074ors": 0}',
    b'{"vectors": [[1, 2]], "x": "\\u00e9"}',
    b'{"x": {"vectors": [[1, 2]]}}',
    b'{"x": {"vectors": [[1, 2]]}, "vectors": [[3, 4]]}',
    b'[{"vectors": [[1, 2]]}]',
    b'{"vectors": [[1, 2]]} [1]',
    b'{"vectors": [[1, 2]]} // comment',
    b"{'vectors': [[1, 2]]}",
    b'{"vectors": [[1,\x0c2]]}',
    b'{"vectors": [[1, 2]], "x": "\xff"}',  # not UTF-8
]


@pytest.mark.parametrize("body", REFUSED)
def test_what_cannot_be_proven_takes_the_general_path(body: bytes) -> None:
    assert fastjson.split(body) is None
    _same_either_way(body)


def test_without_the_lazy_api_every_body_takes_the_general_path() -> None:
    body = b'{"vectors": [[1, 2]]}'
    with mock.patch.object(fastjson, "LAZY_API", False):
        assert fastjson.split(body) is None
        assert fastjson.float_rows(b"[[1, 2]]") is None
        reply, calls = _insert(body, True)
    assert reply.status == 201 and [m for m, _ in calls] == ["Insert"]
    assert fastjson.LAZY_API  # the installed pysimdjson has it


def test_binary_collections_and_unknown_kinds() -> None:
    body = b'{"vectors": [[1, 2, 3, 255]]}'
    reply, calls = _insert(body, True, binary=True)
    assert reply.status == 201 and [m for m, _ in calls] == ["Insert"]
    reply, calls = _insert(body, True, binary=None, metric=3)  # asked: a binary metric
    assert reply.status == 201 and [m for m, _ in calls] == ["DescribeCollection", "Insert"]
    record = wire_fastpath_pb2.InsertParamRaw.FromString(calls[1][1]).row_record_array[0]
    assert milvus_pb2.RowRecord.FromString(record).binary_data == bytes([1, 2, 3, 255])
    _same_either_way(body, binary=None)


# --- properties: generated bodies, valid or not ------------------------------------------------------------

NUMBER = st.from_regex(r"-?(0|[1-9][0-9]{0,19})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?", fullmatch=True)
NOT_A_NUMBER = st.sampled_from(["NaN", "Infinity", "-Infinity", "01", "1.", ".5", "+1", "1e", "--1", "1.2.3", "0x10",
                                "true", "false", "null", '"1"', "[1]", "[]", "{}", "1 2", "", "-", "1e+"])
SPACE = st.sampled_from(["", "", "", " ", "  ", "\n", "\t", "\r\n"])
OTHER = st.sampled_from(['"p"', "null", "1", '"vectors"', '"\\"vectors\\""', '"\\u0076ectors"', '{"vectors": [[1]]}',
                         "[[1, 2]]", '"]"', '"}"', '"\\\\"', "true"])


@st.composite
def insert_bodies(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(1, 4))
    width = draw(st.integers(1, 4))
    ragged = draw(st.booleans()) and draw(st.booleans())

    def token() -> str:
        if draw(st.integers(0, 19)) == 0:
            return draw(NOT_A_NUMBER)
        return draw(NUMBER)

    rows = []
    for i in range(n):
        cells = [token() for _ in range(width + (i if ragged else 0))]
        rows.append("[" + draw(SPACE) + ("," + draw(SPACE)).join(cells) + draw(SPACE) + "]")
    vectors = "[" + draw(SPACE) + ("," + draw(SPACE)).join(rows) + draw(SPACE) + "]"
    members = [f'"vectors"{draw(SPACE)}:{draw(SPACE)}{vectors}']
    if draw(st.booleans()):
        ids = [str(draw(st.integers(0, 10**6))) for _ in range(n)] if draw(st.booleans()) else ["x"]
        members.append('"ids": ' + json.dumps(ids))
    for key in draw(st.lists(st.sampled_from(["partition_tag", "x", "vectors", "a\\\"vectors"]), max_size=2)):
        members.append(f'"{key}": {draw(OTHER)}')
    order = draw(st.permutations(members))
    text = "{" + draw(SPACE) + ("," + draw(SPACE)).join(order) + draw(SPACE) + "}"
    return text.encode()


@settings(max_examples=400, deadline=None)
@given(body=insert_bodies())
def test_generated_bodies_get_the_same_answer_either_way(body: bytes) -> None:
    _same_either_way(body)
    split = fastjson.split(body)
    if split is not None:  # taken only when it is exactly the general path's document and rows
        assert split[0] == {**orjson.loads(body), "vectors": 0}
        assert _bits(split[1]) == _bits(_general_rows(body))


MUTATIONS = st.sampled_from([*'[]{},:" \\-+.eE0123456789tnuNI', "\\u", "\x0c", "\xff"])


@settings(max_examples=400, deadline=None)
@given(body=insert_bodies(), edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 2), MUTATIONS),
                                            min_size=1, max_size=3))
def test_mutated_bodies_get_the_same_answer_either_way(body: bytes, edits: list[tuple[int, int, str]]) -> None:
    text = body.decode("latin-1")
    for at, kind, char in edits:
        at %= len(text) + 1
        if kind == 0:
            text = text[:at] + char + text[at:]  # insert
        elif kind == 1:
            text = text[:at] + char + text[at + 1:]  # replace
        else:
            text = text[:at] + text[at + 1:]  # delete
    _same_either_way(text.encode("latin-1"))


@settings(max_examples=1000, deadline=None)
@given(NUMBER)
def test_numbers_round_as_orjson_then_numpy_round_them(token: str) -> None:
    text = f"[[{token}]]".encode()
    rows = fastjson.float_rows(text)
    try:
        value = orjson.loads(token)
    except orjson.JSONDecodeError:  # beyond float64
        assert rows is None
        return
    if abs(value) >= 2.0 ** 53:
        assert rows is None
        return
    assert rows is not None
    with np.errstate(over="ignore"):
        assert _bits(rows) == _bits(np.array([[value]], dtype=np.float32))


def test_parsers_are_reused_and_safe_across_threads() -> None:
    body = orjson.dumps({"vectors": np.arange(600, dtype=np.float32).reshape(30, 20)},
                        option=orjson.OPT_SERIALIZE_NUMPY)
    expected = _bits(_general_rows(body))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(50):
                split = fastjson.split(body)
                assert split is not None and _bits(split[1]) == expected
                assert fastjson.split(b'{"vectors": [[1, "x"]]}') is None
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(fastjson._parsers._free) <= fastjson.KEEP_PARSERS


# --- ids ------------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 1 << 64).map(str), st.integers(-5, 5).map(str),
                          st.sampled_from(["", " 1", "1_0", "+1", "1.0", "٣", "0x1", "007", "9" * 18, "9" * 19]),
                          st.integers(0, 9)), max_size=6))
def test_plain_ids_are_the_ids_checked_one_by_one(value: list[Any]) -> None:
    def checked(plain: bool) -> Any:
        try:
            if plain:
                return bodies.id_strings(value, "ids").tolist()
            original = bodies.plain_ids
            bodies.plain_ids = lambda items: None  # type: ignore[assignment]
            try:
                return bodies.id_strings(value, "ids").tolist()
            finally:
                bodies.plain_ids = original
        except Exception as exc:
            return (type(exc).__name__, str(exc), getattr(exc, "code", None))

    assert checked(True) == checked(False)


@pytest.mark.parametrize("size", [0, 1, fastjson.COUNT_BLOCK - 1, fastjson.COUNT_BLOCK, 3 * fastjson.COUNT_BLOCK + 5])
def test_bytes_are_counted_across_blocks(size: int) -> None:
    text = bytes((i * 7) % 256 for i in range(size))
    assert fastjson.count_byte(text, ord("[")) == text.count(b"[")
    assert fastjson.count_byte(memoryview(text)[1:], ord("[")) == text[1:].count(b"[")
