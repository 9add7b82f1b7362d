"""Per-position orientations: each pattern refined locally about its cluster's orientation.

A cluster's orientation is the average over a grain; inside a grain the lattice may
bend. :func:`refine_positions` refines every position's own pattern about its cluster's
solution (local grid search only, :mod:`.refine`, no template search: the cluster
fixes the phase and the Friedel branch), streaming the data in row blocks so that a scan
larger than memory is never loaded whole.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import InputError
from .core import IndexResult
from .prepare import prepare_pattern
from .refine import Geometry, refine
from .search import _euler_of_matrix, _matrix_of_euler


@dataclass
class PositionOrientations:
    """Orientation of every scan position.

    Attributes
    ----------
    phase_index : ndarray of shape (scan_y, scan_x), int
        The cluster's phase; -1 where the cluster is not indexed.
    euler : ndarray of shape (scan_y, scan_x, 3), radians (NaN where not indexed)
    correlation : ndarray of shape (scan_y, scan_x)
    deviation : ndarray of shape (scan_y, scan_x)
        Rotation angle in degrees from the cluster's orientation (no symmetry needed:
        the refinement stays near it).
    timings : dict of seconds
    """

    phase_index: np.ndarray
    euler: np.ndarray
    correlation: np.ndarray
    deviation: np.ndarray
    timings: dict = field(default_factory=dict)


def _block(data, r0: int, r1: int) -> np.ndarray:
    part = data[r0:r1]
    if hasattr(part, "compute"):
        part = part.compute()
    return np.asarray(part, dtype=np.float64)


def refine_positions(data, labels, result: IndexResult, *, span: float | None = None,
                     levels: int = 4, block_rows: int | None = None,
                     progress: Callable[[int, int], None] | None = None
                     ) -> PositionOrientations:
    """Refine the orientation of every position near its cluster's orientation.

    Parameters
    ----------
    data : array-like of shape (scan_y, scan_x, ky, kx)
        The patterns (numpy, dask, h5py or zarr array: read one row block at a time),
        with the detector geometry of the indexed components.
    labels : ndarray of shape (scan_y, scan_x), int
        Cluster of every position (e.g. ``Analysis.labels``).
    result : IndexResult
        From :func:`nmf4d.index.index_clusters` on these clusters' components.
    span : float, optional
        Half-width in degrees of the local search (default twice the template
        resolution).
    levels : int
        Grid levels (default 4: final step ~1 % of ``span``).
    block_rows : int, optional
        Scan rows read at once (default: blocks of about 64 MB).
    progress : callable, optional
        ``progress(rows_done, scan_y)`` after each block.

    Returns
    -------
    PositionOrientations

    Raises
    ------
    InputError
        Shapes that do not match the labels or the components.
    """
    shape = tuple(getattr(data, "shape", ()))
    if len(shape) != 4:
        raise InputError(f"data must be 4D (scan_y, scan_x, ky, kx), got shape {shape}")
    sy, sx, ky, kx = shape
    lab = np.asarray(labels)
    if lab.shape != (sy, sx):
        raise InputError(f"labels have shape {lab.shape}, the scan is {(sy, sx)}")
    if (ky, kx) != result.prepared.shape[1:]:
        raise InputError(f"patterns are {ky}x{kx} pixels, the indexed components "
                         f"{result.prepared.shape[1]}x{result.prepared.shape[2]}")
    if lab.min() < 0 or lab.max() >= result.k:
        raise InputError(f"labels must lie in 0..{result.k - 1}")
    if int(levels) < 1:
        raise InputError(f"levels must be >= 1, got {levels!r}")
    span = 2.0 * result.resolution if span is None else float(span)
    if not (span > 0):
        raise InputError(f"span must be > 0 degrees, got {span!r}")
    if block_rows is None:
        block_rows = max(1, int(64e6 // max(1, sx * ky * kx * 8)))
    if result.templates is not None:
        refl = [pt.reflections for pt in result.templates.phases]
    else:
        from .kinematics import reflections

        refl = [reflections(p, reciprocal_radius=result.reciprocal_radius)
                for p in result.phases]
    start = {c: _matrix_of_euler(result.euler[c]) for c in range(result.k)
             if result.phase_index[c] >= 0}
    phase = np.where(result.phase_index[lab] >= 0, result.phase_index[lab], -1)
    euler = np.full((sy, sx, 3), np.nan)
    corr = np.zeros((sy, sx))
    dev = np.full((sy, sx), np.nan)
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    with threadpool_limits(limits=1):       # small arrays: see index_clusters
        _refine_blocks(data, lab, result, refl, start, euler, corr, dev, block_rows,
                       span, int(levels), progress)
    return PositionOrientations(phase_index=phase.astype(np.int64), euler=euler,
                                correlation=corr, deviation=dev,
                                timings={"total": time.perf_counter() - t0})


def _refine_blocks(data, lab, result, refl, start, euler, corr, dev, block_rows, span,
                   levels, progress) -> None:
    """Refine every indexed position, one block of ``block_rows`` scan rows at a time."""
    sy, sx, ky, kx = data.shape
    cal, prep = result.calibration, result.preparation
    wavelength = cal.wavelength
    for r0 in range(0, sy, block_rows):
        r1 = min(sy, r0 + block_rows)
        block = _block(data, r0, r1)
        for y in range(r0, r1):
            for x in range(sx):
                c = int(lab[y, x])
                if c not in start:
                    continue
                prepared = prepare_pattern(block[y - r0, x], cal, options=prep)
                geo = Geometry(prepared=prepared, centre=cal.centre((ky, kx)),
                               scale=cal.reciprocal_scale, wavelength=wavelength,
                               max_excitation_error=result.max_excitation_error,
                               precession_angle=cal.precession_angle, gamma=prep.gamma,
                               sigma=prep.spot_sigma)
                m, s = refine(refl[result.phase_index[c]], start[c], geo, span=span,
                              levels=levels)
                euler[y, x] = _euler_of_matrix(m)
                corr[y, x] = s
                cosang = (np.trace(start[c].T @ m) - 1) / 2
                dev[y, x] = np.degrees(np.arccos(np.clip(cosang, -1, 1)))
        if progress is not None:
            progress(r1, sy)

