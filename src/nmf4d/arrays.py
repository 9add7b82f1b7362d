"""Array conventions shared by every stage: 4D datasets, numpy or dask, and their checks.

A dataset is ``(scan_y, scan_x, ky, kx)`` (scan positions first, detector pixels last), as a
numpy ndarray or a lazy dask array; the NMF matrix has one pattern per row (see
:mod:`nmf4d.nmf` for the whole axis convention). This module holds what the preprocessing
steps and the filters both need: validation of shape, dtype and values, per-block kernel
application that keeps dask lazy, and the matrix views.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence, Union

import dask.array as da
import numpy as np

from .errors import InputError

Array = Union[np.ndarray, da.Array]


def is_dask(x: Any) -> bool:
    """True for a dask array."""
    return isinstance(x, da.Array)


def as_array(x: Any) -> Array:
    """A dask array as it is, anything else as a numpy array."""
    return x if is_dask(x) else np.asarray(x)


def data_4d(data: Any, name: str = "data") -> Array:
    """``data`` as an array, checked by :func:`validate_4d`."""
    data = as_array(data)
    validate_4d(data, name=name)
    return data


def float_dtype(dtype: np.dtype) -> np.dtype:
    """float64 stays float64; everything else (ints, float16/32) becomes float32."""
    return np.dtype(np.float64 if np.dtype(dtype) == np.float64 else np.float32)


def is_int(v: Any, types: tuple = (int, np.integer)) -> bool:
    """True for an integer (numpy included) that is not a bool."""
    return isinstance(v, types) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    """True for a real number (numpy included) that is not a bool."""
    return is_int(v, (int, float, np.number))


def whole_patterns(x: da.Array) -> da.Array:
    """Merge chunked detector axes so that every block holds whole patterns."""
    return x.rechunk({2: -1, 3: -1}) if len(x.chunks[2]) > 1 or len(x.chunks[3]) > 1 else x


def map_patterns(kernel: Callable, data: Array, pattern_shape: Sequence[int],
                 dtype: np.dtype, **kwargs) -> Array:
    """Apply a per-block kernel (4D block -> 4D block with the same scan shape)."""
    kwargs["out_dtype"] = dtype
    if not is_dask(data):
        return kernel(data, **kwargs)
    data = whole_patterns(data)
    chunks = (data.chunks[0], data.chunks[1], (pattern_shape[0],), (pattern_shape[1],))
    return data.map_blocks(kernel, chunks=chunks, dtype=dtype, **kwargs)


def validate_4d(data: Array, *, name: str = "data") -> None:
    """Raise :class:`InputError` if ``data`` is not 4D, empty, complex or non-numeric.

    Cheap: only shape and dtype are looked at, no value is read.

    Parameters
    ----------
    data : ndarray or dask array of shape (scan_y, scan_x, ky, kx)
    name : str
        Name used in error messages.
    """
    data = as_array(data)
    if data.ndim != 4:
        raise InputError(f"{name} must be 4D (scan_y, scan_x, ky, kx), got shape "
                         f"{tuple(data.shape)}")
    if np.issubdtype(data.dtype, np.complexfloating):
        raise InputError(f"{name} must be real-valued, got dtype {data.dtype}")
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
        raise InputError(f"{name} must have an integer or float dtype, got {data.dtype}")
    if data.size == 0:
        raise InputError(f"{name} is empty, got shape {tuple(data.shape)}")


def check_values(data: Array, *, name: str = "data") -> None:
    """Raise :class:`InputError` unless every value is finite and non-negative.

    The message names the problem, the number of offending values and patterns, the
    first offending scan position (row-major) and, for negative values, the minimum.
    For dask all reductions are computed together, in one pass over the data.

    Parameters
    ----------
    data : ndarray or dask array of shape (scan_y, scan_x, ky, kx)
    name : str
        Name used in error messages.
    """
    data = data_4d(data, name)
    if np.issubdtype(data.dtype, np.unsignedinteger):
        return None
    xp = da if is_dask(data) else np
    finite = xp.isfinite(data)
    neg = data < 0
    parts = ((~finite).sum(), (~finite).any(axis=(2, 3)), neg.sum(), neg.any(axis=(2, 3)),
             xp.where(finite, data, np.inf).min())
    n_bad, bad_map, n_neg, neg_map, vmin = da.compute(*parts) if xp is da else parts
    raise_bad_values(name, n_bad=n_bad, bad_positions=np.argwhere(bad_map), n_neg=n_neg,
                     neg_positions=np.argwhere(neg_map), vmin=vmin)
    return None


def raise_bad_values(name: str, *, n_bad: int, bad_positions, n_neg: int, neg_positions,
                     vmin: float) -> None:
    """Raise the :func:`check_values` error for counted bad values, if any.

    ``bad_positions`` / ``neg_positions``: ndarray of shape (m, 2), the scan positions of
    the patterns holding NaN/inf or negative values, in row-major order.
    """
    for n, where, what, extra in ((n_bad, bad_positions, "NaN/inf", ""),
                                  (n_neg, neg_positions, "negative",
                                   f"; minimum value {float(vmin):g} (NMF needs >= 0)")):
        if n:
            pos = tuple(int(i) for i in where[0])
            raise InputError(f"{name} contains {int(n)} {what} value(s) in {len(where)} "
                             f"pattern(s); first at scan position {pos}{extra}")


def to_matrix(data: Array) -> Array:
    """Unfold to a (n_patterns, n_pixels) matrix, patterns in row-major scan order.

    Parameters
    ----------
    data : ndarray or dask array of shape (scan_y, scan_x, ky, kx)

    Returns
    -------
    ndarray or dask array of shape (scan_y * scan_x, ky * kx)
        Row ``iy * scan_x + ix`` is ``data[iy, ix].ravel()``. A view of contiguous numpy
        input; for dask the reshape may rechunk (merging scan_x into the rows).
    """
    data = data_4d(data)
    sy, sx, ky, kx = data.shape
    return (whole_patterns(data) if is_dask(data) else data).reshape(sy * sx, ky * kx)


def from_matrix(matrix: Array, scan_shape: Sequence[int],
                pattern_shape: Sequence[int]) -> Array:
    """Inverse of :func:`to_matrix`: (scan_y * scan_x, ky * kx) ``matrix`` ->
    (scan_y, scan_x, ky, kx) array, given ``scan_shape`` and ``pattern_shape``."""
    matrix = as_array(matrix)
    (sy, sx), (ky, kx) = (tuple(int(v) for v in s) for s in (scan_shape, pattern_shape))
    if matrix.shape != (sy * sx, ky * kx):
        raise InputError(f"matrix must have shape {(sy * sx, ky * kx)} for scan_shape "
                         f"{(sy, sx)} and pattern_shape {(ky, kx)}, got {matrix.shape}")
    return matrix.reshape(sy, sx, ky, kx)
