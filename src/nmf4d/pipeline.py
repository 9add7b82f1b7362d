"""The whole analysis as one library call: a short list of stages.

``analyse(data, config)`` runs, each stage in the module that owns it:

=========  ============================================  ===============================
stage      function                                      output
=========  ============================================  ===============================
prepare    :func:`nmf4d.preprocess.preprocess`,          preprocessed array; the data in
           :func:`nmf4d.prepare.load`                    its fitting space (FittingData)
sweep      :func:`nmf4d.sweep.loss_sweep`                level one (SweepResult)
select     :func:`nmf4d.decision.decide_stage`           level two (Decision; Selection)
refine     :func:`nmf4d.refine.refine`                   final fit, input units
maps       :func:`nmf4d.decision.cluster_stage`          clusters, labels, backgrounds,
                                                         overlaps (ClusterMaps)
compare    :func:`nmf4d.clusters.compare_clusters`       raw vs NMF per cluster
index      :func:`nmf4d.orientation.index_analysis`      phases and orientations (optional)
=========  ============================================  ===============================

and returns an :class:`Analysis`. It works on arrays; reading files and writing results
live at the edges (:mod:`nmf4d.io`, :mod:`nmf4d.results`), so a notebook and the command
line share this code path.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .arrays import validate_4d
from .calibration import Calibration, resolve
from .clusters import compare_clusters, representatives
from .config import AnalysisConfig, resolve_k
from .datachecks import check_degenerate
from .errors import ConfigError, InputError
from .execution import Progress, StageTimer, client_address, resolve_device
from .explorer_data import explorer_plan
from .inputs import as_input
from .decision import (WIDEN_STEPS, Decision, cluster_stage, decide, decide_stage,
                       run_heldout, widened_range)
from .maps import ClusterMaps
from .orientation import Orientation, index_analysis
from .prepare import load
from .preprocess import preprocess
from .refine import refine, refit_weights
from .select_k import Selection
from .sweep import SweepResult, loss_sweep

#: SSIM's 11x11 window needs patterns at least this large.
MIN_PATTERN_SIZE = 11


@dataclass
class Analysis:
    """Result of :func:`analyse`; arrays follow the (scan_y, scan_x, ky, kx) convention.

    Attributes
    ----------
    k : int
        Distinct patterns (clusters).
    components : ndarray of shape (k, ky, kx), float32, each summing to 1
        The pattern of each cluster.
    weights : ndarray of shape (k, scan_y, scan_x), float32, intensity units of the input
    labels : ndarray of shape (scan_y, scan_x), int32
        The cluster map: each position's largest significant crystal cluster, else its
        largest background (``maps.argmax_labels`` is the paper's).
    ratio : ndarray of shape (scan_y, scan_x), float32
    partner : ndarray of shape (scan_y, scan_x), int32
    thresholds : ndarray of shape (n,), float32
    masks : ndarray of shape (n, scan_y, scan_x), bool
    background : list of int
    sweep : SweepResult or None
        Decision level one (None for a given k).
    selection : Selection or None
        The paper's level two, nmf4d 0.1's rule on the IQA evidence (None for a given k).
    decision : Decision or None
        nmf4d's decision (:mod:`nmf4d.decision`; None for a given k or the paper's rule).
    maps : ClusterMaps
        Every per-cluster map (kinds, members, the paper's argmax labels, background
        fraction); ``components``, ``weights``, ``labels``... are its main arrays.
    rank : int
        NMF rank of the final fit (``k`` counts its clusters: components sharing their
        reflections are one cluster, noise components are dropped).
    nmf : NMFResult
        The final fit itself: weights (rank, n), components (rank, p), input units.
    final_fit : {"refined", "weights"}
        "refined": all factors refined on the full data (from the sweep's fit of the
        rank); "weights": the decision's assessed components kept, only their weights
        refitted, because the refined fit no longer held the decided clusters (the
        decision's explanation says so).
    clusters : dict of arrays
        Raw vs NMF per cluster (see :func:`nmf4d.clusters.compare_clusters`).
    config : AnalysisConfig
        Every setting (``parameters`` is its dict, as recorded in results.h5).
    preprocessing : dict
        What preprocessing did (see :func:`nmf4d.preprocess.preprocess`).
    timings : dict of float
        Seconds per stage.
    n_iter, converged : diagnostics of the refinement
    relative_error : float
        ``||V - WH||_F / ||V||_F`` of the final fit on the (preprocessed) input data.
    mean_pattern : ndarray of shape (ky, kx)
    virtual_image : ndarray of shape (scan_y, scan_x)
        Total intensity per position.
    execution : dict
        How the passes ran: mode, blocks, seconds per refinement iteration, client.
    calibration : Calibration
        Scan step, reciprocal scale (per input detector pixel), voltage, precession, beam
        centre, from the options or the input (see :mod:`nmf4d.calibration`).
    explorer : dict or None
        The report explorer's per-position patterns (see :mod:`nmf4d.explorer_data`).
    orientation : nmf4d.orientation.Orientation or None
        Phase and orientation of every cluster (with ``config.index.phases``).
    artifacts : dict
        Objects worth saving beside the results (the trained denoiser, "denoiser").
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
    config: AnalysisConfig
    preprocessing: dict
    timings: dict
    n_iter: int
    converged: bool
    relative_error: float
    mean_pattern: np.ndarray
    virtual_image: np.ndarray
    execution: dict = field(default_factory=dict)
    calibration: Calibration = field(default_factory=Calibration)
    explorer: dict | None = None
    orientation: Orientation | None = None
    decision: Decision | None = None
    maps: ClusterMaps | None = None
    rank: int = 0
    nmf: object = None
    final_fit: str = "refined"
    artifacts: dict = field(default_factory=dict)

    @property
    def parameters(self) -> dict:
        """The settings as recorded in results.h5 (``config.to_dict()``)."""
        return self.config.to_dict()

    def to_signals(self) -> dict:
        """HyperSpy signals of the results, calibrated (see :func:`nmf4d.signals.to_signals`;
        needs ``nmf4d[hyperspy]``)."""
        from .signals import to_signals
        return to_signals(self)


def analyse(data, config: AnalysisConfig | None = None, *, progress: Progress | None = None,
            client=None) -> Analysis:
    """Run nmf4d's analysis on a 4D-STEM dataset held as an array.

    Parameters
    ----------
    data : array-like of shape (scan_y, scan_x, ky, kx), Dataset or HyperSpy signal
        Non-negative intensities: a numpy or dask array (a dask array larger than the
        memory budget is streamed block by block and never loaded whole), a file opened
        with :func:`nmf4d.io.open_dataset`, or a HyperSpy ``Signal2D`` / pyxem
        ``Diffraction2D`` (lazy or not); the last two bring their axes' calibration.
    config : AnalysisConfig, optional
        Every setting (default :class:`~nmf4d.config.AnalysisConfig`: k chosen
        automatically over 2..20); e.g. ``AnalysisConfig.from_flat(k=8, bin=2)``.
    progress : nmf4d.execution.Progress, optional
        Progress bars and stage events (default: silent).
    client : dask.distributed.Client, optional
        Run every pass over the data on this cluster.

    Returns
    -------
    Analysis
    """
    config = config or AnalysisConfig()
    progress = progress or Progress()
    timer = StageTimer()
    with timer("preprocess"):
        arr, record, artifacts, calibration, phases, raw = _prepare_input(data, config, progress)
    sy, sx, ky, kx = arr.shape
    k, k_range = resolve_k(config, sy * sx, ky * kx)
    with timer("load"):
        fd = load(arr, weighting=config.fit.weighting, memory=config.execution.memory,
                  client=client, progress=progress,
                  allow_negative=record["dark"].get("negative_allowed", False),
                  noise=_noise(record))
    progress.event("preprocess", record)
    k = check_degenerate(fd, k)                      # identical patterns: k = 1, said why
    sweep = selection = decision = None
    given = k != "auto"
    if not given:
        sweep, first, held = _level_one(fd, record, config, k_range, (sy * sx, ky * kx),
                                        timer, progress, raw)
        with timer("select"):
            selection, decision, k = _select(sweep, fd, record, config, raw, first, held)
        progress.event("select", decision or selection)
    with timer("refine"):
        fit = refine(fd, k, config, start=sweep.fits.get(k) if sweep else None,
                     progress=progress)
    progress.event("refine", fit)
    refined = fit
    with timer("maps"), progress.counting("maps: one pass over the data", fd.n_blocks):
        found, maps = cluster_stage(fit, fd, record, config, given=given, decision=decision)
        merged = _heldout_merged(decision)
        if decision is not None and (found.n_clusters != decision.k or merged):
            with progress.counting("maps: weights refitted (one pass)", fd.n_blocks):
                fit, found, maps = _assessed_fit(fd, sweep.fits[k], record, config, decision,
                                                 (fit, found, maps), tested=merged)
        rel, clusters, explorer = _maps_pass(fd, fit, maps, explorer=config.report.explorer)
        _fill_nothing(maps, clusters)
    progress.event("maps", rel)
    orientation = None
    if phases is not None:
        with timer("index"):
            orientation = index_analysis(maps.components, maps.labels, maps.background, calibration,
                                         record, config.index, data=arr, phases=phases,
                                         progress=progress)
    execution = {"mode": fd.mode, "blocks": fd.op.n_blocks,
                 "refine_seconds_per_iteration": timer.seconds["refine"] / max(refined.n_iter, 1),
                 "client": client_address(client), "reason": fd.extras.get("reason", "")}
    return Analysis(k=maps.k, components=maps.components, weights=maps.weights,
                    labels=maps.labels, ratio=maps.ratio, partner=maps.partner,
                    thresholds=maps.thresholds, masks=maps.masks, background=maps.background,
                    sweep=sweep, selection=selection, clusters=clusters, config=config,
                    decision=decision, maps=maps, rank=k,
                    nmf=fit, final_fit="refined" if fit is refined else "weights",
                    preprocessing=record, timings=timer.seconds, n_iter=refined.n_iter,
                    converged=refined.converged, relative_error=rel,
                    mean_pattern=fd.mean_pattern, virtual_image=fd.virtual_image,
                    execution=execution, calibration=calibration, explorer=explorer,
                    orientation=orientation, artifacts=artifacts)


def _assessed_fit(fd, assessed, record, config, decision, refined, *, tested: bool = False):
    """The maps when the refined fit no longer holds the clusters the decision counted.

    Refining all factors on the full data can move nearly collinear components (grains
    that differ by a few per cent of their counts on a shared beam and background) to
    another factorisation of nearly equal loss, whose clusters are not those the
    decision assessed. The assessed fit's components are then kept and only their
    weights refitted to the full data (:func:`nmf4d.refine.refit_weights`, a convex
    problem); of the two, the fit whose cluster count is nearer the decision's is used
    (the refined one on a tie). When the held-out test merged clusters (``tested``), the
    assessed components are the ones whose clusters it tested: they are kept unless
    their count is farther from the decision's. Returns ``(fit, found, maps)`` and says
    why in the decision's explanation.
    """
    fit, found, maps = refined
    kept = refit_weights(fd, assessed, l1_weights=config.fit.l1_weights)
    k_found, m_found = cluster_stage(kept, fd, record, config, given=False, decision=decision)
    if tested and abs(k_found.n_clusters - decision.k) <= abs(found.n_clusters - decision.k):
        decision.explanation += (
            f"; the maps keep the components of the rank-{decision.rank} fit whose clusters "
            "the held-out test merged, with their weights refitted to the full data")
        return kept, k_found, m_found
    why = f"; the fit refined on the full data holds {found.n_clusters} clusters, not {decision.k}"
    if abs(k_found.n_clusters - decision.k) >= abs(found.n_clusters - decision.k):
        decision.explanation += (
            f"{why} (with the assessed components and refitted weights: "
            f"{k_found.n_clusters}): the maps show the refined fit's {found.n_clusters}")
        return refined
    decision.explanation += (
        f"{why}: the maps keep the components of the rank-{decision.rank} fit the "
        "decision assessed, with their weights refitted to the full data")
    return kept, k_found, m_found


def _fill_nothing(maps: ClusterMaps, clusters: dict) -> None:
    """The pattern of "nothing significant" is the mean of its positions' data."""
    if "nothing" in maps.kinds:
        i = maps.kinds.index("nothing")
        p = np.clip(clusters["raw_mean"][i].astype(np.float64), 0, None)
        maps.components[i] = (p / max(float(p.sum()), 1e-300)).astype(np.float32)


def _noise(record: dict):
    """The detector noise model measured by the dark step, if any."""
    d = record.get("dark") or {}
    return (d["gain"], d["read_variance"]) if d.get("read_variance") else None


def _maps_pass(fd, fit, maps: ClusterMaps, *, explorer: bool):
    """What the maps stage reads from the data, in one pass over it: the final fit's
    relative error, the clusters' mean and representative patterns
    (:func:`~nmf4d.clusters.compare_clusters`) and the explorer's patterns
    (:func:`~nmf4d.explorer_data.explorer_plan`). Returns (relative error, clusters,
    explorer dict or None)."""
    components, weights, labels = maps.components, maps.weights, maps.labels
    plan = explorer_plan(scan_shape=fd.scan_shape, pattern_shape=fd.pattern_shape,
                         components=components) if explorer else None
    k = components.shape[0]
    # the residual is the fit's (all its components); means and rows are the clusters'
    res = fd.op.maps_pass(fit.weights, fit.components, labels.ravel(), k,
                          representatives(weights), func=plan.kernel if plan else None)
    sq = fd.op.sq_norm()
    rel = float(np.sqrt(res["sq"] / sq)) if sq > 0 else 0.0
    clusters = compare_clusters(None, components, weights, labels,
                                raw_mean=res["label_means"], rows=res["rows"])
    return rel, clusters, (plan.assemble(res["func"]) if plan else None)


def _level_one(fd, record, config: AnalysisConfig, k_range, n_data, timer, progress, raw):
    """Level one's sweep, over a wider range while the default one is too short: its top
    fits still find a distinct pattern per component (:func:`nmf4d.decision.saturated`),
    and the top fit's clusters still do on held-out counts (components fitting noise can
    saturate a low-dose scan's count; :func:`_distinct_at_top`); or, once, when the top
    fit holds more than the median + 1 clusters that differ on held-out counts (the count
    is still rising: :func:`_distinct_at_top`). Returns the sweep to
    decide on, its decision (None under the paper's rule) and the held-out counts with
    their note (None when not read); a range the user gave is kept as it is."""
    with timer("sweep"):
        sweep = loss_sweep(fd, config.sweep, fit=config.fit, seed=config.seed,
                           k_range=k_range, progress=progress)
    timer.add_parts("sweep", sweep.timings)
    held = None                                      # the held-out counts, read when needed
    if config.selection.rule != "clusters":
        return sweep, None, held
    with timer("select"):
        decision = decide(sweep, fd, record, config.selection)
    widened: list[int] = []
    reasons: list[str] = []
    while config.sweep.k_range is None and len(widened) < WIDEN_STEPS:
        # a count only rising (not saturated) widens once, and only on held-out evidence
        if not decision.saturated and (not decision.unsettled or widened or
                                       not config.selection.heldout):
            break
        wider = widened_range(k_range, min(n_data))
        if wider is None:
            break
        reason = _saturated_reason(decision)
        if config.selection.heldout:
            with timer("select"):
                if held is None:
                    held = heldout_counts(raw, config.preprocessing, record)
                widen, reason = _distinct_at_top(decision, fd, config, held)
            if not widen:
                decision.explanation += "; " + reason
                break
        reasons.append(reason)
        progress.event("widen", f"level one: {reasons[-1]}; widening the range to "
                       f"{wider[0]}..{wider[1]}")
        widened.append(int(k_range[1]))
        k_range = wider
        with timer("sweep"):
            sweep = loss_sweep(fd, config.sweep, fit=config.fit, seed=config.seed,
                               k_range=k_range, progress=progress)
        timer.add_parts("sweep", {key: timer.seconds.get(f"sweep: {key}", 0.0) + val
                                  for key, val in sweep.timings.items()})   # both sweeps
        with timer("select"):
            decision = decide(sweep, fd, record, config.selection)
    if widened:
        decision.widened_from = widened
        decision.explanation = (
            " and then ".join(reasons) + f", so the count had not settled inside the default "
            f"range (up to rank {widened[0]}): level one was widened to "
            f"{k_range[0]}..{k_range[1]}; " + decision.explanation)
    return sweep, decision, held


def _saturated_reason(decision) -> str:
    return (f"the fits up to rank {int(decision.ranks[-1])} hold a distinct pattern for "
            f"nearly every component (N(k) >= k - 1 at the two top ranks)")


def _distinct_at_top(decision, fd, config: AnalysisConfig, held) -> tuple[bool, str]:
    """Whether the top fit's clusters show, on held-out counts, that the range is too
    short, and the sentence saying why (or why not).

    A saturated count (:func:`nmf4d.decision.saturated`) needs at least rank - 1 of the
    top fit's clusters left once those that do not differ on held-out counts are merged
    (nothing to check when the test cannot run: not counts). A count that is only
    unsettled (the top fit holds more than the median + 1 clusters: still rising, or
    components fitting noise) needs more than median + 1 clusters left, and held-out
    counts to show it: without them a rising count may be noise."""
    top = int(decision.ranks[-1])
    f = decision.assessments[top]
    test = run_heldout(f, fd, config.selection, seed=config.seed, counts=held[0],
                       note=held[1])
    # every label was tested: the clusters left are the test's groups
    left = len(np.unique(test.group)) if test.applied else None
    if decision.saturated:
        if left is None or left >= top - 1:
            return True, _saturated_reason(decision)
        return False, (f"the fits at the two top ranks hold a distinct pattern for nearly "
                       f"every component, but on held-out counts only {left} of the rank-{top} "
                       f"fit's {f.n_clusters} clusters differ (the others fit noise), so the "
                       f"range was not widened")
    if left is None:
        return False, ("the count is still rising at the top rank, but without held-out "
                       f"counts ({test.reason}) that may be noise, so the range was not widened")
    if left > decision.k + 1:
        return True, (f"the fit at rank {top} holds {left} clusters that differ on held-out "
                      f"counts, more than the median {decision.k} + 1")
    return False, (f"on held-out counts only {left} of the rank-{top} fit's {f.n_clusters} "
                   f"clusters differ, not more than the median {decision.k} + 1, so the range "
                   f"was not widened")


def _select(sweep, fd, record, config: AnalysisConfig, raw, decision=None, held=None):
    """The select stage with the counts its held-out test splits (``held``: read already)."""
    if held is None:
        held = heldout_counts(raw, config.preprocessing, record) \
            if config.selection.heldout and config.selection.rule == "clusters" else (None, {})
    counts, note = held
    return decide_stage(sweep, fd, record, config.selection, seed=config.seed, counts=counts,
                        counts_note=note, decision=decision)


def _heldout_merged(decision) -> bool:
    """Whether the held-out test merged clusters of the decision."""
    return decision is not None and decision.heldout is not None and \
        bool(decision.heldout.merged)


def heldout_counts(raw, pre, record: dict):
    """The counts the held-out test splits (:mod:`nmf4d.heldout`) and a note on them.

    The input with the steps that keep counts (dark offset, crop, bin, mask) and without
    those that do not (descan interpolation, filter, scale, normalise); uncorrected descan
    only makes the test stricter (two scan regions then differ by a shift too). Float
    values that are not integers are read as counts when they sit on the lattice of one
    count quantum (:mod:`nmf4d.pseudocounts`: a gain, a small offset or noise below a
    quantum); else they are left as they are and the test says they are not counts.

    Returns
    -------
    (counts, note)
        ``counts`` a 4D array, or None when the fitted data are those counts already (no
        step changed them: the test then reads the fitted data, held sparse where they
        are) or when no counts could be had; ``note`` a dict, with ``quantum``,
        ``quantum_offset`` and ``coherence`` when the quantum was measured.
    """
    from dataclasses import replace

    from .preprocess.dark import noise_model
    from .preprocess.descan import gather, sample_positions
    from .pseudocounts import QUANTUM_COHERENCE, as_counts, count_quantum

    dark = record.get("dark") or {}
    subtracted = dark.get("mode") == "file" or float(dark.get("offset") or 0.0) > 0
    offset = "off" if not subtracted else (
        dark["path"] if dark.get("mode") == "file" else float(dark["offset"]))
    steps = replace(pre, dark=offset, centre="off", filter="raw", scale=None, normalise=None)
    kept = steps.crop is None and steps.centre_crop is None and \
        steps.bin in (1, (1, 1)) and steps.mask_radius is None and not subtracted
    unchanged = kept and not (record.get("centre") or {}).get("applied") and \
        pre.filter == "raw" and pre.scale is None and pre.normalise is None

    def prepared():
        return raw if kept else preprocess(raw, steps).data

    if np.issubdtype(raw.dtype, np.integer):
        # integers with a dark offset are detector units (ADU): every value sits on the
        # 1-ADU lattice whatever the gain and read noise, so nothing says they are counts
        return (None if subtracted or unchanged else prepared()), {}
    # the steps on a sample of positions first: the data are copied only when they are
    # counts (as they are, or once the quantum is known)
    yx = sample_positions(raw.shape[:2])
    sample = gather(raw, yx)[:, None]
    sample = (sample if kept else np.asarray(preprocess(sample, steps).data))[:, 0]
    if sample.min() >= 0 and np.array_equal(sample, np.rint(sample)):
        return (None if unchanged else prepared()), {}   # integer counts stored as floats
    guess = float(dark.get("gain") or noise_model(sample, yx)[0])
    # the read noise measured on the dark pixels caps the coherence
    q, q_off, coh = count_quantum(sample, guess,
                                  read_noise=float(dark.get("read_noise") or 0.0))
    note = {"quantum": q, "quantum_offset": q_off, "coherence": coh,
            "coherence_min": QUANTUM_COHERENCE}
    if coh < QUANTUM_COHERENCE:
        return None, note                            # not counts: the test says so
    return as_counts(prepared(), q, q_off), note


def _prepare_input(data, config: AnalysisConfig, progress: Progress):
    """The input unwrapped and its calibration; checks that need no data values (a
    missing GPU, unreadable phases fail before the work); then preprocessing."""
    inp = as_input(data)
    validate_4d(inp.array)
    resolve_device(config.execution.device)
    calibration = resolve(config.calibration, inp.calibration)
    phases = None
    if config.index.phases:
        from .orientation import load_phases
        phases = load_phases(config.index)
        if calibration.reciprocal_scale is None:
            raise ConfigError("calibration.reciprocal_scale", None, "is needed to index the "
                              "clusters (--phases): give it, or a file with calibrated axes")
    arr, record, artifacts = preprocess(inp.array, config.preprocessing, seed=config.seed,
                                        device=config.execution.device, progress=progress)
    ky, kx = arr.shape[2:]
    if min(ky, kx) < MIN_PATTERN_SIZE:
        raise InputError(f"patterns of {ky}x{kx} pixels after preprocessing are too small: "
                         f"the IQA metrics need at least {MIN_PATTERN_SIZE}x{MIN_PATTERN_SIZE} "
                         "(use a smaller --bin or crop)")
    return arr, record, artifacts, calibration, phases, inp.array
