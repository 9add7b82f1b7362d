"""The data operator over the row blocks of X (full data, in memory or streamed).

:class:`BlockOperator` implements every data access the NMF solver, the k sweep and the
maps need (``x_ht``, ``wt_x``, fused HALS steps, the range finder, residuals, ...) as
per-block kernels (:mod:`._kernels`) combined over the row blocks of ``X``, optionally
weighted ``diag(a) X diag(b)`` on the fly. *Where* the blocks live and *who* runs the
kernels is the block source's business (:mod:`nmf4d.execution.sources`: in memory on
threads, streamed with dask, on a ``dask.distributed`` cluster); the results do not depend
on the source. It satisfies :class:`~.protocols.FullDataOperator`.
"""
from __future__ import annotations

import numpy as np

from ..execution.sources import NumpySource
from . import _kernels as K
from ._init import smooth_scan


def _sum(parts):
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


class BlockOperator:
    """Data operator over the row blocks of X, optionally weighted ``diag(a) X diag(b)``.

    Parameters
    ----------
    source : BlockSource
        :class:`~nmf4d.execution.NumpySource` or :class:`~nmf4d.execution.DaskSource`.
    scales : (a, b), optional
        Row factors of shape (n,) and column factors of shape (p,) applied on the fly.
    """

    #: a product with the full data costs ``n p`` per component (see the protocol)
    pass_cost = None
    #: the full data represents the whole objective
    objective_floor = 0.0

    def __init__(self, source, *, scales=None):
        self.source = source
        self.shape = source.shape
        self.dtype = source.dtype
        self.scales = scales
        self._cache: dict = {}

    @property
    def n_blocks(self) -> int:
        """Row blocks per pass over the data."""
        return len(self.source.blocks)

    def in_memory_matrix(self):
        """X when it is an unweighted ndarray in memory (for the GPU engine), else None."""
        if self.scales is None and isinstance(self.source, NumpySource):
            return self.source.X
        return None

    # -- helpers ---------------------------------------------------------------
    def _rows(self, extra_r=None):
        """Per-block row factors (a times ``extra_r``), or None."""
        a = None if self.scales is None else self.scales[0]
        if extra_r is not None:
            a = extra_r if a is None else a * extra_r
        if a is None:
            return [None] * len(self.source.blocks)
        return [a[s:e] for s, e in self.source.blocks]

    def _col(self):
        return None if self.scales is None else self.scales[1]

    def _map(self, kernel, per_block, shared=(), extra_r=None, only=None):
        """Run ``kernel(X_block, *per_block[i], *shared, r_block, c)`` over every block
        (or the blocks ``only``)."""
        rows = self._rows(extra_r)
        per = [tuple(per_block[i]) if per_block is not None else () for i in range(len(rows))]
        return self.source.map(_Call(kernel, len(shared)),
                               [per[i] + (rows[i],) for i in range(len(rows))],
                               tuple(shared) + (self._col(),), only=only)

    def _split(self, Wt):
        return [Wt[:, s:e] for s, e in self.source.blocks]

    # -- statistics ------------------------------------------------------------
    def stats(self) -> dict:
        """Row sums, column sums, squared norm and bad-value counts of the unweighted data."""
        if "stats" not in self._cache:
            parts = self.source.map(K.stats, [(s,) for s, _ in self.source.blocks])
            out = {"row_sums": np.concatenate([p["row_sums"] for p in parts]),
                   "col_sums": _sum([p["col_sums"] for p in parts]),
                   "sq": float(sum(p["sq"] for p in parts)),
                   "n_bad": sum(p["n_bad"] for p in parts),
                   "bad_rows": np.concatenate([p["bad_rows"] for p in parts]).astype(int),
                   "n_neg": sum(p["n_neg"] for p in parts),
                   "neg_rows": np.concatenate([p["neg_rows"] for p in parts]).astype(int),
                   "min": min(p["min"] for p in parts)}
            self._cache["stats"] = out
        return self._cache["stats"]

    def sq_norm(self) -> float:
        """``||X||_F^2`` (of the weighted data when scaled), float64."""
        if "sq" not in self._cache:
            if self.scales is None:
                self._cache["sq"] = self.stats()["sq"]
            else:
                self._cache["sq"] = float(sum(self._map(K.sq_norm, None)))
        return self._cache["sq"]

    def row_sums(self) -> np.ndarray:
        """Total intensity of each (weighted) pattern, ndarray of shape (n,), float64."""
        if "rows" not in self._cache:
            if self.scales is None:
                self._cache["rows"] = self.stats()["row_sums"]
            else:
                self._cache["rows"] = np.concatenate(self._map(K.row_sums, None))
        return self._cache["rows"]

    def mean(self) -> float:
        return float(self.row_sums().sum() / (self.shape[0] * self.shape[1]))

    def _divisors(self) -> np.ndarray:
        s = self.row_sums().copy()
        s[s <= 0] = 1.0
        return s

    # -- products ----------------------------------------------------------------
    def x_ht(self, H: np.ndarray) -> np.ndarray:
        """``H @ X.T``, ndarray of shape (k, n)."""
        return np.concatenate(self._map(K.x_ht, None, (H,)), axis=1)

    def wt_x(self, Wt: np.ndarray) -> np.ndarray:
        """``Wt @ X``, ndarray of shape (k, p)."""
        return _sum(self._map(K.wt_x, [(w,) for w in self._split(Wt)]))

    def hals_w_step(self, Wt, H, HHt, *, l1: float = 0.0, inner: int = 1, mu: float = 0.0,
                    eps: float = 0.1, need_b: bool = True):
        """Fused HALS weight update and ``Wt @ X`` in one read of each block.

        Each block makes exactly ``inner`` sweeps (``eps`` is not used: an early stop
        decided per block would make the result depend on how the rows are split into
        blocks; the sweeps cost little next to reading the block). Returns (Wt, B, WtW,
        dec); see :func:`._kernels.hals_w_step`.
        """
        parts = self._map(K.hals_w_step, [(w,) for w in self._split(Wt)],
                          (H, HHt, float(l1), int(inner), float(mu), 0.0, bool(need_b)))
        Wt_new = np.concatenate([p[0] for p in parts], axis=1)
        B = _sum([p[1] for p in parts]) if need_b else None
        WtW = _sum([p[2] for p in parts])
        dec = float(sum(p[3] for p in parts))
        return Wt_new, B, WtW, dec

    def residuals(self, fits):
        """Mean absolute and total squared residual of each (Wt, H) in ``fits``, in one
        pass over X: ``mean |X - Wt.T @ H|`` (n_fits,) and ``||X - Wt.T @ H||^2`` (n_fits,)."""
        per = [([(Wt[:, s:e], H) for Wt, H in fits],) for s, e in self.source.blocks]
        tot = _sum(self._map(K.residuals, per))
        return tot[:, 0] / (self.shape[0] * self.shape[1]), tot[:, 1]

    def sq_residual(self, Wt, H) -> float:
        """``||X - Wt.T @ H||_F^2`` in float64."""
        return float(sum(self._map(K.sq_residual, [(w,) for w in self._split(Wt)], (H,))))

    # -- sketches ------------------------------------------------------------------
    def qb(self, l: int, *, n_iter: int = 2, rng: np.random.Generator, row_factor=None):
        """Randomized range finder ``X ~ Q B`` (Halko et al. 2011, alg. 4.4).

        ``2 + 2 * n_iter`` passes over X. Returns Q (n, l) with orthonormal columns and
        B = Q.T X (l, p), both float64. ``row_factor`` (n,) multiplies the rows first.
        """
        n, p = self.shape
        l = int(min(l, n, p))
        Omega = rng.standard_normal((p, l)).astype(np.float32)
        parts = self._map(K.right_product_sq, None, (Omega,), extra_r=row_factor)
        if row_factor is None and "sq" not in self._cache:
            self._cache["sq"] = float(sum(p[1] for p in parts))   # free with this pass
        Y = np.concatenate([p[0] for p in parts])
        Q, _ = np.linalg.qr(Y.astype(np.float64))
        for _ in range(n_iter):
            Z = self._map(K.wt_x, [(Q[s:e].T.astype(np.float32),) for s, e in self.source.blocks],
                          extra_r=row_factor)
            Z, _ = np.linalg.qr(_sum(Z).T.astype(np.float64))
            Y = np.concatenate(self._map(K.right_product, None, (Z.astype(np.float32),),
                                         extra_r=row_factor))
            Q, _ = np.linalg.qr(Y.astype(np.float64))
        B = _sum(self._map(K.wt_x, [(Q[s:e].T.astype(np.float32),) for s, e in self.source.blocks],
                           extra_r=row_factor)).astype(np.float64)
        return Q, B

    def sketch(self, n_components: int, *, n_oversamples: int = 10, n_iter: int = 4,
               rng: np.random.Generator):
        """Randomized truncated SVD ``X ~ U S Vt``: U (n, r), S (r,), Vt (r, p)."""
        Q, B = self.qb(n_components + n_oversamples, n_iter=n_iter, rng=rng)
        Ub, S, Vt = np.linalg.svd(B, full_matrices=False)
        r = min(n_components, S.size)
        return (Q @ Ub)[:, :r], S[:r], Vt[:r]

    def normalised_coords(self, r: int, *, rng: np.random.Generator, scan_shape=None):
        """Coordinates (n, r) of the sum-normalised patterns in their top-r SVD subspace."""
        Q, B = self.qb(r + 10, n_iter=4, rng=rng, row_factor=1.0 / self._divisors())
        Ub, S, _ = np.linalg.svd(B, full_matrices=False)
        coords = (Q @ Ub[:, :r]) * S[:r]
        return coords if scan_shape is None else smooth_scan(coords, scan_shape)

    def take_rows(self, idx) -> np.ndarray:
        """Rows ``idx`` of the (weighted) data, ndarray of shape (len(idx), p)."""
        idx = np.asarray(idx, dtype=np.int64)
        out = np.empty((idx.size, self.shape[1]), dtype=self.dtype)
        per, where = [], []
        for s, e in self.source.blocks:
            sel = np.flatnonzero((idx >= s) & (idx < e))
            where.append(sel)
            per.append((idx[sel] - s,))
        keep = [i for i, w in enumerate(where) if w.size]
        if not keep:
            return out
        parts = self._map(K.take_rows, per, only=keep)   # read only the blocks needed
        for i, part in zip(keep, parts):
            out[where[i]] = part
        return out

    def mean_normalised_rows(self, groups) -> np.ndarray:
        """Mean of the sum-normalised rows in each index array, shape (len(groups), p)."""
        s = self._divisors()
        allidx = np.unique(np.concatenate([np.asarray(g) for g in groups]))
        rows = self.take_rows(allidx)
        pos = {int(v): i for i, v in enumerate(allidx)}
        out = np.empty((len(groups), self.shape[1]), dtype=self.dtype)
        for g, idx in enumerate(groups):
            sel = [pos[int(v)] for v in np.asarray(idx)]
            out[g] = (rows[sel] / s[np.asarray(idx), None]).mean(axis=0)
        return out

    def pearson(self, Wt, H) -> float:
        """``sum((X - Wt.T @ H)**2 / (Wt.T @ H))`` over the (weighted) data, one pass
        (model values floored at 1e-6 of their mean): the Pearson statistic of a fit."""
        floor = 1e-6 * max(float(Wt.sum(axis=1) @ H.sum(axis=1)) / (self.shape[0] *
                                                                     self.shape[1]), 1e-30)
        return float(sum(self._map(K.pearson, [(w,) for w in self._split(Wt)],
                                   (H, float(floor)))))

    def map_rows(self, func) -> list:
        """``[func(X_block, start) for each row block]`` in block order, ``X_block`` the
        (weighted) rows ``start:start + m`` as float32/float64 (``func`` must be picklable
        for a cluster: a module-level function or a ``functools.partial`` of one)."""
        return self._map(K.apply_rows, [(s,) for s, _ in self.source.blocks], (func,))

    def label_means(self, labels: np.ndarray, k: int) -> np.ndarray:
        """Mean (weighted) row of each label 0..k-1, ndarray of shape (k, p), float64."""
        labels = np.asarray(labels).ravel()
        sums = _sum(self._map(K.label_sums, [(labels[s:e], k) for s, e in self.source.blocks]))
        count = np.bincount(labels, minlength=k)[:k]
        return sums / np.maximum(count, 1)[:, None]


class _Call:
    """Picklable adaptor: ``kernel(X, *per_block, *shared, r, c)`` from the source's call
    ``(X, *per_block, r, *shared, c)``."""

    def __init__(self, kernel, n_shared: int):
        self.kernel = kernel
        self.n_shared = n_shared

    def __call__(self, X, *args):
        *per, r = args[:len(args) - self.n_shared - 1]
        shared = args[len(args) - self.n_shared - 1:-1]
        c = args[-1]
        return self.kernel(X, *per, *shared, r, c)


class InMemoryOperator(BlockOperator):
    """Operator over a numpy matrix held in memory (row blocks run on threads).

    Parameters
    ----------
    X : ndarray of shape (n_patterns, n_pixels)
        Non-negative data, float32 or float64 (kept as given).
    block_rows : int, optional
        Rows per block (default: 16 MB of float32 per block).
    scales : (a, b), optional
        Weighting applied on the fly (see :class:`BlockOperator`).
    progress : nmf4d.execution.Progress, optional
        Told after each block computed.
    """

    def __init__(self, X: np.ndarray, *, block_rows: int | None = None, scales=None,
                 progress=None):
        super().__init__(NumpySource(X, block_rows=block_rows, progress=progress),
                         scales=scales)
        self.X = X
