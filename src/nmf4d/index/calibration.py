"""The diffraction geometry needed to compare a pattern with simulated templates.

Pixel convention (diffsims' ``Simulation2D.get_diffraction_pattern``): a reciprocal
vector with lab coordinates (x, y) in Å⁻¹ falls on detector pixel
``(row, col) = (cy + y / reciprocal_scale, cx + x / reciprocal_scale)``, where
``(cy, cx)`` is the beam centre; ``x`` runs along the detector columns (``kx``) and ``y``
along the rows (``ky``), the beam along +z.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, asdict, replace

from ..errors import InputError


def _number(name: str, value, *, positive: bool = False, low: float | None = None,
            high: float | None = None, unit: str = "") -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number{unit}, got {value!r}") from None
    if not math.isfinite(v):
        raise InputError(f"{name} must be finite, got {value!r}")
    if positive and v <= 0:
        raise InputError(f"{name} must be > 0{unit}, got {value!r}")
    if low is not None and v < low or high is not None and v > high:
        raise InputError(f"{name} must lie in [{low}, {high}]{unit}, got {value!r}")
    return v


@dataclass(frozen=True)
class Calibration:
    """Diffraction geometry of the patterns.

    Parameters
    ----------
    reciprocal_scale : float
        Å⁻¹ per detector pixel (> 0), of the patterns as they are indexed (after any
        binning: binning by 2 doubles it).
    voltage : float
        Accelerating voltage in kV (default 200); sets the electron wavelength and hence
        the Ewald sphere's curvature.
    precession_angle : float
        Beam precession semi-angle in degrees (default 0: none), as in diffsims.
    beam_centre : (float, float) or None
        Direct-beam position ``(row, col)`` in pixels; ``None`` (default) means the
        pattern centre ``((ky - 1) / 2, (kx - 1) / 2)``.

    Raises
    ------
    InputError
        ``reciprocal_scale`` <= 0, ``voltage`` <= 0, a precession angle outside
        [0, 10] degrees or a bad beam centre; the message names the option.
    """

    reciprocal_scale: float
    voltage: float = 200.0
    precession_angle: float = 0.0
    beam_centre: tuple[float, float] | None = None

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "reciprocal_scale", _number("reciprocal_scale", self.reciprocal_scale,
                                               positive=True, unit=" (Å⁻¹ per pixel)"))
        set_(self, "voltage", _number("voltage", self.voltage, positive=True, unit=" (kV)"))
        set_(self, "precession_angle", _number("precession_angle", self.precession_angle,
                                               low=0.0, high=10.0, unit=" (degrees)"))
        if self.beam_centre is not None:
            bc = self.beam_centre
            if isinstance(bc, str) or not hasattr(bc, "__len__") or len(bc) != 2:
                raise InputError(f"beam_centre must be a pair (row, col) in pixels or None, "
                                 f"got {bc!r}")
            set_(self, "beam_centre", (_number("beam_centre", bc[0], unit=" (pixels)"),
                                       _number("beam_centre", bc[1], unit=" (pixels)")))

    def centre(self, shape: tuple[int, int]) -> tuple[float, float]:
        """Beam centre ``(row, col)`` in pixels for patterns of ``shape`` (ky, kx)."""
        if self.beam_centre is not None:
            return self.beam_centre
        return ((shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0)

    @property
    def wavelength(self) -> float:
        """Relativistic electron wavelength in Å (diffsims' formula)."""
        from diffsims.utils.sim_utils import get_electron_wavelength

        return float(get_electron_wavelength(self.voltage))

    def with_scale(self, reciprocal_scale: float) -> "Calibration":
        """The same geometry at another reciprocal scale."""
        return replace(self, reciprocal_scale=reciprocal_scale)

    def to_dict(self) -> dict:
        """JSON-ready record (units in the keys' documentation above)."""
        d = asdict(self)
        d["beam_centre"] = None if self.beam_centre is None else list(self.beam_centre)
        return d


def find_beam_centre(pattern, *, threshold: float = 0.5, sigma: float = 1.0) -> tuple[float, float]:
    """Direct-beam position ``(row, col)`` of a pattern (e.g. the scan's mean pattern).

    The centre of mass, above its edge level, of the connected bright region around the
    maximum of the lightly blurred pattern (pixels above ``threshold`` times the
    maximum): the direct beam dominates every mean pattern of a 4D-STEM scan.

    Parameters
    ----------
    pattern : ndarray of shape (ky, kx)
    threshold : float
        Fraction of the maximum that delimits the beam disc (0 < threshold < 1).
    sigma : float
        Gaussian blur in pixels before locating the maximum.

    Returns
    -------
    (row, col) in pixels, sub-pixel.
    """
    import numpy as np
    from scipy import ndimage

    img = np.asarray(pattern, dtype=np.float64)
    if img.ndim != 2 or not np.all(np.isfinite(img)):
        raise InputError(f"pattern must be a finite 2D array, got shape {img.shape}")
    if not (0 < threshold < 1):
        raise InputError(f"threshold must lie in (0, 1), got {threshold!r}")
    smooth = ndimage.gaussian_filter(img, sigma) if sigma > 0 else img
    peak = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
    if smooth[peak] <= 0:
        raise InputError("pattern has no positive intensity: cannot find the beam")
    level = threshold * smooth[peak]
    regions, _ = ndimage.label(smooth >= level)
    disc = regions == regions[peak]
    w = np.where(disc, smooth - level, 0.0)     # above the disc's edge: no edge bias
    rows, cols = np.indices(img.shape)
    return (float((w * rows).sum() / w.sum()), float((w * cols).sum() / w.sum()))
