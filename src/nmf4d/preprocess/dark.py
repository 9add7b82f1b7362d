"""Detector offset (dark level): subtracted before everything else.

Integrating detectors (CCD/CMOS cameras) add a constant or fixed-pattern offset and read
noise to every pixel; NMF then spends a component on the offset, which is present at
every position, and the Poisson weighting mistakes it for signal. ``dark`` is

- ``"off"``: nothing subtracted;
- a number: that offset, in the data's units (>= 0);
- a path to a ``.npy`` dark frame of the raw detector's shape ``(ky, kx)``;
- ``"auto"``: the floor estimated from the data (:func:`estimate_dark`): the median over
  a sample of positions of every pixel gives a per-pixel level; the pixels that are dark
  at most positions (far from the beam, between reflections) sit at the offset, so a low
  quantile of the per-pixel medians estimates it, and the spread of those pixels' values
  the read noise. Data that reach 0 (a counting detector, or data already corrected)
  have no offset, nor data whose floor is within 5 read-noise sigmas of 0.

After subtraction the values are *not* clipped: a dark pixel is then read noise around 0,
and clipping its negative half would leave a positive floor (about 0.4 read-noise sigmas
in every pixel), a flat pattern that NMF has to spend components on. NMF's least-squares
fit handles the small negative values; the factors stay non-negative.
"""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ..arrays import Array, map_patterns
from ..errors import ConfigError

#: Quantile of the per-pixel medians taken as the offset.
FLOOR_QUANTILE = 0.02
#: ``auto`` subtracts a floor only when it stands this many read-noise sigmas above 0 (a
#: camera's offset does; the floor of data without one is the signal's own spread).
OFFSET_SIGMAS = 5.0


def estimate_dark(sample: np.ndarray) -> tuple[float, float]:
    """The detector offset and read noise estimated from a sample of patterns.

    Parameters
    ----------
    sample : ndarray of shape (n, ky, kx)
        Patterns from positions spread over the scan
        (:func:`nmf4d.preprocess.descan.sample_positions`).

    Returns
    -------
    (offset, read_noise) : (float, float)
        In the data's units; (0, 0) for data that reach 0.
    """
    rows = np.asarray(sample, np.float64).reshape(len(sample), -1)
    if rows.min() <= 0:         # a counting detector (or corrected data) reads 0: no offset
        return 0.0, 0.0
    med = np.median(rows, axis=0)
    offset = float(np.quantile(med, FLOOR_QUANTILE))
    vals = rows[:, med <= np.quantile(med, 0.05)].ravel()
    noise = 1.4826 * float(np.median(np.abs(vals - np.median(vals))))
    return offset, noise


def resolve_dark(dark: Any, shape, sample: np.ndarray | None = None, *,
                 field: str = "preprocessing.dark") -> tuple[Any, dict]:
    """The offset to subtract (None, a float, or an ndarray of shape (ky, kx)) and its
    record; ``shape`` is the data's 4D shape, ``sample`` patterns for ``"auto"``."""
    if dark in (None, "off"):
        return None, {"mode": "off"}
    if dark == "auto":
        offset, noise = estimate_dark(sample)
        rec = {"mode": "auto", "offset": offset, "read_noise": noise}
        if offset > 0 and offset < OFFSET_SIGMAS * noise:
            rec.update(offset=0.0, reason=f"the floor {offset:.3g} is within {OFFSET_SIGMAS} "
                       f"read-noise sigmas ({noise:.3g}): no detector offset")
            return None, rec
        return (offset if offset > 0 else None), rec
    if isinstance(dark, (int, float)) and not isinstance(dark, bool):
        return (float(dark) or None), {"mode": "value", "offset": float(dark)}
    path = os.fspath(dark)
    frame = _read_frame(path, tuple(shape)[2:], field)
    return frame, {"mode": "file", "path": os.path.abspath(path),
                   "mean": float(frame.mean()), "min": float(frame.min())}


def _read_frame(path: str, shape, field: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise ConfigError(field, path, "no such dark frame file (.npy)")
    try:
        frame = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ConfigError(field, path, f"cannot read it as a .npy array ({e})") from None
    if frame.shape != tuple(shape):
        raise ConfigError(field, path, f"holds a frame of shape {frame.shape}; the detector "
                          f"is {tuple(shape)} (raw pixels, before crop and binning)")
    if not (np.issubdtype(frame.dtype, np.integer) or np.issubdtype(frame.dtype, np.floating)):
        raise ConfigError(field, path, f"has dtype {frame.dtype}; a numeric frame is needed")
    frame = frame.astype(np.float32)
    if not np.all(np.isfinite(frame)) or frame.min() < 0:
        raise ConfigError(field, path, "must hold finite values >= 0")
    return frame


def _k_dark(block: np.ndarray, offset, out_dtype) -> np.ndarray:
    out = np.asarray(block, np.float32) - offset
    return out.astype(out_dtype, copy=False)


def subtract_dark(data: Array, offset) -> Array:
    """``data - offset`` in float32, not clipped (lazy for dask); ``offset`` a number or a
    (ky, kx) frame; None returns ``data``."""
    if offset is None:
        return data
    off = np.float32(offset) if np.ndim(offset) == 0 else np.asarray(offset, np.float32)
    return map_patterns(_k_dark, data, data.shape[2:], np.dtype(np.float32), offset=off)


def check_dark(value: Any, field: str = "preprocessing.dark") -> Any:
    """The form of a ``dark`` setting: "off", "auto", a number >= 0, or a path string."""
    if value in (None, "off", "auto"):
        return "off" if value is None else value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not (math.isfinite(value) and value >= 0):
            raise ConfigError(field, value, "must be off, auto, a number >= 0 or a .npy file")
        return float(value)
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        try:
            number = float(text)
        except ValueError:
            return text                     # a file, checked when the data's shape is known
        return check_dark(number, field)
    raise ConfigError(field, value, "must be off, auto, a number >= 0 or a .npy file")


def noise_model(sample: np.ndarray, yx: np.ndarray) -> tuple[float, float]:
    """Gain and read-noise variance of the detector, from the data (photon transfer).

    For an integrating detector a pixel's variance is ``gain * mean + read_variance``
    (shot noise of the electrons times the gain, plus the read noise). Neighbouring scan
    positions along a row see (nearly) the same expected pattern, so half the mean squared
    difference of their values estimates each pixel's noise variance; a straight line
    through (mean, variance) over the pixels gives the gain (slope) and the read variance
    (intercept), fitted by least squares after dropping the pixels above the 95th
    percentile of the variance (boundaries between grains).

    Parameters
    ----------
    sample : ndarray of shape (n, ky, kx)
        Offset-subtracted patterns at positions ``yx`` (rows of neighbouring positions,
        :func:`nmf4d.preprocess.descan.sample_positions`).
    yx : ndarray of shape (n, 2)

    Returns
    -------
    (gain, read_variance) : (float, float)
        Both >= 0.
    """
    x = np.asarray(sample, np.float64).reshape(len(sample), -1)
    pairs = np.flatnonzero((yx[1:, 0] == yx[:-1, 0]) & (yx[1:, 1] - yx[:-1, 1] <= 2))
    if pairs.size < 8:
        return 1.0, 0.0
    d = x[pairs + 1] - x[pairs]
    var = 0.5 * np.mean(d * d, axis=0)
    mean = 0.5 * np.mean(x[pairs + 1] + x[pairs], axis=0)
    keep = var <= np.quantile(var, 0.95)
    A = np.stack([mean[keep], np.ones(int(keep.sum()))], axis=1)
    (gain, read_var), *_ = np.linalg.lstsq(A, var[keep], rcond=None)
    return max(float(gain), 0.0), max(float(read_var), 0.0)
