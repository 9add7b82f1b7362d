"""The whole analysis as one library call: preprocess, choose k, factorise, map.

``analyse`` works on arrays and returns an :class:`Analysis`; reading files and writing
results live at the edges (:mod:`nmf4d.io`, :mod:`nmf4d.results`), so a notebook and
the command line share this code path.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from . import iqa
from .errors import InputError
from .maps import DEFAULT_THRESHOLDS, cluster_map, detect_background, overlap_masks, overlap_ratio
from .execution import Progress, counting, data_operators
from .nmf import WEIGHTINGS, check_k, non_negative_factorization, rescale, unscale
from .nmf._blocked import InMemoryOperator
from .preprocess import PreprocessConfig, preprocess, validate_4d
from .select_k import Criteria, Selection, choose_k
from .sweep import RANGE_FINDER_PASSES, SWEEP_METHODS, SweepResult, loss_sweep, parse_k_range


#: SSIM's 11x11 window needs patterns at least this large.
MIN_PATTERN_SIZE = 11


@dataclass
class Analysis:
    """Result of :func:`analyse`; arrays follow the (scan_y, scan_x, ky, kx) convention.

    Attributes
    ----------
    k : int
    components : ndarray of shape (k, ky, kx), each summing to 1
    weights : ndarray of shape (k, scan_y, scan_x), intensity units of the input
    labels : ndarray of shape (scan_y, scan_x), int32
    ratio : ndarray of shape (scan_y, scan_x)
    partner : ndarray of shape (scan_y, scan_x), int32
    thresholds : ndarray of shape (n,)
    masks : ndarray of shape (n, scan_y, scan_x), bool
    background : list of int
    sweep : SweepResult or None
    selection : Selection or None
    clusters : dict of arrays (raw_mean, nmf_pattern, iqa, nsd, immerkaer, representative)
    parameters : dict
    preprocessing : dict
    timings : dict of float (seconds)
    n_iter, converged, rel_error : final fit diagnostics
    mean_pattern : ndarray of shape (ky, kx)
    virtual_image : ndarray of shape (scan_y, scan_x) (total intensity per position)
    """

    k: int
    components: np.ndarray
    weights: np.ndarray
    labels: np.ndarray
    ratio: np.ndarray
    partner: np.ndarray
    thresholds: np.ndarray
    masks: np.ndarray
    background: list
    sweep: SweepResult | None
    selection: Selection | None
    clusters: dict
    parameters: dict
    preprocessing: dict
    timings: dict
    n_iter: int
    converged: bool
    rel_error: float
    mean_pattern: np.ndarray
    virtual_image: np.ndarray
    extras: dict = field(default_factory=dict)


def cluster_comparison(patterns: np.ndarray, components: np.ndarray, weights: np.ndarray,
                       labels: np.ndarray) -> dict:
    """Raw vs NMF per cluster (the paper's Figure 4d/e and its IQA).

    Parameters
    ----------
    patterns : ndarray of shape (scan_y, scan_x, ky, kx)
        The (preprocessed) data that was factorised.
    components : ndarray of shape (k, ky, kx)
    weights : ndarray of shape (k, scan_y, scan_x)
    labels : ndarray of shape (scan_y, scan_x)

    Returns
    -------
    dict, see :func:`cluster_comparison_op`.
    """
    ky, kx = components.shape[1:]
    op = InMemoryOperator(np.asarray(patterns).reshape(-1, ky * kx))
    return cluster_comparison_op(op, components, weights, labels)


def cluster_comparison_op(op, components: np.ndarray, weights: np.ndarray,
                          labels: np.ndarray) -> dict:
    """:func:`cluster_comparison` over a data operator (one pass for the cluster means).

    Returns
    -------
    dict with
        raw_mean : (k, ky, kx) mean pattern of the positions labelled c (0 if none)
        nmf_pattern : (k, ky, kx) component c scaled by its largest weight
        representative : (k, 2) scan position of the largest weight of c
        iqa/<metric> : (k,) raw_mean vs nmf_pattern, both scaled by their common maximum
        nsd : (k,) the paper's noise standard deviation of the representative pattern
        immerkaer : (k,) Immerkaer's noise sigma of the representative pattern
        count : (k,) positions labelled c
    """
    k = components.shape[0]
    ky, kx = components.shape[1:]
    flat_lab = labels.ravel()
    count = np.bincount(flat_lab, minlength=k)
    raw_mean = op.label_means(flat_lab, k).reshape(k, ky, kx)
    wflat = weights.reshape(k, -1)
    best = np.argmax(wflat, axis=1)
    nmf_pattern = components * wflat[np.arange(k), best][:, None, None]
    rep = np.asarray(op.take_rows(best), np.float64).reshape(k, ky, kx)
    mx = np.maximum(raw_mean.max(axis=(1, 2)), nmf_pattern.max(axis=(1, 2)))
    mx[mx <= 0] = 1.0
    a = raw_mean / mx[:, None, None]
    b = nmf_pattern / mx[:, None, None]
    out = {"raw_mean": raw_mean.astype(np.float32), "nmf_pattern": nmf_pattern.astype(np.float32),
           "representative": np.stack(np.unravel_index(best, labels.shape), axis=1).astype(np.int32),
           "count": count.astype(np.int64),
           "nsd": iqa.nsd(rep), "immerkaer": iqa.immerkaer_sigma(rep)}
    # psnr/ssim/gmsd/mdsi with the NMF pattern as distorted image and raw mean as reference
    for m in ("ssim", "psnr", "gmsd", "mdsi"):
        out[f"iqa/{m}"] = np.atleast_1d(iqa.METRICS[m](b, a, data_range=1.0)).astype(np.float64)
    return out


DEFAULT_K_RANGE = (2, 20)


def analyse(data, *, k="auto", k_range=None, preprocessing: PreprocessConfig | None = None,
            seed: int = 0, max_iter: int = 500, tol: float = 1e-5, sweep_tol: float = 1e-4,
            sweep_max_iter: int = 200, l1_weights: float = 0.0, l1_components: float = 0.0,
            ortho: float = 0.1, sweep_ortho: float = 0.0, init: str = "spa",
            weighting: str = "poisson", sweep: str = "sketch",
            thresholds=DEFAULT_THRESHOLDS, memory=None, client=None, device: str = "cpu",
            criteria: Criteria | None = None, progress=None,
            show_progress: bool = False) -> Analysis:
    """Run nmf4d's analysis on a 4D-STEM dataset held as an array.

    Parameters
    ----------
    data : array-like of shape (scan_y, scan_x, ky, kx)
        Non-negative intensities (numpy or dask array; a dask array larger than the
        memory budget is streamed block by block and never loaded whole).
    k : "auto" or int
        "auto" runs decision levels one and two over ``k_range``; an int fits that k.
    k_range : (int, int) or "MIN:MAX", optional
        Inclusive range of k for level one; default 2..20, capped at the number of
        patterns (an explicit range beyond it is an error).
    preprocessing : PreprocessConfig, optional
        Binning, cropping, masking, filtering, scaling, normalisation (default: none).
    seed : int
        Seed of every random choice.
    max_iter, tol : final fit's iteration cap and relative tolerance.
    sweep_tol, sweep_max_iter : the same for every fit of the level-one sweep.
    l1_weights, l1_components, init : NMF options (see
        :func:`nmf4d.nmf.non_negative_factorization`).
    ortho : float
        Orthogonality penalty of the final fit (default 0.1). Patterns that share the
        direct beam with a vacuum pattern admit equal-loss solutions in which grain
        components lose part of their beam to the vacuum component; the penalty picks
        the solution in which components are active at separate positions (the physical
        one). The weights are refitted without it, so they stay unbiased.
    sweep_ortho : float
        The same for the fits of the level-one sweep (default 0: the k decision was
        validated without it).
    weighting : {"poisson", "none"}
        "poisson" (default): factorise the Poisson-weighted data
        ``diag(1/sqrt(row sums)) V diag(1/sqrt(column means))`` so bright pixels do not
        dominate, then map the factors back to the input's units (see
        :mod:`nmf4d.nmf._weighting`); "none": factorise V as it is.
    sweep : {"sketch", "full"}
        Level one on a shared randomized sketch of the data (default; the losses are
        measured on the full data) or with full-data fits (see :func:`loss_sweep`).
    thresholds : sequence of float
        Overlap thresholds (second/first weight), default 0.75..0.95.
    memory : int or str, optional
        Memory budget ('2GB'); default half the physical memory. Lazy data larger than
        half of it is streamed from its file block by block.
    client : dask.distributed.Client, optional
        Run every pass over the data on this cluster.
    device : {"cpu", "auto", "cuda"}
        Where the final (full-data) fit runs; "cuda" needs torch and the data in memory.
    criteria : select_k.Criteria, optional
        Thresholds of the level-two rule.
    progress : callable, optional
        ``progress(stage, info)`` for user feedback.
    show_progress : bool
        tqdm progress bars on stderr for every pass, the sweep and the final fit.

    Returns
    -------
    Analysis
    """
    timings: dict[str, float] = {}
    k_range_arg = k_range
    say = progress or (lambda stage, info=None: None)
    bars = Progress(show_progress)
    t = time.perf_counter()
    validate_4d(data)
    if weighting not in WEIGHTINGS:
        raise InputError(f"weighting={weighting!r} is not allowed: choose one of "
                         + ", ".join(WEIGHTINGS))
    if sweep not in SWEEP_METHODS:
        raise InputError(f"sweep={sweep!r} is not allowed: choose one of "
                         + ", ".join(SWEEP_METHODS))
    if device not in ("cpu", "auto"):
        from .nmf._torch import resolve_device
        resolve_device(device)
    cfg = preprocessing or PreprocessConfig()
    arr, record = preprocess(data, cfg)
    timings["preprocess"] = time.perf_counter() - t
    sy, sx, ky, kx = arr.shape
    if min(ky, kx) < MIN_PATTERN_SIZE:
        raise InputError(f"patterns of {ky}x{kx} pixels after preprocessing are too small: "
                         f"the IQA metrics need at least {MIN_PATTERN_SIZE}x{MIN_PATTERN_SIZE} "
                         "(use a smaller --bin or crop)")
    n = sy * sx
    n_max = min(n, ky * kx)
    t = time.perf_counter()
    op, fit_op, scales, stats, mode = data_operators(arr, weighting=weighting, memory=memory,
                                                     client=client, bars=bars)
    timings["load"] = time.perf_counter() - t
    say("preprocess", record)

    sweep_res = selection = None
    if isinstance(k, str):
        if k != "auto":
            raise InputError(f"k must be 'auto' or an integer, got {k!r}")
        if k_range is None:
            hi = min(DEFAULT_K_RANGE[1], n_max)
            if hi < DEFAULT_K_RANGE[0] + 2:
                raise InputError(f"only {n_max} patterns/pixels: too few to choose k "
                                 "automatically (need at least 4); give --k")
            k_range = (DEFAULT_K_RANGE[0], hi)
        lo, hi = parse_k_range(k_range)
        if hi > n_max:
            raise InputError(f"--k-range maximum {hi} exceeds the number of patterns "
                             f"({n}) or pixels ({ky * kx})")
        t = time.perf_counter()
        n_blocks = len(getattr(fit_op, "source", op.source).blocks)
        # sketch: the range finder's passes and one pass for the losses
        passes = RANGE_FINDER_PASSES + 1 if sweep == "sketch" else None
        with bars.bar("level one: passes over the data", passes and passes * n_blocks,
                      "block") as pb, counting([op, fit_op], pb), \
                bars.bar("level one: k sweep", hi - lo + 1, "k") as b:
            sweep_res = loss_sweep(fit_op, (lo, hi), seed=seed, loss_op=op, scales=scales,
                                   max_iter=sweep_max_iter, tol=sweep_tol, method=sweep,
                                   init=init, l1_weights=l1_weights,
                                   l1_components=l1_components,
                                   ortho=sweep_ortho, scan_shape=(sy, sx),
                                   progress=lambda kk: (b.update(1), say("sweep", kk)))
        timings["sweep"] = time.perf_counter() - t
        for key, val in sweep_res.timings.items():
            timings[f"sweep: {key}"] = val
        t = time.perf_counter()
        selection = choose_k(sweep_res.fits, (sy, sx), (ky, kx), sweep_res.window,
                             sweep_res.knee,
                             losses=dict(zip(sweep_res.k.tolist(), sweep_res.loss.tolist())),
                             criteria=criteria)
        timings["select"] = time.perf_counter() - t
        k_final = selection.k
        say("select", selection)
    else:
        k_final = check_k(k, n_max)

    t = time.perf_counter()
    start = None
    if sweep_res is not None and k_final in sweep_res.fits:
        prev = sweep_res.fits[k_final]
        start = (prev.weights.T, prev.components) if scales is None else rescale(prev, *scales)
    with bars.bar(f"final fit (k = {k_final}, full data)", max_iter, "iter") as b:
        res = non_negative_factorization(fit_op, k_final, init=init, seed=seed,
                                         max_iter=max_iter, tol=tol, l1_weights=l1_weights,
                                         l1_components=l1_components, ortho=ortho,
                                         scan_shape=(sy, sx), start=start, device=device,
                                         callback=lambda it, err: b.update(1))
    if scales is not None:
        res = unscale(res, *scales)
    timings["refine"] = time.perf_counter() - t
    refine_iter_s = timings["refine"] / max(res.n_iter, 1)
    say("refine", res)

    t = time.perf_counter()
    with bars.bar("maps + cluster means", None, "block") as b, counting(op, b):
        R2 = op.sq_residual(res.weights.T, res.components)
        rel_error = float(np.sqrt(R2 / op.sq_norm())) if op.sq_norm() > 0 else 0.0
        components = res.components.reshape(k_final, ky, kx)
        weights = res.weights.T.reshape(k_final, sy, sx)
        labels = cluster_map(weights)
        background = detect_background(components)
        ratio, partner = overlap_ratio(weights, background=background)
        thr = np.asarray(thresholds, dtype=np.float32)
        masks = overlap_masks(ratio, thr)
        clusters = cluster_comparison_op(op, components, weights, labels)
    timings["maps"] = time.perf_counter() - t
    params = {"k": k, "k_range": list(parse_k_range(k_range)) if k == "auto" else None,
              "k_range_requested": None if k_range_arg is None else str(k_range_arg),
              "seed": seed, "max_iter": max_iter, "tol": tol, "sweep_tol": sweep_tol,
              "sweep_max_iter": sweep_max_iter, "l1_weights": l1_weights,
              "l1_components": l1_components, "ortho": ortho, "sweep_ortho": sweep_ortho,
              "init": init, "sweep": sweep,
              "weighting": weighting,
              "thresholds": [float(v) for v in thr],
              "criteria": vars(criteria or Criteria()),
              "memory": None if memory is None else str(memory), "device": device,
              "preprocessing": vars(cfg) if hasattr(cfg, "__dict__") else str(cfg)}
    extras = {"execution": {"mode": mode, "blocks": len(getattr(op, "source", op).blocks)
                            if hasattr(op, "source") else 1,
                            "refine_seconds_per_iteration": refine_iter_s,
                            "client": None if client is None else str(getattr(client, "scheduler_info", lambda: {})().get("address", client))}}
    return Analysis(k=k_final, components=components.astype(np.float32),
                    weights=weights.astype(np.float32), labels=labels, ratio=ratio,
                    partner=partner, thresholds=thr, masks=masks, background=background,
                    sweep=sweep_res, selection=selection, clusters=clusters, parameters=params,
                    preprocessing=record, timings=timings, n_iter=res.n_iter,
                    converged=res.converged, rel_error=rel_error,
                    mean_pattern=(stats["col_sums"] / n).reshape(ky, kx).astype(np.float32),
                    virtual_image=stats["row_sums"].reshape(sy, sx), extras=extras)
