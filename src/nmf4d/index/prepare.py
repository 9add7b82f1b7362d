"""Pattern preparation before matching: direct beam and smooth background removed.

The same steps apply to an NMF component pattern and to a single (noisy) pattern:

1. **Direct beam**: the disc of radius ``beam_radius`` pixels around the beam centre is
   set to the background (it holds no reflection, and its intensity would dominate any
   correlation); so is everything beyond ``outer_radius`` (the largest circle about the
   centre that fits in the pattern).
2. **Smooth background**: the radial median profile (the median of every one-pixel-wide
   ring about the centre) is subtracted and negative values clipped to 0. Rotationally
   symmetric intensity — the diffuse tail of the beam, inelastic background, the
   amorphous ring of a carbon film — is removed, while Bragg spots, which cover a small
   part of each ring, survive.
3. **Gamma**: the remainder is raised to ``gamma`` (default 0.5, pyxem's usual choice)
   so that a few strong reflections do not dominate the weak ones; templates use the
   same power of their intensities.
4. **Normalise** to unit L2 norm.
5. **Blur** with a normalised Gaussian of ``spot_sigma`` pixels. A template rendered as
   Gaussian spots of that width, ``T = sum_i w_i G(x - x_i)``, then has the cosine
   similarity ``<T, q> / |T| = sqrt(4 pi) spot_sigma sum_i w_i B(x_i) / |w|`` with the
   normalised pattern ``q``, where ``B`` is the blurred pattern (exact while spots do not
   overlap): sampling ``B`` at the spot centres scores a template as an image, and
   sub-pixel errors cost little. This cosine is the *correlation* reported (1: the
   pattern is the template).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import InputError
from .calibration import Calibration


@dataclass(frozen=True)
class Preparation:
    """Options of :func:`prepare_patterns` (see the module for each step).

    Parameters
    ----------
    beam_radius : float or None
        Direct-beam mask radius in pixels; ``None``: half the radius of the innermost
        reflection of the phases (set by :func:`nmf4d.index.index_clusters`), else 4.
    gamma : float
        Intensity exponent in (0, 1].
    spot_sigma : float
        Gaussian width of the spots in pixels (> 0).
    """

    beam_radius: float | None = None
    gamma: float = 0.5
    spot_sigma: float = 1.0

    def __post_init__(self):
        if self.beam_radius is not None and not (self.beam_radius >= 0):
            raise InputError(f"beam_radius must be >= 0 pixels or None, got {self.beam_radius!r}")
        if not (0 < self.gamma <= 1):
            raise InputError(f"gamma must lie in (0, 1], got {self.gamma!r}")
        if not (self.spot_sigma > 0):
            raise InputError(f"spot_sigma must be > 0 pixels, got {self.spot_sigma!r}")


def outer_radius(shape: tuple[int, int], centre: tuple[float, float]) -> float:
    """Largest circle about ``centre`` (row, col) inside a pattern of ``shape``, pixels."""
    cy, cx = centre
    return float(min(cy, cx, shape[0] - 1 - cy, shape[1] - 1 - cx))


def radial_median(image: np.ndarray, centre: tuple[float, float], *,
                  ignore: np.ndarray | None = None, width: float = 1.0) -> np.ndarray:
    """The radial median profile of ``image`` evaluated at every pixel.

    The median is taken over rings ``width`` pixels wide about ``centre`` and linearly
    interpolated at each pixel's exact radius (evaluating it per whole ring instead
    leaves a four-fold pattern of spot-like residues where a steep profile, e.g. a film
    ring, crosses the pixel grid).

    Parameters
    ----------
    image : ndarray of shape (ky, kx)
    centre : (row, col)
    ignore : ndarray of shape (ky, kx), bool, optional
        Pixels left out of the medians (the beam disc, the corners).
    width : float
        Ring width in pixels.

    Returns
    -------
    ndarray of shape (ky, kx)
    """
    yy, xx = np.indices(image.shape)
    rr = np.hypot(yy - centre[0], xx - centre[1])
    use = np.ones(image.shape, bool) if ignore is None else ~ignore
    ring = np.floor(rr[use] / width).astype(np.int64)
    vals = image[use]
    if vals.size == 0:
        return np.zeros(image.shape)
    order = np.lexsort((vals, ring))
    ring_sorted, sv = ring[order], vals[order]
    n_rings = int(ring.max()) + 1
    starts = np.searchsorted(ring_sorted, np.arange(n_rings + 1))
    counts = np.diff(starts)
    ok = counts > 0
    lo = starts[:-1] + (counts - 1) // 2
    hi = starts[:-1] + counts // 2
    med = 0.5 * (sv[np.minimum(lo, len(sv) - 1)] + sv[np.minimum(hi, len(sv) - 1)])
    centres = (np.arange(n_rings) + 0.5) * width
    prof_r, prof = centres[ok], med[ok]
    return np.interp(rr, prof_r, prof)


def prepare_pattern(pattern: np.ndarray, calibration: Calibration, *,
                    options: Preparation = Preparation(),
                    beam_radius: float = 4.0) -> np.ndarray:
    """One pattern prepared for matching (see the module).

    Parameters
    ----------
    pattern : ndarray of shape (ky, kx)
        Non-negative intensities (any units).
    calibration : Calibration
    options : Preparation
    beam_radius : float
        Used when ``options.beam_radius`` is None.

    Returns
    -------
    ndarray of shape (ky, kx), float64: the blurred unit-norm pattern ``B`` (all zeros
    if nothing is left after the background).
    """
    img = np.asarray(pattern, dtype=np.float64)
    if img.ndim != 2:
        raise InputError(f"a pattern must be 2D (ky, kx), got shape {img.shape}")
    centre = calibration.centre(img.shape)
    rb = options.beam_radius if options.beam_radius is not None else beam_radius
    yy, xx = np.indices(img.shape)
    rr = np.hypot(yy - centre[0], xx - centre[1])
    outside = (rr <= rb) | (rr > outer_radius(img.shape, centre) + 0.5)
    img = np.where(np.isfinite(img), img, 0.0)
    bg = radial_median(img, centre, ignore=outside)
    out = np.clip(img - bg, 0.0, None)
    out[outside] = 0.0
    if options.gamma != 1:
        out = out ** options.gamma
    n = float(np.sqrt(np.sum(out * out)))      # (not BLAS: its threads cost ms here)
    if n > 0:
        out /= n
    return ndimage.gaussian_filter(out, options.spot_sigma, mode="constant")


def prepare_patterns(patterns: np.ndarray, calibration: Calibration, *,
                     options: Preparation = Preparation(),
                     beam_radius: float = 4.0) -> np.ndarray:
    """:func:`prepare_pattern` for a stack of shape (n, ky, kx); returns (n, ky, kx)."""
    arr = np.asarray(patterns)
    if arr.ndim != 3:
        raise InputError(f"patterns must be 3D (n, ky, kx), got shape {arr.shape}")
    return np.stack([prepare_pattern(p, calibration, options=options,
                                     beam_radius=beam_radius) for p in arr])


def polar_transform(prepared: np.ndarray, centre: tuple[float, float], *, n_radii: int,
                    n_angles: int) -> np.ndarray:
    """Sample a prepared pattern on a polar grid (bilinear).

    Parameters
    ----------
    prepared : ndarray of shape (ky, kx)
    centre : (row, col)
    n_radii : int
        Radii 0, 1, ..., n_radii - 1 pixels.
    n_angles : int
        Angles ``2 pi j / n_angles``, measured from +x (columns) towards +y (rows), the
        angle of a lab vector (x, y) = atan2(y, x).

    Returns
    -------
    ndarray of shape (n_radii, n_angles)
    """
    r = np.arange(n_radii, dtype=np.float64)[:, None]
    t = 2 * np.pi * np.arange(n_angles) / n_angles
    rows = centre[0] + r * np.sin(t)[None, :]
    cols = centre[1] + r * np.cos(t)[None, :]
    return ndimage.map_coordinates(prepared, [rows, cols], order=1, mode="constant",
                                   cval=0.0)
