"""nmf4d's decision: how many distinct patterns a scan holds, and at which NMF rank.

Beyond the number of distinct patterns, a larger NMF rank does not add clusters: the
extra components split an orientation into variants (merged back), split the direct beam
or a film off (backgrounds), or fit noise (they own no positions and are dropped) — see
:mod:`nmf4d.clustering`. So the number of clusters of the fit at rank k, ``N(k)``, grows
with k up to the number of distinct patterns and then stays there, up and down by one
where a noise component survives or an orientation is missed at one rank.

The decision takes every fit of level one (:mod:`nmf4d.sweep`), counts its clusters, and
reports the median of ``N(k)`` over the ranks from the knee of the loss curve up to the
top of the range (the ranks where the loss has stopped falling steeply, so the fits have
had the chance to describe every pattern): the typical number of distinct patterns once
the rank suffices. The NMF rank used for the maps is the smallest of those ranks whose
fit has that many clusters. When the default range is too short for the scan (its top
fits still find a distinct pattern per component, :func:`saturated`; or, once, when the
count is unsettled and held-out counts show it still rising), the pipeline sweeps a wider
one (:func:`widened_range`) and decides on that. The paper's level two (IQA matrices, :mod:`nmf4d.select_k`)
stays in the results and the report as the paper's evidence.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .clustering import FitClusters, assess_fit, merged_groups
from .errors import warn_data

if TYPE_CHECKING:
    from .config import SelectionConfig
    from .prepare import FittingData
    from .sweep import SweepResult


@dataclass
class Decision:
    """Outcome of :func:`decide`.

    Attributes
    ----------
    k : int
        Distinct patterns (clusters) reported.
    rank : int
        The NMF rank whose fit gives the maps.
    ranks : ndarray of shape (m,)
        The ranks assessed (level one's k).
    n_clusters : ndarray of shape (m,)
        Clusters of the fit at each rank.
    considered : (int, int)
        Ranks whose median is ``k``.
    assessments : dict int -> FitClusters
    explanation : str
    unsettled : bool
        The fit at the top rank holds more than ``k + 1`` clusters: the count has not
        reached its plateau inside the range (the range is too short, or components
        fitting noise are counted), so ``k`` is uncertain.
    heldout : nmf4d.heldout.HeldoutTest or None
        The held-out test of the chosen rank's clusters (:func:`apply_heldout`).
    widened_from : list of int
        Tops of the default range that were too short (:func:`saturated`, or a count
        still rising on held-out counts): the sweep was widened above each
        (:func:`widened_range`); empty when it was not.
    """

    k: int
    rank: int
    ranks: np.ndarray
    n_clusters: np.ndarray
    considered: tuple
    assessments: dict = field(repr=False, default_factory=dict)
    explanation: str = ""
    unsettled: bool = False
    heldout: object = None
    widened_from: list = field(default_factory=list)

    @property
    def saturated(self) -> bool:
        """:func:`saturated` of this decision's counts."""
        return saturated(self.ranks, self.n_clusters)


#: How far the default range is widened when it is too short (:func:`widened_range`):
#: its top times this factor, at most ``WIDEN_STEPS`` times.
WIDEN_FACTOR = 1.5
WIDEN_STEPS = 2


def saturated(ranks, n_clusters) -> bool:
    """Whether the fits at the two top ranks still hold a distinct pattern for (nearly)
    every component, ``N(k) >= k - 1``: each added component found another cluster, so
    the count has not begun its plateau and the range cannot show where it lies (a scan
    with about as many distinct patterns as the top rank, or more). Components fitting
    noise, orientation variants, backgrounds and dropped components keep ``N(k)`` below
    ``k - 1`` once the rank exceeds the number of distinct patterns."""
    r, n = np.asarray(ranks), np.asarray(n_clusters)
    return len(r) >= 2 and bool(np.all(n[-2:] >= r[-2:] - 1))


def widened_range(k_range, n_max: int) -> tuple[int, int] | None:
    """The range above ``k_range`` (``(lo, hi)``) to sweep when it is too short:
    ``(lo, ceil(hi * WIDEN_FACTOR))`` capped at ``n_max`` (patterns/pixels); None when
    ``hi`` is ``n_max`` already."""
    lo, hi = int(k_range[0]), int(k_range[1])
    top = min(int(n_max), int(np.ceil(hi * WIDEN_FACTOR)))
    return (lo, top) if top > hi else None


def noise_model(record: dict) -> tuple[float, float]:
    """(gain, read variance) measured by the dark step, else counts (1, 0)."""
    d = (record or {}).get("dark") or {}
    if d.get("read_variance"):
        return float(d.get("gain", 1.0)), float(d["read_variance"])
    return 1.0, 0.0


def assess(fit, data: "FittingData", record: dict, config: "SelectionConfig", *,
           keep_all: bool = False, grouping=None) -> FitClusters:
    """The clusters of one fit (weights (k, n), components (k, p), input units);
    ``keep_all``: one cluster per component (a given k)."""
    n = data.scan_shape[0] * data.scan_shape[1]
    gain, read_var = noise_model(record)
    return assess_fit(fit.weights, fit.components, data.pattern_shape,
                      row_sums=data.stats["row_sums"], col_means=data.stats["col_sums"] / n,
                      gain=gain, read_variance=read_var, z_min=config.z_min,
                      shared_min=config.shared_min, ubiquity=config.ubiquity,
                      contrast=config.contrast,
                      min_size=config.min_size(n), keep_all=keep_all, grouping=grouping)


def decide(sweep: "SweepResult", data: "FittingData", record: dict,
           config: "SelectionConfig") -> Decision:
    """The number of distinct patterns from the fits of a sweep (module docstring)."""
    ranks = [int(k) for k in sweep.k]
    found = {k: assess(sweep.fits[k], data, record, config) for k in ranks}
    counts = np.array([found[k].n_clusters for k in ranks])
    lo = min(max(int(sweep.knee), ranks[0]), ranks[-1])
    upper = [found[k].n_clusters for k in ranks if k >= lo]
    k_star = int(sorted(upper)[(len(upper) - 1) // 2])          # the lower median
    at = [k for k in ranks if k >= lo and found[k].n_clusters == k_star]
    rank = at[0] if at else min((k for k in ranks if k >= lo),
                                key=lambda k: (abs(found[k].n_clusters - k_star), k))
    f = found[rank]
    parts = [f"the fits of rank {lo}..{ranks[-1]} (from the knee of the loss up) hold "
             f"{_spread(upper)} distinct patterns; their median, {k_star}, is reported, "
             f"with the maps of the rank-{rank} fit"]
    if f.merged:
        parts.append("components " + "; ".join("+".join(map(str, g)) for g in f.merged)
                     + " share their reflections and are one orientation each")
    if f.background:
        why = {"ubiquitous": "significant at nearly every position",
               "diffuse": "no reflections of its own: vacuum, film or diffuse"}
        parts.append("background components: " + ", ".join(
            f"{c} ({why.get(f.kinds[c], f.kinds[c])})" for c in f.background))
    if f.readmitted:
        parts.append("components " + ", ".join(
            f"{c} ({f.contrast[c]:.1f} times)" for c in f.readmitted) + " are significant "
            "at nearly every position, but their share of the intensity is that many times "
            "larger where they are the largest: crystals that took up part of the shared "
            "background")
    if f.dropped:
        parts.append("components " + ", ".join(map(str, f.dropped)) + " own too few "
                     "positions (noise) and were dropped")
    unsettled = bool(counts[-1] > k_star + 1)
    if unsettled:
        parts.append(f"the fit at the top rank, {ranks[-1]}, still holds {counts[-1]} "
                     f"distinct patterns, more than {k_star} + 1: the count has not settled "
                     "inside the range (" + UNSETTLED_HINT + ")")
    return Decision(k=k_star, rank=rank, ranks=np.array(ranks), n_clusters=counts,
                    considered=(lo, ranks[-1]), assessments=found,
                    explanation="; ".join(parts), unsettled=unsettled)


#: What an unsettled count means, in the explanation and the warning.
UNSETTLED_HINT = ("the scan may hold more distinct patterns than the range reaches: widen "
                  "--k-range; or components fitting noise are counted, as on low-dose "
                  "scans: treat k as uncertain")


def _spread(values) -> str:
    lo, hi = min(values), max(values)
    return str(lo) if lo == hi else f"{lo} to {hi}"


def run_heldout(f: FitClusters, data: "FittingData", config: "SelectionConfig", *,
                seed: int = 0, counts=None, note: dict | None = None):
    """The held-out test (:func:`nmf4d.heldout.heldout_test`) of one fit's clusters
    ``f``; ``counts`` and ``note`` as for :func:`apply_heldout`. Returns a HeldoutTest
    (``applied`` False, with the reason, when the data are not counts)."""
    from .heldout import HeldoutTest, counts_source, heldout_test

    n = data.scan_shape[0] * data.scan_shape[1]
    note = dict(note or {})
    if note.get("coherence") is not None and note["coherence"] < note["coherence_min"]:
        return HeldoutTest(
            applied=False, z_max=config.heldout_z, seed=seed, counts=note,
            reason=f"the data are not counts (float values that do not sit on multiples "
                   f"of one count quantum: coherence {note['coherence']:.2f} < "
                   f"{note['coherence_min']:g} at {note['quantum']:.4g}; an integrating "
                   f"detector's read noise)")
    source, shape = (data.op.source, data.pattern_shape) if counts is None else \
        (counts_source(counts), tuple(counts.shape[2:]))
    if counts is not None and tuple(counts.shape[:2]) != tuple(data.scan_shape):
        raise ValueError(f"counts: scan shape {tuple(counts.shape[:2])} is not the data's "
                         f"{tuple(data.scan_shape)}")
    test = heldout_test(source, f.labels, data.scan_shape, shape,
                        seed=seed, z_max=config.heldout_z, min_size=config.min_size(n),
                        nothing=f.rank)
    test.counts = note
    return test


def apply_heldout(decision: Decision, data: "FittingData", config: "SelectionConfig", *,
                  seed: int = 0, counts=None, note: dict | None = None) -> Decision:
    """Merge the chosen rank's clusters that do not differ on held-out counts
    (:mod:`nmf4d.heldout`): the rank's grouping, labels and cluster count, and ``k``,
    lose one cluster per merge; the explanation says which and why. ``counts``: the 4D
    array of counts to split (:func:`nmf4d.pipeline.heldout_counts`), default the fitted
    data; ``note``: how float data were read as counts (its ``quantum``, ``coherence``),
    the test skipped when their coherence is below ``coherence_min``."""
    f = decision.assessments[decision.rank]
    test = run_heldout(f, data, config, seed=seed, counts=counts, note=note)
    note = test.counts
    decision.heldout = test
    if test.applied and note.get("quantum") is not None:
        decision.explanation += (
            f"; the float data were read as counts of {note['quantum']:.4g} (offset "
            f"{note['quantum_offset']:.3g}; their values sit on that lattice, coherence "
            f"{note['coherence']:.2f})")
    if not test.applied:
        decision.explanation += f"; the held-out test was skipped: {test.reason}"
        return decision
    groups = test.merged
    if not groups:
        decision.explanation += (f"; every pair of clusters differs on held-out counts "
                                 f"(z >= {config.heldout_z:g})")
        return decision
    to = dict(zip(test.clusters.tolist(), test.group.tolist()))
    f.cluster_of = np.array([to.get(int(c), int(c)) if c >= 0 else -1 for c in f.cluster_of])
    f.labels = test.group[np.searchsorted(test.clusters, f.labels)]   # every label was tested
    removed = f.n_clusters - len(np.unique(f.labels))
    f.n_clusters -= removed
    at = np.flatnonzero(decision.ranks == decision.rank)
    decision.n_clusters = decision.n_clusters.copy()
    decision.n_clusters[at] = f.n_clusters            # the chosen rank's count, after the test
    # the orientation merges stay in ``merged``; the groups the test made are kept apart
    # (a held-out merge says "no difference on held-out counts", not "one orientation")
    orientation = {tuple(g) for g in f.merged}
    f.heldout_merged = [g for g in merged_groups(f.cluster_of, f.rank)
                        if tuple(g) not in orientation]
    before, decision.k = decision.k, max(1, decision.k - removed)
    decision.explanation += (
        "; clusters " + "; ".join("+".join(map(str, g)) for g in groups) + " do not differ "
        f"on held-out counts (split on one binomial half of the counts, tested on the other: "
        f"z < {config.heldout_z:g}) and are merged: {decision.k} distinct patterns are "
        f"reported, not {before}")
    return decision


def decide_stage(sweep: "SweepResult", data: "FittingData", record: dict,
                 config: "SelectionConfig", *, seed: int = 0, counts=None,
                 counts_note: dict | None = None, decision: Decision | None = None):
    """The select stage: the paper's level two (its IQA evidence, always) and nmf4d's
    decision (``rule="clusters"``; ``decision``: :func:`decide` of this sweep, made
    already), with the held-out test of its clusters (``config.heldout``). Returns
    ``(selection, decision or None, rank)``."""
    from .select_k import select

    selection = select(sweep, data, config)
    if config.rule != "clusters":
        return selection, None, selection.k
    decision = decide(sweep, data, record, config) if decision is None else decision
    if decision.unsettled:                       # the median, before the held-out test
        warn_data(f"the number of distinct patterns is uncertain (median {decision.k} over "
                  f"the fits from the knee up; the fit at rank {decision.ranks[-1]} still "
                  f"holds {decision.n_clusters[-1]}): {UNSETTLED_HINT}")
    if config.heldout:
        apply_heldout(decision, data, config, seed=seed, counts=counts, note=counts_note)
    return selection, decision, decision.rank


def cluster_stage(fit, data: "FittingData", record: dict, config, *, given: bool,
                  decision: "Decision | None" = None):
    """The maps of the final fit per cluster (:func:`nmf4d.maps.cluster_maps`); a given
    k keeps one cluster per component; after a decision, the final fit (refined from the
    sweep's fit of the chosen rank, components in the same order) keeps the grouping of
    that rank's assessment, so that the maps hold the clusters the decision counted;
    without a decision (``rule="paper-iqa"``) every component is a cluster, as in 0.1."""
    from .maps import cluster_maps

    chosen = decision.assessments.get(decision.rank) if decision is not None else None
    grouping = None if given or chosen is None else chosen.cluster_of
    # a given k, and nmf4d 0.1's rule (no decision), keep one cluster per component
    keep_all = given or decision is None
    found = assess(fit, data, record, config.selection, keep_all=keep_all, grouping=grouping)
    return found, cluster_maps(fit.weights, fit.components, found, data.scan_shape,
                               data.pattern_shape, config.maps)
