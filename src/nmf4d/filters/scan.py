"""The paper's scan filter: each pattern replaced by the mean of its scan neighbourhood."""
from __future__ import annotations

from typing import Sequence

import dask.array as da
import numpy as np

from ..arrays import Array, data_4d, float_dtype, is_dask, is_int
from ..errors import InputError


def _k_scan_box_sum(block: np.ndarray, r: int) -> np.ndarray:
    """Sum over a (2r+1) x (2r+1) scan window, zero-padded at the block edges (float64)."""
    out = block.astype(np.float64)
    for axis in (0, 1):
        n, pad = out.shape[axis], [(0, 0)] * out.ndim
        pad[axis] = (r, r)
        p = np.pad(out, pad)
        out = sum(np.take(p, np.arange(k, k + n), axis=axis) for k in range(2 * r + 1))
    return out


def _neighbour_counts(scan_shape: Sequence[int], r: int) -> np.ndarray:
    """Number of existing scan positions in each (2r+1)^2 window, shape scan_shape."""
    def one(n: int) -> np.ndarray:
        i = np.arange(n)
        return np.minimum(i, r) + np.minimum(n - 1 - i, r) + 1
    return np.outer(one(scan_shape[0]), one(scan_shape[1])).astype(np.float64)


def scan_mean_filter(data: Array, *, size: int = 3) -> Array:
    """Replace each pattern by the mean of the patterns in its scan neighbourhood.

    The "mean function" of the reference paper: a ``size`` x ``size`` box average over
    scan positions (detector pixels are not mixed); the scan size is unchanged. At the
    scan border the mean is over the neighbours that exist: with ``size=3`` a corner
    pattern is the mean of 4 patterns, an edge pattern of 6.

    For dask, window sums use ``map_overlap`` along the scan axes (depth ``size // 2``,
    ``boundary='none'``, so nothing is added beyond the true scan edges) and are divided
    by the exact neighbour counts of the whole scan.

    Parameters
    ----------
    data : ndarray or dask array of shape (scan_y, scan_x, ky, kx)
    size : int
        Odd window side >= 1 (1 gives a float copy).

    Returns
    -------
    ndarray or dask array of shape (scan_y, scan_x, ky, kx)
        float32 (float64 for float64 input); sums are accumulated in float64.
    """
    data = data_4d(data)
    if not (is_int(size) and size >= 1 and size % 2 == 1):
        raise InputError(f"size must be an odd int >= 1, got {size!r}")
    r, dtype = int(size) // 2, float_dtype(data.dtype)
    counts = _neighbour_counts(data.shape[:2], r)[:, :, None, None]
    if not is_dask(data):
        return (_k_scan_box_sum(data, r) / counts).astype(dtype)
    sums = data.map_overlap(_k_scan_box_sum, depth={0: r, 1: r, 2: 0, 3: 0},
                            boundary="none", dtype=np.float64, r=r)
    counts = da.from_array(counts, chunks=(sums.chunks[0], sums.chunks[1], 1, 1))
    return (sums / counts).astype(dtype)


def mean3_filter(data: Array) -> Array:
    """The paper's filter: :func:`scan_mean_filter` with a 3x3 window."""
    return scan_mean_filter(data, size=3)
