"""Accelerated hierarchical alternating least squares (HALS) for NMF.

Objective (Frobenius norm, optional L1 penalties)::

    minimise_{W >= 0, H >= 0}  0.5 * ||X - W H||_F^2 + l1_W * sum(W) + l1_H * sum(H)

with X of shape (n_patterns, n_pixels), W of shape (n_patterns, k) (weights) and H of
shape (k, n_pixels) (component patterns). The solver stores W transposed (``Wt``, shape
(k, n)) so that every row update reads contiguous memory.

Each outer iteration makes two products with X (``H @ X.T`` and ``Wt @ X``), fused per
row block so X is read once per iteration (see ``w_step``); the
cheap k x k Gram matrices let each factor be swept several times per pass ("accelerated
HALS", Gillis & Glineur 2012, Neural Computation 24(4)): the number of inner sweeps is
bounded by the ratio of the cost of a pass over X to the cost of a sweep, and the inner
loop stops once a sweep changes the factor by less than ``eps`` times the first sweep.
"""
from __future__ import annotations

import numpy as np

from .protocols import DataOperator

_TINY = 1e-12


def _sweep(F: np.ndarray, A: np.ndarray, G: np.ndarray, l1: float, max_inner: int,
           eps: float = 0.1, ortho: float = 0.0) -> float:
    """In-place HALS sweeps over the rows of F.

    Minimises ``0.5 tr(F^T G F) - tr(A^T F) + l1 sum(F)`` over F >= 0 one row at a time,
    where for the weights ``A = H X^T`` and ``G = H H^T``.

    Returns
    -------
    float
        A lower bound on the decrease of the objective: each row update is the exact
        minimiser of a strongly convex quadratic (curvature ``G[j, j]``) over a convex
        set, so it lowers the objective by at least ``0.5 G[j, j] ||row change||^2``.
        Unlike differences of the objective, this has no cancellation error in float32.
    """
    k = F.shape[0]
    first = None
    total = F.sum(axis=0) if ortho else None
    decrease = 0.0
    # One dtype throughout (the solver's case): the same operations in the same order,
    # written into buffers allocated once (bitwise the same result, fewer allocations;
    # tests/test_nmf.py checks it against the expression form).
    same = F.dtype == A.dtype == G.dtype
    if same:
        tmp, step, new, diff = (np.empty(F.shape[1], F.dtype) for _ in range(4))
    for _ in range(max_inner):
        delta = 0.0
        for j in range(k):
            gjj = G[j, j]
            if gjj <= _TINY:
                continue
            if same:
                np.matmul(G[j], F, out=tmp)
                np.subtract(A[j], tmp, out=step)
            else:
                step = A[j] - G[j] @ F
            if l1:
                step -= l1
            if ortho:
                step -= ortho * (total - F[j])
            if same:
                np.divide(step, gjj, out=step)
                np.add(F[j], step, out=new)
                np.maximum(new, 0.0, out=new)
                np.subtract(new, F[j], out=diff)
            else:
                new = F[j] + step / gjj
                np.maximum(new, 0.0, out=new)
                diff = new - F[j]
            d2 = float(diff @ diff)
            delta += d2
            decrease += 0.5 * gjj * d2
            F[j] = new
            if ortho:
                total += diff
        if first is None:
            first = delta
            if first == 0.0:
                break
        elif delta <= eps * eps * first:
            break
    # A row of exact zeros would freeze (its Gram diagonal is 0): keep it alive.
    dead = ~np.any(F > 0, axis=1)
    if np.any(dead):
        F[dead] = _TINY
    return decrease


def _max_inner(m_this: int, m_other: int, k: int, alpha: float = 0.5, cap: int = 30,
               pass_cost: float | None = None) -> int:
    """Gillis & Glineur's bound: 1 + alpha * (cost of a data pass / cost of a sweep).

    ``pass_cost`` is the cost of one product with the data per component (``n p`` for
    the full matrix, ``(n + p) l`` for a rank-l sketch).
    """
    cost = m_this * m_other if pass_cost is None else pass_cost
    rho = 1.0 + (cost + m_other * k) / (m_this * (k + 1.0))
    return int(max(1, min(cap, np.floor(1.0 + alpha * rho))))


def hals(op: DataOperator, Wt: np.ndarray, H: np.ndarray, *, l1_weights: float = 0.0,
         l1_components: float = 0.0, max_iter: int = 500, tol: float = 1e-5,
         min_iter: int = 5, ortho: float = 0.0, inner="auto", callback=None):
    """Run accelerated HALS from (Wt, H) until the objective settles.

    Parameters
    ----------
    op : DataOperator
        The data X of shape (n, p) (see :mod:`.protocols`).
    Wt : ndarray of shape (k, n)
    H : ndarray of shape (k, p)
        Starting factors, modified in place.
    max_iter : int
        Cap on outer iterations (each is two passes over X).
    tol : float
        Stop when the objective decreased by less than ``tol`` times its value in one
        iteration (decrease measured by the row updates, see ``_sweep``).
    inner : "auto" or int
        Sweeps of each factor per pass over X: "auto" uses Gillis & Glineur's bound
        (accelerated HALS), an int fixes it (1 = classical HALS, Cichocki & Phan 2009).
    ortho : float
        Orthogonality penalty on the weights (see ``non_negative_factorization``). When
        set, components are kept at unit sum each iteration (so the penalty has a fixed
        scale), the fit stops when their relative change falls below ``tol``, and the
        weights get a final unpenalised refit.
    callback : callable, optional
        Called as ``callback(iteration, relative_error)`` after each iteration.

    Returns
    -------
    Wt, H : the fitted factors.
    n_iter : int
        Outer iterations made.
    history : list of float
        Relative Frobenius error ``||X - WH||_F / ||X||_F`` after each iteration.
    converged : bool
    """
    k, n = Wt.shape
    p = H.shape[1]
    sq_x = op.sq_norm()
    if inner == "auto":
        cost = op.pass_cost
        inner_w, inner_h = _max_inner(n, p, k, pass_cost=cost), _max_inner(p, n, k, pass_cost=cost)
    else:
        inner_w = inner_h = max(1, int(inner))
    HHt = H @ H.T
    # Part of the full-data objective a fit to a sketch cannot change (the data outside
    # the sketch, 0.5 ||X - QQ^T X||^2): the stopping test is relative to the full
    # objective, so a sketched fit stops where the same fit of the full data would.
    floor = float(op.objective_floor)
    history: list[float] = []
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        mu = ortho * float(np.trace(HHt)) / k if ortho else 0.0
        # H @ X.T, the weight sweeps and Wt @ X, fused per block of X (one read of X)
        Wt, B, WtW, dec = w_step(op, Wt, H, HHt, l1=l1_weights, inner=inner_w, mu=mu)
        H_prev = H.copy() if ortho else None
        dec += _sweep(H, B, WtW, l1_components, inner_h)
        if ortho:
            s = H.sum(axis=1, dtype=np.float64)
            s[s <= 0] = 1.0
            H /= s[:, None].astype(H.dtype)
            Wt *= s[:, None].astype(Wt.dtype)
            B *= s[:, None].astype(B.dtype)      # B = Wt @ X follows the rescaled Wt
            WtW = Wt @ Wt.T
        HHt = H @ H.T
        # ||X - WH||^2 = ||X||^2 - 2<B, H> + <WtW, HHt>, reductions in float64.
        cross = float(np.einsum("ij,ij->", B, H, dtype=np.float64))
        quad = float(np.einsum("ij,ij->", WtW, HHt, dtype=np.float64))
        sq_res = max(sq_x - 2.0 * cross + quad, 0.0)
        history.append(float(np.sqrt(sq_res / sq_x)) if sq_x > 0 else 0.0)
        if callback is not None:
            callback(it, history[-1])
        f = 0.5 * sq_res
        if l1_weights:
            f += l1_weights * float(Wt.sum(dtype=np.float64))
        if l1_components:
            f += l1_components * float(H.sum(dtype=np.float64))
        if ortho:
            # The penalised objective is rescaled every iteration (components back to
            # unit sum), so it need not decrease monotonically: stop when the unit-sum
            # components have settled instead.
            change = float(np.linalg.norm(H - H_prev) / max(np.linalg.norm(H_prev), _TINY))
            if it >= min_iter and change <= tol:
                converged = True
                break
        elif it >= min_iter and dec <= tol * max(f + floor, _TINY):
            converged = True
            break
    if ortho:
        Wt = w_step(op, Wt, H, HHt, l1=l1_weights, inner=50, eps=0.01, need_b=False)[0]
    return Wt, H, it, history, converged


def w_step(op, Wt, H, HHt, *, l1=0.0, inner=1, mu=0.0, eps=0.1, need_b=True):
    """Weight update and ``Wt @ X``: the operator's fused step (one read of X, see
    :class:`.protocols.FusedWeightStep`), or two products.

    Returns (Wt, B, WtW, dec) with B None when ``need_b`` is False.
    """
    # hasattr: what isinstance with the runtime-checkable protocol checks, without its
    # cost (~50 us a call, once per iteration of each of the sweep's fits)
    if hasattr(op, "hals_w_step"):
        return op.hals_w_step(Wt, H, HHt, l1=l1, inner=inner, mu=mu, eps=eps, need_b=need_b)
    Wt = np.array(Wt, copy=True)
    dec = _sweep(Wt, op.x_ht(H), HHt, l1, inner, eps=eps, ortho=mu)
    return Wt, (op.wt_x(Wt) if need_b else None), Wt @ Wt.T, dec
