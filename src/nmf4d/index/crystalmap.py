"""The orientation map of a scan as an orix ``CrystalMap``, and its files.

Every position takes its cluster's phase and orientation (or its own, after
:func:`nmf4d.index.positions.refine_positions`); positions of background clusters and of
clusters that were not indexed are "not indexed" (phase id -1, orix's convention).
Files are written with orix (:func:`orix.io.save`): its HDF5 format (``orientation.h5``)
and EDAX TSL ``.ang`` (correlation as image quality, reliability as confidence index),
each to a temporary file in the same folder that then replaces the target
(``os.replace``), so a reader never sees a half-written file.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import InputError
from ._deps import require
from .core import IndexResult

_COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
            "tab:pink", "tab:olive", "tab:cyan", "tab:gray"]


def crystal_map(result: IndexResult, labels: np.ndarray, *, positions=None,
                step: tuple[float, float] = (1.0, 1.0), scan_unit: str = "px"):
    """Build the scan's orix ``CrystalMap``.

    Parameters
    ----------
    result : IndexResult
    labels : ndarray of shape (scan_y, scan_x), int
        Cluster of every position.
    positions : PositionOrientations, optional
        Per-position orientations (:func:`~nmf4d.index.positions.refine_positions`);
        default: each position its cluster's orientation.
    step : (dy, dx)
        Scan step (default 1 x 1).
    scan_unit : str
        Unit of ``step`` (default "px").

    Returns
    -------
    orix.crystal_map.CrystalMap
        Properties ``correlation``, ``reliability``, ``cluster`` and ``friedel`` (1 where
        the cluster's Friedel partner is possible), per position.
    """
    require()
    from orix.crystal_map import CrystalMap, Phase, PhaseList
    from orix.quaternion import Rotation

    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise InputError(f"labels must be 2D (scan_y, scan_x), got shape {lab.shape}")
    if lab.size and (lab.min() < 0 or lab.max() >= result.k):
        raise InputError(f"labels must lie in 0..{result.k - 1} (the clusters of the result)")
    sy, sx = lab.shape
    flat = lab.ravel()
    phase_id = result.phase_index[flat].astype(np.int64)
    euler = result.euler[flat]
    corr = result.correlation[flat]
    if positions is not None:
        if positions.euler.shape[:2] != (sy, sx):
            raise InputError(f"positions are for a {positions.euler.shape[:2]} scan, "
                             f"labels for {(sy, sx)}")
        own = np.isfinite(positions.euler.reshape(-1, 3)).all(axis=1) & (phase_id >= 0)
        euler = np.where(own[:, None], positions.euler.reshape(-1, 3), euler)
        corr = np.where(own, positions.correlation.ravel(), corr)
    euler = np.where(phase_id[:, None] >= 0, euler, 0.0)
    yy, xx = np.indices((sy, sx))
    phases = PhaseList()
    for i, p in enumerate(result.phases):
        phases.add(Phase(name=p.name, space_group=p.space_group, structure=p.structure,
                         color=_COLOURS[i % len(_COLOURS)]))
    prop = {"correlation": corr.astype(np.float64),
            "reliability": result.reliability[flat].astype(np.float64),
            "cluster": flat.astype(np.int64),
            "friedel": result.friedel[flat].astype(np.int64)}
    return CrystalMap(rotations=Rotation.from_euler(np.nan_to_num(euler)),
                      phase_id=phase_id, x=(xx.ravel() * step[1]).astype(np.float64),
                      y=(yy.ravel() * step[0]).astype(np.float64), phase_list=phases,
                      prop=prop, scan_unit=scan_unit)


def _atomic(path: Path, write) -> Path:
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"output folder {str(folder)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=folder)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def save_crystal_map(xmap, folder: str | os.PathLike, *, name: str = "orientation",
                     formats: tuple[str, ...] = ("h5", "ang")) -> dict[str, Path]:
    """Write ``xmap`` as ``folder/name.h5`` (orix HDF5) and ``folder/name.ang``.

    Parameters
    ----------
    xmap : orix.crystal_map.CrystalMap
        From :func:`crystal_map`.
    folder : path-like
        Existing folder.
    name : str
        File stem (default "orientation").
    formats : tuple of {"h5", "ang"}

    Returns
    -------
    dict format -> path written
    """
    require()
    from orix import io as oio

    bad = [f for f in formats if f not in ("h5", "ang")]
    if bad:
        raise InputError(f"formats: {bad[0]!r} is not allowed: choose from 'h5', 'ang'")
    out = {}
    for fmt in formats:
        target = Path(folder) / f"{name}.{fmt}"
        if fmt == "h5":
            out[fmt] = _atomic(target, lambda tmp: oio.save(tmp, xmap, overwrite=True))
        else:
            out[fmt] = _atomic(target, lambda tmp: oio.save(
                tmp, xmap, overwrite=True, image_quality_prop="correlation",
                confidence_index_prop="reliability"))
    return out
