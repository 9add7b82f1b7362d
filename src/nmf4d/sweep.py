"""Decision level one: the K-component loss over a range of k, and its knee."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .config import FitConfig, SweepConfig, parse_k_range
from .errors import ConfigError, InputError
from .execution import Progress, blas_threads, parallel_map
from .nmf import LowRankOperator, non_negative_factorization

if TYPE_CHECKING:
    from .prepare import FittingData


def relative_extrema(x: np.ndarray, comparator) -> np.ndarray:
    """Indices where ``comparator(x[i], x[i-1])`` and ``comparator(x[i], x[i+1])`` hold,
    the ends compared with themselves: ``scipy.signal.argrelextrema(x, comparator)[0]``
    (order 1, mode "clip"), written out because importing scipy.signal costs ~1.2 s, a
    seventh of a whole run on a small scan (tested against scipy)."""
    x = np.asarray(x)
    if x.size == 0:
        return np.zeros(0, np.intp)
    prev = np.concatenate([x[:1], x[:-1]])
    nxt = np.concatenate([x[1:], x[-1:]])
    return np.flatnonzero(comparator(x, prev) & comparator(x, nxt))


def knee_point(x, y, *, sensitivity: float = 1.0) -> int:
    """Knee of a decreasing, convex curve by the Kneedle method (Satopaa et al. 2011).

    Follows the ``kneed`` package's offline algorithm for ``curve="convex",
    direction="decreasing"`` (the paper's authors used kneed): normalise x and y to
    [0, 1], take the difference curve ``(1 - y_n) - x_n``, and return the first local
    maximum after which the difference drops below ``max - S * mean(diff(x_n))``.
    Re-implemented (about 20 lines) to avoid a dependency for one function; the tests
    compare it with kneed. When no knee is detected (e.g. a straight line), the maximum
    of the difference curve is returned.

    Parameters
    ----------
    x : array-like of shape (m,)
        Increasing k values.
    y : array-like of shape (m,)
        Loss for each k.

    Returns
    -------
    int
        The x value at the knee.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or x.size < 3:
        raise InputError(f"knee_point needs x and y of the same length >= 3, got {x.shape} and {y.shape}")
    span_x, span_y = np.ptp(x), np.ptp(y)
    if span_x == 0 or span_y == 0:
        return int(x[0])
    xn = (x - x.min()) / span_x
    yn = (y - y.min()) / span_y
    yn = yn.max() - yn
    diff = yn - xn
    maxima = relative_extrema(diff, np.greater_equal)
    minima = relative_extrema(diff, np.less_equal)
    tmx = diff[maxima] - sensitivity * np.abs(np.diff(xn).mean())
    if maxima.size:
        mi = 0
        threshold, thr_idx, active = 0.0, int(maxima[0]), True
        for i in range(int(maxima[0]), x.size - 1):
            if np.any(maxima == i):
                threshold, thr_idx, active = tmx[mi], i, True
                mi += 1
            if np.any(minima == i):
                threshold, active = 0.0, False
            if active and diff[i + 1] < threshold:
                return int(x[thr_idx])
    return int(x[int(np.argmax(diff))])


def candidate_window(knee: int, k_min: int, k_max: int, *, half_width: int = 4) -> tuple[int, int]:
    """The paper's window of candidate k: knee - 4 .. knee + 4, clipped to the range."""
    return max(k_min, knee - half_width), min(k_max, knee + half_width)


@dataclass
class SweepResult:
    """K-component loss curve and the fits behind it.

    Attributes
    ----------
    k : ndarray of shape (m,), int
    loss : ndarray of shape (m,), float
        Mean absolute residual ``mean |V - W H|`` (the paper's K-component loss).
    relative_error : ndarray of shape (m,), float
        ``||V - WH||_F / ||V||_F``.
    n_iter : ndarray of shape (m,), int
    fits : dict int -> NMFResult
        The kept fit of each k, in input units.
    knee : int
    window : (int, int)
    seconds : float
    timings : dict
        Seconds of the parts: "sketch", "fits", "loss".
    starts : list of str
        The start that won at each k.
    """

    k: np.ndarray
    loss: np.ndarray
    relative_error: np.ndarray
    n_iter: np.ndarray
    fits: dict = field(repr=False)
    knee: int = 0
    window: tuple = (0, 0)
    seconds: float = 0.0
    timings: dict = field(default_factory=dict)
    starts: list = field(default_factory=list)

    def losses(self) -> dict:
        """K-component loss by k, ``{k: loss}``."""
        return dict(zip(self.k.tolist(), self.loss.tolist()))


#: Passes over the data of the sketch's range finder with the default power iterations.
RANGE_FINDER_PASSES = 2 + 2 * 2


def loss_sweep(data, config: SweepConfig | None = None, *, fit: FitConfig | None = None,
               seed: int = 0, k_range=None, scan_shape=None,
               progress: Progress | None = None, oversample: int = 10, power_iter: int = 2,
               starts=None) -> SweepResult:
    """Fit NMF for every k in the range and record the K-component loss.

    One seeded randomized sketch of the data is shared by every k, so the k fits differ
    only by k. With ``config.method == "sketch"`` (default) the fits are made on the
    compressed data ``Q B`` (:class:`nmf4d.nmf.LowRankOperator`: rank ``max k +
    oversample``, from ``2 + 2 * power_iter`` passes over the data) and only the losses
    are measured on the full data, all k in one pass; ``"full"`` fits every k on the full
    data.

    Parameters
    ----------
    data : FittingData, data operator or ndarray of shape (n_patterns, n_pixels)
        The data (:class:`nmf4d.prepare.FittingData` carries its Poisson weighting: fits
        are made in its fitting space and mapped back to input units, the loss is
        measured on the input data).
    config : SweepConfig, optional
        Range, method and stopping rule of the fits (default :class:`SweepConfig`).
    fit : FitConfig, optional
        Start and penalties of every fit (its ``init``, ``l1_weights``,
        ``l1_components``); default :class:`FitConfig`.
    seed : int
        Seed of every random choice.
    k_range : (int, int), optional
        Overrides ``config.k_range`` (the pipeline passes the range resolved against the
        data); one of the two is needed.
    scan_shape : (int, int), optional
        Scan shape of the rows, for the noise-robust SPA start (taken from ``data`` when
        it is a FittingData).
    progress : Progress, optional
        Bars of the passes over the data and of the k sweep.
    oversample, power_iter : int
        Sketch rank above the largest k, and power iterations of the range finder.
    starts : sequence of str, optional
        Starts tried for every k; the fit with the lowest K-component loss is kept (NMF
        has local minima, and below the true k which orientations get merged depends on
        the start; every candidate's loss is measured in the same pass over the data).
        Default: ``("spa", "nndsvda")`` for the sketch with ``init="spa"`` (fits there
        are cheap), otherwise ``(init,)``.

    Returns
    -------
    SweepResult
        ``loss`` and ``relative_error`` are measured on the full input data.
    """
    from .prepare import FittingData

    config = config or SweepConfig()
    fit = fit or FitConfig()
    progress = progress or Progress()
    fd = data if isinstance(data, FittingData) else FittingData.unweighted(data, scan_shape, progress=progress)
    scan_shape = fd.scan_shape if scan_shape is None else scan_shape
    k_range = config.k_range if k_range is None else k_range
    if k_range is None:
        raise ConfigError("sweep.k_range", None, "is needed (MIN:MAX)")
    lo, hi = parse_k_range(k_range)
    op = fd.fit_op
    n_max = min(op.shape)
    if hi > n_max:
        raise ConfigError("sweep.k_range", (lo, hi),
                          f"maximum {hi} exceeds the number of patterns/pixels ({n_max})")
    passes = RANGE_FINDER_PASSES + 1 if config.method == "sketch" else None
    with progress.counting("level one: passes over the data",
                           passes and passes * fd.n_blocks), \
            progress.bar("level one: k sweep", hi - lo + 1, "k") as bar, blas_threads(1):
        # BLAS single-threaded: the passes run blocks on threads, the sketched fits run
        # side by side (see nmf4d.execution.threads for why, measured)
        return _sweep(fd, op, lo, hi, config, fit, seed, scan_shape, bar, oversample,
                      power_iter, starts)


def _sweep(fd, op, lo, hi, config, fit, seed, scan_shape, bar, oversample, power_iter,
           starts) -> SweepResult:
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    fit_op = op
    if config.method == "sketch":
        Q, B = op.qb(hi + oversample, n_iter=power_iter, rng=rng)
        fit_op = LowRankOperator(Q, B, full_sq_norm=op.sq_norm())
    t_sketch = time.perf_counter()
    if starts is None:
        starts = (fit.init, "nndsvda") if config.method == "sketch" and fit.init == "spa" \
            else (fit.init,)
    if not starts:
        raise InputError("starts must name at least one start")
    coords = svd = None
    if "spa" in starts:
        coords = fit_op.normalised_coords(hi, rng=rng, scan_shape=scan_shape)
    if "nndsvd" in starts or "nndsvda" in starts:
        svd = fit_op.sketch(hi, rng=rng)
    ks = list(range(lo, hi + 1))
    tasks = [(k, start) for k in ks for start in starts]

    def fit_one(task):
        k, start = task
        return fd.to_input(non_negative_factorization(
            fit_op, k, init=start, seed=seed, max_iter=config.max_iter, tol=config.tol,
            coords=coords, svd=svd, l1_weights=fit.l1_weights,
            l1_components=fit.l1_components, ortho=config.ortho, inner="auto",
            scan_shape=scan_shape))
    left = {k: len(starts) for k in ks}

    def done(i):
        k = tasks[i][0]
        left[k] -= 1
        if not left[k]:
            bar.update(1)
    # Fits on the sketch are independent and read only shared arrays: one per core
    # (each is the same whatever the threads). Fits on the full data run one at a
    # time, their passes already using every core.
    threads = None if isinstance(fit_op, LowRankOperator) else 1
    fitted = parallel_map(fit_one, tasks, threads=threads, done=done)
    cands = [(k, start, res) for (k, start), res in zip(tasks, fitted)]
    t_fits = time.perf_counter()
    target = fd.op
    # every candidate's loss on the full data, in one pass
    abs_all, sq_all = target.residuals([(r.weights, r.components) for _, _, r in cands])
    # per k the start with the lowest K-component loss wins (ties keep the first start)
    best: dict = {}
    for (k, start, res), a, q in zip(cands, abs_all, sq_all):
        if k not in best or a < best[k][2] * (1 - 1e-6):
            best[k] = (start, res, a, q)
    fits = {k: best[k][1] for k in ks}
    won = [best[k][0] for k in ks]
    iters = [best[k][1].n_iter for k in ks]
    abs_mean = np.array([best[k][2] for k in ks])
    sq = np.array([best[k][3] for k in ks])
    sq_x = target.sq_norm()
    rel = np.sqrt(sq / sq_x) if sq_x > 0 else np.zeros_like(sq)
    k_arr = np.array(ks, dtype=np.int32)
    loss = np.asarray(abs_mean, dtype=np.float64)
    # A k-component fit can always match a (k-1)-component one (add an empty
    # component), so a loss above an earlier one is a poorer local solution, not a
    # property of the data: the knee is found on the running minimum.
    knee = knee_point(k_arr, np.minimum.accumulate(loss))
    return SweepResult(k=k_arr, loss=loss, relative_error=np.asarray(rel),
                       n_iter=np.array(iters),
                       fits=fits, knee=knee, window=candidate_window(knee, lo, hi),
                       seconds=time.perf_counter() - t0,
                       starts=won, timings={"sketch": t_sketch - t0, "fits": t_fits - t_sketch,
                                "loss": time.perf_counter() - t_fits})
