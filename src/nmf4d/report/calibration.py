"""Calibration of the scan and of the detector, as recorded in ``OUT/results.h5``.

Layout: the root attribute ``calibration`` of the results file, a JSON object (every
key optional; a missing part means that space is shown in pixels)::

    {"scan_step": [2.5, 2.5],          # distance between neighbouring scan positions (y, x)
     "scan_units": "nm",
     "reciprocal_scale": [0.02, 0.02],  # reciprocal-space size of one INPUT detector pixel (y, x)
     "reciprocal_units": "1/Å",
     "source": "--scan-step / --reciprocal-scale"}   # free text: where the values came from

``scan_step`` and ``reciprocal_scale`` may also be single numbers (square pixels).
``reciprocal_scale`` is per pixel of the *input* detector (what file metadata and the
microscope give): the report multiplies it by the detector binning of the
preprocessing (the ``bin`` of the root attribute ``preprocessing``) and by the
explorer's display binning. Cropping does not change it.

Runs write :meth:`nmf4d.calibration.Calibration.to_json` (tests and benchmarks may use
:func:`calibration_json` for the minimal form); the report reads with
:func:`parse_calibration`, which parses the fields with
:meth:`nmf4d.calibration.Calibration.from_json`.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Sequence

from ..calibration import Calibration as RunCalibration

#: Units spelled as the report shows them.
PRETTY_UNITS = {"1/A": "Å⁻¹", "1/Å": "Å⁻¹", "A^-1": "Å⁻¹", "1/nm": "nm⁻¹", "nm^-1": "nm⁻¹",
                "um": "µm", "A": "Å"}


def _pair(v: Any) -> tuple[float, float] | None:
    if v is None:
        return None
    if isinstance(v, (int, float)):
        v = (v, v)
    try:
        y, x = (float(t) for t in v)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(y) and math.isfinite(x) and y > 0 and x > 0):
        return None
    return y, x


@dataclass(frozen=True)
class Calibration:
    """Pixel sizes of the scan and of the factorised patterns (None: uncalibrated).

    Attributes
    ----------
    scan_step : (float, float) or None
        (y, x) distance between scan positions, in ``scan_units``.
    scan_units : str
    reciprocal : (float, float) or None
        (y, x) size of one pixel of the *factorised* patterns (input pixel x preprocessing
        bin), in ``reciprocal_units``.
    reciprocal_units : str
    source : str
    """

    scan_step: tuple[float, float] | None = None
    scan_units: str = "px"
    reciprocal: tuple[float, float] | None = None
    reciprocal_units: str = "px"
    source: str = ""

    @property
    def scan_label(self) -> str:
        return pretty_units(self.scan_units) if self.scan_step else "px"

    @property
    def reciprocal_label(self) -> str:
        return pretty_units(self.reciprocal_units) if self.reciprocal else "px"

    def to_dict(self, display_bin: int = 1) -> dict:
        """JSON-ready, with the reciprocal pixel of patterns binned ``display_bin`` more."""
        rec = None if self.reciprocal is None else [v * display_bin for v in self.reciprocal]
        return {"scan_step": list(self.scan_step) if self.scan_step else None,
                "scan_units": self.scan_label, "reciprocal": rec,
                "reciprocal_units": self.reciprocal_label, "source": self.source}


def pretty_units(units: str) -> str:
    """``"1/Å"`` -> ``"Å⁻¹"``; other units unchanged."""
    return PRETTY_UNITS.get(str(units).strip(), str(units).strip())


def calibration_json(*, scan_step: float | Sequence[float] | None = None,
                     scan_units: str = "nm",
                     reciprocal_scale: float | Sequence[float] | None = None,
                     reciprocal_units: str = "1/Å", source: str = "") -> str:
    """The value of the root attribute ``calibration`` (see the module docstring).

    Parameters
    ----------
    scan_step : float or (float, float), optional
        Scan step (y, x) in ``scan_units``.
    reciprocal_scale : float or (float, float), optional
        Size of one input detector pixel (y, x) in ``reciprocal_units``.
    source : str
        Where the numbers came from (file metadata, command line).

    Returns
    -------
    str
        JSON text.
    """
    out: dict[str, Any] = {}
    step = _pair(scan_step)
    if step:
        out.update(scan_step=list(step), scan_units=str(scan_units))
    rec = _pair(reciprocal_scale)
    if rec:
        out.update(reciprocal_scale=list(rec), reciprocal_units=str(reciprocal_units))
    if source:
        out["source"] = str(source)
    return json.dumps(out, ensure_ascii=False)


def parse_calibration(value: Any, *, preprocessing_bin: Any = 1) -> Calibration:
    """Read the ``calibration`` attribute (JSON text or dict; anything else: none).

    Parameters
    ----------
    value : str or dict or None
    preprocessing_bin : int or (int, int)
        Detector binning applied before factorisation (multiplies the reciprocal scale).

    Returns
    -------
    Calibration
    """
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        return Calibration()
    # the fields are read as the run wrote them (one reader of the attribute)
    run = RunCalibration.from_json(value).factorised(preprocessing_bin)
    step, rec = run.scan_step, run.reciprocal_scale
    return Calibration(scan_step=step, scan_units=run.scan_units if step else "px",
                       reciprocal=rec, reciprocal_units=run.reciprocal_units if rec else "px",
                       source=str(value.get("source", "")))


def nice_bar(units_per_px: float, image_px: int, fraction: float = 0.22) -> tuple[float, int]:
    """A scale bar of a round length (1, 2 or 5 x 10^n) about ``fraction`` of the image.

    Parameters
    ----------
    units_per_px : float
        Size of one image pixel (of the unscaled image) in the bar's units.
    image_px : int
        Width of the unscaled image in pixels.
    fraction : float
        Largest share of the width the bar may take.

    Returns
    -------
    (length, pixels) : (float, int)
        The bar's length in units and in unscaled pixels (at least 1).
    """
    target = max(units_per_px, fraction * image_px * units_per_px)
    exp = math.floor(math.log10(target))
    for m in (5, 2, 1):
        length = m * 10.0 ** exp
        if length <= target:
            break
    return length, max(1, int(round(length / units_per_px)))


def format_length(value: float, units: str) -> str:
    """``2.5`` and ``"nm"`` -> ``"2.5 nm"`` with at most three significant digits."""
    return f"{value:.3g} {units}"


__all__ = ["Calibration", "calibration_json", "format_length", "nice_bar", "parse_calibration",
           "pretty_units"]
