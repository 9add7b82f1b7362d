"""Sparse row blocks: detector counts held as CSR (compressed sparse rows).

A counting detector at a few thousand counts per pattern leaves most pixels at zero (2.6 %
non-zero pixels on the 10^5-pattern benchmark of 128x128 patterns): held as CSR with
float32 values and int32 column indices the data takes 8 bytes per count instead of 2-4
per pixel, and every product with it costs in proportion to the counts. Measured on 256
rows of that scan, one core: ``X @ Omega`` (l = 30) 1.7 ms against 9.6 ms dense (plus
1.9 ms converting uint16 to float32), ``H @ X.T`` (k = 9) 0.7 ms against 6.1 ms; the two
cost the same near 20-25 % density (and so does memory), so CSR is used below
:data:`SPARSE_DENSITY`.

These helpers let the kernels of :mod:`._kernels` take a CSR block where they take a
dense one (``A @ X`` and ``X @ A`` work on both); they are pure functions too.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: Data at most this dense is held as CSR (see the module docstring for the crossover).
SPARSE_DENSITY = 0.10


def issparse(X) -> bool:
    return sp.issparse(X)


def as_float(X):
    """The CSR block with float32 values (float64 kept)."""
    return X if X.dtype in (np.float32, np.float64) else X.astype(np.float32)


def dense(X) -> np.ndarray:
    """A block as a dense ndarray (a CSR block expanded, anything else as it is)."""
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def to_csr(X) -> sp.csr_matrix:
    """A dense block (m, p) as CSR with float32 values (float64 kept), int32 indices."""
    X = np.asarray(X)
    m, p = X.shape
    flat = np.flatnonzero(X)
    rows, cols = np.divmod(flat, p)
    dtype = np.float64 if X.dtype == np.float64 else np.float32
    indptr = np.zeros(m + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=m), out=indptr[1:])
    index = np.int32 if max(p, flat.size) < 2**31 else np.int64
    return sp.csr_matrix((X.reshape(-1)[flat].astype(dtype), cols.astype(index),
                          indptr.astype(index)), shape=(m, p))


def row_ids(X) -> np.ndarray:
    """Row of each stored value of a CSR block, shape (nnz,)."""
    return np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))


def scale(X, r=None, c=None):
    """``diag(r) X diag(c)`` of a CSR block (a new CSR block)."""
    if r is None and c is None:
        return X
    out = X.copy()
    f = np.ones(out.nnz, dtype=out.dtype)
    if r is not None:
        f *= np.asarray(r)[row_ids(out)].astype(out.dtype)
    if c is not None:
        f *= np.asarray(c)[out.indices].astype(out.dtype)
    out.data *= f
    return out


def sq_sum(X) -> float:
    """``sum(X**2)`` of a CSR block, float64."""
    d = X.data.astype(np.float64)
    return float(d @ d)


def row_sums(X) -> np.ndarray:
    """Row sums of a CSR block, ndarray of shape (m,), float64."""
    cs = np.concatenate([[0.0], np.cumsum(X.data, dtype=np.float64)])
    return cs[X.indptr[1:]] - cs[X.indptr[:-1]]


def stats(X, start, global_rows) -> dict:
    """:func:`._kernels.stats` of a CSR block (``global_rows(start, local)`` maps rows)."""
    m, p = X.shape
    d = X.data
    finite = np.isfinite(d)
    good = d if finite.all() else np.where(finite, d, 0)
    rid = None
    if not finite.all() or (good < 0).any():
        rid = row_ids(X)
    bad_rows = global_rows(start, np.unique(rid[~finite])) if rid is not None and \
        not finite.all() else np.empty(0, int)
    neg = good < 0
    neg_rows = global_rows(start, np.unique(rid[neg])) if neg.any() else np.empty(0, int)
    Xg = X if good is d else sp.csr_matrix((good, X.indices, X.indptr), shape=X.shape)
    vmin = float(good.min()) if good.size else 0.0
    if X.nnz < m * p:
        vmin = min(vmin, 0.0)
    return {"row_sums": row_sums(Xg),
            "col_sums": np.bincount(X.indices, weights=good, minlength=p).astype(np.float64),
            "sq": sq_sum(Xg), "n_bad": int(d.size - np.count_nonzero(finite)),
            "bad_rows": bad_rows, "n_neg": int(np.count_nonzero(neg)), "neg_rows": neg_rows,
            "min": vmin if m * p else 0.0}


def tile(X, s: int, e: int):
    """The columns S holding a value in rows ``s:e`` of a CSR block, and those rows on
    them as a dense transposed tile: (S (|S|,), tile (|S|, e - s) float32)."""
    lo, hi = X.indptr[s], X.indptr[e]
    cols = X.indices[lo:hi]
    # a mask over the p columns, not np.unique: O(p) without a sort, 3x faster here
    mask = np.zeros(X.shape[1], bool)
    mask[cols] = True
    nz = np.flatnonzero(mask)
    where = np.empty(X.shape[1], np.intp)
    where[nz] = np.arange(nz.size)
    out = np.zeros((nz.size, e - s), np.float32)
    out[where[cols], np.repeat(np.arange(e - s), np.diff(X.indptr[s:e + 1]))] = X.data[lo:hi]
    return nz, out


def vstack_rows(pieces, n: int, p: int) -> sp.csr_matrix:
    """One CSR matrix (n, p) from ``[(global rows (m,), CSR block (m, p))]`` covering the
    n rows in any order (the chunks of a scan are rectangles of positions).

    Each piece's runs of consecutive global rows (a scan row of a chunk) are copied to
    their place (no sort of the 10^7-10^8 values, which a COO conversion makes)."""
    counts = np.zeros(n, np.int64)
    for g, b in pieces:
        counts[g] = np.diff(b.indptr)
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    nnz = int(indptr[-1])
    dtype = np.result_type(*[b.data.dtype for _, b in pieces]) if pieces else np.float32
    data = np.empty(nnz, dtype)
    index = np.int32 if max(p, nnz) < 2**31 else np.int64
    indices = np.empty(nnz, index)
    for g, b in pieces:
        g = np.asarray(g, np.int64)
        starts = np.flatnonzero(np.diff(g, prepend=g[0] - 2) != 1)
        ends = np.append(starts[1:], g.size)
        for i0, i1 in zip(starts, ends):
            lo, hi = b.indptr[i0], b.indptr[i1]
            dst = indptr[g[i0]]
            data[dst:dst + hi - lo] = b.data[lo:hi]
            indices[dst:dst + hi - lo] = b.indices[lo:hi]
    return sp.csr_matrix((data, indices, indptr.astype(index)), shape=(n, p))
