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
        nnz = getattr(X, "nnz", None)
        if block_rows is None and nnz is not None:
            # a CSR matrix: blocks of about BLOCK_ELEMENTS / 4 stored values (per-block work
            # is in proportion to them; blocks of 256 rows of sparse counts were mostly
            # per-call overhead)
            rows = max(rows, int(BLOCK_ELEMENTS // 4 * X.shape[0] / max(nnz, 1)))
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

    @classmethod
    def scan_rows(cls, x4, rows: int, *, scheduler="threads", num_workers: int | None = None,
                  progress: Progress | None = None) -> "DaskSource":
        """Row blocks of ``rows`` whole scan rows of a 4D dask array, assembled by hand.

        Each block is one task concatenating the slices of the array's own chunks it
        covers (``np.concatenate``: one copy); a chunk shared by two blocks is read once
        per pass. dask's ``rechunk`` of a zarr-backed array to the same blocks cost 2.5-5x
        the CPU time (measured on the 10^5-pattern scan).

        Parameters
        ----------
        x4 : dask array of shape (scan_y, scan_x, ky, kx)
            Whole patterns per chunk (the detector axes are merged if not).
        rows : int
            Scan rows per block (align them with the chunks, see
            :func:`nmf4d.execution.aligned_rows`).
        """
        from dask import delayed

        from ..arrays import whole_patterns

        x4 = whole_patterns(x4)
        sy, sx, ky, kx = (int(v) for v in x4.shape)
        ys = np.cumsum((0,) + tuple(x4.chunks[0]))
        chunks = x4.to_delayed()[:, :, 0, 0]
        self = cls.__new__(cls)
        self.X = None
        self.shape = (sy * sx, ky * kx)
        self.dtype = work_dtype(x4.dtype)
        self.blocks, self._delayed = [], []
        rows = max(1, int(rows))
        assemble = delayed(_assemble_rows, pure=False)
        for y0 in range(0, sy, rows):
            y1 = min(sy, y0 + rows)
            parts = [(list(chunks[iy]), max(y0, ys[iy]) - ys[iy], min(y1, ys[iy + 1]) - ys[iy])
                     for iy in range(len(ys) - 1) if ys[iy] < y1 and ys[iy + 1] > y0]
            self._delayed.append(assemble(parts, ky * kx))
            self.blocks.append((y0 * sx, y1 * sx))
        self.scheduler, self.num_workers, self.client = scheduler, num_workers, None
        self.progress = progress
        return self

    def map(self, kernel, per_block=None, shared=(), only=None) -> list:
        """See :meth:`BlockSource.map`; one dask task per block.

        Keys are random (``pure=False``): tokenizing the arguments would hash every array
        they hold, once per block (a kernel holding the 3 GB destination of
        :func:`read_into` cost 80 s of hashing for a 10^5-pattern scan). Shared arguments
        are one graph node each, sent once to a cluster.
        """
        from dask import delayed

        shared_d = tuple(s if s is None or isinstance(s, (bool, int, float, str))
                         else delayed(s, pure=False) for s in shared)
        call = delayed(kernel, pure=False)
        tasks = []
        for i in (range(len(self._delayed)) if only is None else only):
            extra = per_block[i] if per_block is not None else ()
            tasks.append(call(self._delayed[i], *extra, *shared_d))
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


def _assemble_rows(parts, p: int) -> np.ndarray:
    """Rows ``a:b`` of each chunk row (a list of chunks along scan x), joined into one
    (m, p) block (a view when it is one chunk's whole rows)."""
    rows = [row[0][a:b] if len(row) == 1 else np.concatenate([c[a:b] for c in row], axis=1)
            for row, a, b in parts]
    block = rows[0] if len(rows) == 1 else np.concatenate(rows, axis=0)
    return block.reshape(-1, p)


def _active_client():
    """The default dask.distributed client, or None."""
    import sys

    if "distributed" not in sys.modules:      # no client without it (and its import: 0.15 s)
        return None
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
    """Copy a chunk of a 4D array into ``out`` (its place in the scan), then run
    ``kernel(chunk as (m, p), global rows of its patterns)``."""

    def __init__(self, out: np.ndarray | None, kernel: Callable, sx: int):
        self.out = out
        self.kernel = kernel
        self.sx = sx

    def __call__(self, chunk, y0: int, x0: int):
        chunk = np.asarray(chunk)
        cy, cx, ky, kx = chunk.shape
        if self.out is not None:
            self.out[y0:y0 + cy, x0:x0 + cx] = chunk
        sx = self.sx
        rows = ((np.arange(y0, y0 + cy) * sx)[:, None] + np.arange(x0, x0 + cx)).ravel()
        return rows, self.kernel(chunk.reshape(cy * cx, ky * kx), rows)


def read_into(x4, out: np.ndarray, kernel: Callable, *, num_workers: int | None = None,
              progress: Progress | None = None) -> list:
    """Read a lazy 4D array into memory chunk by chunk, running a kernel on each chunk.

    Parameters
    ----------
    x4 : dask array of shape (scan_y, scan_x, ky, kx)
    out : ndarray of shape (scan_y, scan_x, ky, kx), or None
        Filled in place, each chunk copied into its place as it is read (the threaded
        scheduler shares this process's memory: no second copy of the data is made);
        None: nothing is copied (the kernel keeps what it needs, e.g. a sparse copy).
    kernel : callable
        ``kernel(patterns (m, p), rows (m,))`` on each chunk while it is in cache (e.g.
        the statistics), ``rows`` the global row of each pattern in the data matrix.
    num_workers : int, optional
        Threads reading (and decompressing) chunks in parallel, BLAS single-threaded.

    Returns
    -------
    list of (rows, result)
        One per chunk, in no particular order of rows.
    """
    from dask import delayed

    from ..arrays import whole_patterns

    x4 = whole_patterns(x4)
    ys = np.cumsum((0,) + tuple(x4.chunks[0]))
    xs = np.cumsum((0,) + tuple(x4.chunks[1]))
    grid = x4.to_delayed()[:, :, 0, 0]
    call = delayed(_Into(out, kernel, int(x4.shape[1])), pure=False)
    tasks = [call(grid[i, j], int(ys[i]), int(xs[j]))
             for i in range(grid.shape[0]) for j in range(grid.shape[1])]
    src = DaskSource.__new__(DaskSource)
    src.scheduler, src.num_workers, src.client, src.progress = "threads", num_workers, None, \
        progress
    return src._compute(tasks)


def compute_with_bar(arr, progress: Progress, desc: str = "load"):
    """Compute a dask array, one bar step per finished task."""
    import dask

    with progress.bar(desc, None, "block") as bar, _task_counter(lambda: bar.update(1)):
        return dask.compute(arr)[0]
