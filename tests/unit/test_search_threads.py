"""OpenMP thread counts reach the threads that search; the BLAS switch follows the dimension."""

from __future__ import annotations

import threading

import faiss

from node.kernels import BLAS_MIN_QUERIES, OmpThreads, use_blas_from


def test_thread_count_is_applied_in_each_searching_thread() -> None:
    threads = OmpThreads(1)
    seen: list[int] = []

    def search_thread() -> None:
        threads.apply()
        seen.append(faiss.omp_get_max_threads())
        threads.count = 2
        threads.apply()  # a changed setting reaches a thread that already applied the old one
        seen.append(faiss.omp_get_max_threads())

    worker = threading.Thread(target=search_thread)
    worker.start()
    worker.join()
    assert seen == [1, 2]


def test_blas_threshold_tracks_the_dimension() -> None:
    before = faiss.cvar.distance_compute_blas_threshold
    try:
        use_blas_from(128)
        assert faiss.cvar.distance_compute_blas_threshold == BLAS_MIN_QUERIES * 128
        use_blas_from(16)
        assert faiss.cvar.distance_compute_blas_threshold == BLAS_MIN_QUERIES * 16
    finally:
        faiss.cvar.distance_compute_blas_threshold = before
