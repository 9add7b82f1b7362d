"""Degenerate data, found in the statistics of the loading pass (no extra pass).

:func:`check_degenerate` warns (:class:`~nmf4d.errors.DataWarning`) about data that NMF
cannot analyse meaningfully and says what k means for it:

* **identical patterns** -- every pattern equals the mean pattern (a constant scan, a
  detector frame repeated): one component describes the data exactly, so an automatic
  k is 1 (levels one and two are skipped), and a given k > 1 only adds empty or
  duplicate components. Found from the row and column sums and the squared norm:
  ``sum_i |v_i|^2 >= |sum_i v_i|^2 / n`` with equality only when every row ``v_i`` is the
  same (Cauchy-Schwarz), so the relative gap measures the variation between patterns.
* **nearly empty data** -- most patterns hold no intensity at all, or only a few
  detector pixels are ever non-zero.
* **k as large as the number of patterns** -- allowed (the fit is bounded by its
  iteration cap), but every component can then be one pattern.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .errors import warn_data

if TYPE_CHECKING:
    from .prepare import FittingData

#: Relative variation between patterns below which they count as identical (float32).
IDENTICAL_TOL = 1e-6


def pattern_variation(stats: dict, n: int) -> float:
    """``1 - |sum_i v_i|^2 / (n sum_i |v_i|^2)``: 0 when every pattern is the same."""
    sq = float(stats["sq"])
    if sq <= 0 or n <= 0:
        return 0.0
    col = np.asarray(stats["col_sums"], np.float64)
    return max(0.0, 1.0 - float(col @ col) / (n * sq))


def check_degenerate(data: "FittingData", k):
    """Warn about degenerate data; return the k to use (1 for identical patterns when
    ``k == "auto"``, else ``k``)."""
    st = data.stats
    if not st:
        return k
    sy, sx = data.scan_shape
    n = sy * sx
    p = int(np.prod(data.pattern_shape))
    rows = np.asarray(st["row_sums"])
    empty = int((rows == 0).sum())
    if n > 1 and empty * 2 >= n:
        warn_data(f"{empty} of the {n} patterns hold no intensity (all zero after "
                  "preprocessing): the maps will show little but the empty positions")
    lit = int((np.asarray(st["col_sums"]) != 0).sum())
    if p > 100 and lit * 100 < p:
        warn_data(f"only {lit} of the {p} detector pixels are ever non-zero: check the "
                  "crop, the mask and the data")
    if k != "auto" and n > 1 and k >= n:
        warn_data(f"k = {k} is the number of patterns ({n}): every component can be one "
                  "pattern, so the clusters say nothing about orientations")
    if n > 1 and pattern_variation(st, n) < IDENTICAL_TOL:
        if k == "auto":
            warn_data(f"all {n} patterns are identical: one component describes the data "
                      "exactly, so k = 1 (levels one and two skipped)")
            return 1
        if k > 1:
            warn_data(f"all {n} patterns are identical: one component describes the data "
                      f"exactly; the other {k - 1} of the k = {k} components are empty or "
                      "copies (--k 1)")
    return k


__all__ = ["IDENTICAL_TOL", "check_degenerate", "pattern_variation"]
