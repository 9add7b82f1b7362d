"""Per-block computations over row blocks of the data matrix.

Every function here takes one row block ``X`` (ndarray of shape (m, p): m patterns of
p pixels) and returns a small result; the block operator (:mod:`._blocked`) sums or
concatenates the results over blocks. They are pure functions of their arguments, so the
same code runs on threads in memory, as dask tasks, or on dask.distributed workers (the
LiberTEM separation of per-chunk computation from its execution).

A block may hold integer counts (uint8/16/32, as a detector writes them: the data is kept
in memory in its own dtype) or floats; each kernel converts it to float32 (float64 kept)
as it uses it, a cache-sized piece at a time where it can. A block may also be a CSR
matrix (sparse counts, :mod:`._sparse`): the products are written so that they work on
both (``A @ X``, ``X @ A``).

``r`` (ndarray of shape (m,)) and ``c`` (ndarray of shape (p,)) are optional row and
column factors of the block (the Poisson weighting ``diag(a) X diag(b)``, or a row
normalisation), so weighted data never has to be stored. The products apply them to the
small operand and to the result (``(diag(r) X diag(c)) Om = r * (X (c * Om))``), never to
the block: weighting on the fly then costs no more than a weighted copy would.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _sparse as S
from ._hals import _sweep

#: Bytes of a cache block of rows: a (rows, p) piece of a few MB stays in cache while
#: every fit is subtracted from it (:func:`losses`, :func:`_sq_sum`).
_CACHE_ROWS_BYTES = 2**21
#: Rows per tile of the loss kernel on sparse counts (see :func:`losses`). Measured on
#: 128x128 patterns with 2.6 % non-zero pixels: the columns holding a count in a tile of
#: 8, 16, 32 rows were 7.6 %, 11 %, 17 % of all; 16 rows was fastest (the gathers of the
#: components' columns grow with fewer rows, the products with more).
_TILE_ROWS = 16
#: Rows whose tiles every fit runs over in turn (their dense tiles fit in L2 cache).
_GROUP_ROWS = 256
#: A tile whose support holds more than this fraction of the columns is computed densely.
_DENSE_SUPPORT = 0.5
#: Below this ratio of residual to model energy (a relative error under ~10 %), a squared
#: residual from the sparse identity would lose float32 digits to cancellation (its error
#: is about 1.2e-7 / ratio relative): that fit is recomputed densely.
_CANCELLATION = 1e-2


def as_float(X) -> np.ndarray:
    """The block as float32 (float64 kept); no copy when it already is (CSR stays CSR)."""
    if S.issparse(X):
        return S.as_float(X)
    X = np.asarray(X)
    return X if X.dtype in (np.float32, np.float64) else X.astype(np.float32)


def prepare(X, r=None, c=None) -> np.ndarray:
    """The block as float32 (float64 kept), times row factors ``r`` and column factors ``c``
    (an element-wise weighted copy; the products avoid it, see the module docstring)."""
    X = as_float(X)
    if S.issparse(X):
        return S.scale(X, r, c)
    if r is not None and c is not None:
        out = np.multiply(X, r[:, None].astype(X.dtype, copy=False))   # one new array
        out *= c[None, :].astype(X.dtype, copy=False)
        return out
    if r is not None:
        return X * r[:, None].astype(X.dtype, copy=False)
    if c is not None:
        return X * c[None, :].astype(X.dtype, copy=False)
    return X


def _cast(v, dtype):
    return None if v is None else np.asarray(v).astype(dtype, copy=False)


def _global_rows(start, local) -> np.ndarray:
    local = np.asarray(local, dtype=np.int64)
    return local + int(start) if np.ndim(start) == 0 else np.asarray(start)[local]


def stats(X, start) -> dict:
    """One pass of summary statistics of a raw block.

    ``start`` is the first row of a contiguous block, or ndarray (m,) the global row of
    each of its rows. Returns row sums (m,), column sums (p,), squared norm, and the counts
    and global rows of non-finite and negative values (for
    :func:`nmf4d.preprocess.check_values`-style messages). Integer counts are summed a
    cache-sized piece at a time (no float copy of the block; they cannot be non-finite,
    and unsigned ones cannot be negative).
    """
    if S.issparse(X):
        return S.stats(X, start, _global_rows)
    X = np.asarray(X)
    if np.issubdtype(X.dtype, np.integer):
        return _int_stats(X, start)
    X = as_float(X)
    finite = np.isfinite(X)
    all_finite = bool(finite.all())
    Xf = X if all_finite else np.where(finite, X, 0)
    neg = Xf < 0
    bad_rows = _global_rows(start, np.flatnonzero(~finite.all(axis=1))) if not all_finite \
        else np.empty(0, int)
    neg_rows = _global_rows(start, np.flatnonzero(neg.any(axis=1)))
    return {"row_sums": Xf.sum(axis=1, dtype=np.float64),
            "col_sums": Xf.sum(axis=0, dtype=np.float64), "sq": _sq_sum(Xf),
            "n_bad": int(X.size - np.count_nonzero(finite)), "bad_rows": bad_rows,
            "n_neg": int(np.count_nonzero(neg)), "neg_rows": neg_rows,
            "min": float(Xf.min()) if Xf.size else 0.0}


def to_csr(X):
    """A dense block as CSR with float32 values (see :mod:`._sparse`)."""
    return S.to_csr(X)


def stats_and_csr(X, start):
    """A dense block as CSR (:func:`._sparse.to_csr`) and its :func:`stats` (made on the
    CSR values only): what the loading stage keeps of each chunk of sparse counts."""
    C = S.to_csr(X)
    return stats(C, start), C


def _int_stats(X, start: int) -> dict:
    m, p = X.shape
    rows = np.empty(m, np.float64)
    cols = np.zeros(p, np.float64)
    sq = 0.0
    step = max(1, _CACHE_ROWS_BYTES // max(1, 4 * p))
    buf = np.empty((min(step, m), p), np.float32)
    for s in range(0, m, step):
        e = min(m, s + step)
        b = buf[:e - s]
        np.copyto(b, X[s:e], casting="unsafe")
        rows[s:e] = b.sum(axis=1, dtype=np.float64)
        cols += b.sum(axis=0, dtype=np.float64)
        flat = b.reshape(-1)
        sq += float(np.dot(flat, flat))
    vmin = float(X.min()) if X.size else 0.0
    neg_rows = _global_rows(start, np.flatnonzero((X < 0).any(axis=1))) if vmin < 0 \
        else np.empty(0, int)
    return {"row_sums": rows, "col_sums": cols, "sq": sq, "n_bad": 0,
            "bad_rows": np.empty(0, int),
            "n_neg": int(np.count_nonzero(X < 0)) if vmin < 0 else 0, "neg_rows": neg_rows,
            "min": vmin}


def _sq_sum(X) -> float:
    """``sum(X**2)``: float32 dot products over cache-sized row chunks, summed in float64
    (no float64 copy of the block)."""
    if S.issparse(X):
        return S.sq_sum(X)
    step = max(1, _CACHE_ROWS_BYTES // max(1, X.shape[1] * X.itemsize))
    total = 0.0
    for s in range(0, X.shape[0], step):
        flat = np.ascontiguousarray(X[s:s + step], dtype=np.result_type(X.dtype, np.float32)
                                    ).reshape(-1)
        total += float(np.dot(flat, flat))
    return total


def sq_norm(X, r=None, c=None) -> float:
    return _sq_sum(prepare(X, r, c))


def row_sums(X, r=None, c=None) -> np.ndarray:
    """Row sums of the weighted block, ``r * (X @ c)``, ndarray of shape (m,), float64."""
    X = as_float(X)
    if c is None:
        out = S.row_sums(X) if S.issparse(X) else X.sum(axis=1, dtype=np.float64)
    else:
        out = (X @ _cast(c, X.dtype)).astype(np.float64)
    return out if r is None else out * r


def x_ht(X, H, r=None, c=None) -> np.ndarray:
    """``H @ Xw.T`` for the block, ``Xw = diag(r) X diag(c)``: ndarray of shape (k, m)."""
    X = as_float(X)
    Hc = H if c is None else H * _cast(c, H.dtype)[None, :]
    out = np.ascontiguousarray(Hc @ X.T)
    if r is not None:
        out *= _cast(r, out.dtype)[None, :]
    return out


def wt_x(X, Wt, r=None, c=None) -> np.ndarray:
    """``Wt @ Xw`` for the block (Wt of shape (k, m)), ndarray of shape (k, p)."""
    X = as_float(X)
    Wr = Wt if r is None else Wt * _cast(r, Wt.dtype)[None, :]
    out = np.ascontiguousarray(Wr @ X)
    if c is not None:
        out *= _cast(c, out.dtype)[None, :]
    return out


def right_product(X, Omega, r=None, c=None) -> np.ndarray:
    """``Xw @ Omega`` (range finder), ndarray of shape (m, l)."""
    X = as_float(X)
    Om = Omega if c is None else Omega * _cast(c, Omega.dtype)[:, None]
    out = X @ Om
    if r is not None:
        out *= _cast(r, out.dtype)[:, None]
    return out


def right_product_sq(X, Omega, r=None, c=None):
    """``Xw @ Omega`` and ``||Xw||_F^2`` (float64) from one read of the block."""
    Xs = prepare(X, r, c)
    return Xs @ Omega, _sq_sum(Xs)


def hals_w_step(X, Wt, H, HHt, l1: float, inner: int, mu: float, eps: float,
                need_b: bool, r=None, c=None):
    """One fused HALS step on a block: update its weights, then ``Wt @ Xw`` with them.

    The weights of different patterns are independent given H, so a block's weights are
    updated from its own ``H @ Xw.T`` and the global Gram matrix ``HHt``; the same block
    then gives its share of ``Wt @ Xw`` for the component update. One read of the block
    (converted to float32 once) serves both products.

    Returns
    -------
    Wt : ndarray of shape (k, m), updated
    B : ndarray of shape (k, p) or None
    WtW : ndarray of shape (k, k)
    dec : float
        Lower bound on the objective decrease (see ``_hals._sweep``).
    """
    Xf = as_float(X)
    Wt = np.array(Wt, copy=True)
    A = x_ht(Xf, H, r, c)
    dec = _sweep(Wt, A, HHt, l1, inner, eps=eps, ortho=mu)
    B = wt_x(Xf, Wt, r, c) if need_b else None
    return Wt, B, Wt @ Wt.T, dec


# -- losses of many fits -------------------------------------------------------------
class ComponentStack(NamedTuple):
    """The component side of many fits, prepared once per pass over the data.

    Attributes
    ----------
    H : ndarray of shape (K, p), float32
        The fits' components stacked (``K = sum of their k``).
    HT : list of ndarray of shape (p, k_f), float32
        Each fit's components transposed, contiguous: the columns a tile needs are whole
        rows, gathered from an array small enough to stay in cache.
    offsets : ndarray of shape (n_fits + 1,), int
        Fit f owns rows ``offsets[f]:offsets[f + 1]`` of H.
    hsum : ndarray of shape (K,), float64
        Row sums of H.
    hht : list of ndarray of shape (k_f, k_f), float64
        ``H_f @ H_f.T`` of each fit.
    nonneg : bool
        Every component entry is >= 0 (the sparse identity needs it).
    """

    H: np.ndarray
    HT: list
    offsets: np.ndarray
    hsum: np.ndarray
    hht: list
    nonneg: bool


def stack_components(Hs) -> ComponentStack:
    """:class:`ComponentStack` of the components (k_f, p) of every fit."""
    H = np.ascontiguousarray(np.concatenate([np.asarray(h, np.float32) for h in Hs]))
    offsets = np.cumsum([0] + [np.asarray(h).shape[0] for h in Hs])
    pairs = list(zip(offsets[:-1], offsets[1:]))
    hht = [H[a:b].astype(np.float64) @ H[a:b].T.astype(np.float64) for a, b in pairs]
    return ComponentStack(H, [np.ascontiguousarray(H[a:b].T) for a, b in pairs], offsets,
                          H.sum(axis=1, dtype=np.float64), hht,
                          bool(H.size == 0 or H.min() >= 0))


def losses(X, Wts, comps: ComponentStack, r=None, c=None) -> np.ndarray:
    """``sum |R|`` and ``sum R^2`` of ``R = Xw - Wt_f.T @ H_f`` for every fit f, from one
    read of the block: ndarray of shape (n_fits, 2), float64.

    Parameters
    ----------
    X : ndarray of shape (m, p)
    Wts : list of ndarray of shape (k_f, m)
        Each fit's weights of the block's rows.
    comps : ComponentStack
        The fits' components (:func:`stack_components`).

    Notes
    -----
    Detector counts are sparse (2.6 % non-zero pixels on the 10^5-pattern benchmark),
    and where a tile of rows holds no count the residual is the model itself, which is
    non-negative. So, per tile of :data:`_TILE_ROWS` rows, the product and the
    element-wise work run only on the columns S holding a count (a blocked sampled
    product, 4-8x faster than the dense kernel there), and the rest follows from sums:

    - ``sum |R| = sum_S |R_S| + (model mass - sum X + sum R_S)``, the model mass of the
      tile being ``w_sum . h_sum``;
    - ``sum R^2 = ||W_t H||^2 - ||X_t||^2 + 2 <X_S, R_S>``, with
      ``||W_t H||^2 = <W_t^T W_t, H H^T>`` from k x k Gram matrices in float64.

    The second identity cancels when a fit is nearly exact, so a fit whose residual is
    below :data:`_CANCELLATION` of its model energy is recomputed densely. Dense blocks
    and tiles (or factors with negative entries) take the plain route. Sums are float32
    within a tile, float64 across tiles (BLAS ``sasum``/``sdot``: ~1e-6 relative).
    """
    from scipy.linalg import blas

    Xf = prepare(X, r, c) if (r is not None or c is not None) else X
    if not S.issparse(Xf):
        Xf = np.asarray(Xf)
    m, p = Xf.shape
    off = comps.offsets
    F = len(off) - 1
    out = np.zeros((F, 2), np.float64)
    if F == 0 or m == 0:
        return out
    Wts = [np.asarray(w, np.float32) for w in Wts]
    # the identity needs a non-negative model; dense data gains nothing from it
    nnz = Xf.nnz if S.issparse(Xf) else np.count_nonzero(Xf)
    sparse_ok = comps.nonneg and all(w.size == 0 or w.min() >= 0 for w in Wts) and \
        nnz <= _DENSE_SUPPORT * m * p
    if not sparse_ok:
        return _dense_losses(as_float(S.dense(Xf)), Wts, comps)
    abs_s, sum_r, xr = np.zeros(F), np.zeros(F), np.zeros(F)
    xsq = xsum = 0.0
    sparse_tiles = []
    buf = np.empty(p * _TILE_ROWS, np.float32)
    ones = np.ones(buf.size, np.float32)
    # Groups of tiles small enough to stay in cache while every fit runs over them (a
    # fit-by-fit loop over all the tiles of a 2500-row block was memory bound: 1.4x slower)
    for g0 in range(0, m, _GROUP_ROWS):
        tiles = []
        for s in range(g0, min(m, g0 + _GROUP_ROWS), _TILE_ROWS):
            e = min(m, s + _TILE_ROWS)
            if S.issparse(Xf):
                nz, XsT = S.tile(Xf, s, e)                         # (|S|,), (|S|, rows)
            else:
                nz = np.flatnonzero(Xf[s:e].any(axis=0))
                XsT = None
            if nz.size > _DENSE_SUPPORT * p:
                out += _dense_losses(as_float(S.dense(Xf[s:e])), [w[:, s:e] for w in Wts],
                                     comps)
                continue
            if XsT is None:
                XsT = np.ascontiguousarray(Xf[s:e, nz].T, dtype=np.float32)
            flat = XsT.reshape(-1)
            xsq += float(np.dot(flat, flat))
            xsum += float(flat.sum(dtype=np.float64))
            tiles.append((s, e, nz, XsT, flat))
        sparse_tiles += [(s, e) for s, e, *_ in tiles]
        for f in range(F):
            HT, W = comps.HT[f], Wts[f]
            for s, e, nz, XsT, flat in tiles:
                if flat.size == 0:          # an empty tile: the identities cover it
                    continue
                R = buf[:flat.size].reshape(XsT.shape)
                # np.take: 4x faster than fancy indexing for rows this narrow (k floats)
                np.matmul(np.take(HT, nz, axis=0), W[:, s:e], out=R)
                np.subtract(XsT, R, out=R)
                Rf = buf[:flat.size]
                abs_s[f] += blas.sasum(Rf)
                sum_r[f] += blas.sdot(Rf, ones[:flat.size])
                xr[f] += blas.sdot(flat, Rf)
    if not sparse_tiles:
        return out
    rows = np.concatenate([np.arange(s, e) for s, e in sparse_tiles])
    for f in range(F):
        W = Wts[f]
        Wr = W if rows.size == m else W[:, rows]
        mass = float(Wr.sum(axis=1, dtype=np.float64) @ comps.hsum[off[f]:off[f + 1]])
        model = float(np.einsum("ij,ij->", (Wr @ Wr.T).astype(np.float64), comps.hht[f]))
        sq = model - xsq + 2.0 * xr[f]
        if sq < _CANCELLATION * max(model, xsq):
            # too much cancellation: this fit on the sparse tiles without the identities
            one = stack_components([comps.H[off[f]:off[f + 1]]])
            out[f] += sum(_dense_losses(as_float(S.dense(Xf[s:e])), [W[:, s:e]], one)[0]
                          for s, e in sparse_tiles)
        else:
            out[f] += (abs_s[f] + max(mass - xsum + sum_r[f], 0.0), max(sq, 0.0))
    return out


def _dense_losses(Xt, Wts, comps: ComponentStack) -> np.ndarray:
    """:func:`losses` of a float tile without the sparse identity, ndarray (n_fits, 2)."""
    m, p = Xt.shape
    step = max(1, _CACHE_ROWS_BYTES // max(1, p * Xt.itemsize))
    off = comps.offsets
    out = np.zeros((len(off) - 1, 2), dtype=np.float64)
    Ws = [np.ascontiguousarray(w.T, dtype=Xt.dtype) for w in Wts]
    Hs = [comps.H[a:b].astype(Xt.dtype, copy=False) for a, b in zip(off[:-1], off[1:])]
    R = np.empty((min(step, m), p), dtype=Xt.dtype)
    for s in range(0, m, step):
        e = min(m, s + step)
        Xb = Xt[s:e]
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


def residuals(X, fits, r=None, c=None) -> np.ndarray:
    """``sum |R|`` and ``sum R^2`` of ``R = Xw - Wt.T @ H`` for each (Wt block, H) in
    ``fits`` (see :func:`losses`): ndarray of shape (len(fits), 2)."""
    return losses(X, [w for w, _ in fits], stack_components([h for _, h in fits]), r, c)


def sq_residual(X, Wt, H, r=None, c=None) -> float:
    """``||Xw - Wt.T @ H||_F^2`` (see :func:`losses`)."""
    return float(residuals(X, [(Wt, H)], r, c)[0, 1])


def take_rows(X, local_idx, r=None, c=None) -> np.ndarray:
    """Rows ``local_idx`` of the block, ndarray of shape (len(local_idx), p)."""
    rows = prepare(X[np.asarray(local_idx)], None if r is None else r[local_idx], c)
    return np.array(S.dense(rows))


def label_sums(X, labels, k: int, r=None, c=None) -> np.ndarray:
    """Sum of the rows with each label 0..k-1, ndarray of shape (k, p), float64.

    A one-hot (k, m) matrix times the block (one float32 product; exact for counts while
    a label's sum in a block stays below 2^24), row factors folded into the one-hot.
    """
    labels = np.asarray(labels)
    Xf = as_float(X)
    onehot = (labels[None, :] == np.arange(k)[:, None]).astype(Xf.dtype)
    if r is not None:
        onehot *= _cast(r, Xf.dtype)[None, :]
    out = np.asarray(onehot @ Xf, dtype=np.float64)
    return out if c is None else out * c[None, :]


def apply_rows(X, start: int, func, r=None, c=None):
    """``func(block, start)`` on the prepared block (rows ``start`` onwards; a CSR block
    stays CSR): any per-block computation outside the NMF maths (e.g. the report's
    explorer patterns, :func:`nmf4d.explorer_data.explorer_block`, which takes both)."""
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


def maps_block(X, start: int, Wt, labels, local_rows, comps: ComponentStack, k: int,
               func=None, r=None, c=None) -> dict:
    """Everything the maps stage reads from a block, from one read of it.

    Parameters
    ----------
    X : ndarray of shape (m, p)
    start : int
        Global index of the block's first row.
    Wt : ndarray of shape (k, m)
        The final fit's weights of the block's rows (components in ``comps``).
    labels : ndarray of shape (m,), int
    local_rows : ndarray of int
        Rows of the block to return (the clusters' representative patterns).
    comps : ComponentStack
        The final fit's components (:func:`stack_components` of one fit).
    k : int
        Number of labels.
    func : callable, optional
        ``func(block, start)`` (the explorer's patterns).

    Returns
    -------
    dict with ``loss`` (2,) (``sum |R|``, ``sum R^2``), ``label_sums`` (k, p) float64,
    ``rows`` (len(local_rows), p) and ``func`` (its result, or None).
    """
    Xf = as_float(X)
    return {"loss": losses(Xf, [Wt], comps, r, c)[0],
            "label_sums": label_sums(Xf, labels, k, r, c),
            "rows": take_rows(Xf, local_rows, r, c),
            "func": None if func is None else apply_rows(Xf, start, func, r, c)}
