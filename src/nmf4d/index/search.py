"""Indexing of one prepared pattern: coarse candidates, local refinement, reliability and
the Friedel partner.

1. Coarse: every template of every phase at every in-plane angle (:mod:`.matching`);
   each template keeps its best angle.
2. Candidates: the highest-scoring templates, skipping any within ``3 x resolution``
   (with symmetry) of an already chosen one or of its Friedel partner, up to
   ``n_candidates`` in all plus the best two of every phase, so that phases are
   compared on refined scores.
3. Refinement (:mod:`.refine`): every candidate over two grid levels (steps down to
   20 % of the resolution); the best is refined four levels further (to steps of ~0.5 %
   of it) and its Friedel
   partner is refined from two starts (see :func:`friedel_refined`); the better of the
   two is the solution.
4. The best solution is the highest refined correlation. The *reliability* is
   ``1 - second / best`` with ``second`` the best refined correlation of a *distinct*
   solution: another phase, or more than ``tolerance`` degrees from the best, from
   the best turned 180 degrees about the beam and from its refined Friedel partner (the
   partner is reported separately, not as a competitor).
5. Friedel: the partner is flagged when it is not symmetry-equivalent to the best
   (misorientation > ``tolerance``) and fits nearly as well (correlation within
   ``friedel_margin`` of the best), i.e. when the pattern cannot tell them apart.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .calibration import Calibration
from .kinematics import excited
from .matching import SpotMatrix, coarse_scores
from .refine import Geometry, refine
from .symmetry import friedel_partner, misorientation_outer
from .templates import TemplateBank


@dataclass
class Match:
    """The indexing of one pattern.

    Attributes
    ----------
    phase : int
        Index of the phase in the bank (-1 when nothing matched).
    euler : ndarray of shape (3,), radians (see :mod:`.symmetry` for the convention)
    correlation : float
        Refined cosine similarity (:mod:`.matching`).
    coarse : float
        Best coarse score (on the template grid).
    second : float
        Correlation of the best distinct solution (0 if none was found).
    second_phase : int
    second_euler : ndarray of shape (3,)
    reliability : float
        ``1 - second / correlation``, in [0, 1].
    friedel : bool
    friedel_euler : ndarray of shape (3,)
    friedel_correlation : float
    friedel_angle : float
        Misorientation (degrees, with symmetry) between the solution and its partner.
    """

    phase: int
    euler: np.ndarray
    correlation: float
    coarse: float
    second: float
    second_phase: int
    second_euler: np.ndarray
    reliability: float
    friedel: bool
    friedel_euler: np.ndarray
    friedel_correlation: float
    friedel_angle: float


def _euler_of_matrix(m: np.ndarray) -> np.ndarray:
    from orix.quaternion import Rotation

    return Rotation.from_matrix(m).to_euler().reshape(3)


def _euler_of_matrices(m: np.ndarray) -> np.ndarray:
    from orix.quaternion import Rotation

    return Rotation.from_matrix(m).to_euler().reshape(-1, 3)


def _matrix_of_euler(e: np.ndarray) -> np.ndarray:
    from orix.quaternion import Rotation

    return Rotation.from_euler(np.asarray(e).reshape(1, 3)).to_matrix().reshape(3, 3)


def _close(a: np.ndarray, b: np.ndarray, phase, tol: float) -> np.ndarray:
    """(len(a), len(b)) bool: misorientation <= tol degrees, a or b's Friedel partner."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), bool)
    m = np.minimum(misorientation_outer(a, b, phase),
                   misorientation_outer(a, friedel_partner(b), phase))
    return m <= tol


def candidates(scores, bank: TemplateBank, *, n_candidates: int, per_phase: int = 2,
               pool: int = 40) -> list[tuple[int, np.ndarray, float]]:
    """Distinct coarse candidates ``(phase, matrix (3, 3), score)``, best first."""
    sep = 3.0 * bank.resolution
    pooled = []
    for p, (sc, pt) in enumerate(zip(scores, bank.phases)):
        top = np.argsort(sc.best)[::-1][:pool]
        mats = pt.matrices(top, sc.angle[top])
        e = _euler_of_matrices(mats)
        near = _close(e, e, pt.phase, sep)          # one orix call per phase
        chosen: list[int] = []
        for j in range(len(top)):
            if chosen and near[j, chosen].any():
                continue
            chosen.append(j)
            if len(chosen) >= n_candidates:
                break
        pooled += [(p, mats[j], float(sc.best[top[j]]), rank) for rank, j in enumerate(chosen)]
    pooled.sort(key=lambda c: -c[2])
    guaranteed = [c for c in pooled if c[3] < per_phase]
    rest = [c for c in pooled if c[3] >= per_phase]
    out = guaranteed + rest[:max(0, n_candidates - len(guaranteed))]
    out.sort(key=lambda c: -c[2])
    return [(p, e, s) for p, e, s, _ in out]


_RZ180 = np.diag([-1.0, -1.0, 1.0])


def zone_axis(refl, matrix: np.ndarray, geo: Geometry) -> np.ndarray | None:
    """Crystal-frame zone axis (unit vector) of the reflections excited at ``matrix``.

    The normal of the plane through the origin that best fits the excited reflections
    (intensity-weighted, the smallest principal axis); None when they do not span a
    plane (fewer than two independent spots).
    """
    xy, inten = excited(refl, matrix[None], wavelength=geo.wavelength,
                        max_excitation_error=geo.max_excitation_error,
                        precession_angle=geo.precession_angle)
    r_px = np.hypot(xy[0, :, 0], xy[0, :, 1]) / geo.scale
    w = np.where(r_px < geo.radius, inten[0], 0.0) ** geo.gamma
    if np.count_nonzero(w) < 2:
        return None
    g = refl.g
    c = (g * w[:, None]).T @ g / w.sum()
    val, vec = np.linalg.eigh(c)
    if val[1] < 1e-6 * max(val[2], 1e-30):
        return None
    return vec[:, 0]


def friedel_refined(refl, matrix: np.ndarray, geo: Geometry, *, span: float):
    """The refined Friedel partner of a refined solution: ``(matrix, score)``.

    Two starts are refined (in one batch) and the better kept: the solution turned 180
    degrees about the beam (``R * Rz(180)``, exact at a zone axis), and the solution
    turned 180 degrees about the zone axis of its excited reflections (``R_u(180) * R``,
    crystal side): that turn maps the zero-order Laue zone onto itself (``g -> -g``),
    so it gives the same zone-axis pattern even when the zone is tilted from the beam,
    while the turn about the beam lies twice the tilt away. Both are searched over
    twice the sampling resolution.
    """
    starts = [matrix @ _RZ180]
    u = zone_axis(refl, matrix, geo)
    if u is not None:
        starts.append((2 * np.outer(u, u) - np.eye(3)) @ matrix)
    m, sc = refine(refl, np.stack(starts), geo, span=2 * span, levels=6)
    j = int(np.argmax(sc))
    return m[j], float(sc[j])


def geometry(prepared: np.ndarray, calibration: Calibration, bank: TemplateBank, *,
             scale: float, gamma: float, sigma: float) -> Geometry:
    """The :class:`Geometry` of a prepared pattern for :mod:`.refine`."""
    return Geometry(prepared=prepared, centre=calibration.centre(prepared.shape), scale=scale,
                    wavelength=calibration.wavelength,
                    max_excitation_error=bank.max_excitation_error,
                    precession_angle=calibration.precession_angle, gamma=gamma, sigma=sigma)


def index_pattern(prepared: np.ndarray, bank: TemplateBank, *, scale: float, gamma: float,
                  sigma: float, matrices: list[SpotMatrix] | None = None,
                  n_candidates: int = 8, tolerance: float = 2.0,
                  friedel_margin: float = 0.1, scores=None) -> Match:
    """Index one prepared pattern against every phase of ``bank`` (see the module).

    Parameters
    ----------
    prepared : ndarray of shape (ky, kx)
        From :func:`nmf4d.index.prepare.prepare_pattern`.
    bank : TemplateBank
    scale : float
        Å⁻¹ per pixel.
    gamma, sigma : the preparation's exponent and spot width (pixels).
    matrices : list of SpotMatrix, optional
        Reused between patterns.
    n_candidates : int
        Distinct coarse candidates refined.
    tolerance : float
        Degrees: solutions closer than this (with symmetry) are the same.
    friedel_margin : float
        Relative correlation margin within which the Friedel partner is flagged.
    scores : list of Scores, optional
        Coarse scores already computed at ``scale``.

    Returns
    -------
    Match
    """
    cal = bank.calibration
    if scores is None:
        scores = coarse_scores(prepared, bank, scale=scale, gamma=gamma, sigma=sigma,
                               matrices=matrices)
    coarse_best = max(float(s.best.max()) if len(s.best) else 0.0 for s in scores)
    nan3 = np.full(3, np.nan)
    if not np.any(prepared) or coarse_best <= 0:
        return Match(-1, nan3, 0.0, 0.0, 0.0, -1, nan3, 0.0, False, nan3, 0.0, np.nan)
    geo = geometry(prepared, cal, bank, scale=scale, gamma=gamma, sigma=sigma)
    span = bank.resolution
    # stage 1: every candidate, 2 grid levels (steps down to 0.2 x span), one batch per phase
    sols = []   # (phase, matrix, score)
    cands = candidates(scores, bank, n_candidates=n_candidates)
    for p in sorted({c[0] for c in cands}):
        starts = np.stack([m for q, m, _ in cands if q == p])
        m, sc = refine(bank.phases[p].reflections, starts, geo, span=span, levels=2)
        sols += [(p, m[i], float(sc[i])) for i in range(len(sc))]
    sols.sort(key=lambda x: -x[2])
    # stage 2: the best, polished, and its Friedel partner
    p, m_best, _ = sols[0]
    refl = bank.phases[p].reflections
    m_best, s_best = refine(refl, m_best, geo, span=span, levels=4,
                            first_step=span / 2 * 0.4 ** 2)
    m_fr, s_fr = friedel_refined(refl, m_best, geo, span=span)
    if s_fr > s_best:
        m_best, s_best, m_fr, s_fr = m_fr, s_fr, m_best, s_best
    eul = _euler_of_matrices(np.stack([m_best, m_fr] + [mq for _, mq, _ in sols[1:]]))
    e, s, fe, fs = eul[0], s_best, eul[1], s_fr
    sols = [(p, e, s, fe, fs)] + [(q, eul[2 + i], sq, None, None)
                                  for i, (q, _, sq) in enumerate(sols[1:])]
    p, e, s, fe, fs = sols[0]
    ph = bank.phases[p].phase
    f_angle = float(misorientation_outer(e[None], fe[None], ph)[0, 0])
    if f_angle <= tolerance:
        # the 180-degree turn is a symmetry here: the partner is the solution itself
        fs = s
    second, second_p, second_e = 0.0, -1, nan3
    same = [q == p for q, *_ in sols[1:]]
    if any(same):
        # the same solution: near the best, its 180-degree turn or its refined partner
        others = np.array([eq for (q, eq, *_), sm in zip(sols[1:], same) if sm])
        near = iter(_close(others, np.stack([e, fe]), ph, tolerance).any(axis=1))
    for (q, eq, sq, _, _), sm in zip(sols[1:], same):
        if not sm or not next(near):
            second, second_p, second_e = sq, q, eq
            break
    reliability = float(np.clip(1.0 - second / s, 0.0, 1.0)) if s > 0 else 0.0
    friedel = bool(f_angle > tolerance and fs >= (1.0 - friedel_margin) * s)
    return Match(phase=p, euler=e, correlation=float(s), coarse=coarse_best,
                 second=float(second), second_phase=second_p, second_euler=second_e,
                 reliability=reliability, friedel=friedel, friedel_euler=fe,
                 friedel_correlation=float(fs), friedel_angle=f_angle)


def solution_spots(bank: TemplateBank, phase: int, euler: np.ndarray,
                   calibration: Calibration, shape: tuple[int, int]) -> np.ndarray:
    """Spots ``(s, 6)``: row, col (pixels), relative intensity, h, k, l of a solution."""
    refl = bank.phases[phase].reflections
    xy, inten = excited(refl, _matrix_of_euler(euler)[None], wavelength=calibration.wavelength,
                        max_excitation_error=bank.max_excitation_error,
                        precession_angle=calibration.precession_angle)
    cy, cx = calibration.centre(shape)
    row = cy + xy[0, :, 1] / calibration.reciprocal_scale
    col = cx + xy[0, :, 0] / calibration.reciprocal_scale
    keep = (inten[0] > 0) & (row >= 0) & (row <= shape[0] - 1) & (col >= 0) & (col <= shape[1] - 1)
    i = inten[0, keep]
    return np.column_stack([row[keep], col[keep], i / i.max() if i.size else i,
                            refl.hkl[keep]])
