"""What ``analyse`` accepts as data, and the calibration that comes with it.

A numpy or dask array ``(scan_y, scan_x, ky, kx)`` carries no calibration; an
:class:`nmf4d.io.Dataset` (from :func:`nmf4d.io.open_dataset`) carries its file's axes and
metadata; a HyperSpy ``Signal2D`` or a pyxem ``Diffraction2D`` / ``ElectronDiffraction2D``
(lazy or not) carries its axes manager and metadata. Nothing of HyperSpy is imported here:
a signal is recognised by its class's module and used through its attributes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .calibration import from_axes
from .errors import InputError


@dataclass
class InputData:
    """The array to analyse and what its container said about it.

    Attributes
    ----------
    array : ndarray or dask array of shape (scan_y, scan_x, ky, kx)
    calibration : dict
        Calibration fields found (see :func:`nmf4d.calibration.from_axes`).
    kind : str
        "array", "dataset" or "signal".
    """

    array: Any
    calibration: dict = field(default_factory=dict)
    kind: str = "array"


def is_signal(data: Any) -> bool:
    """True for a HyperSpy (or pyxem) signal, without importing HyperSpy."""
    mod = type(data).__module__ or ""
    return hasattr(data, "axes_manager") and mod.split(".")[0] in ("hyperspy", "pyxem")


def signal_axes(signal: Any) -> list[dict]:
    """The axes of a signal with 2 navigation and 2 signal dimensions, in array order
    (scan_y, scan_x, ky, kx), as dicts of ``name``, ``size``, ``scale``, ``offset``,
    ``units``, ``navigate``."""
    am = signal.axes_manager
    nav, sig = list(am.navigation_axes), list(am.signal_axes)
    if len(nav) != 2 or len(sig) != 2:
        raise InputError(f"data: a signal with 2 navigation (scan) and 2 signal (detector) "
                         f"dimensions is needed, got {len(nav)} and {len(sig)} "
                         f"(shape {signal.axes_manager.shape})")
    ordered = nav[::-1] + sig[::-1]           # HyperSpy lists x before y
    return [{"name": str(a.name), "size": int(a.size), "scale": float(a.scale),
             "offset": float(a.offset), "units": "" if a.units in (None, "<undefined>")
             else str(a.units), "navigate": i < 2} for i, a in enumerate(ordered)]


def as_input(data: Any) -> InputData:
    """Unwrap ``data`` into the array to analyse and the calibration it carries."""
    from .io import Dataset

    if isinstance(data, Dataset):
        meta = data.metadata.get("rsciio_metadata") or {}
        return InputData(data.data, from_axes(data.metadata.get("axes"), meta), "dataset")
    if is_signal(data):
        axes = signal_axes(data)
        meta = data.metadata.as_dictionary() if hasattr(data.metadata, "as_dictionary") else {}
        return InputData(data.data, from_axes(axes, meta, source="signal"), "signal")
    return InputData(data)
