"""The indexing stage: a phase and a crystal orientation for every cluster (``--phases``).

Glue between an analysis and :mod:`nmf4d.index` (optional extra ``nmf4d[index]``): the
run's calibration is brought to the factorised patterns (reciprocal scale times the
binning, beam centre after crop and binning), the clusters' component patterns are
indexed against the phases (background clusters are not indexed), optionally every
position is refined near its cluster's orientation, and the outputs are written:
the ``orientation/`` group of results.h5 (by :func:`nmf4d.results.write_results`), the
orix ``CrystalMap`` as ``OUT/orientation.h5`` and ``OUT/orientation.ang``, and the figures
``OUT/figures/orientation_*.png`` that the report shows.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError

#: Figures written beside the report (the report includes those that exist).
FIGURES = ("orientation_map", "orientation_phases", "orientation_patterns")


@dataclass
class Orientation:
    """The indexing of one analysis.

    Attributes
    ----------
    result : nmf4d.index.IndexResult
    positions : nmf4d.index.PositionOrientations or None
        Per-position orientations (``refine_positions``).
    """

    result: Any
    positions: Any = None


def load_phases(config) -> list:
    """The phases of an :class:`~nmf4d.config.IndexConfig`, read now (errors name the file)."""
    from .index import load_phases as _load

    return _load(list(config.phases), names=list(config.phase_names) or None)


def index_calibration(calibration, record: dict):
    """The :class:`nmf4d.index.Calibration` of the factorised patterns of a run."""
    from .index import Calibration as IndexCalibration

    scale, centre = calibration.pattern_geometry(record)
    if scale is None:
        raise ConfigError("calibration.reciprocal_scale", None,
                          "is needed to index the clusters: give it (1/Å per detector pixel) "
                          "or use a file whose detector axes are calibrated")
    return IndexCalibration(reciprocal_scale=float(np.mean(scale)),
                            voltage=calibration.voltage,
                            precession_angle=calibration.precession, beam_centre=centre)


def index_analysis(components: np.ndarray, labels: np.ndarray, background, calibration,
                   record: dict, config, *, data=None, phases=None,
                   progress=None) -> Orientation:
    """Index the clusters of an analysis.

    Parameters
    ----------
    components : ndarray of shape (k, ky, kx)
    labels : ndarray of shape (scan_y, scan_x)
    background : sequence of int
        Clusters not indexed.
    calibration : nmf4d.calibration.Calibration
    record : dict
        The preprocessing record.
    config : IndexConfig
    data : array of shape (scan_y, scan_x, ky, kx), optional
        The factorised data, needed for ``config.refine_positions``.
    phases : list, optional
        Already loaded phases (default: :func:`load_phases`).
    progress : nmf4d.execution.Progress, optional
    """
    from .index import index_clusters, refine_positions

    cal = index_calibration(calibration, record)
    phases = phases if phases is not None else load_phases(config)
    log = None if progress is None else (lambda stage, info=None: progress.event(
        f"index: {stage}", info))
    result = index_clusters(components, phases=phases, calibration=cal,
                            background=list(background), resolution=config.resolution,
                            merge_tolerance=config.merge_tolerance, progress=log)
    positions = None
    if config.refine_positions:
        if data is None:
            raise ConfigError("index.refine_positions", True,
                              "needs the data: refine positions during the run")
        positions = refine_positions(data, labels, result)
    return Orientation(result=result, positions=positions)


def write_orientation_files(folder, orientation: Orientation, labels: np.ndarray,
                            calibration) -> list[Path]:
    """``orientation.h5`` and ``orientation.ang`` (orix) and the report's figures."""
    from .index import (cluster_patterns_figure, crystal_map, orientation_map_figure,
                        phase_map_figure, save_crystal_map)

    folder = Path(folder)
    step = calibration.scan_step or (1.0, 1.0)
    unit = calibration.scan_units if calibration.scan_step else "px"
    xmap = crystal_map(orientation.result, labels, positions=orientation.positions,
                       step=step, scan_unit=unit)
    written = list(save_crystal_map(xmap, folder).values())
    figs = folder / "figures"
    figs.mkdir(exist_ok=True)
    for name, fig in (("orientation_map", orientation_map_figure(
            orientation.result, labels, positions=orientation.positions)),
            ("orientation_phases", phase_map_figure(orientation.result, labels)),
            ("orientation_patterns", cluster_patterns_figure(orientation.result))):
        path = figs / f"{name}.png"
        fig.savefig(path, dpi=110)
        written.append(path)
    return written


def index_results(out_dir, config, *, progress=None) -> Orientation:
    """Index the clusters of an existing results folder (``nmf4d index OUT``).

    Reads ``OUT/results.h5`` (components, labels, background, calibration, preprocessing
    record), indexes with ``config.index`` and ``config.calibration`` (given fields win
    over the recorded calibration), and writes the ``orientation/`` group into results.h5
    (atomically: a copy is written, then renamed), ``orientation.h5``/``.ang`` and the
    figures. ``config.index.refine_positions`` re-opens the recorded input and applies the
    recorded preprocessing.

    Parameters
    ----------
    out_dir : path-like
    config : AnalysisConfig
        The run's settings with the indexing options (see
        :func:`nmf4d.config.config_from_record`).
    progress : Progress, optional
    """
    import json
    import os
    import shutil
    import tempfile

    import h5py

    from .calibration import Calibration, resolve
    from .errors import InputError
    from .index import write_orientation_group
    from .results import read_results

    out = Path(out_dir)
    r = read_results(out)
    attrs = r["attrs"]
    recorded = Calibration.from_json(attrs.get("calibration", "{}"))
    found = {k: getattr(recorded, k) for k in ("scan_step", "scan_units", "reciprocal_scale",
                                               "voltage", "precession", "beam_centre")
             if getattr(recorded, k) is not None}
    found["sources"] = dict(recorded.sources)
    calibration = resolve(config.calibration, found)
    record = json.loads(attrs.get("preprocessing", "{}"))
    background = [int(b) for b in np.atleast_1d(attrs.get("background", []))]
    data = None
    if config.index.refine_positions:
        data = _recorded_data(attrs, record, config)
    phases = load_phases(config.index)
    o = index_analysis(r["components"], r["labels"], background, calibration, record,
                       config.index, data=data, phases=phases, progress=progress)
    target = out / "results.h5"
    fd, tmp = tempfile.mkstemp(prefix=".results-", suffix=".h5", dir=out)
    os.close(fd)
    try:
        shutil.copyfile(target, tmp)
        with h5py.File(tmp, "a") as f:
            write_orientation_group(f, o.result, positions=o.positions)
            f.attrs["calibration"] = calibration.to_json()
        os.replace(tmp, target)
    except OSError as e:
        raise InputError(f"cannot write {target}: {e.strerror}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    write_orientation_files(out, o, r["labels"], calibration)
    return o


def _recorded_data(attrs: dict, record: dict, config):
    """The recorded input, opened again and preprocessed as the run did."""
    import json

    from .errors import InputError
    from .io import open_dataset
    from .preprocess import preprocess

    info = json.loads(attrs.get("input_info", "{}") or "{}")
    path = attrs.get("input", "")
    if not path or str(path).startswith(("synthetic:", "suite:", "signal")):
        raise InputError("--refine-positions needs the input data, and this results file "
                         f"records no input file ({path!r}): refine during the run instead")
    ds = open_dataset(path, dataset=info.get("dataset"), scan_shape=info.get("scan_shape"))
    x, rec, _ = preprocess(ds.data, config.preprocessing, seed=config.seed, device="cpu")
    if rec["output_shape"] != record.get("output_shape"):
        raise InputError(f"the input {path} no longer gives the factorised shape "
                         f"{record.get('output_shape')} (got {rec['output_shape']})")
    return x
