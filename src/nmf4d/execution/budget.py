"""The memory budget and the machine: how much may be held, in blocks of how many rows.

Data that fits half the budget is held in memory (integer counts in their own dtype, see
:func:`held_dtype`); larger data is streamed in row blocks sized so that the blocks in
flight fit a third of the budget (see :func:`block_rows`).
"""
from __future__ import annotations

import os
import re

import numpy as np

from ..errors import ConfigError

#: Default memory budget: this fraction of the machine's physical memory.
DEFAULT_MEMORY_FRACTION = 0.5
#: Smallest budget accepted.
MIN_MEMORY = 64 * 2**20
#: Working copies of a block held at once, in bytes per element beyond the stored ones:
#: the float32 conversion and a weighted float32 copy (the range finder's first pass).
FLOAT_COPIES_PER_BLOCK = 2
#: Stored copies of a block held at once: the block and the chunks it is merged from.
STORED_COPIES_PER_BLOCK = 2
_UNITS = {"": 1, "B": 1, "K": 2**10, "KB": 2**10, "KIB": 2**10, "M": 2**20, "MB": 2**20,
          "MIB": 2**20, "G": 2**30, "GB": 2**30, "GIB": 2**30, "T": 2**40, "TB": 2**40,
          "TIB": 2**40}


def physical_memory() -> int:
    """Bytes of physical memory of this machine (8 GiB if it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


def usable_cores() -> int:
    """CPU cores this process may run on (affinity / cgroup aware where possible)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def parse_memory(text, *, field: str = "execution.memory") -> int:
    """Parse a memory budget: bytes as int, or text like '2GB', '512 MiB', '0.5G'.

    None gives the default, :data:`DEFAULT_MEMORY_FRACTION` of the physical memory.
    Errors are :class:`~nmf4d.errors.ConfigError` naming ``field``.
    """
    if text is None:
        return int(DEFAULT_MEMORY_FRACTION * physical_memory())
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        value = int(text)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(text))
        if not m or m.group(2).upper() not in _UNITS:
            raise ConfigError(field, text, "must be a size like 2GB, 512MB or 4GiB")
        value = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    if value < MIN_MEMORY:
        raise ConfigError(field, text, "is below the minimum of 64MB")
    return value


def format_bytes(n: float) -> str:
    """A size for people: ``"512 B"``, ``"1.5 KiB"``, ``"3.2 GiB"``."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def held_dtype(dtype) -> np.dtype:
    """The dtype data is held in for the NMF passes: integer counts of at most 4 bytes keep
    their dtype (each block is converted to float32 as it is used, so a uint16 scan takes
    half the memory of its float32 copy); everything else is float32."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer) and dtype.itemsize <= 4:
        return dtype
    return np.dtype(np.float32)


def block_rows(n_pixels: int, budget: int, *, n_workers: int = 1, itemsize: int = 4) -> int:
    """Rows (patterns) per block so that the blocks in flight fit a third of the budget
    (the rest: the interpreter and libraries, dask's queue of chunks read ahead, the
    factors, the sketch; measured peak 1.7 GB with --memory 2GB on a 4.3 GB float32 scan).

    A block of stored values of ``itemsize`` bytes costs
    ``STORED_COPIES_PER_BLOCK * itemsize + FLOAT_COPIES_PER_BLOCK * 4`` bytes per element
    (16 for float32, 12 for uint16 counts)."""
    per_elem = STORED_COPIES_PER_BLOCK * int(itemsize) + FLOAT_COPIES_PER_BLOCK * 4
    per_row = n_pixels * per_elem * max(1, n_workers)
    return max(1, int(budget // 3 // per_row))


def aligned_rows(target: int, chunk: int) -> int:
    """Scan rows per block near ``target`` that never split a storage chunk of ``chunk``
    rows between two blocks unevenly: a multiple of ``chunk`` when ``target >= chunk``,
    else the largest divisor of ``chunk`` not above ``target`` (each chunk is then read and
    decompressed once per pass and shared by whole blocks)."""
    target, chunk = max(1, int(target)), max(1, int(chunk))
    if target >= chunk:
        return target // chunk * chunk
    return max(d for d in range(1, target + 1) if chunk % d == 0)
