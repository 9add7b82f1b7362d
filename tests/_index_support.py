"""Shared helpers of the ``test_index_*`` modules: tiny CIFs, simulated patterns.

Patterns are simulated with diffsims' ``calculate_diffraction2d`` and rendered here with
Gaussian spots (independent of nmf4d's own kinematic kernel).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

CIFS = {
    "al_fcc": """data_al_fcc
_symmetry_space_group_name_H-M  'F m -3 m'
_symmetry_Int_Tables_number     225
_cell_length_a 4.0495
_cell_length_b 4.0495
_cell_length_c 4.0495
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Al Al 0.0 0.0 0.0 1.0
""",
    "ti_hcp": """data_ti_hcp
_symmetry_space_group_name_H-M  'P 63/m m c'
_symmetry_Int_Tables_number     194
_cell_length_a 2.95
_cell_length_b 2.95
_cell_length_c 4.68
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 120
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Ti Ti 0.333333 0.666667 0.25 1.0
""",
}

SHAPE = (96, 96)
SCALE = 0.035          # Å⁻¹ per pixel: radius 47.5 px = 1.66 Å⁻¹
EXCITATION = 0.02


def need_index_deps():
    """Skip the calling module when the ``index`` extra is missing."""
    pytest.importorskip("diffsims", reason="the index extra (diffsims) is not installed")
    pytest.importorskip("orix", reason="the index extra (orix) is not installed")


def write_cif(folder: Path, name: str, text: str | None = None) -> Path:
    p = Path(folder) / f"{name}.cif"
    p.write_text(CIFS[name] if text is None else text)
    return p


@functools.lru_cache(maxsize=None)
def phase(name: str):
    import tempfile

    from nmf4d.index import load_phase

    with tempfile.TemporaryDirectory() as d:
        return load_phase(write_cif(Path(d), name))


def simulate(name: str, euler, *, precession: float = 0.0, sigma: float = 1.2,
             shape=SHAPE, scale=SCALE, excitation=EXCITATION, beam: float = 0.3,
             ring: float = 0.1) -> np.ndarray:
    """Noise-free pattern (sum 1) of phase ``name`` at Euler angles (radians), with a
    direct beam and an amorphous ring, centre ((ky - 1) / 2, (kx - 1) / 2)."""
    from diffsims.generators.simulation_generator import SimulationGenerator
    from orix.quaternion import Rotation

    gen = SimulationGenerator(200, precession_angle=precession)
    c = ((shape[0] - 1) / 2, (shape[1] - 1) / 2)
    sim = gen.calculate_diffraction2d(phase(name), Rotation.from_euler(np.reshape(euler, (1, 3))),
                                      reciprocal_radius=1.1 * c[0] * scale,
                                      max_excitation_error=excitation, with_direct_beam=False)
    v = sim.coordinates
    xy, inten = v.data[:, :2], np.asarray(v.intensity, float)
    yy, xx = np.indices(shape)
    img = np.zeros(shape)
    for (x, y), a in zip(xy, inten / inten.max()):
        row, col = c[0] + y / scale, c[1] + x / scale
        if 0 <= row < shape[0] and 0 <= col < shape[1]:
            img += a * np.exp(-((yy - row) ** 2 + (xx - col) ** 2) / (2 * sigma ** 2))
    img /= img.sum()
    r = np.hypot(yy - c[0], xx - c[1])
    b = np.exp(-r ** 2 / 8.0)
    g = np.exp(-(r * scale - 0.47) ** 2 / (2 * 0.06 ** 2))
    out = (1 - beam - ring) * img + beam * b / b.sum() + ring * g / g.sum()
    return out / out.sum()


def noisy(pattern: np.ndarray, dose: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).poisson(pattern * dose).astype(np.float64)


def angle(a, b, name: str) -> float:
    """Misorientation in degrees (with symmetry) between Euler angles a and b."""
    from nmf4d.index.symmetry import misorientation_angle

    return float(misorientation_angle(np.reshape(a, (1, 3)), np.reshape(b, (1, 3)),
                                      phase(name))[0])


@functools.lru_cache(maxsize=None)
def bank(names: tuple, resolution: float = 1.0, precession: float = 0.0):
    from nmf4d.index import Calibration, build_templates

    return build_templates([phase(n) for n in names],
                           Calibration(SCALE, precession_angle=precession),
                           pattern_shape=SHAPE, resolution=resolution,
                           max_excitation_error=EXCITATION, scale_margin=0.1)


def make_result(euler, phase_index, names, *, background=(), shape=(32, 32)):
    """An IndexResult built directly from arrays (for output tests)."""
    from nmf4d.index import Calibration, IndexResult, Preparation
    from nmf4d.index.symmetry import friedel_partner, merge_clusters, misorientation_matrix

    phases = [phase(n) for n in names]
    euler = np.asarray(euler, dtype=np.float64).reshape(-1, 3)
    pidx = np.asarray(phase_index, dtype=np.int64)
    k = len(pidx)
    euler = np.where(pidx[:, None] >= 0, euler, np.nan)
    mis = misorientation_matrix(euler, pidx, phases, exclude=background)
    return IndexResult(
        phases=phases, phase_index=pidx,
        phase=np.array([phases[p].name if p >= 0 else "not indexed" for p in pidx], dtype=object),
        euler=euler, correlation=np.linspace(0.9, 0.5, k), reliability=np.full(k, 0.2),
        second_correlation=np.full(k, 0.4), second_phase=np.zeros(k, np.int64),
        friedel=np.arange(k) % 2 == 0, friedel_euler=friedel_partner(np.nan_to_num(euler)),
        friedel_correlation=np.full(k, 0.85), misorientation=mis,
        groups=merge_clusters(mis, tolerance=2.0), background=list(background),
        calibration=Calibration(SCALE), scale_searched=False, scale_scores=np.zeros((0, 3)),
        resolution=1.0, tolerance=2.0, merge_tolerance=2.0, friedel_margin=0.1,
        max_excitation_error=EXCITATION, preparation=Preparation(beam_radius=5.0),
        prepared=np.zeros((k,) + shape), coarse=np.full(k, 0.8),
        n_templates={n: 10 for n in names}, spots=[None] * k)
