"""The client's examples (client/examples/*.py) run as a user runs them, each in its own interpreter, against a
real node: they finish with exit status 0 and print what they promise (search results, filtered entities,
the asyncio replies); ``secure.py`` against a node with TLS and ``--allow-anonymous none``, with and without a
token."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.certs import TestPki, make_pki
from tests.support.nodeproc import NodeProcess
from tests.support.users import add_user

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})}, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with NodeProcess(tmp_path_factory.mktemp("examples"), ["--metrics-port", "-1"]) as proc:
        host, _, port = proc.address.rpartition(":")
        yield host, port


def test_quickstart(node: tuple[str, str]) -> None:
    out = run_example("quickstart.py", *node)
    assert "(Status(code=0, message='Success!'), '1.1.1')" in out
    assert "(Status(code=0, message='Success!'), 2000)" in out  # count after the flush
    assert "Search vectors successfully!" in out


def test_numpy_bulk(node: tuple[str, str]) -> None:
    out = run_example("numpy_bulk.py", *node).splitlines()
    assert out[0].startswith("200000 rows in ")
    assert "(1000, 10)" in out[1] and "Search vectors successfully!" in out[1]
    assert float(out[1].rsplit(" ", 1)[1]) < 1e-2  # each query is a stored row: its own nearest neighbour


def test_hybrid_search(node: tuple[str, str]) -> None:
    out = run_example("hybrid_search.py", *node)
    assert "5000 entities inserted" in out
    entities = [ast.literal_eval(line) for line in out.splitlines() if line.startswith("{'id'")]
    assert len(entities) == 2
    for entity in entities:  # the DSL's filter: 30 <= age < 40, member, not price > 150
        assert 30 <= entity["age"] < 40 and entity["member"] is True and entity["price"] <= 150


def test_asyncio_client(node: tuple[str, str]) -> None:
    assert run_example("asyncio_client.py", *node).strip() == "50 searches answered"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, TestPki, str]]:
    root = tmp_path_factory.mktemp("examples-secure")
    pki = make_pki(root / "pki", "client")
    meta_uri = f"sqlite:///{root / 'meta.sqlite'}"
    token = add_user(meta_uri, "reader", "readonly")
    args = ["--metrics-port", "-1", "--allow-anonymous", "none", "--tls-cert", str(pki.server.cert_path),
            "--tls-key", str(pki.server.key_path), "--tls-client-ca", str(pki.ca.cert_path)]
    with NodeProcess(root / "node", args, meta_uri=meta_uri) as proc:
        yield proc.address.rpartition(":")[2], pki, token


def test_secure_with_and_without_a_token(secured: tuple[str, TestPki, str]) -> None:
    port, pki, token = secured
    args = ("localhost", port, str(pki.ca.cert_path), str(pki.client.cert_path), str(pki.client.key_path))
    out = run_example("secure.py", *args, env={"MISHARDS_TOKEN": token})
    assert out.strip() == "Status(code=0, message='Show collections successfully!') []"
    environ = {k: v for k, v in os.environ.items() if k != "MISHARDS_TOKEN"}
    done = subprocess.run([sys.executable, str(EXAMPLES / "secure.py"), *args], capture_output=True, text=True,
                          timeout=120, env=environ, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("the token's role does not allow this (or no token was given)")
