"""Where the data lives and who computes: memory budget, executors, progress bars.

The maths (:mod:`nmf4d.nmf`) is written once against a data operator; this module
chooses the operator for a dataset and a machine, as LiberTEM separates its UDFs from
its executors:

- data that fits half the memory budget is held in memory (and its Poisson-weighted copy
  too when both fit the budget) and processed block by block on every core;
- larger data stays a chunked dask array: every pass over it streams blocks from the file
  through the preprocessing, on dask's threaded scheduler, never holding more than a few
  blocks;
- with a ``dask.distributed`` client (``--scheduler ADDRESS`` or ``--workers N``) the
  blocks are computed on the cluster's workers (persisted in their memory when the data
  fits the budget).
"""
from __future__ import annotations

import os
import re
from contextlib import contextmanager

import numpy as np

from .errors import InputError

#: Default memory budget: this fraction of the machine's physical memory.
DEFAULT_MEMORY_FRACTION = 0.5
#: Working copies of a block a kernel holds at once (raw, float32, weighted, residual).
_COPIES_PER_BLOCK = 4
_UNITS = {"": 1, "B": 1, "K": 2**10, "KB": 2**10, "KIB": 2**10, "M": 2**20, "MB": 2**20,
          "MIB": 2**20, "G": 2**30, "GB": 2**30, "GIB": 2**30, "T": 2**40, "TB": 2**40,
          "TIB": 2**40}


def physical_memory() -> int:
    """Bytes of physical memory of this machine (8 GiB if it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


def parse_memory(text) -> int:
    """Parse a memory budget: bytes as int, or text like '2GB', '512 MiB', '0.5G'.

    None gives the default, :data:`DEFAULT_MEMORY_FRACTION` of the physical memory.
    """
    if text is None:
        return int(DEFAULT_MEMORY_FRACTION * physical_memory())
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        value = int(text)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(text))
        if not m or m.group(2).upper() not in _UNITS:
            raise InputError(f"--memory must be a size like 2GB, 512MB or 4GiB, got {text!r}")
        value = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    if value < 64 * 2**20:
        raise InputError(f"--memory {text!r} is below the minimum of 64MB")
    return value


def block_rows(n_pixels: int, budget: int, *, n_workers: int = 1, itemsize: int = 4) -> int:
    """Rows (patterns) per block so that the blocks in flight fit a third of the budget
    (the rest: the interpreter and libraries, dask's queue of chunks read ahead, the
    factors, the sketch; measured peak 1.7 GB with --memory 2GB on a 4.3 GB scan)."""
    per_row = n_pixels * itemsize * _COPIES_PER_BLOCK * max(1, n_workers)
    return max(1, int(budget // 3 // per_row))


class Progress:
    """tqdm bars on stderr for the stages of an analysis; silent when disabled."""

    def __init__(self, enabled: bool = True, *, tty_only: bool = True):
        self.enabled = enabled
        self.tty_only = tty_only

    @contextmanager
    def bar(self, desc: str, total: int | None, unit: str = "it"):
        if not self.enabled:
            yield _Null()
            return
        from tqdm.auto import tqdm
        # disable=None: bars on a terminal only, so logs and pipes get no control codes
        with tqdm(total=total, desc=desc, unit=unit, leave=True, dynamic_ncols=True,
                  disable=None if self.tty_only else False) as t:
            yield t
            if total is not None and t.n < total and not t.disable:
                t.total = t.n      # stopped early (converged): show the count reached
                t.refresh()


class _Null:
    def update(self, n=1):
        return None


@contextmanager
def counting(ops, bar):
    """Advance ``bar`` once per block any of ``ops`` (operators) computes, while inside.

    The hook is removed on exit, exceptions included; updates from block threads are
    serialised.
    """
    import threading

    ops = ops if isinstance(ops, (list, tuple)) else [ops]
    sources = {id(o.source): o.source for o in ops if hasattr(o, "source")}
    lock = threading.Lock()

    def hook():
        with lock:
            bar.update(1)
    for src in sources.values():
        src.on_block = hook
    try:
        yield bar
    finally:
        for src in sources.values():
            src.on_block = None


@contextmanager
def dask_client(*, scheduler: str | None = None, workers: int | None = None):
    """Context: a ``dask.distributed`` client from :func:`start_client` (None when neither
    is given), closed with its local cluster on exit."""
    client, cluster = start_client(scheduler=scheduler, workers=workers)
    try:
        yield client
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def start_client(*, scheduler: str | None = None, workers: int | None = None):
    """A ``dask.distributed`` client: connect to ``scheduler`` or start ``workers`` local
    worker processes (one thread each). Returns (client, cluster or None)."""
    if workers is not None and int(workers) < 1:
        raise InputError(f"--workers must be >= 1, got {workers}")
    if scheduler is None and workers is None:
        return None, None
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise InputError("--scheduler/--workers need dask.distributed: "
                         "pip install 'nmf4d[distributed]'") from None
    if scheduler is not None and workers:
        raise InputError("give either --scheduler ADDRESS or --workers N, not both")
    if scheduler is not None:
        try:
            return Client(scheduler, timeout="10s"), None
        except (OSError, TimeoutError, ValueError) as e:
            raise InputError(f"--scheduler {scheduler}: cannot connect ({e}); give an "
                             "address like tcp://host:8786") from None
    cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                           dashboard_address=None)
    try:
        return Client(cluster), cluster
    except BaseException:
        cluster.close()
        raise


def _bad_values(st: dict, scan_shape, name: str = "data") -> None:
    """Raise like :func:`nmf4d.preprocess.check_values` from a statistics pass."""
    from .preprocess import raise_bad_values

    def positions(rows):
        return np.stack(np.unravel_index(np.asarray(rows, dtype=np.int64), scan_shape), axis=1)
    raise_bad_values(name, n_bad=st["n_bad"], bad_positions=positions(st["bad_rows"]),
                     n_neg=st["n_neg"], neg_positions=positions(st["neg_rows"]),
                     vmin=st["min"])


def data_operators(arr, *, weighting: str = "poisson", memory=None, client=None,
                   bars: Progress | None = None):
    """Operators over the preprocessed data, chosen for the memory budget and executor.

    Parameters
    ----------
    arr : ndarray or dask array of shape (scan_y, scan_x, ky, kx)
    weighting : {"poisson", "none"}
    memory : int or str, optional
        Budget in bytes (or '2GB'); default half the physical memory.
    client : dask.distributed.Client, optional

    Returns
    -------
    op : operator over the data (original units)
    fit_op : operator over the weighted data (``op`` when weighting is "none")
    scales : (a, b) or None
    stats : dict (row sums, column sums, ...)
    mode : str, "memory", "memory (weighting on the fly)", "stream" or "distributed"
    """
    from .nmf._blocked import BlockOperator, DaskSource, InMemoryOperator, usable_cores
    from .nmf._weighting import apply_scales, scales_from_sums

    bars = bars or Progress(False)
    budget = parse_memory(memory)
    sy, sx, ky, kx = arr.shape
    n, p = sy * sx, ky * kx
    nbytes = n * p * 4
    lazy = not isinstance(arr, np.ndarray)
    if client is not None:
        import dask.array as da
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        # at least two blocks per worker, so every worker computes
        rows = max(1, min(block_rows(p, budget, n_workers=n_workers) // sx,
                          -(-sy // (2 * n_workers))))
        x4 = arr if lazy else da.from_array(arr, chunks=(rows, sx, ky, kx))
        x = x4.astype(np.float32).rechunk((rows, sx, ky, kx)).reshape(n, p)
        if nbytes <= budget:
            x = client.persist(x)
        src = DaskSource(x, client=client)
        mode = "distributed"
    elif lazy and nbytes > budget // 2:
        workers = max(1, min(usable_cores(), 4))
        rows = max(1, block_rows(p, budget, n_workers=workers) // sx)
        x = arr.astype(np.float32).rechunk((rows, sx, ky, kx)).reshape(n, p)
        src = DaskSource(x, scheduler="threads", num_workers=workers)
        mode = "stream"
    else:
        if lazy:
            with bars.bar("load", None, "block") as b:
                x4 = _compute_with_bar(arr, b)
        else:
            x4 = arr
        X = np.ascontiguousarray(np.asarray(x4, dtype=np.float32).reshape(n, p))
        src = None
        mode = "memory"
    if src is None:
        op = InMemoryOperator(X)
    else:
        op = BlockOperator(src)
    with bars.bar("check + statistics", len(op.source.blocks), "block") as b, \
            counting(op, b):
        st = op.stats()
    _bad_values(st, (sy, sx))
    if st["sq"] == 0.0:
        raise InputError("data contains only zeros after preprocessing: nothing to factorise")
    if weighting == "none":
        return op, op, None, st, mode
    scales = scales_from_sums(st["row_sums"], st["col_sums"] / n)
    if mode == "memory" and 2 * nbytes <= budget:
        fit_op = InMemoryOperator(apply_scales(op.X, *scales))
    else:
        fit_op = BlockOperator(op.source, scales=scales)
        if mode == "memory":
            mode = "memory (weighting on the fly)"
    return op, fit_op, scales, st, mode


def _compute_with_bar(arr, bar):
    """Compute a dask array, advancing ``bar`` per finished chunk."""
    import dask
    from dask.callbacks import Callback

    class _Count(Callback):
        def _posttask(self, key, result, dsk, state, id):
            bar.update(1)
    with _Count():
        return dask.compute(arr)[0]
