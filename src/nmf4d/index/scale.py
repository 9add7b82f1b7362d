"""Search of the reciprocal scale when the given calibration indexes poorly.

The coarse search (:mod:`.matching`) of the strongest clusters is repeated at scales
``s * (1 + f)`` for ``f`` in ``-scale_range ... +scale_range`` in steps of ``scale_step``,
then at quarter steps about the best; the scale with the highest mean best coarse score
wins (one scale for all clusters: it is a property of the instrument), and
:func:`nmf4d.index.index_clusters` indexes again at it, recording the scale used, that it
was searched and every scale tried.
"""
from __future__ import annotations

import numpy as np

from .matching import coarse_scores, polar_of, spot_matrices


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
    (best scale, ndarray (n, 2) of scale and mean best coarse score, sorted by scale)
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
    best = max(tried, key=tried.get)
    for f in (-0.5, -0.25, 0.25, 0.5):
        quality(float(best * (1 + f * scale_step)))
    best = max(tried, key=tried.get)
    table = np.array(sorted(tried.items()), dtype=np.float64)
    return best, table
