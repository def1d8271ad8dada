"""What the index benchmark measures: the index kinds, their build parameters and search-parameter points."""

from __future__ import annotations

import math
from dataclasses import dataclass

from coordinator.model import IndexType
from node.params import SearchParams

K = 10
BATCH_NQ = 100
WARMUP_SINGLE = 20
WARMUP_BATCHED = 2

KIND_ORDER = ("IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW", "ANNOY", "RNSG")


@dataclass(frozen=True)
class Point:
    """One search-parameter point: the JSON sent through gRPC and the same values in-process."""

    label: str
    wire: dict[str, int]
    params: SearchParams


@dataclass(frozen=True)
class Spec:
    name: str
    kind: IndexType
    build: dict[str, int]
    points: tuple[Point, ...]
    variant: str = ""  # a second build of the same kind (e.g. "nlist1024"), measured as its own collection

    @property
    def label(self) -> str:
        return f"{self.name}/{self.variant}" if self.variant else self.name


# Extra points measured whenever their kind is chosen: IVF_FLAT at nlist 1024 nprobe 64 (the table).
TABLE_NLIST = 1024
TABLE_NPROBE = 64


def table_specs(kind: str) -> list[Spec]:
    """The extra builds measured with ``kind`` (HNSW M16 ef 64 is already one of HNSW's points)."""
    if kind != "IVF_FLAT":
        return []
    point = Point(f"nprobe={TABLE_NPROBE}", {"nprobe": TABLE_NPROBE}, SearchParams(nprobe=TABLE_NPROBE))
    return [Spec("IVF_FLAT", IndexType.IVF_FLAT, {"nlist": TABLE_NLIST}, (point,), f"nlist{TABLE_NLIST}")]


def specs(rows: int) -> dict[str, Spec]:
    """Build and search parameters of every kind; IVF uses nlist = 4 * sqrt(rows) (1265 at 100k)."""
    nlist = round(4 * math.sqrt(rows))

    def ivf(name: str, build: dict[str, int]) -> Spec:
        points = tuple(Point(f"nprobe={p}", {"nprobe": p}, SearchParams(nprobe=p)) for p in (1, 4, 16))
        return Spec(name, IndexType[name], build, points)

    return {
        "IVF_FLAT": ivf("IVF_FLAT", {"nlist": nlist}),
        "IVF_SQ8": ivf("IVF_SQ8", {"nlist": nlist}),
        "IVF_PQ": ivf("IVF_PQ", {"nlist": nlist, "m": 16}),
        "HNSW": Spec("HNSW", IndexType.HNSW, {"M": 16, "efConstruction": 200},
                     tuple(Point(f"ef={e}", {"ef": e}, SearchParams(ef=e)) for e in (16, 64, 128))),
        "ANNOY": Spec("ANNOY", IndexType.ANNOY, {"n_trees": 16},
                      tuple(Point(f"search_k={s}", {"search_k": s}, SearchParams(search_k=s)) for s in (1000, 10000))),
        # The RNSG example of the Milvus 1.1 documentation.
        "RNSG": Spec("RNSG", IndexType.RNSG,
                     {"search_length": 45, "out_degree": 50, "candidate_pool_size": 300, "knng": 100},
                     tuple(Point(f"search_length={s}", {"search_length": s}, SearchParams(search_length=s))
                           for s in (20, 45, 100))),
    }
