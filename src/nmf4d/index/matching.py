"""Fast correlation of prepared patterns with every template at every in-plane angle.

For a template with spots at polar positions ``(r_i, theta_i)`` (pixels, radians) and
weights ``w_i = I_i ** gamma``, the score at in-plane rotation ``psi`` is

    C(psi) = sqrt(4 pi) sigma * sum_i w_i B(r_i, theta_i + psi) / |w|

with ``B`` the prepared pattern in polar coordinates (see :mod:`.prepare`: the cosine
similarity between the pattern and the template drawn as Gaussian spots of width
``sigma``). This is pyxem's polar template matching. It is written here rather than
called because pyxem is a heavy dependency that nmf4d does not otherwise need and
because the k component patterns are few: the scores of all templates at all angles are
one sparse-times-dense product per pattern, ``S @ Q`` with ``S`` the (templates x polar
pixels) spot matrix and ``Q[(r, theta), psi] = B[r, theta + psi]``
the pattern's circulant expansion — no pre-filter on azimuthally integrated templates,
which pyxem needs to be affordable on every pattern and which can drop the right
template. ``tests/test_index_matching.py`` checks the scores against a direct loop.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from .calibration import Calibration
from .prepare import outer_radius, polar_transform
from .templates import PhaseTemplates, TemplateBank


@dataclass
class SpotMatrix:
    """One phase's templates as a sparse (templates, n_radii * n_angles) matrix.

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix
        Row t: the template's weights ``w_i / |w|`` at the nearest polar pixel of each
        spot (the pattern is blurred by the spot width, so half a pixel costs little:
        the refinement then works at exact positions).
    n_radii, n_angles : int
    scale : float
        Å⁻¹ per pixel used.
    """

    matrix: sparse.csr_matrix
    n_radii: int
    n_angles: int
    scale: float


def spot_matrix(templates: PhaseTemplates, *, scale: float, n_radii: int, n_angles: int,
                gamma: float) -> SpotMatrix:
    """Build the :class:`SpotMatrix` of a phase for a reciprocal ``scale`` (Å⁻¹/pixel)."""
    xy = templates.xy
    w = templates.intensity ** gamma
    row = np.repeat(np.arange(templates.size), np.diff(templates.offsets))
    r = np.hypot(xy[:, 0], xy[:, 1]) / scale
    th = np.arctan2(xy[:, 1], xy[:, 0])
    ok = r < n_radii - 1
    norm = np.sqrt(np.bincount(row[ok], weights=w[ok] ** 2, minlength=templates.size))
    norm[norm == 0] = 1.0
    row, r, th, w = row[ok], r[ok], th[ok], w[ok] / norm[row[ok]]
    t_bin = np.rint(th / (2 * np.pi) * n_angles).astype(np.int64) % n_angles
    r_bin = np.rint(r).astype(np.int64)
    m = sparse.csr_matrix((w.astype(np.float32), (row, r_bin * n_angles + t_bin)),
                          shape=(templates.size, n_radii * n_angles))
    m.sum_duplicates()
    return SpotMatrix(matrix=m, n_radii=n_radii, n_angles=n_angles, scale=scale)


def circulant(polar: np.ndarray) -> np.ndarray:
    """``Q[(r, theta), psi] = polar[r, (theta + psi) % n]`` of shape (n_r * n, n), float32."""
    n_r, n = polar.shape
    doubled = np.concatenate([polar, polar[:, :-1]], axis=1).astype(np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(doubled, n, axis=1)
    return windows.reshape(n_r * n, n)          # a copy: (r, theta) rows, psi columns


@dataclass
class Scores:
    """Coarse scores of one pattern against one phase.

    Attributes
    ----------
    best : ndarray of shape (n_templates,)
        Highest score of each template over in-plane angles (cosine, see the module).
    angle : ndarray of shape (n_templates,)
        In-plane angle (radians) where it is reached.
    full : ndarray of shape (n_templates, n_angles) or None
        Every score (kept only on request).
    """

    best: np.ndarray
    angle: np.ndarray
    full: np.ndarray | None = None


def polar_of(prepared: np.ndarray, calibration: Calibration, n_angles: int) -> np.ndarray:
    """Polar samples (n_radii, n_angles) of a prepared pattern out to its outer radius."""
    centre = calibration.centre(prepared.shape)
    n_radii = int(np.floor(outer_radius(prepared.shape, centre))) + 1
    return polar_transform(prepared, centre, n_radii=n_radii, n_angles=n_angles)


def score_phase(polar_q: np.ndarray, spots: SpotMatrix, *, sigma: float,
                keep_full: bool = False) -> Scores:
    """All templates of one phase against one pattern's circulant expansion ``polar_q``."""
    full = np.asarray(spots.matrix @ polar_q, dtype=np.float64)
    full *= np.sqrt(4 * np.pi) * sigma
    j = np.argmax(full, axis=1)
    best = full[np.arange(len(full)), j]
    return Scores(best=best, angle=2 * np.pi * j / spots.n_angles,
                  full=full if keep_full else None)


def spot_matrices(bank: TemplateBank, *, scale: float, n_radii: int,
                  gamma: float) -> list[SpotMatrix]:
    """A :class:`SpotMatrix` for every phase of ``bank``."""
    return [spot_matrix(p, scale=scale, n_radii=n_radii, n_angles=bank.n_angles, gamma=gamma)
            for p in bank.phases]


def coarse_scores(prepared: np.ndarray, bank: TemplateBank, *, scale: float, gamma: float,
                  sigma: float, matrices: list[SpotMatrix] | None = None,
                  keep_full: bool = False) -> list[Scores]:
    """Scores of one prepared pattern against every phase of ``bank`` at ``scale``.

    Parameters
    ----------
    prepared : ndarray of shape (ky, kx)
        From :func:`nmf4d.index.prepare.prepare_pattern`.
    bank : TemplateBank
    scale : float
        Å⁻¹ per pixel.
    gamma, sigma : the preparation's intensity exponent and spot width (pixels).
    matrices : list of SpotMatrix, optional
        Reused between patterns (built when not given).

    Returns
    -------
    list of Scores, one per phase.
    """
    polar = polar_of(prepared, bank.calibration, bank.n_angles)
    if matrices is None:
        matrices = spot_matrices(bank, scale=scale, n_radii=polar.shape[0], gamma=gamma)
    q = circulant(polar)
    return [score_phase(q, m, sigma=sigma, keep_full=keep_full) for m in matrices]
