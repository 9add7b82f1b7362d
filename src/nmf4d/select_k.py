"""Decision level two: choose k among the level-one candidates.

The paper compares the k component patterns pairwise with IQA metrics (SSIM, PSNR,
GMSD, MDSI) for each k in the window and keeps the k with the most distinct patterns
and no redundant ones. nmf4d makes that rule explicit and testable:

A candidate k is **redundant** (overfitted) when any of these holds:

1. *Empty component*: some component is the largest weight at fewer than
   ``min_cluster`` scan positions. Each orientation present in the scan owns the
   positions where it dominates; an extra component that owns none is NMF fitting
   noise or splitting intensity off another component.
2. *Duplicate patterns*: two component patterns have SSIM >= ``ssim_max`` (on
   max-scaled, square-root patterns, so weak reflections count): one orientation split
   in two.
3. *Duplicate maps*: two weight maps correlate with Pearson r >= ``corr_max``: two
   components that appear together describe one crystal (distinct grains occupy
   different regions, so their maps correlate negatively or hardly at all).
4. *No gain*: the K-component loss at k is not lower than the best loss at smaller k
   by at least ``min_gain`` (relative): the extra component explains nothing.

The chosen k is the **largest non-redundant k** in the window (extended upward while
its top k still passes, since the knee tends to be too low on noisy data): below the true k every
fit is non-redundant but merges orientations (and the loss still falls steeply), so the
largest k that adds only genuine, distinct, spatially separate components is the
number of orientations (vacuum counts as one). If no k in the window passes, the
search continues below it; if none passes at all, the knee is kept.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from . import iqa
from .config import SelectionConfig
from .options import METRIC_NAMES

if TYPE_CHECKING:
    from .prepare import FittingData
    from .sweep import SweepResult

@dataclass
class KAssessment:
    """Everything level two measured for one k."""

    k: int
    pairs: dict                     # metric -> ndarray of shape (k, k)
    scores: dict                    # metric -> float (most similar pair)
    cluster_sizes: np.ndarray       # (k,) positions labelled with each component
    max_corr: float                 # largest weight-map correlation between two components
    max_ssim_pair: tuple            # (i, j) of the most similar pair by SSIM
    redundant: bool
    reasons: list = field(default_factory=list)


def display_patterns(components: np.ndarray) -> np.ndarray:
    """Patterns scaled for IQA: each divided by its maximum, then square-rooted.

    Diffraction patterns span orders of magnitude; the square root (a gamma of 0.5)
    keeps weak reflections visible to the structural metrics. Values lie in [0, 1] so
    ``data_range=1``.
    """
    c = np.asarray(components, np.float64)
    mx = c.max(axis=(1, 2), keepdims=True)
    mx[mx <= 0] = 1.0
    return np.sqrt(np.clip(c / mx, 0.0, 1.0))


#: Level two compares patterns at most this many pixels across (see :func:`iqa_scale`).
IQA_MAX_SIZE = 64


def iqa_scale(components: np.ndarray, max_size: int = IQA_MAX_SIZE) -> np.ndarray:
    """Sum-bin patterns larger than ``max_size`` pixels by the smallest integer factor
    that brings them to at most ``max_size`` (edge rows/columns that do not fill a bin
    are dropped).

    SSIM's 11x11 window sees structure at a fixed scale in pixels. On large, sparse
    patterns most windows hold only empty background, where any two patterns agree, so
    distinct orientations score SSIM ~0.8 at 128x128 (measured: true patterns of
    ``benchmarks/sweep_vs_paper.py``) against ~0.4 at 64x64, where the thresholds of
    :class:`~nmf4d.config.SelectionConfig` were calibrated (the decision suite). Binning restores that scale.
    """
    c = np.asarray(components)
    ky, kx = c.shape[1:]
    f = int(np.ceil(max(ky, kx) / max_size))
    if f <= 1:
        return c
    ny, nx = ky // f, kx // f
    return c[:, :ny * f, :nx * f].reshape(c.shape[0], ny, f, nx, f).sum(axis=(2, 4))


def _most_similar(mat: np.ndarray, higher_is_similar: bool) -> float:
    m = np.array(mat, dtype=np.float64, copy=True)
    if m.shape[0] < 2:
        return float("nan")
    np.fill_diagonal(m, -np.inf if higher_is_similar else np.inf)
    return float(m.max() if higher_is_similar else m.min())


def assess_k(components: np.ndarray, weights: np.ndarray,
             config: SelectionConfig | None = None) -> KAssessment:
    """Measure redundancy of one fit.

    Parameters
    ----------
    components : ndarray of shape (k, ky, kx)
    weights : ndarray of shape (k, scan_y, scan_x)
    config : SelectionConfig, optional
        Thresholds of the rule (default :class:`~nmf4d.config.SelectionConfig`).
    """
    criteria = config or SelectionConfig()
    k = components.shape[0]
    imgs = display_patterns(iqa_scale(components))
    pairs = {m: iqa.pairwise(imgs, m, data_range=1.0) for m in METRIC_NAMES}
    scores = {m: _most_similar(pairs[m], iqa.HIGHER_IS_SIMILAR[m]) for m in METRIC_NAMES}
    w = weights.reshape(k, -1).astype(np.float64)
    labels = np.argmax(w, axis=0)
    sizes = np.bincount(labels, minlength=k)
    wc = w - w.mean(axis=1, keepdims=True)
    nrm = np.linalg.norm(wc, axis=1)
    nrm[nrm == 0] = 1.0
    corr = (wc / nrm[:, None]) @ (wc / nrm[:, None]).T
    np.fill_diagonal(corr, -1.0)
    max_corr = float(corr.max()) if k > 1 else float("nan")
    s = pairs["ssim"].copy()
    np.fill_diagonal(s, -np.inf)
    pair = tuple(int(v) for v in np.unravel_index(int(np.argmax(s)), s.shape)) if k > 1 else (0, 0)
    reasons = []
    min_size = criteria.min_size(w.shape[1])
    small = np.flatnonzero(sizes < min_size)
    if small.size:
        reasons.append("component(s) " + ", ".join(str(int(i)) for i in small)
                       + f" dominate fewer than {min_size} positions "
                       f"({', '.join(str(int(sizes[i])) for i in small)})")
    if k > 1 and scores["ssim"] >= criteria.ssim_max:
        reasons.append(f"components {pair[0]} and {pair[1]} have near-identical patterns "
                       f"(SSIM {scores['ssim']:.3f} >= {criteria.ssim_max})")
    if k > 1 and max_corr >= criteria.corr_max:
        i, j = np.unravel_index(int(np.argmax(corr)), corr.shape)
        reasons.append(f"components {i} and {j} have near-identical weight maps "
                       f"(r = {max_corr:.3f} >= {criteria.corr_max})")
    return KAssessment(k=k, pairs=pairs, scores=scores, cluster_sizes=sizes,
                       max_corr=max_corr, max_ssim_pair=pair, redundant=bool(reasons),
                       reasons=reasons)


@dataclass
class Selection:
    """Outcome of level two."""

    k: int
    assessments: dict               # k -> KAssessment, for every k examined
    window: tuple
    explanation: str


def choose_k(fits: dict, scan_shape: tuple, pattern_shape: tuple, window: tuple,
             knee: int, *, losses: dict | None = None,
             config: SelectionConfig | None = None) -> Selection:
    """Apply the level-two rule to the level-one fits.

    Parameters
    ----------
    fits : dict int -> NMFResult
        Fits of the sweep (weights of shape (k, n_positions), components (k, n_pixels)).
    scan_shape : (int, int)
    pattern_shape : (int, int)
    window : (int, int)
        Inclusive candidate window from level one.
    knee : int
    losses : dict int -> float, optional
        K-component loss of each fit, for the no-gain test (skipped when absent).
    config : SelectionConfig, optional
        Thresholds of the rule.
    """
    criteria = config or SelectionConfig()
    lo, hi = window
    assessed: dict[int, KAssessment] = {}

    def get(k):
        if k not in assessed:
            r = fits[k]
            comps = r.components.reshape(k, *pattern_shape)
            wts = r.weights.reshape(k, *scan_shape)
            a = assess_k(comps, wts, criteria)
            if losses is not None:
                prev = [losses[j] for j in losses if j < k]
                if prev and losses[k] > min(prev) * (1.0 - criteria.min_gain):
                    gain = 1.0 - losses[k] / min(prev)
                    a.reasons.append(f"the loss does not fall with the extra component "
                                     f"(gain {gain:.2%} < {criteria.min_gain:.2%})")
                    a.redundant = True
            assessed[k] = a
        return assessed[k]

    for k in range(lo, hi + 1):
        if k in fits:
            get(k)
    # If the top of the window still passes, the knee was too low (it often is on
    # noisy data): keep examining larger k until a redundant one appears.
    top = hi
    while top in fits and not get(top).redundant and (top + 1) in fits:
        top += 1
        get(top)
    valid = [k for k in range(top, lo - 1, -1) if k in fits and not get(k).redundant]
    if valid:
        k_star = valid[0]
        where = f"the window {lo}..{hi}" if k_star <= hi else \
            f"{lo}..{top} (the window {lo}..{hi} extended upward while k passed)"
        why = (f"k = {k_star} is the largest k in {where} whose components "
               "are all distinct and each dominates its own region")
    else:
        below = [k for k in sorted((k for k in fits if k < lo), reverse=True)
                 if not get(k).redundant]
        if below:
            k_star = below[0]
            why = (f"every k in the window {lo}..{hi} has redundant components; k = {k_star} "
                   "is the largest smaller k without any")
        else:
            k_star = knee
            why = "every k examined has redundant components; the knee of the loss is kept"
    for k in sorted(assessed):
        if k > k_star and assessed[k].redundant:
            why += f"; k = {k} rejected: " + "; ".join(assessed[k].reasons)
    return Selection(k=k_star, assessments=assessed, window=(lo, hi), explanation=why)



def select(sweep: "SweepResult", data: "FittingData",
           config: SelectionConfig | None = None) -> Selection:
    """The level-two stage: :func:`choose_k` on the fits and losses of a sweep."""
    return choose_k(sweep.fits, data.scan_shape, data.pattern_shape, sweep.window,
                    sweep.knee, losses=sweep.losses(), config=config)
