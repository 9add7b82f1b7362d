"""The direct beam: where it is on the detector, and the disc it covers.

One finder serves every stage: :func:`beam_peak` (the brightest pixel after light Gaussian
smoothing) starts both the sub-pixel centre of :func:`find_direct_beam` (preprocessing:
``--mask-radius`` with an automatic centre) and the disc of :func:`direct_beam_region`
(maps: which components are background).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy import ndimage

from .arrays import Array, is_dask, is_number
from .errors import InputError


def check_centre(centre: Any, pattern_shape: Sequence[int]) -> tuple[float, float]:
    """Validated (cy, cx); None -> the pattern centre ((ky-1)/2, (kx-1)/2)."""
    if centre is None:
        return (pattern_shape[0] - 1) / 2.0, (pattern_shape[1] - 1) / 2.0
    try:
        cy, cx = (float(c) for c in centre)
    except (TypeError, ValueError):
        raise InputError(f"centre must be a pair (cy, cx) of numbers, got {centre!r}") from None
    if not (math.isfinite(cy) and math.isfinite(cx)):
        raise InputError(f"centre must be finite, got {centre!r}")
    return cy, cx


def beam_peak(pattern: np.ndarray, *, sigma: float = 1.0) -> tuple[tuple[int, int], np.ndarray]:
    """The brightest pixel of a pattern after Gaussian smoothing.

    Parameters
    ----------
    pattern : ndarray of shape (ky, kx)
    sigma : float
        Smoothing width in pixels (0: none).

    Returns
    -------
    peak : (int, int)
        (y, x) of the maximum of the smoothed pattern.
    smoothed : ndarray of shape (ky, kx), float64
    """
    s = np.asarray(pattern, np.float64)
    s = ndimage.gaussian_filter(s, sigma) if sigma > 0 else s
    peak = np.unravel_index(int(np.argmax(s)), s.shape)
    return (int(peak[0]), int(peak[1])), s


def find_direct_beam(mean_pattern: Array, *, sigma: float = 1.0) -> tuple[float, float]:
    """Locate the direct beam: centre of mass of the brightest blob of a pattern.

    After Gaussian smoothing, the blob is the connected region around the maximum
    (:func:`beam_peak`) above half-way between the median (background) and the maximum;
    its centre of mass, weighted by the intensity above that threshold, is a sub-pixel
    estimate.

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
    p = np.asarray(mean_pattern.compute() if is_dask(mean_pattern) else mean_pattern,
                   dtype=np.float64)
    if p.ndim != 2 or p.size == 0 or not np.all(np.isfinite(p)):
        raise InputError(f"mean_pattern must be a finite, non-empty 2D (ky, kx) array, "
                         f"got shape {p.shape}")
    if not (is_number(sigma) and sigma >= 0):
        raise InputError(f"sigma must be a number >= 0, got {sigma!r}")
    peak, s = beam_peak(p, sigma=sigma)
    bg, top = float(np.median(s)), float(s[peak])
    if top <= bg:
        return check_centre(None, p.shape)
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
    if not (is_number(radius) and radius > 0):
        raise InputError(f"radius must be a number > 0, got {radius!r}")
    cy, cx = check_centre(centre, shape[-2:])
    yy, xx = np.ogrid[:shape[-2], :shape[-1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= float(radius) ** 2


def direct_beam_region(mean_pattern: np.ndarray) -> np.ndarray:
    """Boolean mask of the direct-beam disc of a mean diffraction pattern.

    The disc is centred on :func:`beam_peak`; its radius is where the azimuthal mean
    falls below 10 % of the peak, plus one pixel.

    Parameters
    ----------
    mean_pattern : ndarray of shape (ky, kx)

    Returns
    -------
    ndarray of bool, shape (ky, kx)
    """
    (cy, cx), m = beam_peak(mean_pattern, sigma=1.0)
    yy, xx = np.indices(m.shape)
    r = np.hypot(yy - cy, xx - cx)
    peak = m[cy, cx]
    rmax = max(2, int(0.2 * min(m.shape)))
    radius = rmax
    for rr in range(1, rmax + 1):
        ring = (r >= rr - 0.5) & (r < rr + 0.5)
        if ring.any() and m[ring].mean() < 0.1 * peak:
            radius = rr
            break
    return r <= radius + 1


def beam_fraction(components: np.ndarray, beam_mask: np.ndarray) -> np.ndarray:
    """Share of each component's intensity inside the direct-beam disc.

    Parameters
    ----------
    components : ndarray of shape (k, ky, kx)
    beam_mask : ndarray of bool, shape (ky, kx)

    Returns
    -------
    ndarray of shape (k,)
    """
    c = np.asarray(components, np.float64)
    tot = c.sum(axis=(1, 2))
    return np.where(tot > 0, c[:, beam_mask].sum(axis=1) / np.where(tot > 0, tot, 1), 0.0)
