"""Simulated polycrystalline 4D-STEM scans with known phases and orientations (diffsims).

Used by ``index_accuracy.py`` and ``index_vs_pyxem.py``. Independent of
``nmf4d.index``: the patterns come from diffsims' ``calculate_diffraction2d`` (one call
per grain) rendered with diffsims' sub-pixel Gaussian spots, never from nmf4d's kernel.

A scan: grains are Voronoi cells, each with a phase, a uniformly random orientation
(seeded), its own rel-rod width (thickness) and spot brightness; one
cell can be a film-only hole (no crystal). Every position shows a bright direct beam,
the amorphous rings of a carbon support film and a diffuse background; within
``band`` pixels of a grain boundary the two neighbouring grains overlap (linear mixing
up to 50/50 at the boundary); the scattered intensity varies smoothly over the scan;
counts are Poisson at ``dose`` electrons per pattern.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CIF = "/work/shared/cif"


@dataclass
class ScanSpec:
    name: str
    phases: tuple            # CIF stems
    scan: tuple = (48, 48)
    pattern: int = 128
    n_grains: int = 10
    hole: bool = True        # a film-only cell (no crystal)
    band: float = 2.0        # overlap band half-width, scan pixels
    dose: float = 3000.0     # counts per pattern
    scale: float = 0.025     # Å⁻¹ per pixel
    precession: float = 0.0  # degrees
    spot_sigma: float = 1.2  # pixels
    excitation: tuple = (0.015, 0.03)  # rel-rod widths of the grains (Å⁻¹), uniform
    seed: int = 0


@dataclass
class Scan:
    spec: ScanSpec
    data: np.ndarray          # (sy, sx, ky, kx) float32 counts
    labels: np.ndarray        # (sy, sx) true cell index (grains then hole)
    in_band: np.ndarray       # (sy, sx) bool, positions where two cells overlap
    phase_of: np.ndarray      # (n_cells,) index into phases, -1 for the hole
    euler: np.ndarray         # (n_cells, 3) radians (NaN for the hole)
    phases: list              # orix Phases
    patterns: np.ndarray      # (n_cells, ky, kx) noise-free cell patterns (sum 1)

    @property
    def k_true(self) -> int:
        return len(self.phase_of)


def load(stem: str):
    from orix.crystal_map import Phase

    return Phase.from_cif(f"{CIF}/{stem}.cif")


def render(phase, rotation, spec: ScanSpec, s_max: float) -> np.ndarray:
    """Noise-free crystal pattern (spots only, sum 1) from diffsims."""
    from diffsims.generators.simulation_generator import SimulationGenerator
    from diffsims.pattern.detector_functions import (
        get_pattern_from_pixel_coordinates_and_intensities)

    n = spec.pattern
    c = (n - 1) / 2
    gen = SimulationGenerator(200, precession_angle=spec.precession)
    sim = gen.calculate_diffraction2d(phase, rotation, reciprocal_radius=1.05 * c * spec.scale,
                                      max_excitation_error=s_max, with_direct_beam=False)
    v = sim.coordinates
    xy, inten = v.data[:, :2], np.asarray(v.intensity, float)
    px = np.c_[c + xy[:, 0] / spec.scale, c + xy[:, 1] / spec.scale]
    ok = (px[:, 0] > 0) & (px[:, 0] < n - 1) & (px[:, 1] > 0) & (px[:, 1] < n - 1)
    if not ok.any():
        return np.zeros((n, n))
    img = get_pattern_from_pixel_coordinates_and_intensities(
        px[ok], inten[ok] / inten[ok].max() * 1e4, (n, n), spec.spot_sigma, 1e-3)
    return img / img.sum()


def common(spec: ScanSpec):
    """(beam, film, diffuse) patterns, each summing to 1."""
    n = spec.pattern
    c = (n - 1) / 2
    yy, xx = np.indices((n, n))
    r = np.hypot(yy - c, xx - c)
    g = r * spec.scale                                           # Å⁻¹
    beam = np.exp(-r ** 2 / (2 * 2.0 ** 2))
    film = (np.exp(-(g - 0.47) ** 2 / (2 * 0.06 ** 2))          # amorphous carbon rings
            + 0.5 * np.exp(-(g - 0.85) ** 2 / (2 * 0.08 ** 2)))
    diffuse = np.exp(-g / 0.4)
    return [a / a.sum() for a in (beam, film, diffuse)]


def random_rotations(rng, n: int):
    """Uniformly random rotations (normalised Gaussian quaternions), seeded."""
    from orix.quaternion import Rotation

    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q[q[:, 0] < 0] *= -1
    return Rotation(q)


def spread_seeds(rng, shape, n, tries=10000):
    """Voronoi seeds at least 0.7 x the mean spacing apart (no tiny grains)."""
    d_min = 0.7 * np.sqrt(shape[0] * shape[1] / n)
    pts = []
    for _ in range(tries):
        p = rng.uniform([0, 0], shape)
        if all(np.hypot(*(p - q)) >= d_min for q in pts):
            pts.append(p)
            if len(pts) == n:
                return np.array(pts)
    raise RuntimeError("could not place the grains; lower n_grains")


def build(spec: ScanSpec) -> Scan:
    from orix.quaternion import Rotation

    rng = np.random.default_rng(spec.seed)
    phases = [load(p) for p in spec.phases]
    sy, sx = spec.scan
    n_cells = spec.n_grains + (1 if spec.hole else 0)
    seeds = spread_seeds(rng, (sy, sx), n_cells)
    yy, xx = np.indices((sy, sx))
    d = np.hypot(yy[..., None] - seeds[:, 0], xx[..., None] - seeds[:, 1])
    order = np.argsort(d, axis=-1)
    first, second = order[..., 0], order[..., 1]
    d1 = np.take_along_axis(d, first[..., None], -1)[..., 0]
    d2 = np.take_along_axis(d, second[..., None], -1)[..., 0]
    to_boundary = (d2 - d1) / 2
    frac2 = np.clip(0.5 * (1 - to_boundary / spec.band), 0, 0.5) if spec.band > 0 else 0 * d1
    # make every cell own some positions
    phase_of = np.array([i % len(phases) for i in range(spec.n_grains)]
                        + ([-1] if spec.hole else []))
    rng.shuffle(phase_of[:spec.n_grains])
    rots = random_rotations(rng, spec.n_grains)
    euler = np.full((n_cells, 3), np.nan)
    euler[:spec.n_grains] = rots.to_euler()
    beam, film, diffuse = common(spec)
    n = spec.pattern
    pats = np.zeros((n_cells, n, n))
    for i in range(spec.n_grains):
        s_max = rng.uniform(*spec.excitation)
        pats[i] = render(phases[phase_of[i]], rots[i], spec, s_max)
    # per cell: crystal fraction of the counts (hole: film only)
    crystal = np.where(phase_of >= 0, rng.uniform(0.35, 0.5, n_cells), 0.0)
    thick = 1 + 0.3 * np.sin(2 * np.pi * yy / sy * 0.7 + 0.5) * np.cos(2 * np.pi * xx / sx * 0.5)
    frac = np.zeros((n_cells, sy, sx))
    np.put_along_axis(frac, first[None], (1 - frac2)[None], 0)
    np.put_along_axis(frac, second[None], frac2[None], 0)
    cryst = np.einsum("c,cyx->yx", crystal, frac) * thick / thick.max()
    clean = (np.einsum("cyx,cij->yxij", frac * (crystal[:, None, None] * thick / thick.max()),
                       pats)
             + (1 - cryst)[..., None, None] * (0.55 * beam + 0.3 * film + 0.15 * diffuse))
    data = rng.poisson(clean * spec.dose).astype(np.float32)
    labels = np.where(frac2 > 0.5, second, first).astype(np.int32)
    return Scan(spec=spec, data=data, labels=labels, in_band=frac2 > 0.05, phase_of=phase_of,
                euler=euler, phases=phases, patterns=pats)
