"""Optional torch engine for accelerated HALS (GPU, or CPU for testing).

:func:`hals_torch` is :func:`nmf4d.nmf._hals.hals` with every iteration on torch tensors
on one device: X is copied there once, and the two passes over X, the row sweeps and the
objective bookkeeping never leave it. The maths follows ``_hals._sweep`` and
``_hals.hals`` line for line (same update order, same stopping rules), so both engines
agree to float32 rounding. Host-device synchronisations are few: the Gram diagonal once
per sweep call, the inner-loop change once per sweep (none when one sweep is made), and
the objective terms once per outer iteration.

torch is imported inside the functions: the package imports without it.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..execution.device import resolve_device
from ..execution.sources import BLOCK_ELEMENTS
from ._hals import _TINY, _max_inner


def _sweep_torch(F, A, G, l1: float, max_inner: int, eps: float = 0.1,
                 ortho: float = 0.0, gdiag: list[float] | None = None):
    """In-place HALS sweeps over the rows of F (torch tensors), as ``_hals._sweep``.

    Parameters
    ----------
    F, A : torch.Tensor of shape (k, m)
    G : torch.Tensor of shape (k, k)
    gdiag : list of float, optional
        ``G``'s diagonal already on the host (saves a synchronisation).

    Returns
    -------
    torch.Tensor
        0-dim float64 tensor on F's device: the lower bound on the objective decrease
        (see ``_hals._sweep``), left unsynchronised.
    """
    import torch

    k = F.shape[0]
    if gdiag is None:
        gdiag = G.diagonal().tolist()                    # sync: one per call
    gd = G.diagonal()
    g64 = gd.to(torch.float64)
    d2 = torch.zeros(k, dtype=F.dtype, device=F.device)
    decrease = torch.zeros((), dtype=torch.float64, device=F.device)
    first = None
    total = F.sum(dim=0) if ortho else None
    for sweep in range(max_inner):
        d2.zero_()
        for j in range(k):
            if gdiag[j] <= _TINY:
                continue
            step = A[j] - G[j] @ F
            if l1:
                step -= l1
            if ortho:
                step -= ortho * (total - F[j])
            new = F[j] + step / gd[j]
            new.clamp_(min=0.0)
            diff = new - F[j]
            d2[j] = diff @ diff
            F[j] = new
            if ortho:
                total += diff
        d2_64 = d2.to(torch.float64)
        decrease += 0.5 * (g64 * d2_64).sum()
        if sweep == max_inner - 1:
            break                                        # no further sweep to decide
        delta = float(d2_64.sum())                       # sync: one per sweep
        if first is None:
            first = delta
            if first == 0.0:
                break
        elif delta <= eps * eps * first:
            break
    # A row of exact zeros would freeze (its Gram diagonal is 0): keep it alive.
    dead = ~torch.any(F > 0, dim=1)
    F.masked_fill_(dead[:, None], _TINY)
    return decrease


def _dot64(a, b):
    """``sum(a * b)`` over all entries, in float64 (0-dim tensor)."""
    import torch

    return torch.vdot(a.reshape(-1).to(torch.float64), b.reshape(-1).to(torch.float64))


def hals_torch(X, Wt: np.ndarray, H: np.ndarray, *, l1_weights: float = 0.0,
               l1_components: float = 0.0, max_iter: int = 500, tol: float = 1e-5,
               min_iter: int = 5, ortho: float = 0.0, inner="auto",
               device: str = "cuda"):
    """Accelerated HALS on a torch device; same contract as ``_hals.hals``.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        Non-negative data; copied once to ``device`` as float32 (float64 data is
        rounded to float32 there, unlike the numpy solver).
    Wt : ndarray of shape (k, n)
    H : ndarray of shape (k, p)
        Starting factors, copied to the device as float32 (the arrays passed in are
        not modified, unlike the numpy solver).
    l1_weights, l1_components, max_iter, tol, min_iter, ortho, inner
        As in ``_hals.hals``.
    device : str
        "cuda", "cuda:N", "cpu" or "auto" (see :func:`resolve_device`). On CUDA, keep
        ``torch.backends.cuda.matmul.allow_tf32`` off (the default) for float32
        accuracy.

    Returns
    -------
    Wt, H : ndarray of float32, shapes (k, n) and (k, p)
    n_iter : int
    history : list of float
        Relative Frobenius error after each iteration.
    converged : bool
    """
    import torch

    dev = torch.device(resolve_device(device))
    if not torch.is_tensor(X) and np.asarray(X).dtype != np.float32:
        # integer counts (held in their own dtype): converted a slab at a time on the way
        # to the device, so the host never holds a float32 copy of the whole matrix
        X = np.asarray(X)
        Xt = torch.empty(X.shape, dtype=torch.float32, device=dev)
        step = max(1, 2**24 // max(1, X.shape[1]))
        for s in range(0, X.shape[0], step):
            Xt[s:s + step] = torch.from_numpy(np.asarray(X[s:s + step], np.float32)).to(dev)
    else:
        if not torch.is_tensor(X):
            X = np.ascontiguousarray(X, dtype=np.float32)
        with warnings.catch_warnings():   # read-only arrays (memmaps): X is never written
            warnings.simplefilter("ignore", UserWarning)
            Xt = torch.as_tensor(X, dtype=torch.float32, device=dev).contiguous()
    Wt = torch.tensor(np.asarray(Wt), dtype=torch.float32, device=dev)
    H = torch.tensor(np.asarray(H), dtype=torch.float32, device=dev)
    k, n = Wt.shape
    p = H.shape[1]
    sq_x = float(sum(_dot64(blk, blk)                   # row blocks: bounded memory
                     for blk in torch.split(Xt, max(1, BLOCK_ELEMENTS // max(p, 1)))))
    if inner == "auto":
        inner_w, inner_h = _max_inner(n, p, k), _max_inner(p, n, k)
    else:
        inner_w = inner_h = max(1, int(inner))
    zero = torch.zeros((), dtype=torch.float64, device=dev)
    HHt = H @ H.T
    history: list[float] = []
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        A = H @ Xt.T                                     # pass 1 over X
        hdiag = HHt.diagonal().tolist()                  # sync
        mu = ortho * float(np.asarray(hdiag, dtype=np.float32).sum()) / k if ortho else 0.0
        # weights: exactly inner_w sweeps, as the block operator makes (no early stop)
        dec = _sweep_torch(Wt, A, HHt, l1_weights, inner_w, eps=0.0, ortho=mu, gdiag=hdiag)
        WtW = Wt @ Wt.T
        B = Wt @ Xt                                      # pass 2 over X
        H_prev = H.clone() if ortho else None
        dec = dec + _sweep_torch(H, B, WtW, l1_components, inner_h)
        if ortho:
            s = H.sum(dim=1, dtype=torch.float64)
            s = torch.where(s <= 0, torch.ones_like(s), s)[:, None].to(H.dtype)
            H /= s
            Wt *= s
            B *= s                               # B = Wt @ X follows the rescaled Wt
            WtW = Wt @ Wt.T
        HHt = H @ H.T
        # ||X - WH||^2 = ||X||^2 - 2<B, H> + <WtW, HHt>, reductions in float64.
        change = (torch.linalg.vector_norm((H - H_prev).to(torch.float64))
                  / torch.linalg.vector_norm(H_prev.to(torch.float64)).clamp(min=_TINY)
                  if ortho else zero)
        stats = torch.stack([_dot64(B, H), _dot64(WtW, HHt),
                             Wt.sum(dtype=torch.float64) if l1_weights else zero,
                             H.sum(dtype=torch.float64) if l1_components else zero,
                             change, dec])
        cross, quad, sum_w, sum_h, change, dec = stats.tolist()   # sync: one per iteration
        sq_res = max(sq_x - 2.0 * cross + quad, 0.0)
        history.append(float(np.sqrt(sq_res / sq_x)) if sq_x > 0 else 0.0)
        f = 0.5 * sq_res + l1_weights * sum_w + l1_components * sum_h
        if ortho:
            # Components are rescaled to unit sum every iteration: stop when they settle.
            if it >= min_iter and change <= tol:
                converged = True
                break
        elif it >= min_iter and dec <= tol * max(f, _TINY):
            converged = True
            break
    if ortho:
        _sweep_torch(Wt, H @ Xt.T, HHt, l1_weights, 50, eps=0.0)
    return (Wt.cpu().numpy().astype(np.float32, copy=False),
            H.cpu().numpy().astype(np.float32, copy=False), it, history, converged)
