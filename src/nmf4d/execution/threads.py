"""Threads: explicit parallelism over independent tasks, with single-threaded BLAS.

nmf4d parallelises at a coarse level (row blocks of a pass, the candidate fits of the k
sweep) and keeps BLAS to one thread inside each task. Multi-threaded BLAS on the small
and skinny matrices the analysis makes gains little on an idle machine and collapses on a
shared one: measured on the 2-core development machine at load average 7, the QR of a
100000 x 30 matrix took 0.30 s with one BLAS thread and 1.6 s with two, the SVD of a
30 x 16384 matrix 0.03 s and 0.97 s (threads spin waiting for each other).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Sequence

from .budget import usable_cores


@contextmanager
def blas_threads(n: int = 1):
    """Context: BLAS/LAPACK (OpenBLAS, MKL, ...) limited to ``n`` threads in this process."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=max(1, int(n)), user_api="blas"):
        yield


def parallel_map(func: Callable, items: Sequence, *, threads: int | None = None,
                 done: Callable[[int], None] | None = None) -> list:
    """``[func(item) for item in items]`` on ``threads`` threads (default: one per usable
    core), each with single-threaded BLAS; results in the order of ``items``.

    ``func`` must not depend on the other items (results are then the same whatever the
    number of threads). ``done(i)`` is called in this thread as item ``i`` finishes.
    Numpy and BLAS release the GIL on large arrays, so numeric Python tasks scale.
    """
    items = list(items)
    threads = max(1, min(len(items), threads or usable_cores()))
    if threads <= 1:
        with blas_threads(1):
            out = []
            for i, item in enumerate(items):
                out.append(func(item))
                if done is not None:
                    done(i)
            return out
    from concurrent.futures import ThreadPoolExecutor, as_completed

    with blas_threads(1), ThreadPoolExecutor(threads) as pool:
        futures = {pool.submit(func, item): i for i, item in enumerate(items)}
        results: list = [None] * len(items)
        for fut in as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            if done is not None:
                done(i)
        return results
