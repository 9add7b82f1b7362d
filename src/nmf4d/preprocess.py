"""Preparation of 4D-STEM data (scan_y, scan_x, ky, kx) before NMF.

Each step is a pure function on a numpy ndarray or a dask array returning the same kind
(dask stays lazy); inputs are never modified in place. Each has one per-block numpy kernel
(``_k_*``), called directly on an ndarray and applied to dask with ``map_blocks`` /
``map_overlap`` (dask chunks should hold whole patterns; chunked detector axes are
merged). :func:`preprocess` chains the steps and records what was applied.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence, Union

import dask.array as da
import numpy as np
from scipy import ndimage

from .errors import InputError

Array = Union[np.ndarray, da.Array]
SCALE_METHODS = ("none", "sqrt", "log")
NORMALISE_METHODS = ("none", "sum", "max", "mean_total")


# ----------------------------------------------------------------------------- helpers
def _is_dask(x: Any) -> bool:
    return isinstance(x, da.Array)


def _as_array(x: Any) -> Array:
    return x if _is_dask(x) else np.asarray(x)


def _data(data: Any, name: str = "data") -> Array:
    data = _as_array(data)
    validate_4d(data, name=name)
    return data


def _float_dtype(dtype: np.dtype) -> np.dtype:
    """float64 stays float64; everything else (ints, float16/32) becomes float32."""
    return np.dtype(np.float64 if np.dtype(dtype) == np.float64 else np.float32)


def _is_int(v: Any, types: tuple = (int, np.integer)) -> bool:
    return isinstance(v, types) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return _is_int(v, (int, float, np.number))


def _whole_patterns(x: da.Array) -> da.Array:
    """Merge chunked detector axes so that every block holds whole patterns."""
    return x.rechunk({2: -1, 3: -1}) if len(x.chunks[2]) > 1 or len(x.chunks[3]) > 1 else x


def _map_patterns(kernel: Callable, data: Array, pattern_shape: Sequence[int],
                  dtype: np.dtype, **kwargs) -> Array:
    """Apply a per-block kernel (4D block -> 4D block with the same scan shape)."""
    kwargs["out_dtype"] = dtype
    if not _is_dask(data):
        return kernel(data, **kwargs)
    data = _whole_patterns(data)
    chunks = (data.chunks[0], data.chunks[1], (pattern_shape[0],), (pattern_shape[1],))
    return data.map_blocks(kernel, chunks=chunks, dtype=dtype, **kwargs)


def _pair(value: Any, name: str) -> tuple[int, int]:
    vals = (value, value) if np.ndim(value) == 0 else tuple(value)
    if len(vals) != 2 or not all(_is_int(v) for v in vals):
        raise InputError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(vals[0]), int(vals[1])


def _centre(centre: Any, pattern_shape: Sequence[int]) -> tuple[float, float]:
    """Validated (cy, cx); None -> pattern centre ((ky-1)/2, (kx-1)/2)."""
    if centre is None:
        return (pattern_shape[0] - 1) / 2.0, (pattern_shape[1] - 1) / 2.0
    try:
        cy, cx = (float(c) for c in centre)
    except (TypeError, ValueError):
        raise InputError(f"centre must be a pair (cy, cx) of numbers, got {centre!r}") from None
    if not (math.isfinite(cy) and math.isfinite(cx)):
        raise InputError(f"centre must be finite, got {centre!r}")
    return cy, cx


def _method(method: str | None, allowed: Sequence[str]) -> str:
    m = "none" if method is None else method
    if m not in allowed:
        raise InputError(f"method must be one of {list(allowed)} or None, got {method!r}")
    return m


# ------------------------------------------------------------------------- validation
def validate_4d(data: Array, *, name: str = "data") -> None:
    """Raise :class:`InputError` if ``data`` is not 4D, empty, complex or non-numeric.

    Cheap: only shape and dtype are looked at, no value is read.

    Parameters
    ----------
    data : ndarray or dask array of shape (scan_y, scan_x, ky, kx)
    name : str
        Name used in error messages.
    """
    data = _as_array(data)
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
    data = _data(data, name)
    if np.issubdtype(data.dtype, np.unsignedinteger):
        return None
    xp = da if _is_dask(data) else np
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
    data = _data(data)
    fy, fx = _pair(factor, "factor")
    ky, kx = data.shape[2:]
    if not (1 <= fy <= ky and 1 <= fx <= kx):
        raise InputError(f"factor must be >= 1 and <= the pattern size {(ky, kx)}, "
                         f"got {factor!r}")
    if reduce not in ("sum", "mean"):
        raise InputError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
    return _map_patterns(_k_bin, data, (ky // fy, kx // fx), _float_dtype(data.dtype),
                         factor=(fy, fx), reduce=reduce)


def _check_box(box: Any, pattern_shape: Sequence[int]) -> tuple[int, int, int, int]:
    vals = tuple(box) if isinstance(box, (tuple, list, np.ndarray)) else ()
    if len(vals) != 4 or not all(_is_int(v) for v in vals):
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
    data = _data(data)
    y0, y1, x0, x1 = _check_box(box, data.shape[2:])
    out = data[:, :, y0:y1, x0:x1]
    return out if _is_dask(out) else out.copy()


def _centre_box(shape: Sequence[int], size: Any, centre: Any) -> tuple[int, int, int, int]:
    ky, kx = shape
    if not (_is_int(size) and 1 <= size <= min(ky, kx)):
        raise InputError(f"size must be an int in [1, {min(ky, kx)}], got {size!r}")
    cy, cx = _centre(centre, shape)
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
    data = _data(data)
    return crop_patterns(data, box=_centre_box(data.shape[2:], size, centre))


# ------------------------------------------------------------------ direct beam / mask
def find_direct_beam(mean_pattern: Array, *, sigma: float = 1.0) -> tuple[float, float]:
    """Locate the direct beam: centre of mass of the brightest blob of a pattern.

    After Gaussian smoothing, the blob is the connected region around the maximum above
    half-way between the median (background) and the maximum; its centre of mass,
    weighted by the intensity above that threshold, is a sub-pixel estimate.

    Parameters
    ----------
    mean_pattern : ndarray or dask array of shape (ky, kx)
        Usually ``data.mean(axis=(0, 1))``.
    sigma : float
        Gaussian smoothing width in pixels (0: none).

    Returns
    -------
    (cy, cx) : tuple of float
        The pattern centre for a flat pattern.
    """
    p = np.asarray(mean_pattern.compute() if _is_dask(mean_pattern) else mean_pattern,
                   dtype=np.float64)
    if p.ndim != 2 or p.size == 0 or not np.all(np.isfinite(p)):
        raise InputError(f"mean_pattern must be a finite, non-empty 2D (ky, kx) array, "
                         f"got shape {p.shape}")
    if not (_is_number(sigma) and sigma >= 0):
        raise InputError(f"sigma must be a number >= 0, got {sigma!r}")
    s = ndimage.gaussian_filter(p, sigma) if sigma > 0 else p
    peak = np.unravel_index(int(np.argmax(s)), s.shape)
    bg, top = float(np.median(s)), float(s[peak])
    if top <= bg:
        return _centre(None, p.shape)
    thr = bg + 0.5 * (top - bg)
    labels, _ = ndimage.label(s > thr)
    cy, cx = ndimage.center_of_mass(np.where(labels == labels[peak], s - thr, 0.0))
    return float(cy), float(cx)


def direct_beam_mask(shape: Sequence[int], *, radius: float,
                     centre: tuple[float, float] | None = None) -> np.ndarray:
    """Boolean disc over the detector, True where ``(y-cy)**2 + (x-cx)**2 <= radius**2``.

    Parameters
    ----------
    shape : (ky, kx), or a 4D data shape (its last two entries are used)
    radius : float
        Disc radius in pixels, > 0.
    centre : (float, float), optional
        (cy, cx), default the pattern centre ((ky-1)/2, (kx-1)/2).

    Returns
    -------
    ndarray of bool, shape (ky, kx)
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 4) or min(shape) < 1:
        raise InputError(f"shape must be (ky, kx) or a 4D data shape, got {shape!r}")
    if not (_is_number(radius) and radius > 0):
        raise InputError(f"radius must be a number > 0, got {radius!r}")
    cy, cx = _centre(centre, shape[-2:])
    yy, xx = np.ogrid[:shape[-2], :shape[-1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= float(radius) ** 2


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
    data = _data(data)
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != data.shape[2:]:
        raise InputError(f"mask must be a bool array of shape {tuple(data.shape[2:])}, "
                         f"got {mask.dtype} {mask.shape}")
    if not _is_number(fill):
        raise InputError(f"fill must be a number, got {fill!r}")
    dtype = data.dtype
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if not (float(fill).is_integer() and info.min <= fill <= info.max):
            dtype = _float_dtype(dtype)
    return _map_patterns(_k_mask, data, data.shape[2:], dtype, mask=mask, fill=fill)


# ------------------------------------------------------------------------ scan filter
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
    data = _data(data)
    if not (_is_int(size) and size >= 1 and size % 2 == 1):
        raise InputError(f"size must be an odd int >= 1, got {size!r}")
    r, dtype = int(size) // 2, _float_dtype(data.dtype)
    counts = _neighbour_counts(data.shape[:2], r)[:, :, None, None]
    if not _is_dask(data):
        return (_k_scan_box_sum(data, r) / counts).astype(dtype)
    sums = data.map_overlap(_k_scan_box_sum, depth={0: r, 1: r, 2: 0, 3: 0},
                            boundary="none", dtype=np.float64, r=r)
    counts = da.from_array(counts, chunks=(sums.chunks[0], sums.chunks[1], 1, 1))
    return (sums / counts).astype(dtype)


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
    data = _data(data)
    m = _method(method, SCALE_METHODS)
    if m == "none":
        return data
    return _map_patterns(_k_scale, data, data.shape[2:], _float_dtype(data.dtype), method=m)


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
    data = _data(data)
    m = _method(method, NORMALISE_METHODS)
    if m == "none":
        return data
    dtype = _float_dtype(data.dtype)
    if m in ("sum", "max"):
        return _map_patterns(_k_norm, data, data.shape[2:], dtype, method=m)
    xp = da if _is_dask(data) else np
    mean_sum = data.sum(dtype=np.float64) / (data.shape[0] * data.shape[1])
    inv = xp.where(mean_sum > 0, 1.0 / xp.where(mean_sum > 0, mean_sum, 1.0), 0.0)
    return (data * inv.astype(dtype)).astype(dtype)


# ---------------------------------------------------------------------- matrix views
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
    data = _data(data)
    sy, sx, ky, kx = data.shape
    return (_whole_patterns(data) if _is_dask(data) else data).reshape(sy * sx, ky * kx)


def from_matrix(matrix: Array, scan_shape: Sequence[int],
                pattern_shape: Sequence[int]) -> Array:
    """Inverse of :func:`to_matrix`: (scan_y * scan_x, ky * kx) ``matrix`` ->
    (scan_y, scan_x, ky, kx) array, given ``scan_shape`` and ``pattern_shape``."""
    matrix = _as_array(matrix)
    (sy, sx), (ky, kx) = (tuple(int(v) for v in s) for s in (scan_shape, pattern_shape))
    if matrix.shape != (sy * sx, ky * kx):
        raise InputError(f"matrix must have shape {(sy * sx, ky * kx)} for scan_shape "
                         f"{(sy, sx)} and pattern_shape {(ky, kx)}, got {matrix.shape}")
    return matrix.reshape(sy, sx, ky, kx)


# ------------------------------------------------------------------------ pipeline
#: Scan-space filters selectable by ``PreprocessConfig.filter``: name -> function(data,
#: **options), taking a 4D numpy or dask array and returning the same kind and shape, or
#: a tuple (array, info dict) whose info is recorded in the preprocessing record.
FILTERS: dict[str, Callable[..., Array]] = {
    "raw": lambda data: data,
    "mean3": lambda data: scan_mean_filter(data, size=3),
}


def register_filter(name: str, func: Callable[[Array], Array]) -> None:
    """Add (or replace) a filter usable as ``PreprocessConfig(filter=name)``."""
    if not (isinstance(name, str) and name and callable(func)):
        raise InputError(f"filter name must be a non-empty str and func a callable, got "
                         f"{name!r}, {func!r}")
    FILTERS[name] = func


@dataclass
class PreprocessConfig:
    """Steps for :func:`preprocess`.

    Attributes
    ----------
    bin : int or (int, int)
        Detector binning factor ("sum"); 1: none.
    crop : (y0, y1, x0, x1) or None
        Crop box in raw detector pixels (:func:`crop_patterns`).
    centre_crop : int or None
        Square crop of this size around the pattern centre, after ``crop``.
    mask_radius : float or None
        Radius of the direct-beam disc set to 0, in pixels of the cropped, binned
        patterns; centred on ``mask_centre``: (cy, cx), None (pattern centre) or "auto"
        (:func:`find_direct_beam` on the mean pattern; computes it for dask input).
    filter : str
        Name in :data:`FILTERS`: "raw" (none), "mean3" (3x3 scan mean filter), and
        whatever other modules register ("pca", "denoise").
    filter_options : dict, optional
        Keyword arguments passed to the filter function.
    scale, normalise : str or None
        Methods of :func:`scale_intensity` and :func:`normalise_patterns`.
    """

    bin: int | tuple[int, int] = 1
    crop: tuple[int, int, int, int] | None = None
    centre_crop: int | None = None
    mask_radius: float | None = None
    mask_centre: tuple[float, float] | str | None = None
    filter: str = "raw"
    filter_options: dict | None = None
    scale: str | None = None
    normalise: str | None = None


def preprocess(data: Array, config: PreprocessConfig | None = None
               ) -> tuple[Array, dict[str, Any]]:
    """Apply ``config`` in the order crop -> bin -> mask -> filter -> scale -> normalise.

    Values are not checked (that reads the data): call :func:`check_values` first.

    Parameters
    ----------
    data : ndarray or dask array of shape (scan_y, scan_x, ky, kx)
    config : PreprocessConfig, optional
        Default: only the conversion to float32.

    Returns
    -------
    out : ndarray or dask array of shape (scan_y, scan_x, ky', kx'), float32
        A new array; lazy for dask input.
    record : dict
        JSON-serialisable: "input_shape", "crop", "centre_crop", "bin", "mask", "filter",
        "scale", "normalise", "output_shape", "dtype" (steps not applied: None / 1 / "raw").
    """
    config = PreprocessConfig() if config is None else config
    data = _data(data)
    if config.filter not in FILTERS:
        raise InputError(f"filter must be one of {sorted(FILTERS)}, got {config.filter!r}")
    scale = _method(config.scale, SCALE_METHODS)
    normalise = _method(config.normalise, NORMALISE_METHODS)
    fy, fx = _pair(config.bin, "bin")
    rec: dict[str, Any] = {"input_shape": [int(s) for s in data.shape], "crop": None,
                           "centre_crop": None, "bin": fy if fy == fx else [fy, fx],
                           "mask": None}
    x = data
    if config.crop is not None:
        box = _check_box(config.crop, x.shape[2:])
        x, rec["crop"] = crop_patterns(x, box=box), list(box)
    if config.centre_crop is not None:
        box = _centre_box(x.shape[2:], config.centre_crop, None)
        x = crop_patterns(x, box=box)
        rec["centre_crop"] = {"size": int(config.centre_crop), "box": list(box)}
    if (fy, fx) != (1, 1):
        x = bin_patterns(x, (fy, fx), reduce="sum")
    if config.mask_radius is not None:
        if isinstance(config.mask_centre, str):
            if config.mask_centre != "auto":
                raise InputError(f"mask_centre must be (cy, cx), 'auto' or None, got "
                                 f"{config.mask_centre!r}")
            centre = find_direct_beam(x.mean(axis=(0, 1), dtype=np.float64))
        else:
            centre = _centre(config.mask_centre, x.shape[2:])
        mask = direct_beam_mask(x.shape[2:], radius=config.mask_radius, centre=centre)
        x = apply_mask(x, mask, fill=0)
        rec["mask"] = {"centre": [float(c) for c in centre], "fill": 0,
                       "radius": float(config.mask_radius), "n_pixels": int(mask.sum())}
    out = FILTERS[config.filter](x, **(config.filter_options or {}))
    if isinstance(out, tuple):        # (array, info): info is recorded
        x, rec["filter_info"] = out
    else:
        x = out
    x = scale_intensity(x, method=scale)
    x = normalise_patterns(x, method=normalise)
    x = x.astype(np.float32)
    if x is data and not _is_dask(x):
        x = x.copy()
    rec.update(filter=config.filter, scale=None if scale == "none" else scale,
               normalise=None if normalise == "none" else normalise,
               output_shape=[int(s) for s in x.shape], dtype="float32")
    return x, rec


# Filters defined in other modules register themselves on import (kept last: they
# import this module).
from . import filters as _filters  # noqa: E402,F401
from . import denoise as _denoise  # noqa: E402,F401  (imports torch lazily)
