"""Local refinement of an orientation: a shrinking grid in rotation space.

Around a starting rotation ``R0`` the candidates are ``R0 * exp(v)`` for rotation vectors
``v`` on a 5 x 5 x 5 grid of step ``span / 2``; the grid is re-centred on its best point
and its step multiplied by 0.4 at each level (5 levels: from +-``span`` down to steps of
about 1 % of it). Every level is one vectorised evaluation of 125 rotations per start
(several starts are refined in one batch), and the grid does not need the score to be
smooth (spots enter and leave the pattern at the rel-rod
cut-off). Scores are the cosine similarity of :mod:`.matching`, evaluated at the exact
(sub-pixel) spot positions of diffsims' kinematic model (:mod:`.kinematics`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .kinematics import Reflections, excited
from .prepare import outer_radius


def rotvec_matrices(v: np.ndarray) -> np.ndarray:
    """Rotation matrices (m, 3, 3) of rotation vectors ``v`` (m, 3) in radians (Rodrigues),
    in orix's convention (the matrix of ``Rotation.from_axes_angles(v, |v|)``)."""
    v = np.atleast_2d(v)
    th = np.linalg.norm(v, axis=1)
    safe = np.where(th > 0, th, 1.0)
    k = v / safe[:, None]
    kx, ky, kz = k.T
    zero = np.zeros_like(kx)
    K = np.stack([np.stack([zero, -kz, ky], -1), np.stack([kz, zero, -kx], -1),
                  np.stack([-ky, kx, zero], -1)], 1)
    s, c = np.sin(th)[:, None, None], np.cos(th)[:, None, None]
    return np.eye(3)[None] + s * K + (1 - c) * (K @ K)


@dataclass
class Geometry:
    """What a score needs besides the rotation (one pattern, one phase).

    Attributes
    ----------
    prepared : ndarray (ky, kx), the blurred unit-norm pattern
    centre : (row, col) pixels
    scale : Å⁻¹ per pixel
    wavelength : Å
    max_excitation_error : Å⁻¹
    precession_angle : degrees
    gamma, sigma : intensity exponent, spot width (pixels)
    cutoff : rel-rod cut-off in units of max_excitation_error
    """

    prepared: np.ndarray
    centre: tuple
    scale: float
    wavelength: float
    max_excitation_error: float
    precession_angle: float
    gamma: float
    sigma: float
    cutoff: float = 1.0

    @property
    def radius(self) -> float:
        return outer_radius(self.prepared.shape, self.centre)

    @property
    def coefficients(self) -> np.ndarray:
        """Cubic B-spline coefficients of ``prepared`` (computed once).

        Scores sample the pattern at sub-pixel spot positions with cubic splines: the
        maxima of a bilinear interpolant lie on pixel centres, which pulled refined
        orientations by up to 0.7 degrees towards rotations that put spots on pixels
        (measured on noise-free zone-axis patterns); cubic splines have no such bias.
        """
        c = self.__dict__.get("_coefficients")
        if c is None:
            c = ndimage.spline_filter(self.prepared, order=3, mode="mirror")
            self.__dict__["_coefficients"] = c
        return c


def score_rotations(refl: Reflections, matrices: np.ndarray, geo: Geometry) -> np.ndarray:
    """Cosine similarity of the pattern with the template of each rotation.

    Parameters
    ----------
    refl : Reflections
    matrices : ndarray of shape (m, 3, 3)
    geo : Geometry

    Returns
    -------
    ndarray of shape (m,)
    """
    if len(refl.f2) == 0:
        return np.zeros(len(matrices))
    xy, inten = excited(refl, matrices, wavelength=geo.wavelength,
                        max_excitation_error=geo.max_excitation_error,
                        precession_angle=geo.precession_angle, cutoff=geo.cutoff)
    col = geo.centre[1] + xy[..., 0] / geo.scale
    row = geo.centre[0] + xy[..., 1] / geo.scale
    inside = np.hypot(row - geo.centre[0], col - geo.centre[1]) < geo.radius
    top = inten.max(axis=1, keepdims=True)
    w = np.where(inside & (inten > 1e-3 * top), inten, 0.0) ** geo.gamma
    on = w > 0                                      # sample only the excited spots
    vals = np.zeros_like(w)
    vals[on] = ndimage.map_coordinates(geo.coefficients, [row[on], col[on]], order=3,
                                       mode="mirror", prefilter=False)
    norm = np.sqrt((w * w).sum(axis=1))
    norm[norm == 0] = np.inf
    return np.sqrt(4 * np.pi) * geo.sigma * (w * vals).sum(axis=1) / norm


def local_reflections(refl: Reflections, matrices: np.ndarray, geo: Geometry,
                      span_rad: float) -> Reflections:
    """The reflections that can be excited within ``span_rad`` of any of ``matrices``
    (m, 3, 3) (the others cost time and contribute nothing)."""
    lab = np.matmul(refl.g, np.asarray(matrices).reshape(-1, 3, 3))
    r = np.hypot(lab[..., 0], lab[..., 1])
    k0 = 1.0 / geo.wavelength
    s = (k0 - np.sqrt(np.maximum(k0 * k0 - r * r, 0.0))) - lab[..., 2]
    g = refl.gspacing
    reach = (geo.cutoff * geo.max_excitation_error
             + g * (2 * span_rad + np.deg2rad(geo.precession_angle)) + 1e-3)
    keep = ((np.abs(s) < reach) & (r / geo.scale < geo.radius + 2)).any(axis=0)
    return Reflections(phase=refl.phase, hkl=refl.hkl[keep], g=refl.g[keep],
                       f2=refl.f2[keep], reciprocal_radius=refl.reciprocal_radius)


_GRID = np.stack(np.meshgrid(*[np.arange(-2, 3)] * 3, indexing="ij"), -1).reshape(-1, 3)


def refine(refl: Reflections, matrices: np.ndarray, geo: Geometry, *, span: float,
           levels: int = 5, shrink: float = 0.4, first_step: float | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Refine one or several rotations locally, all in one batch per level.

    Parameters
    ----------
    refl : Reflections
    matrices : ndarray of shape (c, 3, 3) or (3, 3)
        Starts, ``R0.to_matrix()``.
    geo : Geometry
    span : float
        Half-width of the first grid in degrees (typically the sampling resolution).
    levels, shrink : grid levels and step factor between levels.
    first_step : float, optional
        Step of the first grid in degrees (default ``span / 2``); a continuation passes
        the step where a previous call stopped.

    Returns
    -------
    (matrices (c, 3, 3), scores (c,)); a single (3, 3) start gives ((3, 3), float).
    """
    single = np.ndim(matrices) == 2
    best_m = np.array(matrices, dtype=np.float64).reshape(-1, 3, 3)
    c = len(best_m)
    span_rad = np.deg2rad(span)
    sub = local_reflections(refl, best_m, geo, span_rad)
    best_s = score_rotations(sub, best_m, geo)
    step = np.deg2rad(first_step) if first_step is not None else span_rad / 2
    g = len(_GRID)
    for _ in range(levels):
        mats = (best_m[:, None] @ rotvec_matrices(_GRID * step)[None]).reshape(-1, 3, 3)
        sc = score_rotations(sub, mats, geo).reshape(c, g)
        j = np.argmax(sc, axis=1)
        top = sc[np.arange(c), j]
        better = top > best_s
        best_s = np.where(better, top, best_s)
        best_m[better] = mats.reshape(c, g, 3, 3)[np.flatnonzero(better), j[better]]
        step *= shrink
    if single:
        return best_m[0], float(best_s[0])
    return best_m, best_s
