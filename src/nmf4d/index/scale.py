"""Search of the reciprocal scale when the given calibration indexes poorly.

The coarse search (:mod:`.matching`) of the strongest clusters is repeated at scales
``s * (1 + f)`` for ``f`` in ``-scale_range ... +scale_range`` in steps of ``scale_step``;
about the best of those, the scales ``best * (1 + g * scale_step / 4)``, ``g = -4 .. 4``
(extended while the best is at an end), are compared by the mean *refined* correlation of the three strongest clusters (the
coarse score, on whole polar pixels, resolves the scale to about a step; the refined one,
at exact spot positions, to a fraction of it). One scale serves all clusters (it is a
property of the instrument); :func:`nmf4d.index.index_clusters` indexes again at it,
recording the scale used, that it was searched and every scale tried.
"""
from __future__ import annotations

import numpy as np

from .matching import coarse_scores, polar_of, spot_matrices
from .search import index_pattern


def search_scale(prepared: np.ndarray, bank, prep, rows: list, *, base: float,
                 scale_range: float, scale_step: float) -> tuple[float, np.ndarray]:
    """Best reciprocal scale for the clusters ``rows`` of ``prepared``.

    Parameters
    ----------
    prepared : ndarray of shape (k, ky, kx)
    bank : TemplateBank
        Built with a reciprocal radius covering the largest scale tried.
    prep : Preparation
    rows : list of int
        Clusters used (the strongest few).
    base : float
        The given scale, Å⁻¹ per pixel.
    scale_range, scale_step : float
        Relative half-range and step.

    Returns
    -------
    (best scale, ndarray (n, 3) of scale, mean best coarse score and mean refined
    correlation (NaN where not computed), sorted by scale)
    """
    n_r = polar_of(prepared[rows[0]], bank.calibration, bank.n_angles).shape[0]
    tried: dict[float, float] = {}

    def quality(s):
        if s not in tried:
            mats = spot_matrices(bank, scale=s, n_radii=n_r, gamma=prep.gamma)
            best = [max(float(x.best.max()) for x in
                        coarse_scores(prepared[c], bank, scale=s, gamma=prep.gamma,
                                      sigma=prep.spot_sigma, matrices=mats)) for c in rows]
            tried[s] = float(np.mean(best))
        return tried[s]

    n = int(round(scale_range / scale_step))
    for f in np.arange(-n, n + 1) * scale_step:
        quality(float(base * (1 + f)))
    coarse_best = max(tried, key=tried.get)
    refined: dict[int, float] = {}
    strongest = rows[:3]
    quarter = scale_step / 4

    def refined_quality(g: int) -> float:
        if g not in refined:
            s = float(coarse_best * (1 + g * quarter))
            mats = spot_matrices(bank, scale=s, n_radii=n_r, gamma=prep.gamma)
            refined[g] = float(np.mean([
                index_pattern(prepared[c], bank, scale=s, gamma=prep.gamma,
                              sigma=prep.spot_sigma, matrices=mats,
                              n_candidates=4).correlation for c in strongest]))
        return refined[g]

    for g in range(-4, 5):                      # one coarse step either side
        refined_quality(g)
    limit = int(np.ceil(scale_range / quarter))
    while True:                                 # extend while the best is on the edge
        g_best = max(refined, key=refined.get)
        edge = g_best + (1 if g_best == max(refined) else -1 if g_best == min(refined) else 0)
        if edge == g_best or abs(edge) > limit:
            break
        refined_quality(edge)
    refined = {float(coarse_best * (1 + g * quarter)): v for g, v in refined.items()}
    best = max(refined, key=refined.get)
    scales = sorted(set(tried) | set(refined))
    table = np.array([[s, tried.get(s, np.nan), refined.get(s, np.nan)] for s in scales])
    return best, table
