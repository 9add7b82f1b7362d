"""Block sources: where the row blocks of the data matrix live and who runs kernels on them.

The NMF maths (:class:`nmf4d.nmf.BlockOperator`) is written once as per-block kernels
(:mod:`nmf4d.nmf.kernels`) over the row blocks of a data matrix X of shape (n, p); a
*source* decides where those blocks live and who computes them, as LiberTEM separates its
UDFs from its executors. Every source satisfies :class:`BlockSource`:

- :class:`NumpySource`: a matrix in memory; blocks run on a thread per core (numpy and
  single-threaded BLAS release the GIL; spare cores go to BLAS inside each block);
- :class:`DaskSource` on the threaded scheduler: a dask array chunked along rows (a lazy
  file); blocks are read, used and dropped, so memory stays at a few blocks however large
  the data (streaming);
- :class:`DaskSource` with a ``dask.distributed`` client: the same tasks on a cluster's
  workers (the data persisted in their memory when it fits the budget).

Results do not depend on the source: the kernels, the blocks and the order in which block
results are combined are the same (only block sizes differ).
"""
from __future__ import annotations

from contextlib import ExitStack
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from .budget import usable_cores
from .progress import Progress

#: Default row-block size for in-memory data: 4M elements (16 MB of float32). Measured per
#: HALS iteration on a 9216 x 16384 matrix (2 cores): 32 rows 102 ms, 128 rows 63 ms,
#: 256 rows 59 ms, 512 rows 64 ms, 1024 rows 65 ms.
BLOCK_ELEMENTS = 2**22


@runtime_checkable
class BlockSource(Protocol):
    """The contract between the block operator and an executor.

    Attributes
    ----------
    shape : (int, int)
        (n, p) of the matrix.
    dtype : numpy dtype
        The dtype computations run in (float32, or float64 for float64 data).
    blocks : list of (int, int)
        Consecutive (start, stop) row ranges covering 0..n.
    """

    shape: tuple
    dtype: np.dtype
    blocks: list

    def map(self, kernel: Callable, per_block: Sequence[tuple] | None = None,
            shared: tuple = (), only: Sequence[int] | None = None) -> list:
        """``[kernel(X[block], *per_block[i], *shared) for each block i]`` in block order
        (``only``: the indices of the blocks to run, default all). Calls
        ``progress.block_done()`` after each block when the source has a progress."""


def work_dtype(dtype) -> np.dtype:
    """The dtype computations run in: float64 kept, everything else float32."""
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def row_blocks(n: int, rows: int) -> list[tuple[int, int]]:
    """Consecutive (start, stop) row ranges of at most ``rows`` rows covering 0..n."""
    rows = max(1, int(rows))
    return [(s, min(n, s + rows)) for s in range(0, n, rows)]


class NumpySource:
    """Row blocks of an in-memory matrix (ndarray of shape (n, p)), run on threads.

    Parameters
    ----------
    X : ndarray of shape (n, p)
    block_rows : int, optional
        Rows per block (default: :data:`BLOCK_ELEMENTS` elements per block).
    threads : int, optional
        Block threads (default: one per usable core).
    progress : Progress, optional
        Told after each block.
    """

    def __init__(self, X: np.ndarray, *, block_rows: int | None = None,
                 threads: int | None = None, progress: Progress | None = None):
        self.X = X
        self.shape = X.shape
        self.dtype = work_dtype(X.dtype)
        rows = block_rows or max(1, BLOCK_ELEMENTS // max(X.shape[1], 1))
        self.blocks = row_blocks(X.shape[0], rows)
        self.cores = usable_cores()
        self.threads = max(1, min(len(self.blocks), threads or self.cores))
        self.progress = progress

    def map(self, kernel, per_block=None, shared=(), only=None) -> list:
        """See :meth:`BlockSource.map`.

        Blocks run on ``threads`` threads, each with single-threaded BLAS: the kernels'
        element-wise work (numpy releases the GIL) then uses every core too, which
        multi-threaded BLAS inside one block does not. Results come back in block order,
        so they do not depend on the number of threads.
        """
        todo = range(len(self.blocks)) if only is None else list(only)

        def one(i):
            s, e = self.blocks[i]
            extra = per_block[i] if per_block is not None else ()
            out = kernel(self.X[s:e], *extra, *shared)
            if self.progress is not None:
                self.progress.block_done()
            return out
        threads = min(self.threads, len(todo))
        if threads <= 1:
            return [one(i) for i in todo]
        from concurrent.futures import ThreadPoolExecutor

        from threadpoolctl import threadpool_limits
        # the cores not used by block threads go to BLAS inside each block
        with threadpool_limits(max(1, self.cores // threads)), \
                ThreadPoolExecutor(threads) as pool:
            return list(pool.map(one, todo))


class DaskSource:
    """Row blocks of a dask array (n, p) chunked along rows only, run as dask tasks.

    Parameters
    ----------
    X : dask array of shape (n, p)
        Rechunked here so each chunk holds whole rows.
    block_rows : int, optional
        Rows per block (default: keep the array's row chunks).
    scheduler : str or None
        Passed to ``dask.compute``: None uses the active ``dask.distributed`` client (or
        dask's default), "threads" the local threaded scheduler.
    num_workers : int, optional
        Threads of the threaded scheduler.
    client : dask.distributed.Client, optional
        Compute on this cluster.
    progress : Progress, optional
        Told after each block.
    """

    def __init__(self, X, *, block_rows: int | None = None, scheduler=None,
                 num_workers: int | None = None, client=None,
                 progress: Progress | None = None):
        if block_rows:
            X = X.rechunk({0: int(block_rows), 1: -1})
        elif len(X.chunks[1]) > 1:
            X = X.rechunk({1: -1})
        self.X = X
        self.shape = tuple(int(s) for s in X.shape)
        self.dtype = work_dtype(X.dtype)
        stops = np.cumsum((0,) + tuple(X.chunks[0]))
        self.blocks = [(int(a), int(b)) for a, b in zip(stops[:-1], stops[1:])]
        self._delayed = list(X.to_delayed().ravel())
        self.scheduler = scheduler
        self.num_workers = num_workers
        self.client = client
        self.progress = progress

    def map(self, kernel, per_block=None, shared=(), only=None) -> list:
        """See :meth:`BlockSource.map`; one dask task per block."""
        from dask import delayed

        shared_d = tuple(delayed(s, pure=True) if isinstance(s, np.ndarray) else s
                         for s in shared)
        tasks = []
        for i in (range(len(self._delayed)) if only is None else only):
            extra = per_block[i] if per_block is not None else ()
            tasks.append(delayed(kernel, pure=True)(self._delayed[i], *extra, *shared_d))
        return self._compute(tasks)

    def _compute(self, tasks) -> list:
        import dask

        hook = None if self.progress is None else self.progress.block_done
        client = self.client
        if client is None and self.scheduler is None:
            client = _active_client()
        if client is not None:
            from distributed import as_completed
            futures = client.compute(tasks)
            for _ in as_completed(futures):
                if hook is not None:
                    hook()
            return client.gather(futures)
        kwargs: dict[str, Any] = {"scheduler": self.scheduler or "threads"}
        if self.num_workers:
            kwargs["num_workers"] = self.num_workers
        # Parallel tasks each running multi-threaded BLAS would oversubscribe the cores.
        from threadpoolctl import threadpool_limits
        with ExitStack() as stack:
            stack.enter_context(threadpool_limits(1))
            if hook is not None:
                stack.enter_context(_task_counter(hook, {t.key for t in tasks}))
            return list(dask.compute(*tasks, **kwargs))


def _active_client():
    """The default dask.distributed client, or None."""
    try:
        from distributed import default_client
        return default_client()
    except (ImportError, ValueError):
        return None


def _task_counter(hook, keys=None):
    """Dask scheduler callback: calls ``hook()`` when a task finishes (one of ``keys``,
    or any task when ``keys`` is None)."""
    from dask.callbacks import Callback

    class Counter(Callback):
        def _posttask(self, key, result, dsk, state, id):
            if keys is None or key in keys:
                hook()
    return Counter()


class _Into:
    """``kernel(block, start)`` after copying the block into ``out[start:start + m]``."""

    def __init__(self, out: np.ndarray, kernel: Callable):
        self.out = out
        self.kernel = kernel

    def __call__(self, block, start):
        block = np.asarray(block)
        self.out[start:start + block.shape[0]] = block
        return self.kernel(block, start)


def read_into(x, out: np.ndarray, kernel: Callable, *, num_workers: int | None = None,
              progress: Progress | None = None) -> list:
    """Read a lazy matrix into memory block by block, running a kernel on each block.

    Parameters
    ----------
    x : dask array of shape (n, p), chunked along rows
    out : ndarray of shape (n, p)
        Filled in place (blocks are copied into it as they are read: the threaded
        scheduler shares this process's memory, so no second copy of the data is made).
    kernel : callable
        ``kernel(block, start)`` on each block while it is in cache (e.g. the statistics).
    num_workers : int, optional
        Threads reading (and decompressing) blocks in parallel, BLAS single-threaded.

    Returns
    -------
    list
        ``kernel``'s results in block order.
    """
    src = DaskSource(x, scheduler="threads", num_workers=num_workers, progress=progress)
    return src.map(_Into(out, kernel), [(s,) for s, _ in src.blocks])


def compute_with_bar(arr, progress: Progress, desc: str = "load"):
    """Compute a dask array, one bar step per finished task."""
    import dask

    with progress.bar(desc, None, "block") as bar, _task_counter(lambda: bar.update(1)):
        return dask.compute(arr)[0]
