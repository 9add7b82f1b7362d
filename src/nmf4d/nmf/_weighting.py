"""Poisson noise weighting of the data matrix (Keenan & Kotula 2004).

Counting noise has variance equal to the mean, so a plain Frobenius fit spends its
components on the brightest pixels (the direct beam, vacuum) whose absolute noise is
largest. Factorising ``Xs = diag(a) X diag(b)`` with ``a = 1/sqrt(row sums)`` and
``b = 1/sqrt(column means)`` makes the noise roughly uniform while keeping the model
linear (a mixture of patterns stays a mixture), the scaling HyperSpy applies with
``decomposition(normalize_poissonian_noise=True)``. The factors are mapped back with
``W = diag(1/a) Ws`` and ``H = Hs diag(1/b)``.

The pipeline never calls these directly: :class:`nmf4d.prepare.FittingData` holds the
data in its fitting space and converts fits to and from input units with them.
"""
from __future__ import annotations

import numpy as np

from ._estimator import NMFResult, normalise_factors, sort_by_weight


def poisson_scales(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column scales for Poisson weighting.

    Parameters
    ----------
    X : ndarray of shape (n, p)

    Returns
    -------
    a : ndarray of shape (n,)
        ``1/sqrt(row sum)`` (1 where the row sum is 0).
    b : ndarray of shape (p,)
        ``1/sqrt(column mean)`` (1 where the column mean is 0).
    """
    return scales_from_sums(X.sum(axis=1, dtype=np.float64), X.mean(axis=0, dtype=np.float64))


def scales_from_sums(rows: np.ndarray, cols: np.ndarray, *, gain: float = 1.0,
                     read_variance: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`poisson_scales` from the row sums (n,) and column means (p,) of X.

    With ``read_variance > 0`` (an integrating detector: variance ``gain * mean +
    read_variance``) the scales are ``1/sqrt(gain * row mean + read_variance)`` and
    ``1/sqrt(gain * column mean + read_variance)`` (clipped at a small positive floor):
    the product of the two is, up to one constant factor that NMF does not see, one over
    the noise's standard deviation in both limits (shot noise and read noise).
    """
    rows = np.asarray(rows, dtype=np.float64)
    cols = np.asarray(cols, dtype=np.float64)
    if read_variance > 0:
        p = cols.size
        floor = 1e-3 * read_variance
        a = 1.0 / np.sqrt(np.maximum(gain * rows / p + read_variance, floor))
        b = 1.0 / np.sqrt(np.maximum(gain * cols + read_variance, floor))
        return a, b
    a = np.ones_like(rows)
    b = np.ones_like(cols)
    a[rows > 0] = 1.0 / np.sqrt(rows[rows > 0])
    b[cols > 0] = 1.0 / np.sqrt(cols[cols > 0])
    return a, b


def apply_scales(X: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``diag(a) X diag(b)`` in the dtype of X."""
    return (X * a[:, None].astype(X.dtype)) * b[None, :].astype(X.dtype)


def unscale(res: NMFResult, a: np.ndarray, b: np.ndarray, *, sort: bool = True) -> NMFResult:
    """Map a fit of the scaled data back to the original units.

    Components are renormalised to sum 1 and the weights rescaled accordingly, so
    ``weights.T @ components`` approximates the original (unscaled) data.
    """
    dtype = res.components.dtype
    Wt = res.weights / a[None, :]
    H = res.components / b[None, :]
    Wt, H = normalise_factors(Wt.astype(np.float64), H.astype(np.float64))
    if sort:
        Wt, H = sort_by_weight(Wt, H)
    return NMFResult(weights=Wt.astype(dtype), components=H.astype(dtype),
                     n_iter=res.n_iter, converged=res.converged, history=list(res.history))


def rescale(res: NMFResult, a: np.ndarray, b: np.ndarray, *, dtype=np.float32):
    """Inverse of :func:`unscale`: factors of ``res`` mapped into the weighted space.

    Returns
    -------
    Wt : ndarray of shape (k, n)
    H : ndarray of shape (k, p)
        Starting factors for a fit of ``apply_scales(X, a, b)``.
    """
    Wt = res.weights * a[None, :]
    H = res.components * b[None, :]
    return Wt.astype(dtype), H.astype(dtype)
