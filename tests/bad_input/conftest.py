"""Bad and hostile requests against a real node: exact Milvus 1.1 status codes and reasons.

Every RPC must answer with gRPC status OK and an in-band error status (protocol notes §10), and the
node must keep answering afterwards: an autouse fixture asks for its version after every test. Each test
file of this folder has a node of its own (the ``node`` fixture is per module) with the collections below.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from milvus_wire import milvus_pb2
from tests.support.bad_requests import DIM
from tests.support.node_rpcs import partition
from tests.support.nodeproc import NodeProcess
from tests.support.requests import (
    HAMMING,
    L2,
    SUCCESS,
    TimedStub,
    create,
    flush,
    insert_ok,
    ok,
    unique_name,
)


@pytest.fixture(scope="module")
def mod_api(node: NodeProcess) -> TimedStub:
    return TimedStub(node.stub())


@pytest.fixture
def api(mod_api: TimedStub) -> TimedStub:
    return mod_api


@pytest.fixture(autouse=True)
def node_still_answers(node: NodeProcess) -> Iterator[None]:
    """After every test: the node is alive and answers promptly."""
    yield
    reply = node.stub().Cmd(milvus_pb2.Command(cmd="version"), timeout=10)
    assert (reply.status.error_code, reply.string_reply) == (SUCCESS, "1.1.1")
    assert node.proc is not None and node.proc.poll() is None, "node exited"


@pytest.fixture(scope="module")
def floats_coll(mod_api: TimedStub) -> str:
    """A float L2 collection of dimension 8 with 20 flushed rows (auto ids) and partition ``p1``."""
    name = unique_name("badf")
    ok(create(mod_api, name, DIM, L2))
    ok(mod_api.CreatePartition(partition(name, "p1")))
    insert_ok(mod_api, name, np.random.default_rng(1).random((20, DIM), dtype=np.float32))
    ok(flush(mod_api, name))
    return name


@pytest.fixture(scope="module")
def binary_coll(mod_api: TimedStub) -> str:
    """A binary HAMMING collection of dimension 16 (2 bytes per vector) with 10 flushed rows."""
    name = unique_name("badb")
    ok(create(mod_api, name, 16, HAMMING))
    insert_ok(mod_api, name, np.random.default_rng(2).integers(0, 256, (10, 2), dtype=np.uint8))
    ok(flush(mod_api, name))
    return name
