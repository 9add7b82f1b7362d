"""The NMF estimator and its function API (one code path)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..options import INITS
from ._blocked import InMemoryOperator
from ._hals import hals
from ._init import nndsvd, spa_components
from .protocols import DataOperator, IterationCallback


@dataclass
class NMFResult:
    """Outcome of one factorisation ``X ~ weights.T @ components``.

    Attributes
    ----------
    weights : ndarray of shape (k, n_patterns)
        Contribution of each component to each pattern (component axis first, as
        everywhere in nmf4d). With ``normalise=True`` each component sums to 1, so a
        weight is the intensity (in the units of X) that the component contributes to
        that pattern.
    components : ndarray of shape (k, n_pixels)
        Component patterns (rows), each summing to 1 when normalised.
    n_iter : int
    converged : bool
    history : list of float
        Relative Frobenius error after each iteration.
    """

    weights: np.ndarray
    components: np.ndarray
    n_iter: int
    converged: bool
    history: list = field(default_factory=list)

    @property
    def relative_error(self) -> float:
        return self.history[-1] if self.history else float("nan")


def as_operator(X) -> DataOperator:
    """``X`` itself if it is a data operator, else an in-memory operator over the matrix
    (ndarray of shape (n_patterns, n_pixels); integers become float32)."""
    if isinstance(X, DataOperator):
        return X
    X = np.asarray(X)
    if X.ndim != 2:
        raise InputError(f"X must be 2D (n_patterns, n_pixels), got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float32)
    return InMemoryOperator(X)


def check_k(k, n_max: int, *, name: str = "k") -> int:
    """Validate a number of components against the number of patterns/pixels."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InputError(f"{name} must be an integer, got {k!r}")
    if k < 1 or k > n_max:
        raise InputError(f"{name}={k} is out of range: allowed 1..{n_max} "
                         f"(at most the number of patterns and of pixels)")
    return int(k)


def initialise(op: DataOperator, k: int, *, init: str = "spa", seed: int = 0, svd=None, coords=None,
               scan_shape=None):
    """Starting factors (Wt of shape (k, n), H of shape (k, p)) for HALS.

    ``svd`` (U, S, Vt of X) and ``coords`` (normalised-pattern coordinates for "spa")
    may be precomputed once and shared by every k of a sweep.
    """
    n, p = op.shape
    dtype = np.float32 if op.dtype == np.float32 else np.float64
    rng = np.random.default_rng(seed)
    if init == "spa":
        if coords is None or coords.shape[1] < k:
            coords = op.normalised_coords(k, rng=rng, scan_shape=scan_shape)
        H = spa_components(coords, k, op.mean_normalised_rows).astype(dtype)
        # Weights start as the least-squares scale of each component alone; the first
        # HALS sweep then solves for them jointly.
        A = op.x_ht(H)
        Wt = np.maximum(A, 0) / np.maximum((H * H).sum(axis=1), 1e-30)[:, None] / k
        return Wt.astype(dtype), H
    if init == "random":
        scale = np.sqrt(max(op.mean(), 0.0) / k)
        Wt = (scale * rng.random((k, n))).astype(dtype)
        H = (scale * rng.random((k, p))).astype(dtype)
        return Wt, H
    if init not in INITS:
        raise InputError(f"init={init!r} is not allowed: choose one of {', '.join(INITS)}")
    if svd is None or svd[1].size < k:
        svd = op.sketch(k, rng=rng)
    U, S, Vt = svd
    fill = op.mean() if init == "nndsvda" else None
    return nndsvd(U, S, Vt, k, fill=fill, dtype=dtype)


def non_negative_factorization(X, k: int, *, init: str = "spa", max_iter: int = 500,
                               tol: float = 1e-5, l1_weights: float = 0.0,
                               l1_components: float = 0.0, seed: int = 0,
                               normalise: bool = True, sort: bool = True,
                               ortho: float = 0.0, inner=1, svd=None, coords=None,
                               scan_shape=None, start=None, device: str = "cpu",
                               callback: IterationCallback | None = None) -> NMFResult:
    """Factorise non-negative data ``X ~ W H`` with accelerated HALS.

    Objective: ``0.5 ||X - W H||_F^2 + l1_weights * sum(W) + l1_components * sum(H)``
    subject to ``W >= 0, H >= 0`` (see :mod:`nmf4d.nmf._hals`).

    Parameters
    ----------
    X : ndarray of shape (n_patterns, n_pixels) or a data operator
        Non-negative data, one diffraction pattern per row.
    k : int
        Number of components, 1 <= k <= min(n_patterns, n_pixels).
    init : {"spa", "nndsvda", "nndsvd", "random"}
        Starting point. "spa" (default): the successive projection algorithm picks the
        k most extreme sum-normalised patterns (vertices of the data cone, found in a
        seeded randomized-SVD subspace) and each is averaged with its 8 nearest
        neighbours. 4D-STEM scans are near-separable (grain interiors hold pure
        patterns), so this starts at the physical patterns; NNDSVD starts tend to split
        the shared direct beam off into its own component, a solution of equal loss that
        NMF cannot leave. "nndsvda"/"nndsvd": NNDSVD from a seeded randomized SVD with
        zeros filled by the data mean or kept; "random": seeded uniform noise.
    max_iter, tol : int, float
        Stop after ``max_iter`` outer iterations or when the objective decreases by
        less than ``tol`` (relative) in one iteration.
    l1_weights, l1_components : float
        L1 (sparsity) penalties on W and H, in the units of the objective.
    ortho : float
        Optional orthogonality penalty on the weights, ``ortho * m * sum_{i != j}
        <w_i, w_j>`` with m the mean squared norm of the components: discourages two
        components active at the same positions (NMF as clustering). The weights are
        refitted without it at the end, so they stay unbiased. 0 (default) disables it.
    inner : int or "auto"
        HALS sweeps of each factor per pass over the data. 1 (default): classical HALS,
        which on the 64x64 scan of 128x128 patterns benchmark reached a lower loss than
        more sweeps. "auto": Gillis & Glineur's accelerated HALS, used by the k sweep,
        where it reached the same tolerance about twice as fast.
    seed : int
        Seed of every random choice (randomized SVD, random init).
    normalise : bool
        Scale each component to sum 1 and the weights inversely (``W H`` unchanged), so
        weights are intensities and ratios of weights do not depend on NMF's scaling.
    sort : bool
        Order components by decreasing total weight (intensity explained).
    svd : tuple (U, S, Vt), optional
        Precomputed truncated SVD of X with at least k triplets (shared across a k sweep).
    scan_shape : (int, int), optional
        Scan shape of the rows of X; for init="spa" the vertex search then runs on
        coordinates averaged over 3x3 scan neighbourhoods (robust to counting noise).
    start : tuple (Wt, H), optional
        Explicit starting factors, shapes (k, n) and (k, p); overrides ``init``.
    device : {"cpu", "auto", "cuda", "cuda:N"}
        Where the HALS iterations run: "cpu" (numpy, default) or a CUDA GPU through
        torch (:mod:`nmf4d.nmf._torch`; needs the data in memory); "auto" takes the GPU
        when torch sees one and the data is in memory, else the CPU.
    callback : callable, optional
        ``callback(iteration, relative_error)`` after each iteration (progress bars).

    Returns
    -------
    NMFResult
    """
    op = as_operator(X)
    n, p = op.shape
    k = check_k(k, min(n, p))
    if max_iter < 1:
        raise InputError(f"max_iter must be >= 1, got {max_iter}")
    if tol < 0:
        raise InputError(f"tol must be >= 0, got {tol}")
    if l1_weights < 0 or l1_components < 0:
        raise InputError("l1_weights and l1_components must be >= 0, got "
                         f"{l1_weights} and {l1_components}")
    if start is not None:
        dtype = np.float32 if op.dtype == np.float32 else np.float64
        Wt = np.array(start[0], dtype=dtype, copy=True)
        H = np.array(start[1], dtype=dtype, copy=True)
        if Wt.shape != (k, n) or H.shape != (k, p):
            raise InputError(f"start factors must have shapes {(k, n)} and {(k, p)}, "
                             f"got {Wt.shape} and {H.shape}")
    else:
        Wt, H = initialise(op, k, init=init, seed=seed, svd=svd, coords=coords,
                           scan_shape=scan_shape)
    dev = "cpu"
    X_mem = op.in_memory_matrix()
    if device != "cpu" and (device != "auto" or X_mem is not None):
        from ..execution.device import resolve_device
        dev = resolve_device(device)
    if dev != "cpu" and device == "auto" and not _fits_gpu(X_mem):
        dev = "cpu"       # auto: a matrix larger than the GPU's free memory stays on the CPU
    if dev != "cpu":
        from ..errors import ConfigError
        from ._torch import hals_torch
        if X_mem is None:
            raise ConfigError("execution.device", device,
                              "the GPU engine needs the data in memory as a dense "
                              "matrix (it is streamed beyond the memory budget, or held "
                              "as sparse counts); use cpu")
        Wt, H, n_iter, history, converged = hals_torch(
            X_mem, Wt, H, l1_weights=l1_weights, l1_components=l1_components,
            max_iter=max_iter, tol=tol, ortho=ortho, inner=inner, device=dev)
    else:
        Wt, H, n_iter, history, converged = hals(
            op, Wt, H, l1_weights=l1_weights, l1_components=l1_components,
            max_iter=max_iter, tol=tol, ortho=ortho, inner=inner, callback=callback)
    if normalise:
        Wt, H = normalise_factors(Wt, H)
    if sort:
        Wt, H = sort_by_weight(Wt, H)
    return NMFResult(weights=Wt, components=H,
                     n_iter=n_iter, converged=converged, history=history)


def fit_weights(X, components: np.ndarray, *, l1_weights: float = 0.0) -> NMFResult:
    """Non-negative weights of fixed components, exactly:
    ``min_{W >= 0} 0.5 ||X - W H||_F^2 + l1_weights * sum(W)``.

    One pass over the data gives ``A = H X^T`` (k, n); with ``G = H H^T = L L^T``, the
    problem of each pattern is ``min_{w >= 0} ||L^T w - L^{-1} (a - l1)||``, a k x k
    non-negative least squares solved by ``scipy.optimize.nnls`` (Lawson-Hanson, exact).
    sklearn's ``NMF.transform`` solves the same problem iteratively on the full matrix;
    this one never holds more than a block of the data (streamed and sparse operators
    too), and stays exact for nearly collinear components, where coordinate descent
    crawls.

    Parameters
    ----------
    X : ndarray of shape (n_patterns, n_pixels) or a data operator
    components : ndarray of shape (k, n_pixels)
        Finite and non-negative.
    l1_weights : float
        L1 penalty on the weights (as in :func:`non_negative_factorization`).

    Returns
    -------
    NMFResult
        ``components`` as given, in their order (not normalised, not sorted); ``history``
        holds the relative error ``||X - W H||_F / ||X||_F``.
    """
    from scipy.linalg import cholesky, solve_triangular
    from scipy.optimize import nnls

    op = as_operator(X)
    n, p = op.shape
    H = np.asarray(components)
    if H.ndim != 2 or H.shape[1] != p:
        raise InputError(f"components must have shape (k, {p}) for data of {p} pixels, "
                         f"got {H.shape}")
    if not np.all(np.isfinite(H)) or H.min(initial=0) < 0:
        raise InputError("components must be finite and non-negative")
    if l1_weights < 0:
        raise InputError(f"l1_weights must be >= 0, got {l1_weights}")
    H = H.astype(np.float32 if op.dtype == np.float32 else np.float64)
    k = H.shape[0]
    A = np.asarray(op.x_ht(H), dtype=np.float64)                  # (k, n): the one pass
    G = H.astype(np.float64) @ H.T.astype(np.float64)
    # a ridge far below any component's norm keeps L defined for collinear components
    ridge = 1e-12 * max(float(np.trace(G)) / max(k, 1), 1e-300)
    L = cholesky(G + ridge * np.eye(k), lower=True)
    B = solve_triangular(L, A - l1_weights, lower=True)
    Lt = np.ascontiguousarray(L.T)
    Wt = np.empty((k, n))
    for i in range(n):
        Wt[:, i] = nnls(Lt, B[:, i], maxiter=50 * k)[0]
    sq_x = float(op.sq_norm())
    sq_res = max(sq_x - 2.0 * float(np.sum(Wt * A)) + float(np.sum((Wt @ Wt.T) * G)), 0.0)
    err = float(np.sqrt(sq_res / sq_x)) if sq_x > 0 else 0.0
    return NMFResult(weights=Wt.astype(H.dtype), components=H.copy(), n_iter=1,
                     converged=True, history=[err])


def _fits_gpu(X, headroom: float = 2.0) -> bool:
    """True if ``headroom`` times X (as float32) fits the current CUDA device's free memory."""
    import torch
    free, _ = torch.cuda.mem_get_info()
    return X.size * 4 * headroom <= free


def sort_by_weight(Wt: np.ndarray, H: np.ndarray):
    """Order components by decreasing total weight (intensity explained); stable."""
    order = np.argsort(-Wt.sum(axis=1, dtype=np.float64), kind="stable")
    return Wt[order], H[order]


def normalise_factors(Wt: np.ndarray, H: np.ndarray):
    """Scale components (rows of H) to sum 1, weights inversely; ``Wt.T @ H`` unchanged."""
    s = H.sum(axis=1, dtype=np.float64)
    s[s <= 0] = 1.0
    H = (H / s[:, None]).astype(H.dtype)
    Wt = (Wt * s[:, None]).astype(Wt.dtype)
    return Wt, H


class NMF:
    """Non-negative matrix factorisation ``X ~ W H`` by accelerated HALS.

    scikit-learn style estimator: ``__init__`` only stores its arguments; ``fit`` sets
    the attributes ending in ``_``. Shares its code path with
    :func:`non_negative_factorization` (see there for the parameters and objective).

    Attributes
    ----------
    components_ : ndarray of shape (k, n_pixels)
    weights_ : ndarray of shape (k, n_patterns)
        Component axis first, as everywhere in nmf4d; :meth:`fit_transform` returns its
        transpose W of shape (n_patterns, k), as scikit-learn does.
    n_iter_ : int
    converged_ : bool
    loss_history_ : list of float
    reconstruction_err_ : float
        ``||X - W H||_F``.
    """

    def __init__(self, n_components: int, *, init: str = "spa", max_iter: int = 500,
                 tol: float = 1e-5, l1_weights: float = 0.0, l1_components: float = 0.0,
                 ortho: float = 0.0, seed: int = 0, normalise: bool = True,
                 sort: bool = True):
        self.n_components = n_components
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.l1_weights = l1_weights
        self.l1_components = l1_components
        self.ortho = ortho
        self.seed = seed
        self.normalise = normalise
        self.sort = sort

    def fit_transform(self, X, y=None) -> np.ndarray:
        """Fit and return W, ndarray of shape (n_patterns, k) (``weights_.T``)."""
        op = as_operator(X)
        res = non_negative_factorization(
            op, self.n_components, init=self.init, max_iter=self.max_iter, tol=self.tol,
            l1_weights=self.l1_weights, l1_components=self.l1_components,
            ortho=self.ortho, seed=self.seed,
            normalise=self.normalise, sort=self.sort)
        self.components_ = res.components
        self.weights_ = res.weights
        self.n_iter_ = res.n_iter
        self.converged_ = res.converged
        self.loss_history_ = res.history
        self.reconstruction_err_ = res.relative_error * np.sqrt(op.sq_norm())
        return res.weights.T

    def fit(self, X, y=None) -> "NMF":
        self.fit_transform(X)
        return self

    def transform(self, X) -> np.ndarray:
        """W of new data for the fitted components, ndarray of shape (n_patterns, k):
        non-negative least squares per pattern (:func:`fit_weights`)."""
        if not hasattr(self, "components_"):
            raise InputError("NMF.transform: fit the estimator first")
        op = as_operator(X)
        if op.shape[1] != self.components_.shape[1]:
            raise InputError(f"NMF.transform: X has {op.shape[1]} pixels per pattern, the "
                             f"fitted components {self.components_.shape[1]}")
        return fit_weights(op, self.components_, l1_weights=self.l1_weights).weights.T

    def inverse_transform(self, W: np.ndarray) -> np.ndarray:
        """``W @ components_`` for W of shape (n_patterns, k)."""
        return W @ self.components_
