"""The results as HyperSpy signals, with calibrated axes (optional extra ``nmf4d[hyperspy]``).

:func:`to_signals` gives the maps with the scan axes and the patterns with the detector
axes of the factorised patterns (after crop and binning), calibrated from the run's
:class:`~nmf4d.calibration.Calibration` where it is known:

=================  ============================================  =========================
name               signal (navigation | signal)                  axes
=================  ============================================  =========================
``weights``        Signal2D (component | scan_y, scan_x)         scan
``labels``         Signal2D (| scan_y, scan_x), int32            scan
``ratio``          Signal2D (| scan_y, scan_x)                   scan (overlap ratio)
``components``     Signal2D (component | ky, kx), sum 1 each     detector
``cluster_means``  Signal2D (cluster | ky, kx)                   detector (mean raw pattern)
``nmf_patterns``   Signal2D (cluster | ky, kx)                   detector (component x max weight)
=================  ============================================  =========================

:func:`save_signals` writes them as ``OUT/signals/<name>.hspy`` (or ``.zspy``), which
``hyperspy.api.load`` opens.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, MissingDependencyError

#: File formats of :func:`save_signals`.
SIGNAL_FORMATS = ("hspy", "zspy")


def _hyperspy():
    try:
        import hyperspy.api as hs
    except ImportError:
        raise MissingDependencyError("HyperSpy signals", "HyperSpy", "hyperspy") from None
    return hs


def detector_axes(calibration, record: dict, pattern_shape) -> list[dict]:
    """Axes (ky, kx) of the factorised patterns: scale, offset (0 at the direct beam
    when its centre is known) and units; pixels when uncalibrated.

    Parameters
    ----------
    calibration : Calibration
        Reciprocal scale and beam centre per *input* detector pixel.
    record : dict
        The preprocessing record (``crop``, ``centre_crop``, ``bin``).
    pattern_shape : (int, int)
    """
    scale, centre = calibration.pattern_geometry(record)
    out = []
    for i, (name, n) in enumerate((("ky", pattern_shape[0]), ("kx", pattern_shape[1]))):
        if scale is None:
            out.append({"name": name, "size": int(n), "scale": 1.0, "offset": 0.0,
                        "units": "px"})
            continue
        offset = 0.0 if centre is None else -centre[i] * scale[i]
        out.append({"name": name, "size": int(n), "scale": float(scale[i]),
                    "offset": float(offset), "units": calibration.reciprocal_units})
    return out


def scan_axes(calibration, scan_shape) -> list[dict]:
    """Axes (scan_y, scan_x): the scan step and units, or pixels."""
    step = calibration.scan_step
    return [{"name": name, "size": int(n), "scale": float(step[i]) if step else 1.0,
             "offset": 0.0, "units": calibration.scan_units if step else "px"}
            for i, (name, n) in enumerate((("y", scan_shape[0]), ("x", scan_shape[1])))]


def _signal(hs, data: np.ndarray, sig_axes: list[dict], nav_name: str | None, title: str):
    s = hs.signals.Signal2D(np.asarray(data))
    s.metadata.General.title = title
    am = s.axes_manager
    sig = list(am.signal_axes)[::-1]                       # (y, x) order
    for ax, spec in zip(sig, sig_axes):
        ax.name, ax.scale, ax.offset, ax.units = spec["name"], spec["scale"], \
            spec["offset"], spec["units"]
    if nav_name is not None:
        am.navigation_axes[0].name = nav_name
    return s


def to_signals(analysis) -> dict[str, Any]:
    """HyperSpy signals of an :class:`~nmf4d.pipeline.Analysis` (see the module docstring).

    Returns
    -------
    dict of str -> hyperspy.signals.Signal2D
    """
    hs = _hyperspy()
    a = analysis
    scan = scan_axes(a.calibration, a.labels.shape)
    det = detector_axes(a.calibration, a.preprocessing, a.components.shape[1:])
    sig = {"weights": _signal(hs, a.weights, scan, "component", "NMF weights"),
           "labels": _signal(hs, a.labels.astype(np.int32), scan, None, "cluster map"),
           "ratio": _signal(hs, a.ratio, scan, None, "overlap ratio (second / largest)"),
           "components": _signal(hs, a.components, det, "component", "NMF components"),
           "cluster_means": _signal(hs, a.clusters["raw_mean"], det, "cluster",
                                    "mean raw pattern per cluster"),
           "nmf_patterns": _signal(hs, a.clusters["nmf_pattern"], det, "cluster",
                                   "NMF pattern per cluster")}
    for s in sig.values():
        s.metadata.set_item("Acquisition_instrument.TEM.beam_energy", a.calibration.voltage)
        s.metadata.set_item("Acquisition_instrument.TEM.rocking_angle", a.calibration.precession)
    return sig


def check_format(fmt: str) -> str:
    """Validate a signal file format (``hspy`` or ``zspy``, the latter needing zarr < 3
    with rosettasciio 0.15)."""
    if fmt not in SIGNAL_FORMATS:
        raise ConfigError("save_signals", fmt, "is not allowed: choose hspy or zspy")
    if fmt == "zspy":
        import zarr
        if int(zarr.__version__.split(".")[0]) >= 3:
            import rsciio
            if tuple(int(v) for v in rsciio.__version__.split(".")[:2]) <= (0, 15):
                raise ConfigError("save_signals", fmt, f"rosettasciio {rsciio.__version__} "
                                  f"cannot write .zspy with zarr {zarr.__version__}; use hspy")
    return fmt


def save_signals(folder, analysis, fmt: str = "hspy") -> list[Path]:
    """Write :func:`to_signals` as ``folder/signals/<name>.<fmt>``; returns the paths."""
    check_format(fmt)
    out = Path(folder) / "signals"
    out.mkdir(exist_ok=True)
    paths = []
    for name, s in to_signals(analysis).items():
        path = out / f"{name}.{fmt}"
        s.save(str(path), overwrite=True)
        paths.append(path)
    return paths
