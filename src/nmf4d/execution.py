"""Where the data lives and who computes: memory budget, executors, progress bars.

The maths (:mod:`nmf4d.nmf`) is written once against a data operator; this module
chooses the operator for a dataset and a machine, as LiberTEM separates its UDFs from
its executors:

- data that fits the memory budget is held in memory (and its Poisson-weighted copy too
  when both fit) and processed block by block with multi-threaded BLAS;
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
    """Rows (patterns) per block so that the blocks in flight fit half the budget."""
    per_row = n_pixels * itemsize * _COPIES_PER_BLOCK * max(1, n_workers)
    return max(1, int(budget // 2 // per_row))


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

    def set_postfix_str(self, *a, **k):
        return None


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
        except (OSError, TimeoutError) as e:
            raise InputError(f"--scheduler {scheduler}: cannot connect ({e})") from None
    cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                           dashboard_address=None)
    return Client(cluster), cluster
