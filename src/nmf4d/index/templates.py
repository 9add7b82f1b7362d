"""Template banks: kinematic spot patterns over the whole orientation space of each phase.

Sampling (as pyxem's template matching does it): an orientation is a beam direction
in the crystal plus an in-plane rotation about the beam. The bank holds one template per
beam direction — orix's :func:`~orix.sampling.get_sample_reduced_fundamental`: rotations
with Bunge Euler angles ``(0, Phi, phi2)`` whose beam directions cover the fundamental
sector of S2 of the phase's **proper** point group at ``resolution`` degrees — and the
in-plane rotation ``phi1`` is searched at ``resolution`` steps by the matcher. Using the
proper group's sector (twice the Laue group's) means directions ``d`` and ``-d`` are
both present, so that directions x in-plane angles cover all of SO(3) modulo the crystal's
rotations (pyxem reaches the other half by mirroring templates instead).

In-plane convention: the orientation with Euler angles ``(psi, Phi, phi2)`` gives the
pattern of ``(0, Phi, phi2)`` rotated by ``+psi`` about the beam, i.e. a spot at lab
polar angle ``theta = atan2(y, x)`` moves to ``theta + psi`` (checked in
``tests/test_index_templates.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ._deps import require
from .calibration import Calibration
from .kinematics import Reflections, excited, reflections
from .prepare import outer_radius

#: Default rel-rod width (Å⁻¹): diffsims' ``max_excitation_error``, ~1 / thickness.
DEFAULT_EXCITATION_ERROR = 0.02


@dataclass
class PhaseTemplates:
    """The templates of one phase (ragged arrays: template t owns spots
    ``offsets[t]:offsets[t + 1]``).

    Attributes
    ----------
    phase : orix.crystal_map.Phase
    rotations : orix.quaternion.Rotation of shape (n,)
        Beam-direction rotations, Euler ``(0, Phi, phi2)``.
    euler : ndarray of shape (n, 3), radians (orix's ``to_euler``; see :meth:`matrices`)
    offsets : ndarray of shape (n + 1,)
    xy : ndarray of shape (nnz, 2)
        Lab (x, y) of the spots in Å⁻¹ at in-plane angle 0.
    intensity : ndarray of shape (nnz,)
        Kinematic intensities (diffsims' model).
    reflection : ndarray of shape (nnz,)
        Index of each spot's reflection in ``reflections``.
    reflections : Reflections
    """

    phase: object
    rotations: object
    euler: np.ndarray
    offsets: np.ndarray
    xy: np.ndarray
    intensity: np.ndarray
    reflection: np.ndarray
    reflections: Reflections

    @property
    def size(self) -> int:
        """Number of templates."""
        return len(self.euler)

    def matrices(self, index: np.ndarray, psi: np.ndarray) -> np.ndarray:
        """Rotation matrices (n, 3, 3) of templates ``index`` turned in-plane by ``psi``
        (radians): ``R_t * Rz(-psi)``, which for a template with Euler ``(0, Phi, phi2)``
        is Euler ``(psi, Phi, phi2)``. (Composed as rotations because orix returns the
        Euler angles of a template along the c axis, Phi = 0, with phi1 != 0.)"""
        m = self.rotations.to_matrix().reshape(-1, 3, 3)[np.asarray(index)]
        c, s = np.cos(-np.asarray(psi)), np.sin(-np.asarray(psi))
        rz = np.zeros((len(m), 3, 3))
        rz[:, 0, 0], rz[:, 0, 1], rz[:, 1, 0], rz[:, 1, 1], rz[:, 2, 2] = c, -s, s, c, 1.0
        return m @ rz

    def spots(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(xy (s, 2) Å⁻¹, intensity (s,)) of template ``t``."""
        a, b = self.offsets[t], self.offsets[t + 1]
        return self.xy[a:b], self.intensity[a:b]


@dataclass
class TemplateBank:
    """Templates of every phase for one detector geometry.

    Attributes
    ----------
    phases : list of PhaseTemplates
    calibration : Calibration
    pattern_shape : (ky, kx)
    resolution : float, degrees
    max_excitation_error : float, Å⁻¹
    reciprocal_radius : float, Å⁻¹
    timings : dict of seconds per phase
    """

    phases: list
    calibration: Calibration
    pattern_shape: tuple
    resolution: float
    max_excitation_error: float
    reciprocal_radius: float
    timings: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Templates in all phases."""
        return sum(p.size for p in self.phases)

    @property
    def n_angles(self) -> int:
        """In-plane steps of the search (360 / resolution, rounded up)."""
        return in_plane_steps(self.resolution)

    def innermost_radius(self, scale: float | None = None) -> float:
        """Radius in pixels of the innermost reflection of any phase."""
        s = scale or self.calibration.reciprocal_scale
        return float(min(p.reflections.gspacing.min() for p in self.phases) / s)


def in_plane_steps(resolution: float) -> int:
    """Number of in-plane angles of the search at ``resolution`` degrees."""
    return int(np.ceil(360.0 / resolution - 1e-9))


def check_resolution(resolution) -> float:
    """Validate a sampling resolution in degrees (0.1 to 10)."""
    try:
        r = float(resolution)
    except (TypeError, ValueError):
        raise InputError(f"resolution must be a number of degrees, got {resolution!r}") from None
    if not (0.1 <= r <= 10):
        raise InputError(f"resolution must lie in [0.1, 10] degrees, got {resolution!r}")
    return r


def beam_directions(phase, resolution: float):
    """orix's sampling of the beam directions of ``phase`` (Euler ``(0, Phi, phi2)``).

    Returns
    -------
    orix.quaternion.Rotation of shape (n,)
    """
    from orix.sampling import get_sample_reduced_fundamental

    from .symmetry import proper_group

    return get_sample_reduced_fundamental(resolution, point_group=proper_group(phase))


def phase_templates(phase, calibration: Calibration, *, resolution: float,
                    reciprocal_radius: float,
                    max_excitation_error: float = DEFAULT_EXCITATION_ERROR,
                    min_relative_intensity: float = 1e-3, chunk: int = 512) -> PhaseTemplates:
    """The templates of one phase.

    Parameters
    ----------
    phase : orix.crystal_map.Phase
    calibration : Calibration
        Voltage and precession angle are used here; the scale only later.
    resolution : float
        Degrees between neighbouring beam directions.
    reciprocal_radius : float
        Å⁻¹; reflections farther out fall off the detector.
    max_excitation_error : float
        Å⁻¹ (diffsims).
    min_relative_intensity : float
        Spots weaker than this fraction of a template's strongest are left out.
    chunk : int
        Rotations simulated at once (memory ~ chunk x reflections x 24 bytes).

    Returns
    -------
    PhaseTemplates
    """
    require()
    rot = beam_directions(phase, resolution)
    refl = reflections(phase, reciprocal_radius=reciprocal_radius)
    mats = rot.to_matrix().reshape(-1, 3, 3)
    counts, xys, ints, idx = [], [], [], []
    for a in range(0, len(mats), chunk):
        xy, inten = excited(refl, mats[a:a + chunk], wavelength=calibration.wavelength,
                            max_excitation_error=max_excitation_error,
                            precession_angle=calibration.precession_angle)
        r = np.hypot(xy[..., 0], xy[..., 1])
        inten = np.where(r <= reciprocal_radius, inten, 0.0)
        top = inten.max(axis=1, keepdims=True)
        keep = (inten > top * min_relative_intensity) & (top > 0)
        t_idx, j = np.nonzero(keep)                  # row-major: template by template
        counts.append(np.bincount(t_idx, minlength=len(inten)))
        xys.append(xy[t_idx, j])
        ints.append(inten[t_idx, j])
        idx.append(j)
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(counts))]) if counts else [0]
    cat = (lambda parts, shape: np.concatenate(parts) if parts else np.zeros(shape))
    return PhaseTemplates(phase=phase, rotations=rot,
                          euler=rot.to_euler().reshape(-1, 3),
                          offsets=np.asarray(offsets, np.int64),
                          xy=cat(xys, (0, 2)), intensity=cat(ints, (0,)),
                          reflection=cat(idx, (0,)).astype(np.int64), reflections=refl)


def build_templates(phases, calibration: Calibration, *, pattern_shape: tuple[int, int],
                    resolution: float = 1.0,
                    max_excitation_error: float = DEFAULT_EXCITATION_ERROR,
                    reciprocal_radius: float | None = None,
                    scale_margin: float = 0.0) -> TemplateBank:
    """Templates of every phase for patterns of ``pattern_shape``.

    Parameters
    ----------
    phases : sequence of orix.crystal_map.Phase
    calibration : Calibration
    pattern_shape : (ky, kx)
    resolution : float
        Degrees (beam directions and in-plane steps), 0.1 to 10; default 1.
    max_excitation_error : float
        Å⁻¹ (> 0).
    reciprocal_radius : float, optional
        Å⁻¹; default the largest circle about the beam centre that fits in the pattern.
    scale_margin : float
        Relative margin added to the default radius (a scale search up to +10 % needs
        reflections up to 10 % farther out).

    Returns
    -------
    TemplateBank
    """
    import time

    require()
    resolution = check_resolution(resolution)
    if not (max_excitation_error > 0):
        raise InputError(f"max_excitation_error must be > 0 Å⁻¹, got {max_excitation_error!r}")
    phases = list(phases)
    if not phases:
        raise InputError("phases: at least one phase is needed")
    if reciprocal_radius is None:
        r_px = outer_radius(tuple(pattern_shape), calibration.centre(tuple(pattern_shape)))
        reciprocal_radius = r_px * calibration.reciprocal_scale * (1 + scale_margin)
    if not (reciprocal_radius > 0):
        raise InputError(f"reciprocal_radius must be > 0 Å⁻¹, got {reciprocal_radius!r}")
    out, timings = [], {}
    for ph in phases:
        t = time.perf_counter()
        out.append(phase_templates(ph, calibration, resolution=resolution,
                                   reciprocal_radius=reciprocal_radius,
                                   max_excitation_error=max_excitation_error))
        timings[ph.name] = time.perf_counter() - t
    return TemplateBank(phases=out, calibration=calibration,
                        pattern_shape=tuple(int(v) for v in pattern_shape),
                        resolution=resolution, max_excitation_error=max_excitation_error,
                        reciprocal_radius=float(reciprocal_radius), timings=timings)
