"""Helpers shared by the data operators: scan smoothing and a dense randomized SVD.

The data operators themselves (the only way the NMF solver touches the data matrix) are
:class:`nmf4d.nmf._blocked.BlockOperator` (full data, in memory or streamed over row
blocks) and :class:`nmf4d.nmf._lowrank.LowRankOperator` (a ``Q B`` sketch).
"""
from __future__ import annotations

import numpy as np


def smooth_scan(values: np.ndarray, scan_shape) -> np.ndarray:
    """Mean over each position's 3x3 scan neighbourhood (existing neighbours only).

    Parameters
    ----------
    values : ndarray of shape (scan_y * scan_x, r)
        One row per scan position, row-major.

    Used for vertex hunting only: inside a grain the mean of neighbours is the same
    pure pattern with a third of the counting noise, and along a boundary it is a
    mixture, which SPA never picks as a vertex.
    """
    from scipy.ndimage import uniform_filter

    sy, sx = scan_shape
    v = values.reshape(sy, sx, -1).astype(np.float64)
    ones = np.ones((sy, sx))
    num = uniform_filter(v, size=(3, 3, 1), mode="constant") * 9.0
    den = uniform_filter(ones, size=3, mode="constant")[..., None] * 9.0
    return (num / den).reshape(sy * sx, -1)


def randomized_svd(X: np.ndarray, n_components: int, *, n_oversamples: int = 10,
                   n_iter: int = 4, rng: np.random.Generator):
    """Randomized truncated SVD with power iterations (Halko et al. 2011, alg. 4.4).

    Written here rather than taken from scikit-learn so the core has no scikit-learn
    dependency and the same range finder can stream over chunks; tests compare it with
    ``numpy.linalg.svd``.
    """
    n, p = X.shape
    r = min(n_components + n_oversamples, n, p)
    Omega = rng.standard_normal((p, r)).astype(X.dtype, copy=False)
    Y = X @ Omega
    Q, _ = np.linalg.qr(Y)
    for _ in range(n_iter):
        Z, _ = np.linalg.qr(X.T @ Q)
        Q, _ = np.linalg.qr(X @ Z)
    B = Q.T @ X
    Ub, S, Vt = np.linalg.svd(B.astype(np.float64), full_matrices=False)
    U = Q.astype(np.float64) @ Ub
    k = min(n_components, S.size)
    return U[:, :k], S[:k], Vt[:k]
