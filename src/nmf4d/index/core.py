"""``index_clusters``: phase and orientation of every NMF component pattern.

The k component patterns of an NMF fit are clean, noise-averaged patterns of the k
orientations present, so indexing them costs k template searches instead of one per scan
position (what ASTAR, pyxem and py4DSTEM do) and works at doses where single patterns
are too noisy. Steps: prepare each pattern (:mod:`.prepare`), build the template bank
of every phase (:mod:`.templates`), search and refine (:mod:`.search`), optionally
search the reciprocal scale (below), then misorientations between clusters and groups of
clusters with one orientation (:mod:`.symmetry`).

Scale search (:mod:`.scale`): when the median correlation of the indexed clusters at the
given scale is below ``scale_search_below`` (or always with ``scale_search=True``).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..errors import InputError
from ._deps import require
from .calibration import Calibration
from .matching import polar_of, spot_matrices
from .prepare import Preparation, prepare_patterns
from .scale import search_scale
from .search import Match, index_pattern, solution_spots
from .symmetry import merge_clusters, misorientation_matrix, reduce_euler
from .templates import DEFAULT_EXCITATION_ERROR, TemplateBank, build_templates


@dataclass
class IndexResult:
    """Phase and orientation of every cluster (component pattern).

    Attributes
    ----------
    phases : list of orix.crystal_map.Phase
    phase_index : ndarray of shape (k,), int
        Index into ``phases``; -1 for background clusters (not indexed).
    phase : ndarray of shape (k,), str
        Phase name, ``"not indexed"`` for background clusters.
    euler : ndarray of shape (k, 3), float64
        Bunge ZXZ Euler angles in radians (orix convention, in orix's fundamental zone of
        the phase's proper point group): the rotation that, given to diffsims'
        ``calculate_diffraction2d``, reproduces the pattern, whose pixel ``(row, col)``
        shows lab ``(y, x)`` (see :mod:`.calibration`). NaN for background clusters.
    correlation : ndarray of shape (k,)
        Refined cosine similarity of pattern and template (1: identical).
    reliability : ndarray of shape (k,)
        ``1 - second / correlation``; ``second`` is the best *distinct* solution (other
        phase, or more than ``tolerance`` away from the solution and its Friedel
        partner).
    second_correlation : ndarray of shape (k,)
    second_phase : ndarray of shape (k,), int
    friedel : ndarray of shape (k,), bool
        The solution turned 180 degrees about the beam is not symmetry-equivalent and
        fits within ``friedel_margin``: both are possible (``friedel_euler``).
    friedel_euler : ndarray of shape (k, 3), radians (fundamental zone)
    friedel_correlation : ndarray of shape (k,)
    misorientation : ndarray of shape (k, k), degrees
        With crystal symmetry; NaN between different phases and for background.
    groups : list of list of int
        Clusters within ``merge_tolerance`` of each other (same phase).
    background : list of int
    calibration : Calibration
        As used (with the searched scale if a scale search ran).
    scale_searched : bool
    scale_scores : ndarray of shape (n, 3)
        (scale, mean best coarse score, mean refined correlation) of every scale tried
        (NaN where not computed; empty if no search ran).
    resolution, tolerance, merge_tolerance, friedel_margin : float
    max_excitation_error : float, Å⁻¹
    preparation : Preparation (with the beam radius used)
    prepared : ndarray of shape (k, ky, kx)
        The patterns as matched (background removed, see :mod:`.prepare`).
    coarse : ndarray of shape (k,)
        Best coarse score per cluster.
    n_templates : dict of int per phase
    min_correlation : float
        Clusters whose best correlation is below it are reported as not indexed.
    reciprocal_radius : float, Å⁻¹ (of the templates)
    spots : list of ndarray (s, 6) or None
        Per cluster, the spots of its solution: ``row, col`` (pixels), intensity
        (kinematic, relative to the strongest) and ``h, k, l``; None if not indexed.
    templates : TemplateBank
        The bank used (reusable: ``index_clusters(..., templates=result.templates)``).
    timings : dict of float, seconds (``templates``, ``prepare``, ``match``,
        ``scale_search``, ``total``)
    """

    phases: list
    phase_index: np.ndarray
    phase: np.ndarray
    euler: np.ndarray
    correlation: np.ndarray
    reliability: np.ndarray
    second_correlation: np.ndarray
    second_phase: np.ndarray
    friedel: np.ndarray
    friedel_euler: np.ndarray
    friedel_correlation: np.ndarray
    misorientation: np.ndarray
    groups: list
    background: list
    calibration: Calibration
    scale_searched: bool
    scale_scores: np.ndarray
    resolution: float
    tolerance: float
    merge_tolerance: float
    friedel_margin: float
    max_excitation_error: float
    preparation: Preparation
    prepared: np.ndarray
    coarse: np.ndarray
    n_templates: dict
    min_correlation: float = 0.0
    reciprocal_radius: float = 0.0
    spots: list = field(default_factory=list, repr=False)
    templates: TemplateBank | None = field(default=None, repr=False)
    timings: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        """Number of clusters."""
        return len(self.phase_index)

    @property
    def phase_names(self) -> list[str]:
        """Names of ``phases``."""
        return [p.name for p in self.phases]

    def indexed(self) -> np.ndarray:
        """Boolean (k,): clusters given a phase."""
        return self.phase_index >= 0


def _as_phases(phases) -> list:
    require()
    from orix.crystal_map import Phase

    from .phases import load_phases

    if isinstance(phases, (str, os.PathLike)):
        return load_phases(phases)
    phases = list(phases)
    if not phases:
        raise InputError("phases: at least one phase (CIF file or orix Phase) is needed")
    out = []
    for p in phases:
        if isinstance(p, Phase):
            if p.structure is None or len(p.structure) == 0:
                raise InputError(f"phase {p.name!r} has no atoms: templates need a structure")
            out.append(p)
        else:
            out.extend(load_phases([p]))
    names = [p.name for p in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"phases: the name {dup[0]!r} is used twice")
    return out


def _check_components(components) -> np.ndarray:
    arr = np.asarray(components)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise InputError(f"components must be 3D (k, ky, kx), got shape {arr.shape}")
    if min(arr.shape[1:]) < 16:
        raise InputError(f"components of {arr.shape[1]}x{arr.shape[2]} pixels are too small "
                         "to index (need at least 16x16)")
    if not np.all(np.isfinite(arr)):
        raise InputError("components contain NaN or infinite values")
    return arr.astype(np.float64)


def _check_background(background, k: int) -> list[int]:
    out = []
    for b in background or ():
        try:
            i = int(b)
        except (TypeError, ValueError):
            raise InputError(f"background must be cluster indices, got {b!r}") from None
        if not 0 <= i < k:
            raise InputError(f"background index {i} is out of range 0..{k - 1}")
        out.append(i)
    return sorted(set(out))


def _workers(workers, n_tasks: int) -> int:
    if workers is None:
        workers = os.cpu_count() or 1
    try:
        w = int(workers)
    except (TypeError, ValueError):
        raise InputError(f"workers must be a positive integer or None, got {workers!r}") from None
    if w < 1:
        raise InputError(f"workers must be >= 1, got {workers!r}")
    return max(1, min(w, n_tasks))


def _map(fn, items, n_workers: int) -> list:
    """``[fn(x) for x in items]`` on ``n_workers`` threads (the per-pattern work is many
    small array operations that release the GIL)."""
    if n_workers <= 1:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        return list(pool.map(fn, items))


def index_clusters(components, *, phases, calibration: Calibration,
                   background: Sequence[int] = (), resolution: float = 1.0,
                   preparation: Preparation | None = None,
                   max_excitation_error: float = DEFAULT_EXCITATION_ERROR,
                   tolerance: float = 2.0, merge_tolerance: float | None = None,
                   friedel_margin: float = 0.1, n_candidates: int = 8,
                   min_correlation: float = 0.4, workers: int | None = None,
                   scale_search: bool | str = "auto", scale_search_below: float = 0.5,
                   scale_range: float = 0.10, scale_step: float = 0.02,
                   templates: TemplateBank | None = None,
                   progress: Callable[[str, object], None] | None = None) -> IndexResult:
    """Phase and crystal orientation of each cluster's component pattern.

    Parameters
    ----------
    components : array-like of shape (k, ky, kx)
        Component patterns (NMF components, e.g. ``Analysis.components``; any positive
        scaling), with the direct beam still in them: it is masked here.
    phases : sequence of CIF paths or orix Phases, or a comma-separated string
        The candidate phases (see :func:`nmf4d.index.load_phases`).
    calibration : Calibration
        Reciprocal scale (of the patterns as given, i.e. after any binning), voltage,
        precession angle, beam centre.
    background : sequence of int
        Clusters not to index (vacuum, amorphous film); reported as not indexed.
    resolution : float
        Template sampling in degrees, of beam directions and in-plane angles (default 1).
    preparation : Preparation, optional
        Beam mask radius, gamma, spot width (see :mod:`nmf4d.index.prepare`).
    max_excitation_error : float
        Rel-rod width of the templates in Å⁻¹ (diffsims; ~1/thickness; default 0.02).
    tolerance : float
        Degrees: solutions closer than this are the same (reliability, Friedel check).
    merge_tolerance : float, optional
        Degrees for :attr:`IndexResult.groups` (default ``tolerance``).
    friedel_margin : float
        Relative margin for the Friedel flag (default 0.1).
    n_candidates : int
        Distinct coarse candidates refined per pattern (default 8).
    min_correlation : float
        Clusters whose best correlation is below it are reported as not indexed (default
        0.4: on the simulated benchmark scans, crystal clusters score 0.6-0.85 and a
        film-only cluster 0.2-0.35). Their correlation stays in the result.
    scale_search : "auto", True or False
        Search the reciprocal scale: when the indexing is poor ("auto"), always, never.
    scale_search_below : float
        "auto" searches when the median correlation of indexed clusters is below it.
    scale_range, scale_step : float
        Relative half-range and step of the scale search (default +-10 % in 2 % steps).
    workers : int, optional
        Threads matching clusters in parallel (default: one per CPU core).
    templates : TemplateBank, optional
        A bank built beforehand for these phases and geometry (reused across calls).
    progress : callable, optional
        ``progress(stage, info)``.

    Returns
    -------
    IndexResult

    Raises
    ------
    InputError
        Bad components, phases, calibration or options (the message names them);
        diffsims/orix missing (``pip install "nmf4d[index]"``).
    """
    require()
    from threadpoolctl import threadpool_limits

    # every array here is small (3x3 rotations, a pattern, a few hundred spots): a
    # multi-threaded BLAS spends more time waking its threads than computing (a 16k-
    # element dot took 13 ms on a loaded 2-core machine), so BLAS runs single-threaded
    # and the parallelism is over clusters (``workers``)
    with threadpool_limits(limits=1):
        return _index_clusters(
            components, phases=phases, calibration=calibration, background=background,
            resolution=resolution, preparation=preparation,
            max_excitation_error=max_excitation_error, tolerance=tolerance,
            merge_tolerance=merge_tolerance, friedel_margin=friedel_margin,
            n_candidates=n_candidates, min_correlation=min_correlation, workers=workers,
            scale_search=scale_search, scale_search_below=scale_search_below,
            scale_range=scale_range, scale_step=scale_step, templates=templates,
            progress=progress)


def _index_clusters(components, *, phases, calibration, background, resolution,
                    preparation, max_excitation_error, tolerance, merge_tolerance,
                    friedel_margin, n_candidates, min_correlation, workers, scale_search,
                    scale_search_below, scale_range, scale_step, templates,
                    progress) -> IndexResult:
    t_all = time.perf_counter()
    say = progress or (lambda stage, info=None: None)
    comps = _check_components(components)
    k, ky, kx = comps.shape
    if not isinstance(calibration, Calibration):
        raise InputError(f"calibration must be a nmf4d.index.Calibration, got "
                         f"{type(calibration).__name__}")
    if scale_search not in ("auto", True, False):
        raise InputError(f"scale_search must be 'auto', True or False, got {scale_search!r}")
    if not (0 < scale_step <= scale_range <= 0.5):
        raise InputError(f"scale_range={scale_range!r}, scale_step={scale_step!r}: need "
                         "0 < scale_step <= scale_range <= 0.5")
    if not (tolerance > 0):
        raise InputError(f"tolerance must be > 0 degrees, got {tolerance!r}")
    if not (0 <= friedel_margin < 1):
        raise InputError(f"friedel_margin must lie in [0, 1), got {friedel_margin!r}")
    if not (0 <= min_correlation < 1):
        raise InputError(f"min_correlation must lie in [0, 1), got {min_correlation!r}")
    if int(n_candidates) < 1:
        raise InputError(f"n_candidates must be >= 1, got {n_candidates!r}")
    bg = _check_background(background, k)
    timings: dict[str, float] = {}

    t = time.perf_counter()
    if templates is None:
        phase_list = _as_phases(phases)
        templates = build_templates(phase_list, calibration, pattern_shape=(ky, kx),
                                    resolution=resolution,
                                    max_excitation_error=max_excitation_error,
                                    scale_margin=scale_range if scale_search else 0.0)
    elif tuple(templates.pattern_shape) != (ky, kx):
        raise InputError(f"templates were built for {templates.pattern_shape} patterns, "
                         f"components are {(ky, kx)}")
    bank = templates
    phase_list = [p.phase for p in bank.phases]
    timings["templates"] = time.perf_counter() - t
    say("templates", {p.phase.name: p.size for p in bank.phases})

    prep = preparation or Preparation()
    if prep.beam_radius is None:
        prep = Preparation(beam_radius=round(0.5 * bank.innermost_radius(), 2),
                           gamma=prep.gamma, spot_sigma=prep.spot_sigma)
    t = time.perf_counter()
    prepared = prepare_patterns(comps, calibration, options=prep)
    timings["prepare"] = time.perf_counter() - t
    rows = [c for c in range(k) if c not in bg and np.any(prepared[c])]

    n_workers = _workers(workers, len(rows))

    def run(scale: float) -> dict[int, Match]:
        n_r = polar_of(prepared[rows[0]], calibration, bank.n_angles).shape[0] if rows else 1
        mats = spot_matrices(bank, scale=scale, n_radii=n_r, gamma=prep.gamma)

        def one(c):
            m = index_pattern(prepared[c], bank, scale=scale, gamma=prep.gamma,
                              sigma=prep.spot_sigma, matrices=mats,
                              n_candidates=int(n_candidates), tolerance=tolerance,
                              friedel_margin=friedel_margin)
            say("cluster", c)
            return m

        return dict(zip(rows, _map(one, rows, n_workers)))

    t = time.perf_counter()
    scale = calibration.reciprocal_scale
    matches = run(scale)
    timings["match"] = time.perf_counter() - t
    searched, table = False, np.zeros((0, 3))
    quality = float(np.median([m.correlation for m in matches.values()])) if matches else 0.0
    if rows and (scale_search is True or (scale_search == "auto"
                                          and quality < scale_search_below)):
        t = time.perf_counter()
        strongest = sorted(rows, key=lambda c: -matches[c].coarse)[:6]
        best, table = search_scale(prepared, bank, prep, strongest, base=scale,
                                    scale_range=scale_range, scale_step=scale_step)
        searched = True
        if best != scale:
            scale = best
            matches = run(scale)
        timings["scale_search"] = time.perf_counter() - t
        say("scale", scale)
    cal_used = calibration.with_scale(scale)

    pidx = np.full(k, -1, np.int64)
    euler = np.full((k, 3), np.nan)
    feuler = np.full((k, 3), np.nan)
    corr, rel, sec, fcorr, coarse = (np.zeros(k) for _ in range(5))
    sec_p = np.full(k, -1, np.int64)
    fried = np.zeros(k, bool)
    for c, m in matches.items():
        corr[c], coarse[c] = m.correlation, m.coarse
        pidx[c] = m.phase if m.correlation >= min_correlation else -1
        if pidx[c] < 0:
            continue
        euler[c], feuler[c] = m.euler, m.friedel_euler
        rel[c], sec[c], sec_p[c] = m.reliability, m.second, m.second_phase
        fried[c], fcorr[c] = m.friedel, m.friedel_correlation
    for p, ph in enumerate(phase_list):       # into orix's fundamental zone, one call each
        sel = np.flatnonzero(pidx == p)
        if len(sel):
            both = reduce_euler(np.concatenate([euler[sel], feuler[sel]]), ph)
            euler[sel], feuler[sel] = both[:len(sel)], both[len(sel):]
    names = np.array([phase_list[p].name if p >= 0 else "not indexed" for p in pidx],
                     dtype=object)
    spots = [solution_spots(bank, int(pidx[c]), euler[c], cal_used, (ky, kx))
             if pidx[c] >= 0 else None for c in range(k)]
    mis = misorientation_matrix(euler, pidx, phase_list, exclude=bg)
    mt = tolerance if merge_tolerance is None else float(merge_tolerance)
    groups = merge_clusters(mis, tolerance=mt)
    timings["total"] = time.perf_counter() - t_all
    return IndexResult(phases=phase_list, phase_index=pidx, phase=names, euler=euler,
                       correlation=corr, reliability=rel, second_correlation=sec,
                       second_phase=sec_p, friedel=fried, friedel_euler=feuler,
                       friedel_correlation=fcorr, misorientation=mis, groups=groups,
                       background=bg, calibration=cal_used, scale_searched=searched,
                       scale_scores=table, resolution=bank.resolution, tolerance=tolerance,
                       merge_tolerance=mt, friedel_margin=friedel_margin,
                       max_excitation_error=bank.max_excitation_error, preparation=prep,
                       prepared=prepared, coarse=coarse,
                       n_templates={p.phase.name: p.size for p in bank.phases},
                       min_correlation=float(min_correlation),
                       reciprocal_radius=float(bank.reciprocal_radius), spots=spots,
                       templates=bank, timings=timings)
