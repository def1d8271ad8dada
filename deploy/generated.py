"""Writing generated files, or checking that the committed ones are up to date (``--check``)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_or_check(outputs: dict[Path, str], check: bool, command: str) -> int:
    """Write each changed file (``check``: write nothing, name the stale ones); 1 when ``check`` found any."""
    stale = []
    for path, text in outputs.items():
        if path.exists() and path.read_text() == text:
            continue
        if check:
            stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"not up to date (run `{command}`): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0
