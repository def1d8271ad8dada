"""The resume journal of an import: one JSON object a line, appended as batches go out and come back.

    {"header": {...}}            what is imported where (file identity, collection, batch size, ids)
    {"sent": [start, stop]}      rows about to be sent (written and fsynced before the insert leaves)
    {"ack": [start, stop]}       the server acknowledged those rows (durable on its side)
    {"done": true}               every batch acknowledged and the collection flushed

A batch sent but never acknowledged has an unknown outcome (the process died or the call timed out): on resume
its ids are deleted first and the batch is sent again with the same ids, so it is present exactly once. A batch
never sent is simply sent. A torn last line (a kill mid-write) is ignored, and cut off before a resume appends.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any


class JournalError(ValueError):
    """The journal belongs to another import (file changed, other collection or batch size) or is unreadable."""


@dataclass(frozen=True)
class JournalHeader:
    file: str
    size: int
    mtime_ns: int
    collection: str
    partition: str
    batch: int
    rows: int
    id_start: int | None  # None: the file's own ids; else row r gets id id_start + r


@dataclass(frozen=True)
class JournalState:
    header: JournalHeader | None
    acked: frozenset[int]  # start rows of acknowledged batches
    unknown: frozenset[int]  # start rows of batches sent without an acknowledgement
    done: bool


def parse(lines: list[str]) -> JournalState:
    """Pure: the state a journal's lines describe. Only the last line may be torn (it is then ignored)."""
    header: JournalHeader | None = None
    sent: set[int] = set()
    acked: set[int] = set()
    done = False
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines) - 1:
                break  # torn by a kill mid-write
            raise JournalError(f"journal line {number + 1} is damaged") from exc
        if "header" in entry:
            header = JournalHeader(**entry["header"])
        elif "sent" in entry:
            sent.add(int(entry["sent"][0]))
        elif "ack" in entry:
            acked.add(int(entry["ack"][0]))
        elif entry.get("done"):
            done = True
    return JournalState(header, frozenset(acked), frozenset(sent - acked), done)


def pending(header: JournalHeader, state: JournalState) -> tuple[list[int], list[int]]:
    """Pure: (batches to delete then re-send, batches to send), as start rows in file order."""
    starts = range(0, header.rows, header.batch)
    unknown = [s for s in starts if s in state.unknown]
    fresh = [s for s in starts if s not in state.acked and s not in state.unknown]
    return unknown, fresh


def mismatch(old: JournalHeader, new: JournalHeader) -> str:
    """Pure: why a journal cannot resume this import ('' when it can)."""
    for name, was in asdict(old).items():
        now = getattr(new, name)
        if was != now:
            return f"{name} was {was!r}, now {now!r}"
    return ""


def journal_path(data: Path, collection: str, partition: str, state_dir: Path | None) -> Path:
    """``<data>.<collection>[.<partition>].import-journal`` next to the data file, or in ``state_dir``."""
    name = f"{data.name}.{collection}{'.' + partition if partition else ''}.import-journal"
    return (state_dir or data.resolve().parent) / name


class Journal:
    """The append side. ``sent`` is fsynced before the batch leaves (so an unknown outcome is never mistaken for
    a batch never sent); ``ack`` is only flushed (a lost ack costs a delete and a re-send, never a duplicate)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def read(self) -> JournalState:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return JournalState(None, frozenset(), frozenset(), False)
        return parse(text.splitlines())

    def open(self, header: JournalHeader | None) -> None:
        """Start appending; ``header`` starts a new journal (replacing any old one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if header is not None:
            self._fh = self.path.open("w")
            self._write({"header": asdict(header)}, sync=True)
        else:
            with self.path.open("r+b") as raw:  # cut a torn last line off: the next entry starts clean
                data = raw.read()
                raw.truncate(data.rfind(b"\n") + 1)
            self._fh = self.path.open("a")

    def sent(self, start: int, stop: int) -> None:
        self._write({"sent": [start, stop]}, sync=True)

    def ack(self, start: int, stop: int) -> None:
        self._write({"ack": [start, stop]}, sync=False)

    def done(self) -> None:
        self._write({"done": True}, sync=True)

    def _write(self, entry: dict[str, Any], sync: bool) -> None:
        assert self._fh is not None, "journal not open"
        self._fh.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self._fh.flush()
        if sync:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
