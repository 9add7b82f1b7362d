"""NMF engine: accelerated HALS over data operators, with SPA or NNDSVD starts.

Axis conventions (the one place they are written down; the README repeats them)
-------------------------------------------------------------------------------
- A dataset is ``(scan_y, scan_x, ky, kx)``: scan positions first, detector pixels last.
- The data matrix ``X`` (or ``V``) has one pattern per row: shape ``(n, p)`` with
  ``n = scan_y * scan_x`` in row-major scan order and ``p = ky * kx``.
- ``weights`` always put the component axis first: ``(k, n)`` in the engine
  (:class:`NMFResult`), ``(k, scan_y, scan_x)`` once reshaped to the scan. Inside the
  solver the same array is called ``Wt``. ``components`` (``H``) are ``(k, p)``, or
  ``(k, ky, kx)`` reshaped. So ``X ~ weights.T @ components``.
- After a fit each component sums to 1 and the weights are in the units of X: a weight is
  the intensity a component contributes at a position.

Contracts: the solver touches X only through a :class:`~.protocols.DataOperator`
(:mod:`.protocols`); :class:`BlockOperator` is the full data over row blocks (its block
sources, which decide where blocks are computed, are in :mod:`nmf4d.execution`),
:class:`LowRankOperator` a ``Q B`` sketch. This package's public names are exported
here; other packages import them from ``nmf4d.nmf``, never from its private modules.
"""
from . import _kernels as kernels
from ._blocked import BlockOperator, InMemoryOperator, combine_stats
from ._estimator import (
    NMF,
    NMFResult,
    as_operator,
    check_k,
    fit_weights,
    initialise,
    non_negative_factorization,
    normalise_factors,
    sort_by_weight,
)
from ._hals import hals
from ._init import smooth_scan
from ._lowrank import LowRankOperator
from ._sparse import SPARSE_DENSITY, vstack_rows
from ._weighting import apply_scales, poisson_scales, rescale, scales_from_sums, unscale
from .protocols import DataOperator, FullDataOperator, FusedWeightStep, IterationCallback

__all__ = ["NMF", "NMFResult", "non_negative_factorization", "normalise_factors",
           "sort_by_weight", "fit_weights", "initialise", "check_k", "as_operator", "hals",
           "smooth_scan",
           "BlockOperator", "InMemoryOperator", "LowRankOperator", "kernels", "combine_stats",
           "SPARSE_DENSITY", "vstack_rows",
           "poisson_scales", "scales_from_sums", "apply_scales", "unscale", "rescale",
           "DataOperator", "FusedWeightStep", "FullDataOperator", "IterationCallback",
           "hals_torch"]


def hals_torch(*args, **kwargs):
    """:func:`._torch.hals_torch` (HALS on a torch device), imported on first use."""
    from ._torch import hals_torch as _impl
    return _impl(*args, **kwargs)
