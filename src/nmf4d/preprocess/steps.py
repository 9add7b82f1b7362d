"""Preparation steps of 4D-STEM data (scan_y, scan_x, ky, kx) before NMF.

Each step is a pure function on a numpy ndarray or a dask array returning the same kind
(dask stays lazy); inputs are never modified in place. Each has one per-block numpy kernel
(``_k_*``), called directly on an ndarray and applied to dask with ``map_blocks`` (dask
chunks should hold whole patterns; chunked detector axes are merged). The scan filters
(mean3, pca, denoise) are in :mod:`nmf4d.filters`; :func:`nmf4d.preprocess.preprocess`
chains everything.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import dask.array as da
import numpy as np

from ..arrays import Array, data_4d, float_dtype, is_dask, is_int, is_number, map_patterns
from ..beam import check_centre
from ..errors import InputError
from ..options import NORMALISE_METHODS, SCALE_METHODS


def _pair(value: Any, name: str) -> tuple[int, int]:
    vals = (value, value) if np.ndim(value) == 0 else tuple(value)
    if len(vals) != 2 or not all(is_int(v) for v in vals):
        raise InputError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(vals[0]), int(vals[1])


def _method(method: str | None, allowed: Sequence[str]) -> str:
    m = "none" if method is None else method
    if m not in allowed:
        raise InputError(f"method must be one of {list(allowed)} or None, got {method!r}")
    return m



# ---------------------------------------------------------------------- binning / crop
def _k_bin(block: np.ndarray, factor: tuple[int, int], reduce: str,
           out_dtype: np.dtype) -> np.ndarray:
    (fy, fx), (sy, sx, ky, kx) = factor, block.shape
    ny, nx = ky // fy, kx // fx
    b = block[:, :, :ny * fy, :nx * fx].reshape(sy, sx, ny, fy, nx, fx)
    acc = b.sum(axis=(3, 5), dtype=np.float64)
    if reduce == "mean":
        acc /= fy * fx
    return acc.astype(out_dtype, copy=False)


def bin_patterns(data: Array, factor: int | tuple[int, int], *, reduce: str = "sum") -> Array:
    """Bin the detector axes by an integer factor.

    Parameters
    ----------
    data : ndarray or dask array of shape (scan_y, scan_x, ky, kx)
    factor : int or (int, int)
        Bin size (fy, fx), each ``>= 1`` and ``<=`` the pattern size. If ky (kx) is not
        divisible by fy (fx), the trailing ``ky % fy`` rows (``kx % fx`` columns) are
        cropped before binning.
    reduce : {"sum", "mean"}
        "sum" (default) adds the pixels of each bin and keeps counting statistics;
        "mean" averages them.

    Returns
    -------
    ndarray or dask array of shape (scan_y, scan_x, ky // fy, kx // fx)
        float32 (float64 for float64 input); sums are accumulated in float64.
    """
    data = data_4d(data)
    fy, fx = _pair(factor, "factor")
    ky, kx = data.shape[2:]
    if not (1 <= fy <= ky and 1 <= fx <= kx):
        raise InputError(f"factor must be >= 1 and <= the pattern size {(ky, kx)}, "
                         f"got {factor!r}")
    if reduce not in ("sum", "mean"):
        raise InputError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
    return map_patterns(_k_bin, data, (ky // fy, kx // fx), float_dtype(data.dtype),
                         factor=(fy, fx), reduce=reduce)


def _check_box(box: Any, pattern_shape: Sequence[int]) -> tuple[int, int, int, int]:
    vals = tuple(box) if isinstance(box, (tuple, list, np.ndarray)) else ()
    if len(vals) != 4 or not all(is_int(v) for v in vals):
        raise InputError(f"box must be 4 ints (y0, y1, x0, x1), got {box!r}")
    ky, kx = pattern_shape
    y0, y1, x0, x1 = (int(v) + n if v < 0 else int(v) for v, n in zip(vals, (ky, ky, kx, kx)))
    if not (0 <= y0 < y1 <= ky and 0 <= x0 < x1 <= kx):
        raise InputError(f"box {box!r} must select a non-empty region inside the pattern "
                         f"of shape {(ky, kx)} (0 <= y0 < y1 <= ky, 0 <= x0 < x1 <= kx)")
    return y0, y1, x0, x1


def crop_patterns(data: Array, *, box: tuple[int, int, int, int]) -> Array:
    """Crop every pattern to ``[y0:y1, x0:x1]``.

    Parameters
    ----------
    data : ndarray or dask array of shape (scan_y, scan_x, ky, kx)
    box : (int, int, int, int)
        (y0, y1, x0, x1) detector-pixel bounds with python slicing semantics (half-open;
        negative values count from the end). Unlike slicing, bounds outside the pattern
        or an empty region raise :class:`InputError`.

    Returns
    -------
    ndarray (a copy) or dask array of shape (scan_y, scan_x, y1 - y0, x1 - x0)
    """
    data = data_4d(data)
    y0, y1, x0, x1 = _check_box(box, data.shape[2:])
    out = data[:, :, y0:y1, x0:x1]
    return out if is_dask(out) else out.copy()


def _centre_box(shape: Sequence[int], size: Any, centre: Any) -> tuple[int, int, int, int]:
    ky, kx = shape
    if not (is_int(size) and 1 <= size <= min(ky, kx)):
        raise InputError(f"size must be an int in [1, {min(ky, kx)}], got {size!r}")
    cy, cx = check_centre(centre, shape)
    y0, x0 = (math.floor(c - (size - 1) / 2 + 0.5) for c in (cy, cx))
    if y0 < 0 or x0 < 0 or y0 + size > ky or x0 + size > kx:
        raise InputError(f"a crop of size {size} around centre {(cy, cx)} does not fit "
                         f"in the pattern of shape {(ky, kx)}")
    return y0, y0 + int(size), x0, x0 + int(size)


def centre_crop(data: Array, *, size: int, centre: tuple[float, float] | None = None) -> Array:
    """Crop a ``size`` x ``size`` square around ``centre`` from every pattern.

    Parameters
    ----------
    data : ndarray or dask array of shape (scan_y, scan_x, ky, kx)
    size : int
        Side of the square, ``1 <= size <= min(ky, kx)``.
    centre : (float, float), optional
        (cy, cx) in pixels, default the pattern centre ((ky-1)/2, (kx-1)/2). The box
        starts at ``round(c - (size-1)/2)`` (halves round up) and must fit the pattern.

    Returns
    -------
    ndarray (a copy) or dask array of shape (scan_y, scan_x, size, size)
    """
    data = data_4d(data)
    return crop_patterns(data, box=_centre_box(data.shape[2:], size, centre))



# ------------------------------------------------------------------------------ mask
def _k_mask(block: np.ndarray, mask: np.ndarray, fill: Any, out_dtype: np.dtype) -> np.ndarray:
    out = block.astype(out_dtype, copy=True)
    out[:, :, mask] = fill
    return out


def apply_mask(data: Array, mask: np.ndarray, *, fill: float = 0) -> Array:
    """Set the masked detector pixels of every pattern to ``fill``.

    Parameters
    ----------
    data : ndarray or dask array of shape (scan_y, scan_x, ky, kx)
    mask : ndarray of bool, shape (ky, kx)
        True where pixels are replaced (e.g. from :func:`direct_beam_mask`).
    fill : number
        Replacement value. The dtype of ``data`` is kept if it can hold ``fill``,
        otherwise the result is float32.

    Returns
    -------
    ndarray or dask array of shape (scan_y, scan_x, ky, kx)
    """
    data = data_4d(data)
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != data.shape[2:]:
        raise InputError(f"mask must be a bool array of shape {tuple(data.shape[2:])}, "
                         f"got {mask.dtype} {mask.shape}")
    if not is_number(fill):
        raise InputError(f"fill must be a number, got {fill!r}")
    dtype = data.dtype
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if not (float(fill).is_integer() and info.min <= fill <= info.max):
            dtype = float_dtype(dtype)
    return map_patterns(_k_mask, data, data.shape[2:], dtype, mask=mask, fill=fill)



# --------------------------------------------------------------- scaling / normalising
def _k_scale(block: np.ndarray, method: str, out_dtype: np.dtype) -> np.ndarray:
    b = block.astype(out_dtype)
    return np.sqrt(b) if method == "sqrt" else np.log1p(b)


def scale_intensity(data: Array, *, method: str | None) -> Array:
    """Compress the intensity range (bright direct beam vs weak diffraction spots).

    Parameters
    ----------
    data : ndarray or dask array of shape (scan_y, scan_x, ky, kx), non-negative
    method : {None, "none", "sqrt", "log"}
        None / "none": identity (``data`` itself is returned, not a copy);
        "sqrt": square root; "log": ``log1p(x) = log(1 + x)``.

    Returns
    -------
    ndarray or dask array of shape (scan_y, scan_x, ky, kx)
        float32 (float64 for float64 input), unless identity.
    """
    data = data_4d(data)
    m = _method(method, SCALE_METHODS)
    if m == "none":
        return data
    return map_patterns(_k_scale, data, data.shape[2:], float_dtype(data.dtype), method=m)


def _k_norm(block: np.ndarray, method: str, out_dtype: np.dtype) -> np.ndarray:
    b = block.astype(np.float64)
    d = b.sum(axis=(2, 3), keepdims=True) if method == "sum" else b.max(axis=(2, 3),
                                                                         keepdims=True)
    return np.where(d > 0, b / np.where(d > 0, d, 1.0), 0.0).astype(out_dtype)


def normalise_patterns(data: Array, *, method: str | None) -> Array:
    """Normalise pattern intensities.

    Parameters
    ----------
    data : ndarray or dask array of shape (scan_y, scan_x, ky, kx), non-negative
    method : {None, "none", "sum", "max", "mean_total"}
        - None / "none": identity (``data`` itself is returned).
        - "sum": each pattern divided by its own sum (zero-sum patterns stay 0). Removes
          thickness / beam-current variation so that NMF groups patterns by *shape*; it
          also amplifies the noise of weak patterns (vacuum, holes).
        - "max": each pattern divided by its maximum (zero patterns stay 0); similar,
          but the scale is set by the brightest pixel (usually the direct beam).
        - "mean_total": the whole dataset divided by one scalar, the mean pattern sum.
          Brings values to order 1 (convenient for solver tolerances) while keeping the
          relative intensities between patterns, so NMF weights still reflect how much
          of each component is present. Stays lazy for dask.

    Returns
    -------
    ndarray or dask array of shape (scan_y, scan_x, ky, kx)
        float32 (float64 for float64 input), unless identity.
    """
    data = data_4d(data)
    m = _method(method, NORMALISE_METHODS)
    if m == "none":
        return data
    dtype = float_dtype(data.dtype)
    if m in ("sum", "max"):
        return map_patterns(_k_norm, data, data.shape[2:], dtype, method=m)
    xp = da if is_dask(data) else np
    mean_sum = data.sum(dtype=np.float64) / (data.shape[0] * data.shape[1])
    inv = xp.where(mean_sum > 0, 1.0 / xp.where(mean_sum > 0, mean_sum, 1.0), 0.0)
    return (data * inv.astype(dtype)).astype(dtype)
