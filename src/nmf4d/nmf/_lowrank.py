"""Compressed data: the operator over a ``Q B`` sketch of X.

A randomized range finder (:meth:`BlockOperator.qb`, a few passes over the data) gives
``X ~ Q B`` with Q of shape (n, l), orthonormal columns, and ``B = Q.T X`` of shape
(l, p), l a little above the largest k of interest. NMF of ``Q B`` instead of X keeps
W (n, k) and H (k, p) exactly non-negative in the full spaces, but every product with the
data costs ``O((n + p) l k)`` instead of ``O(n p k)`` ("compressed NMF": Tepper & Sapiro
2016; randomized HALS: Erichson et al. 2018). One sketch serves every k of the level-one
sweep; the chosen k is then refined on the full data.

Counting noise is spread over all n·p directions, while the crystal patterns and their
mixtures live in a few: the sketch keeps the latter, so a fit to ``Q B`` is (nearly) the
fit to X. ``benchmarks/sweep_vs_paper.py`` measures how near: the full-data loss of the
sketched fits against full-data fits run to convergence.
"""
from __future__ import annotations

import numpy as np

from ._init import smooth_scan


class LowRankOperator:
    """Operator over ``X ~ Q @ B``.

    Parameters
    ----------
    Q : ndarray of shape (n, l)
        Orthonormal columns.
    B : ndarray of shape (l, p)
    full_sq_norm : float, optional
        ``||X||_F^2`` of the data the sketch was taken from.
    """

    def __init__(self, Q: np.ndarray, B: np.ndarray, *, full_sq_norm: float | None = None):
        self.Q = np.ascontiguousarray(Q, dtype=np.float32)
        self.B = np.ascontiguousarray(B, dtype=np.float32)
        self.QtT = np.ascontiguousarray(self.Q.T)
        self.shape = (Q.shape[0], B.shape[1])
        self.dtype = np.dtype(np.float32)
        self.rank = Q.shape[1]
        #: cost of one product with the data per component (accelerated HALS' inner bound)
        self.pass_cost = float((self.shape[0] + self.shape[1]) * self.rank)
        self._sq = float(np.einsum("ij,ij->", B.astype(np.float64), B.astype(np.float64)))
        self._rows = Q.astype(np.float64) @ B.astype(np.float64).sum(axis=1)
        #: 0.5 ||X - Q B||^2 = 0.5 (||X||^2 - ||B||^2), the part of the full-data objective
        #: outside the sketch (used by HALS' stopping test; 0 when ||X|| is not given)
        self.objective_floor = 0.0 if full_sq_norm is None else 0.5 * max(full_sq_norm - self._sq, 0.0)

    def in_memory_matrix(self):
        """None: the sketch is not the data matrix (see the protocol)."""
        return None

    def x_ht(self, H: np.ndarray) -> np.ndarray:
        """``H @ (Q B).T = (H @ B.T) @ Q.T``, ndarray of shape (k, n)."""
        return (H @ self.B.T) @ self.QtT

    def wt_x(self, Wt: np.ndarray) -> np.ndarray:
        """``Wt @ Q @ B``, ndarray of shape (k, p)."""
        return (Wt @ self.Q) @ self.B

    def sq_norm(self) -> float:
        """``||Q B||_F^2 = ||B||_F^2`` (Q orthonormal)."""
        return self._sq

    def row_sums(self) -> np.ndarray:
        return self._rows

    def mean(self) -> float:
        return float(self._rows.sum() / (self.shape[0] * self.shape[1]))

    def _divisors(self) -> np.ndarray:
        s = self._rows.copy()
        floor = 1e-6 * max(float(np.abs(s).max()), 1e-30)
        s[s <= floor] = 1.0
        return s

    def normalised_coords(self, r: int, *, rng=None, scan_shape=None) -> np.ndarray:
        """Top-r SVD coordinates (n, r) of the sum-normalised rows of ``Q B`` (exact, no
        random numbers: ``diag(1/s) Q B = Q2 (R2 B)`` with ``Q2 R2`` the QR of ``Q / s``)."""
        M = self.Q.astype(np.float64) / self._divisors()[:, None]
        Q2, R2 = np.linalg.qr(M)
        U, S, _ = np.linalg.svd(R2 @ self.B.astype(np.float64), full_matrices=False)
        r = min(r, S.size)
        coords = (Q2 @ U[:, :r]) * S[:r]
        return coords if scan_shape is None else smooth_scan(coords, scan_shape)

    def take_rows(self, idx) -> np.ndarray:
        """Rows of ``Q B`` (clipped at 0), ndarray of shape (len(idx), p)."""
        return np.maximum(self.Q[np.asarray(idx)] @ self.B, 0)

    def mean_normalised_rows(self, groups) -> np.ndarray:
        """Mean of the sum-normalised rows of ``Q B`` in each index array, shape
        (len(groups), p) (the rows of all groups from one product)."""
        s = self._divisors()
        groups = [np.asarray(g) for g in groups]
        allidx = np.concatenate(groups)
        rows = self.take_rows(allidx) / s[allidx, None].astype(np.float32)
        ends = np.cumsum([g.size for g in groups])
        return np.stack([rows[e - g.size:e].mean(axis=0) for g, e in zip(groups, ends)]
                        ).astype(np.float32)

    def sketch(self, n_components: int, *, rng=None, **_):
        """Truncated SVD of ``Q B``: U (n, r), S (r,), Vt (r, p)."""
        Ub, S, Vt = np.linalg.svd(self.B.astype(np.float64), full_matrices=False)
        r = min(n_components, S.size)
        return (self.Q.astype(np.float64) @ Ub)[:, :r], S[:r], Vt[:r]
