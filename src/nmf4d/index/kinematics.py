"""Kinematic spot patterns of one phase for many rotations at once.

diffsims' :meth:`SimulationGenerator.calculate_diffraction2d` loops in Python over
rotations (1-5 ms each, measured) and the local refinement evaluates hundreds of
rotations per pattern, so the geometry is written here, vectorised over rotations, while
everything physical comes from diffsims: the reflections within the reciprocal radius
(:meth:`DiffractingVector.from_min_dspacing`), their kinematic structure factors
(:func:`get_kinematical_intensities`, Lobato scattering factors), the electron wavelength
and the rel-rod shape-factor models. ``tests/test_index_kinematics.py`` checks that the
spots and intensities equal ``calculate_diffraction2d``'s, with and without precession.

Convention (the one diffsims uses): for a rotation ``R`` (an orix ``Rotation``, i.e. an
orientation in orix's convention, sample to crystal), a reflection with crystal-frame
Cartesian coordinates ``g`` lies at lab coordinates ``(~R) * g = M.T @ g`` with
``M = R.to_matrix()``; the beam runs along lab +z, the detector plane is lab (x, y).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._deps import require


@dataclass
class Reflections:
    """The reflections of a phase that can appear within a reciprocal radius.

    Attributes
    ----------
    phase : orix.crystal_map.Phase
    hkl : ndarray of shape (n, 3)
        Miller indices.
    g : ndarray of shape (n, 3)
        Crystal-frame Cartesian coordinates in Å⁻¹ (orix's frame of the phase).
    f2 : ndarray of shape (n,)
        Kinematic |F|² (diffsims), systematically absent reflections removed.
    reciprocal_radius : float
        Å⁻¹.
    """

    phase: object
    hkl: np.ndarray
    g: np.ndarray
    f2: np.ndarray
    reciprocal_radius: float

    @property
    def gspacing(self) -> np.ndarray:
        """|g| in Å⁻¹, shape (n,)."""
        return np.linalg.norm(self.g, axis=1)


def reflections(phase, *, reciprocal_radius: float, scattering_params: str = "lobato",
                min_relative_f2: float = 1e-8, complete: bool = True) -> Reflections:
    """All reflections of ``phase`` with 0 < |g| <= ``reciprocal_radius``.

    Parameters
    ----------
    phase : orix.crystal_map.Phase
    reciprocal_radius : float
        Å⁻¹.
    scattering_params : {"lobato", "xtables"}
        Atomic scattering factors (diffsims).
    min_relative_f2 : float
        Reflections with |F|² below this fraction of the largest are dropped
        (systematic absences, which diffsims computes as ~1e-30).
    complete : bool
        diffsims bounds each Miller index by the largest ``h`` with ``(h00)`` inside
        the radius, which on a non-orthogonal lattice misses reflections (hexagonal:
        ``(2n, -n, l)`` reaches ``1.15 x`` that bound), so the set loses the crystal's
        symmetry near its edge. True (default) asks diffsims for a radius
        ``max_i |a_i| |a_i*|`` times larger, which bounds ``|h| = |g . a| <= |g| |a|``,
        and keeps ``|g| <= reciprocal_radius``; False reproduces diffsims' set.

    Returns
    -------
    Reflections
    """
    require()
    from diffsims.crystallography._diffracting_vector import DiffractingVector
    from diffsims.utils.sim_utils import get_kinematical_intensities

    reach = 1.0
    if complete:
        lat = phase.structure.lattice
        direct = np.linalg.norm(lat.base, axis=1)
        recip = np.array([lat.ar, lat.br, lat.cr])
        reach = float(np.max(direct * recip))
        reach = reach * (1 + 1e-6) if reach > 1 + 1e-9 else 1.0
    rec = DiffractingVector.from_min_dspacing(phase,
                                              min_dspacing=1.0 / (reciprocal_radius * reach),
                                              include_zero_vector=False)
    if reach > 1.0:
        rec = rec[rec.gspacing <= reciprocal_radius]
    hkl = np.asarray(rec.hkl, dtype=np.float64).reshape(-1, 3)
    g = np.asarray(rec.data, dtype=np.float64).reshape(-1, 3)
    f2 = np.asarray(get_kinematical_intensities(phase.structure, hkl, rec.gspacing,
                                                prefactor=1.0,
                                                scattering_params=scattering_params),
                    dtype=np.float64).reshape(-1)
    keep = f2 > min_relative_f2 * f2.max() if f2.size else np.zeros(0, bool)
    return Reflections(phase=phase, hkl=hkl[keep], g=g[keep], f2=f2[keep],
                       reciprocal_radius=float(reciprocal_radius))


def shape_factor(excitation_error: np.ndarray, r_spot: np.ndarray, *,
                 max_excitation_error: float, precession_angle: float) -> np.ndarray:
    """diffsims' Lorentzian rel-rod factor (precessed: its Lorentzian approximation).

    Parameters
    ----------
    excitation_error, r_spot : ndarray (same shape)
        Å⁻¹.
    max_excitation_error : float
        Å⁻¹, diffsims' ``max_excitation_error`` (also the shape factor's width).
    precession_angle : float
        Degrees.
    """
    from diffsims.utils.shape_factor_models import lorentzian, lorentzian_precession

    if precession_angle == 0:
        return lorentzian(excitation_error, max_excitation_error)
    return lorentzian_precession(excitation_error, max_excitation_error, r_spot,
                                 np.deg2rad(precession_angle))


def excited(refl: Reflections, matrices: np.ndarray, *, wavelength: float,
            max_excitation_error: float, precession_angle: float = 0.0,
            cutoff: float = 1.0):
    """Lab positions and intensities of every reflection for every rotation.

    Parameters
    ----------
    refl : Reflections
    matrices : ndarray of shape (m, 3, 3)
        ``R.to_matrix()`` of the m rotations (orix convention, see the module).
    wavelength : float
        Å.
    max_excitation_error : float
        Å⁻¹.
    precession_angle : float
        Degrees.
    cutoff : float
        Reflections farther than ``cutoff * max_excitation_error`` from the Ewald sphere
        (for a precessed beam: from every position of it) get intensity 0. 1 reproduces
        diffsims; the local refinement uses a larger value so that its objective varies
        continuously.

    Returns
    -------
    xy : ndarray of shape (m, n, 2)
        Lab (x, y) in Å⁻¹.
    intensity : ndarray of shape (m, n)
        |F|² times the shape factor; 0 where not excited.
    """
    lab = np.matmul(refl.g, matrices)                 # (m, n, 3): M.T @ g for each rotation
    x, y, z = lab[..., 0], lab[..., 1], lab[..., 2]
    r2 = x * x + y * y
    k0 = 1.0 / wavelength
    s = (k0 - np.sqrt(np.maximum(k0 * k0 - r2, 0.0))) - z
    s_max = cutoff * max_excitation_error
    a = np.deg2rad(precession_angle)
    # a cheap superset first (few reflections are near the sphere), the exact test and
    # the shape factor only there: |s| may exceed s_max by at most ~ r * a with precession
    cand = np.abs(s) < s_max + 1.05 * np.sqrt(r2) * np.tan(a) + 1e-6 if a > 0 \
        else np.abs(s) < s_max
    idx = np.nonzero(cand)
    r_c, s_c, z_c = np.sqrt(r2[idx]), s[idx], z[idx]
    if a == 0:
        hit = np.ones(len(s_c), bool)
    else:
        pz, pt = k0 * np.cos(a), k0 * np.sin(a)
        up = pz - np.sqrt(np.maximum(k0 * k0 - (r_c + pt) ** 2, 0.0))
        down = pz - np.sqrt(np.maximum(k0 * k0 - (r_c - pt) ** 2, 0.0))
        hit = (z_c - s_max <= up) & (z_c + s_max >= down)
    sf = shape_factor(s_c, r_c, max_excitation_error=max_excitation_error,
                      precession_angle=precession_angle)
    intensity = np.zeros(s.shape)
    intensity[idx] = np.where(hit, refl.f2[idx[-1]] * sf, 0.0)
    return lab[..., :2], intensity
