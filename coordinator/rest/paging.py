"""Query-string parameters of Milvus 1.1's list endpoints: ``offset``, ``page_size`` and ``all_required``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import parse_qsl

from coordinator.rest.codes import RestError, WebCode

DEFAULT_PAGE_SIZE = 10
INT64_MAX = (1 << 63) - 1
# Strings accepted as booleans: only these two mean true; the others are false (Milvus 1.1's rule).
TRUE_WORDS = frozenset({"true", "True"})
FALSE_WORDS = frozenset({"1", "yes", "on", "TRUE", "false", "False", "FALSE", "0", "no", "off", ""})

T = TypeVar("T")


def parse_query(query_string: bytes | str) -> dict[str, str]:
    """The query parameters, percent-decoded; the first of repeated names wins."""
    text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    out: dict[str, str] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        out.setdefault(key, value)
    return out


@dataclass(frozen=True, slots=True)
class Page:
    offset: int = 0
    size: int = DEFAULT_PAGE_SIZE
    everything: bool = False

    def of(self, items: Sequence[T]) -> list[T]:
        """The page's slice of ``items`` (past the end: empty; ``everything``: all of them)."""
        if self.everything:
            return list(items)
        return list(items[self.offset:self.offset + self.size])


def _count(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name, "")
    if raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) > INT64_MAX:
        # Milvus 1.1 names 'offset' whichever parameter is wrong; the real name is clearer.
        raise RestError(WebCode.ILLEGAL_QUERY_PARAM,
                        f"Query param '{name}' is illegal, only non-negative integer supported")
    return int(raw)


def parse_page(query: Mapping[str, str], strict_all: bool = True) -> Page:
    """``offset`` and ``page_size`` (absent or empty: 0 and 10) and ``all_required`` (``true``/``True``).

    With ``strict_all`` an ``all_required`` that is no boolean word is refused (partitions, segments); the
    collection list takes it as false (Milvus 1.1 ignores the parse error there).
    """
    offset = _count(query, "offset", 0)
    size = _count(query, "page_size", DEFAULT_PAGE_SIZE)
    raw = query.get("all_required")
    everything = False
    if raw is not None:
        if raw in TRUE_WORDS:
            everything = True
        elif raw not in FALSE_WORDS and strict_all:
            raise RestError(WebCode.ILLEGAL_QUERY_PARAM, "Query param 'all_required' must be a bool")
    return Page(offset, size, everything)
