"""Per-block computations over row blocks of the data matrix.

Every function here takes one row block ``X`` (ndarray of shape (m, p): m patterns of
p pixels) and returns a small result; the block operator (:mod:`._blocked`) sums or
concatenates the results over blocks. They are pure functions of their arguments, so the
same code runs on threads in memory, as dask tasks, or on dask.distributed workers (the
LiberTEM separation of per-chunk computation from its execution).

``r`` (ndarray of shape (m,)) and ``c`` (ndarray of shape (p,)) are optional row and
column factors applied to the block before anything else (the Poisson weighting
``diag(a) X diag(b)``, or a row normalisation), so weighted data never has to be stored.
"""
from __future__ import annotations

import numpy as np

from ._hals import _sweep

#: Bytes of a cache block of rows: a (rows, p) residual of a few MB stays in cache while
#: every fit is subtracted from the same rows of X (:func:`residuals`, :func:`_sq_sum`).
_CACHE_ROWS_BYTES = 2**21


def prepare(X, r=None, c=None) -> np.ndarray:
    """The block as float32 (float64 kept), times row factors ``r`` and column factors ``c``."""
    X = np.asarray(X)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float32)
    if r is not None and c is not None:
        out = np.multiply(X, r[:, None].astype(X.dtype, copy=False))   # one new array
        out *= c[None, :].astype(X.dtype, copy=False)
        return out
    if r is not None:
        return X * r[:, None].astype(X.dtype, copy=False)
    if c is not None:
        return X * c[None, :].astype(X.dtype, copy=False)
    return X


def stats(X, start: int) -> dict:
    """One pass of summary statistics of a raw block starting at row ``start``.

    Returns row sums (m,), column sums (p,), squared norm, and the counts and first rows
    of non-finite and negative values (for :func:`nmf4d.preprocess.check_values`-style
    messages).
    """
    X = prepare(X)
    finite = np.isfinite(X)
    all_finite = bool(finite.all())
    Xf = X if all_finite else np.where(finite, X, 0)
    neg = Xf < 0
    bad_rows = np.flatnonzero(~finite.all(axis=1)) + start if not all_finite else np.empty(0, int)
    neg_rows = np.flatnonzero(neg.any(axis=1)) + start
    return {"row_sums": Xf.sum(axis=1, dtype=np.float64),
            "col_sums": Xf.sum(axis=0, dtype=np.float64), "sq": _sq_sum(Xf),
            "n_bad": int(X.size - np.count_nonzero(finite)), "bad_rows": bad_rows,
            "n_neg": int(np.count_nonzero(neg)), "neg_rows": neg_rows,
            "min": float(Xf.min()) if Xf.size else 0.0}


def _sq_sum(X) -> float:
    """``sum(X**2)``: float32 dot products over cache-sized row chunks, summed in float64
    (no float64 copy of the block)."""
    step = max(1, _CACHE_ROWS_BYTES // max(1, X.shape[1] * X.itemsize))
    total = 0.0
    for s in range(0, X.shape[0], step):
        flat = np.ascontiguousarray(X[s:s + step]).reshape(-1)
        total += float(np.dot(flat, flat))
    return total


def sq_norm(X, r=None, c=None) -> float:
    return _sq_sum(prepare(X, r, c))


def row_sums(X, r=None, c=None) -> np.ndarray:
    return prepare(X, r, c).sum(axis=1, dtype=np.float64)


def x_ht(X, H, r=None, c=None) -> np.ndarray:
    """``H @ X.T`` for the block, ndarray of shape (k, m)."""
    return H @ prepare(X, r, c).T


def wt_x(X, Wt, r=None, c=None) -> np.ndarray:
    """``Wt @ X`` for the block (Wt of shape (k, m)), ndarray of shape (k, p)."""
    return Wt @ prepare(X, r, c)


def right_product(X, Omega, r=None, c=None) -> np.ndarray:
    """``X @ Omega`` (range finder), ndarray of shape (m, l)."""
    return prepare(X, r, c) @ Omega


def right_product_sq(X, Omega, r=None, c=None):
    """``X @ Omega`` and ``||X||_F^2`` (float64) from one read of the block."""
    Xs = prepare(X, r, c)
    return Xs @ Omega, _sq_sum(Xs)


def hals_w_step(X, Wt, H, HHt, l1: float, inner: int, mu: float, eps: float,
                need_b: bool, r=None, c=None):
    """One fused HALS step on a block: update its weights, then ``Wt @ X`` with them.

    The weights of different patterns are independent given H, so a block's weights are
    updated from its own ``H @ X.T`` and the global Gram matrix ``HHt``; the same block
    then gives its share of ``Wt @ X`` for the component update. One read of the block
    serves both products (the data is read once per HALS iteration).

    Returns
    -------
    Wt : ndarray of shape (k, m), updated
    B : ndarray of shape (k, p) or None
    WtW : ndarray of shape (k, k)
    dec : float
        Lower bound on the objective decrease (see ``_hals._sweep``).
    """
    Xs = prepare(X, r, c)
    Wt = np.array(Wt, copy=True)
    A = H @ Xs.T
    dec = _sweep(Wt, A, HHt, l1, inner, eps=eps, ortho=mu)
    B = Wt @ Xs if need_b else None
    return Wt, B, Wt @ Wt.T, dec


def residuals(X, fits, r=None, c=None) -> np.ndarray:
    """``sum |R|`` and ``sum R^2`` of ``R = X - Wt.T @ H`` for each (Wt block, H) in
    ``fits``: one read of the block for all fits. Returns ndarray of shape (len(fits), 2).

    Cache-blocked: a few rows at a time, every fit's residual is formed while those rows
    are in cache, so the (m, p) residuals are never written to main memory.
    """
    Xs = prepare(X, r, c)
    m, p = Xs.shape
    step = max(1, _CACHE_ROWS_BYTES // max(1, p * Xs.itemsize))
    out = np.zeros((len(fits), 2), dtype=np.float64)
    Ws = [np.ascontiguousarray(Wt.T, dtype=Xs.dtype) for Wt, _ in fits]
    Hs = [np.ascontiguousarray(H, dtype=Xs.dtype) for _, H in fits]
    R = np.empty((min(step, m), p), dtype=Xs.dtype)
    for s in range(0, m, step):
        e = min(m, s + step)
        Xb = Xs[s:e]
        Rb = R[:e - s]
        for i, (W, H) in enumerate(zip(Ws, Hs)):
            np.matmul(W[s:e], H, out=Rb)
            np.subtract(Xb, Rb, out=Rb)
            np.abs(Rb, out=Rb)
            flat = Rb.reshape(-1)
            # float32 within a cache block (pairwise sum, BLAS dot: ~1e-6 relative),
            # float64 across blocks; a float64 cast of the block doubled the time.
            out[i, 0] += float(flat.sum())
            out[i, 1] += float(np.dot(flat, flat))
    return out


def sq_residual(X, Wt, H, r=None, c=None) -> float:
    """``||X - Wt.T @ H||_F^2`` (cache-blocked, see :func:`residuals`)."""
    return float(residuals(X, [(Wt, H)], r, c)[0, 1])


def take_rows(X, local_idx, r=None, c=None) -> np.ndarray:
    """Rows ``local_idx`` of the block, ndarray of shape (len(local_idx), p)."""
    return np.array(prepare(X[np.asarray(local_idx)], None if r is None else r[local_idx], c))


def label_sums(X, labels, k: int, r=None, c=None) -> np.ndarray:
    """Sum of the rows with each label 0..k-1, ndarray of shape (k, p), float64."""
    Xs = prepare(X, r, c)
    out = np.zeros((k, Xs.shape[1]), dtype=np.float64)
    for j in np.unique(labels):
        if 0 <= j < k:
            out[j] = Xs[labels == j].sum(axis=0, dtype=np.float64)
    return out


def apply_rows(X, start: int, func, r=None, c=None):
    """``func(block, start)`` on the prepared block (rows ``start`` onwards): any per-block
    computation outside the NMF maths (e.g. the report's explorer patterns)."""
    return func(prepare(X, r, c), start)


def pearson(X, Wt, H, floor: float, r=None, c=None) -> float:
    """``sum((X - Wt.T @ H)**2 / max(Wt.T @ H, floor))`` of the block (float64 sum): the
    numerator of the Pearson dispersion of counts around a fit."""
    Xs = prepare(X, r, c)
    m, p = Xs.shape
    step = max(1, _CACHE_ROWS_BYTES // max(1, p * Xs.itemsize))
    W = np.ascontiguousarray(Wt.T, dtype=Xs.dtype)
    Hc = np.ascontiguousarray(H, dtype=Xs.dtype)
    total = 0.0
    for s in range(0, m, step):
        M = W[s:s + step] @ Hc
        np.maximum(M, floor, out=M)
        R = Xs[s:s + step] - M
        total += float(np.sum(R * R / M, dtype=np.float64))
    return total
