"""Data operators: the only way the NMF solver touches the data matrix.

The solver needs four things from ``X`` (ndarray of shape (n_patterns, n_pixels)):
``H @ X.T``, ``Wt @ X``, ``||X||_F^2`` and the mean absolute residual. Keeping them behind
this small interface separates *what* is computed from *how* it is executed: the
in-memory operator below works on a numpy matrix; chunked (dask, out-of-core) operators
implement the same methods by streaming over row blocks of patterns.
"""
from __future__ import annotations

import numpy as np

# Row-block size used when a full (n, p) temporary would be too large.
_BLOCK_ELEMENTS = 2**23  # 8M float32 = 32 MB per temporary


class InMemoryOperator:
    """Operator over a numpy matrix held in memory.

    Parameters
    ----------
    X : ndarray of shape (n_patterns, n_pixels)
        Non-negative data, float32 or float64 (kept as given).
    """

    def __init__(self, X: np.ndarray):
        self.X = X
        self.shape = X.shape
        self.dtype = X.dtype
        self._sq_norm = None

    def x_ht(self, H: np.ndarray) -> np.ndarray:
        """Return ``H @ X.T``, ndarray of shape (k, n_patterns)."""
        return H @ self.X.T

    def wt_x(self, Wt: np.ndarray) -> np.ndarray:
        """Return ``Wt @ X``, ndarray of shape (k, n_pixels)."""
        return Wt @ self.X

    def sq_norm(self) -> float:
        """Return ``||X||_F^2`` accumulated in float64."""
        if self._sq_norm is None:
            total = 0.0
            for sl in self._row_blocks():
                blk = self.X[sl].astype(np.float64, copy=False)
                total += float(np.einsum("ij,ij->", blk, blk))
            self._sq_norm = total
        return self._sq_norm

    def mean(self) -> float:
        return float(np.mean(self.X, dtype=np.float64))

    def mean_abs_residual(self, Wt: np.ndarray, H: np.ndarray) -> float:
        """Return ``mean(|X - Wt.T @ H|)`` computed in row blocks (bounded memory)."""
        total = 0.0
        for sl in self._row_blocks():
            R = self.X[sl] - Wt[:, sl].T @ H
            total += float(np.abs(R).sum(dtype=np.float64))
        return total / (self.shape[0] * self.shape[1])

    def row_sums(self) -> np.ndarray:
        """Total intensity of each pattern, ndarray of shape (n_patterns,), float64."""
        if getattr(self, "_row_sums", None) is None:
            self._row_sums = self.X.sum(axis=1, dtype=np.float64)
        return self._row_sums

    def _divisors(self) -> np.ndarray:
        """Row sums with zeros replaced by 1 (to sum-normalise without dividing by 0)."""
        s = self.row_sums().copy()
        s[s <= 0] = 1.0
        return s

    def normalised_coords(self, r: int, *, rng: np.random.Generator,
                          scan_shape=None) -> np.ndarray:
        """Coordinates (n, r) of the sum-normalised patterns in their top-r SVD subspace.

        With ``scan_shape`` the coordinates are averaged over each position's 3x3 scan
        neighbourhood (see :func:`smooth_scan`).
        """
        s = self._divisors()
        Xn = (self.X / s[:, None].astype(self.X.dtype))
        U, S, _ = randomized_svd(Xn, r, rng=rng)
        coords = U * S
        return coords if scan_shape is None else smooth_scan(coords, scan_shape)

    def mean_normalised_rows(self, groups) -> np.ndarray:
        """Mean of the sum-normalised rows in each index array, shape (len(groups), p)."""
        s = self._divisors()
        out = np.empty((len(groups), self.shape[1]), dtype=self.dtype)
        for g, idx in enumerate(groups):
            idx = np.sort(np.asarray(idx))
            out[g] = (self.X[idx] / s[idx, None]).mean(axis=0)
        return out

    def sq_residual(self, Wt: np.ndarray, H: np.ndarray) -> float:
        """Return ``||X - Wt.T @ H||_F^2`` in float64, in row blocks (bounded memory)."""
        total = 0.0
        H64 = H.astype(np.float64)
        for sl in self._row_blocks():
            R = self.X[sl].astype(np.float64) - Wt[:, sl].T.astype(np.float64) @ H64
            total += float(np.einsum("ij,ij->", R, R))
        return total

    def _row_blocks(self):
        n, p = self.shape
        step = max(1, _BLOCK_ELEMENTS // max(p, 1))
        for start in range(0, n, step):
            yield slice(start, min(n, start + step))

    def sketch(self, n_components: int, *, n_oversamples: int = 10, n_iter: int = 4,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Randomized truncated SVD ``X ~ U S Vt`` (Halko, Martinsson & Tropp 2011).

        Returns U (n, r), S (r,), Vt (r, p) with r = n_components.
        """
        return randomized_svd(self.X, n_components, n_oversamples=n_oversamples,
                              n_iter=n_iter, rng=rng)


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
