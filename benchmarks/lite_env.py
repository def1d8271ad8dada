"""The virtual environment that runs the Milvus Lite side of ``benchmarks.lite_bench``.

    python -m benchmarks.lite_env [--venv benchmarks/.venv-lite]

It is separate from the project's environment (which carries pymilvus 1.1.2 for the compatibility
tests) and is never a project dependency. It is created on first use with ``python -m venv`` and
filled from PyPI with :data:`REQUIREMENTS`; a stamp file records what was installed, and a change of
the pins re-installs.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_VENV = Path(__file__).resolve().parent / ".venv-lite"
# milvus-lite 2.5.1 is the last release that embeds Milvus 2.x; it imports pkg_resources (setuptools < 81).
REQUIREMENTS = ("milvus-lite==2.5.1", "pymilvus>=2.5,<2.6", "setuptools<81")
STAMP = "lite-requirements.txt"
INSTALL_TIMEOUT_S = 900.0


def stamp_text(requirements: Sequence[str]) -> str:
    return "\n".join(requirements) + "\n"


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def is_current(venv: Path, requirements: Sequence[str] = REQUIREMENTS) -> bool:
    """The environment exists and was filled with exactly these pins."""
    try:
        return venv_python(venv).exists() and (venv / STAMP).read_text() == stamp_text(requirements)
    except OSError:
        return False


def ensure_venv(venv: Path = DEFAULT_VENV, requirements: Sequence[str] = REQUIREMENTS) -> Path:
    """Create or refresh the environment; returns its interpreter."""
    if is_current(venv, requirements):
        return venv_python(venv)
    log.info("creating %s with %s", venv, ", ".join(requirements))
    if not venv_python(venv).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=INSTALL_TIMEOUT_S)
    subprocess.run([str(venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *requirements], check=True, timeout=INSTALL_TIMEOUT_S)
    (venv / STAMP).write_text(stamp_text(requirements))
    return venv_python(venv)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.lite_env", description=__doc__.split("\n\n")[0])
    p.add_argument("--venv", type=Path, default=DEFAULT_VENV, help=f"where (default {DEFAULT_VENV})")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(ensure_venv(args.venv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
