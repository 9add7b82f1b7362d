"""The refinement stage: the final NMF fit of the chosen k on the full data."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .nmf import NMFResult, check_k, fit_weights, non_negative_factorization

if TYPE_CHECKING:
    from .config import AnalysisConfig
    from .execution import Progress
    from .prepare import FittingData


def refine(data: "FittingData", k: int, config: "AnalysisConfig", *,
           start: NMFResult | None = None, progress: "Progress | None" = None) -> NMFResult:
    """Fit k components to the full data, from the sweep's fit of that k when given.

    Parameters
    ----------
    data : FittingData
    k : int
    config : AnalysisConfig
        ``fit`` (start, penalties, stopping; the orthogonality penalty from
        :func:`nmf4d.config.final_ortho`), ``execution.device``, ``seed``.
    start : NMFResult, optional
        A fit of k components in input units (the sweep's), mapped into the fitting space
        as the starting point. The result then keeps the start's order of components
        (component c of the result is component c of the start, refined), so what an
        assessment of the start found per component (merged, background, dropped: the
        decision's grouping) still names the same components; without a start the
        components are sorted by decreasing total weight.
    progress : Progress, optional

    Returns
    -------
    NMFResult
        In input units: components of unit sum, weights (k, n) in intensity units.
    """
    from .config import final_ortho
    from .execution import Progress, blas_threads

    progress = progress or Progress()
    fit = config.fit
    n, p = data.fit_op.shape
    k = check_k(k, min(n, p))
    start_factors = None if start is None else data.to_fitting(start)
    # BLAS single-threaded: the passes run blocks on threads; the solver's own small
    # products between passes (k x k Gram matrices, the start's QR/SVD) gain nothing from
    # threads, and on shared cores they thrashed (k = 256 on a 16x16 scan: 247 s against
    # 33 s) (nmf4d.execution.threads)
    with progress.bar(f"final fit (k = {k}, full data)", fit.max_iter, "iter") as bar, \
            blas_threads(1):
        res = non_negative_factorization(
            data.fit_op, k, init=fit.init, seed=config.seed, max_iter=fit.max_iter,
            tol=fit.tol, l1_weights=fit.l1_weights, l1_components=fit.l1_components,
            ortho=final_ortho(fit, config.selection), scan_shape=data.scan_shape, start=start_factors,
            sort=start is None, device=config.execution.device,
            callback=lambda it, err: bar.update(1))
    return data.to_input(res, sort=start is None)


def refit_weights(data: "FittingData", fit: NMFResult, *, l1_weights: float = 0.0
                  ) -> NMFResult:
    """The weights of ``fit``'s components refitted to the full data, the components kept.

    With the components fixed, the weights are a convex problem (non-negative least
    squares per position, one pass over the data): unlike a joint refinement they cannot
    drift to another factorisation of nearly equal loss. The pipeline uses it when the
    refined fit no longer holds the clusters the decision counted
    (``nmf4d.pipeline._assessed_fit``).

    Parameters
    ----------
    data : FittingData
    fit : NMFResult
        In input units (the sweep's fit of the chosen rank); its weights are replaced.
    l1_weights : float
        The final fit's L1 penalty on the weights (``config.fit.l1_weights``).

    Returns
    -------
    NMFResult
        In input units, components in ``fit``'s order.
    """
    from .execution import blas_threads

    _, H = data.to_fitting(fit)
    with blas_threads(1):
        res = fit_weights(data.fit_op, H, l1_weights=l1_weights)
    return data.to_input(res, sort=False)
