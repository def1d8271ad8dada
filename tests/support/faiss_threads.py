"""One OpenMP thread for faiss while a test module runs: deterministic builds and a fixed BLAS switch point."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import faiss

from node.kernels import use_blas_from


@contextlib.contextmanager
def one_faiss_thread(dim: int) -> Iterator[None]:
    """One OpenMP thread and the node's BLAS switch point for vectors of ``dim``; the thread count is restored after."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    use_blas_from(dim)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)
