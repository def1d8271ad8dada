"""Users and tokens for tests, made by the ``mishards user add`` command in a child process of the server's
interpreter: a test (the client's, under any Python) imports nothing of the server to get a token."""

from __future__ import annotations

import os
import subprocess

from tests.support.nodeproc import ROOT, server_python


def add_user(meta_uri: str, name: str, role: str, collection: str = "") -> str:
    """Create user ``name`` with ``role`` (admin, readwrite, readonly; on ``collection`` when given) in the
    catalog at ``meta_uri``; its token."""
    args = [server_python(), "-m", "mishards.cli", "user", "add", name, "--role", role, "--meta-uri", meta_uri]
    if collection:
        args += ["--collection", collection]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
