"""Calibration of a run: scan step, reciprocal-space scale, voltage, precession, beam centre.

Where each number comes from, in order of precedence: the command line or the
configuration (:class:`nmf4d.config.CalibrationConfig`), then the input's metadata (a
file's rosettasciio axes and ``Acquisition_instrument`` metadata, or a HyperSpy signal's
axes and metadata), else nothing (pixels) — except the voltage (200 kV) and the precession
angle (0°), whose defaults are documented and marked as such.

The run's :class:`Calibration` is recorded in ``results.h5`` as the root attribute
``calibration`` (JSON, see :meth:`Calibration.to_json`); the report reads it
(:mod:`nmf4d.report.calibration`) and orientation indexing uses it.
``reciprocal_scale`` is the size of one pixel of the *input* detector (as file metadata
and the microscope give it); binning multiplies it (:meth:`Calibration.factorised`).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from .errors import ConfigError

#: Default accelerating voltage (kV) and precession angle (degrees) when nothing says.
DEFAULT_VOLTAGE = 200.0
DEFAULT_PRECESSION = 0.0
#: Length units accepted for the scan step (nm per unit).
LENGTH_UNITS = {"pm": 1e-3, "a": 0.1, "å": 0.1, "nm": 1.0, "um": 1e3, "µm": 1e3, "μm": 1e3,
                "mm": 1e6, "m": 1e9}
#: Spellings of reciprocal units (Å⁻¹ per unit), as files write them.
_RECIPROCAL = {"1/a": 1.0, "1/å": 1.0, "a^-1": 1.0, "å^-1": 1.0, "å⁻¹": 1.0, "a-1": 1.0,
               "$a^{-1}$": 1.0, "1/nm": 0.1, "nm^-1": 0.1, "nm⁻¹": 0.1, "$nm^{-1}$": 0.1,
               "nm-1": 0.1}


def _pair(v: Any) -> tuple[float, float] | None:
    if v is None:
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = (v, v)
    try:
        y, x = (float(t) for t in v)
    except (TypeError, ValueError):
        return None
    return (y, x) if all(math.isfinite(t) and t > 0 for t in (y, x)) else None


def reciprocal_factor(units: str) -> float | None:
    """Å⁻¹ per unit of a reciprocal-space unit as files spell it (None if not one)."""
    return _RECIPROCAL.get(str(units).strip().lower().replace(" ", ""))


def parse_length(text: Any, *, field: str = "calibration.scan_step") -> tuple[float, str]:
    """A length such as ``"2.5nm"``, ``"2.5 nm"``, ``"25Å"`` or ``2.5`` (nm) -> (value, units)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, units = float(text), "nm"
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-zÅµμ]*)\s*",
                         str(text))
        if not m or (m.group(2) and m.group(2).lower() not in LENGTH_UNITS):
            raise ConfigError(field, text, "must be a length like 2.5nm, 25A or 0.1um")
        value, units = float(m.group(1)), m.group(2) or "nm"
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(field, text, "must be > 0")
    units = {"a": "Å", "å": "Å", "um": "µm", "μm": "µm"}.get(units.lower(), units)
    return value, units


@dataclass(frozen=True)
class Calibration:
    """The calibration of one run (None: not known; shown in pixels).

    Attributes
    ----------
    scan_step : (float, float) or None
        (y, x) distance between neighbouring scan positions, in ``scan_units``.
    scan_units : str
    reciprocal_scale : (float, float) or None
        (y, x) size of one *input* detector pixel in ``reciprocal_units`` (Å⁻¹).
    reciprocal_units : str
    voltage : float
        Accelerating voltage, kV.
    precession : float
        Precession angle, degrees.
    beam_centre : (float, float) or None
        (cy, cx) of the direct beam in input detector pixels, when the input says.
    sources : dict
        Field -> where its value came from ("option", "file", "signal", "default").
    """

    scan_step: tuple[float, float] | None = None
    scan_units: str = "nm"
    reciprocal_scale: tuple[float, float] | None = None
    reciprocal_units: str = "1/Å"
    voltage: float = DEFAULT_VOLTAGE
    precession: float = DEFAULT_PRECESSION
    beam_centre: tuple[float, float] | None = None
    sources: dict = field(default_factory=dict)

    def factorised(self, bin: Any = 1) -> "Calibration":
        """The calibration of the factorised patterns after detector binning ``bin``."""
        b = _pair(bin) or (1.0, 1.0)
        if self.reciprocal_scale is None or b == (1.0, 1.0):
            return self
        rec = (self.reciprocal_scale[0] * b[0], self.reciprocal_scale[1] * b[1])
        return replace(self, reciprocal_scale=rec)

    def pattern_geometry(self, record: Mapping) -> tuple[tuple | None, tuple | None]:
        """Reciprocal scale and beam centre of the *factorised* patterns.

        Parameters
        ----------
        record : dict
            The preprocessing record (``crop``, ``centre_crop``, ``bin``).

        Returns
        -------
        scale : (float, float) or None
            Å⁻¹ per factorised pixel (input scale x bin).
        centre : (float, float) or None
            The beam centre in factorised pixels: input pixel ``c`` sits at
            ``(c - crop origin + 0.5) / bin - 0.5``.
        """
        b = record.get("bin", 1) or 1
        bins = (b, b) if not isinstance(b, (list, tuple)) else tuple(b)
        oy = ox = 0
        if record.get("crop"):
            oy, ox = record["crop"][0], record["crop"][2]
        cc = record.get("centre_crop")
        if isinstance(cc, dict) and cc.get("box"):
            oy, ox = oy + cc["box"][0], ox + cc["box"][2]
        scale = None if self.reciprocal_scale is None else \
            (self.reciprocal_scale[0] * bins[0], self.reciprocal_scale[1] * bins[1])
        centre = None if self.beam_centre is None else \
            tuple((c - o + 0.5) / f - 0.5 for c, o, f in zip(self.beam_centre, (oy, ox), bins))
        return scale, centre

    def to_dict(self) -> dict:
        """JSON-ready; the keys of the ``calibration`` attribute of results.h5."""
        src = ", ".join(f"{k}: {v}" for k, v in sorted(self.sources.items()))
        return {"scan_step": list(self.scan_step) if self.scan_step else None,
                "scan_units": self.scan_units,
                "reciprocal_scale": list(self.reciprocal_scale) if self.reciprocal_scale
                else None, "reciprocal_units": self.reciprocal_units,
                "voltage": self.voltage, "precession": self.precession,
                "beam_centre": list(self.beam_centre) if self.beam_centre else None,
                "source": src, "sources": dict(self.sources)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: Any) -> "Calibration":
        """Inverse of :meth:`to_json` (missing or unreadable: an empty calibration)."""
        if isinstance(text, (bytes, bytearray)):
            text = text.decode("utf-8", "replace")
        try:
            d = json.loads(text) if isinstance(text, str) else dict(text or {})
        except (TypeError, ValueError):
            return cls()
        return cls(scan_step=_pair(d.get("scan_step")), scan_units=str(d.get("scan_units", "nm")),
                   reciprocal_scale=_pair(d.get("reciprocal_scale")),
                   reciprocal_units=str(d.get("reciprocal_units", "1/Å")),
                   voltage=float(d.get("voltage") or DEFAULT_VOLTAGE),
                   precession=float(d.get("precession") or DEFAULT_PRECESSION),
                   beam_centre=_centre(d.get("beam_centre")),
                   sources=dict(d.get("sources") or {}))


def _centre(v: Any) -> tuple[float, float] | None:
    try:
        cy, cx = (float(t) for t in v)
    except (TypeError, ValueError):
        return None
    return (cy, cx) if math.isfinite(cy) and math.isfinite(cx) else None


def from_axes(axes: Sequence[Mapping] | None, metadata: Mapping | None = None,
              *, source: str = "file") -> dict:
    """Calibration fields found in axes (in (scan_y, scan_x, ky, kx) order) and metadata.

    Parameters
    ----------
    axes : list of dict, optional
        ``scale``, ``offset``, ``units`` per axis (rosettasciio / HyperSpy axes).
    metadata : dict, optional
        HyperSpy-style metadata: ``Acquisition_instrument.TEM.beam_energy`` (kV),
        ``...TEM.rocking_angle`` or ``precession_angle`` (degrees).
    source : str
        Recorded as the source of every field found.

    Returns
    -------
    dict
        Keyword arguments of :class:`Calibration` that the input gives (possibly none).
        Axes without units, or with units that are neither lengths nor reciprocal
        lengths (detector cm, px), give nothing.
    """
    out: dict[str, Any] = {}
    axes = list(axes or [])
    if len(axes) == 4:
        scan = axes[:2]
        units = {str(a.get("units") or "").strip() for a in scan}
        if len(units) == 1 and next(iter(units)).lower() in LENGTH_UNITS:
            step = _pair([a.get("scale") for a in scan])
            if step:
                out["scan_step"] = step
                out["scan_units"] = parse_length(f"1{next(iter(units))}")[1]
        det = axes[2:]
        factors = {reciprocal_factor(str(a.get("units") or "")) for a in det}
        if len(factors) == 1 and None not in factors:
            f = factors.pop()
            rec = _pair([float(a.get("scale") or 0) * f for a in det])
            if rec:
                out["reciprocal_scale"] = rec
                offs = [float(a.get("offset") or 0) for a in det]
                if any(offs):
                    out["beam_centre"] = (-offs[0] * f / rec[0], -offs[1] * f / rec[1])
    tem = (((metadata or {}).get("Acquisition_instrument") or {}).get("TEM") or {})
    if _positive(tem.get("beam_energy")):
        out["voltage"] = float(tem["beam_energy"])
    for key in ("precession_angle", "rocking_angle"):
        if _positive(tem.get(key), zero=True):
            out["precession"] = float(tem[key])
            break
    out["sources"] = {k: source for k in out}
    return out


def _positive(v: Any, *, zero: bool = False) -> bool:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return False
    return math.isfinite(f) and (f >= 0 if zero else f > 0)


def resolve(options: Any, found: Mapping | None = None) -> Calibration:
    """The run's calibration: the options given win over what the input says.

    Parameters
    ----------
    options : CalibrationConfig
        ``scan_step``/``scan_units``, ``reciprocal_scale``, ``voltage``, ``precession``,
        ``beam_centre`` (None: not given).
    found : dict, optional
        What :func:`from_axes` found in the input.
    """
    kw = dict(found or {})
    sources = dict(kw.pop("sources", {}))
    for name in ("scan_step", "reciprocal_scale", "voltage", "precession", "beam_centre"):
        value = getattr(options, name)
        if value is not None:
            kw[name] = _pair(value) if name in ("scan_step", "reciprocal_scale") else \
                (tuple(value) if name == "beam_centre" else float(value))
            sources[name] = "option"
            if name == "scan_step":
                kw["scan_units"] = options.scan_units
    for name, default in (("voltage", DEFAULT_VOLTAGE), ("precession", DEFAULT_PRECESSION)):
        if name not in kw:
            kw[name] = default
            sources[name] = "default"
    return Calibration(**kw, sources=sources)
