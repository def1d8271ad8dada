"""Bad Cmd strings and configuration commands, Flush, and many bad requests at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from milvus_wire import milvus_pb2
from tests.support.bad_requests import (
    COLLECTION_NOT_EXISTS,
    DIM,
    EMPTY_TAG,
    ILLEGAL_ARGUMENT,
    ILLEGAL_COLLECTION_NAME,
    NO_PARTITION,
    UNEXPECTED_ERROR,
    new_collection,
)
from tests.support.node_rpcs import cname, not_found
from tests.support.requests import (
    SUCCESS,
    assert_status,
    cmd,
    count,
    flush,
    get_vectors,
    insert,
    insert_ok,
    ok,
    search,
    search_in_files,
    status_of,
    unique_name,
)
from tests.support.waiting import poll_for

# -- Cmd / Flush / misc ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code", "reason"),
    [
        ("get_config bad.node", UNEXPECTED_ERROR, "Config node invalid: bad.node"),
        ("set_config bad.node 1", UNEXPECTED_ERROR, "Config node invalid: bad.node"),
        ("get_config cache", UNEXPECTED_ERROR, "Invalid command: get_config cache"),
        ("nonsense", SUCCESS, "OK"),
        ("", SUCCESS, "OK"),
        ("version ", SUCCESS, "OK"),
    ],
)
def test_cmd_errors(api: Any, text: str, code: int, reason: str) -> None:
    reply = assert_status(cmd(api, text), code, reason)
    if code == SUCCESS:
        assert reply.string_reply == "Unknown command"


@pytest.mark.parametrize(
    "text",
    ["get_config", "get_config a b", "set_config storage.auto_flush_interval", "set_config a b c d",
     "set_config storage.auto_flush_interval -5", "set_config storage.auto_flush_interval abc",
     "set_config storage.auto_flush_interval nan", "set_config storage.auto_flush_interval inf",
     "set_config storage.auto_flush_interval 1e300", "set_config cache.cache_size lots",
     "set_config storage.file_cleanup_timeout 5"],
)
def test_bad_config_commands_change_nothing(api: Any, text: str) -> None:
    # Malformed commands and keys that cannot be set are UNEXPECTED_ERROR, bad values ILLEGAL_ARGUMENT (as 1.1).
    assert status_of(cmd(api, text)).error_code in (UNEXPECTED_ERROR, ILLEGAL_ARGUMENT)
    assert ok(cmd(api, "get_config storage.auto_flush_interval")).string_reply == "1"
    assert ok(cmd(api, "get_config cache.cache_size")).string_reply == "4GB"
    if "auto_flush_interval" not in text:
        return
    # Background maintenance still runs: rows become visible without an explicit Flush.
    name = new_collection(api)
    insert_ok(api, name, np.ones((2, DIM), np.float32))
    poll_for(lambda: count(api, name) == 2, timeout=15, what="auto flush after a refused set_config")


def test_flush_errors(api: Any, floats_coll: str) -> None:
    missing = unique_name("missing")
    assert_status(flush(api, missing), COLLECTION_NOT_EXISTS, not_found(missing))
    assert_status(flush(api, floats_coll, missing), COLLECTION_NOT_EXISTS, not_found(missing))
    assert_status(flush(api, floats_coll, ""), ILLEGAL_COLLECTION_NAME, "Collection name should not be empty.")


def test_has_collection_unknown(api: Any) -> None:
    reply = api.HasCollection(cname(unique_name("missing")))
    assert_status(reply, SUCCESS, "OK")
    assert reply.bool_reply is False


def test_preload_unknown_partition(api: Any, floats_coll: str) -> None:
    param = milvus_pb2.PreloadCollectionParam(collection_name=floats_coll, partition_tag_array=["nope"])
    assert_status(api.PreloadCollection(param), UNEXPECTED_ERROR, NO_PARTITION)
    param = milvus_pb2.PreloadCollectionParam(collection_name=floats_coll, partition_tag_array=[""])
    assert_status(api.PreloadCollection(param), UNEXPECTED_ERROR, EMPTY_TAG)


def call_everything(api: Any, name: str) -> list[Callable[[], Any]]:
    """Calls used by the concurrency test below."""
    vec = np.ones((1, DIM), np.float32)
    return [
        lambda: search(api, name, vec, 0),
        lambda: insert(api, name, np.full((1, DIM), np.nan, np.float32)),
        lambda: get_vectors(api, name, range(1001)),
        lambda: search_in_files(api, name, ["x"], vec, 1),
        lambda: cmd(api, "get_config bad.node"),
    ]


def test_many_bad_requests_at_once(api: Any, floats_coll: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    calls = call_everything(api, floats_coll) * 20
    with ThreadPoolExecutor(max_workers=16) as pool:
        replies = list(pool.map(lambda call: call(), calls))
    for reply in replies:
        st = reply[0] if isinstance(reply, tuple) else status_of(reply)
        assert st.error_code != SUCCESS
