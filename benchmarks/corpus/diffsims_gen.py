"""Generator 1: kinematic diffsims simulations of CIF phases in a scanned polycrystal.

Each grain is one phase (read from ``shared/cif/<name>.cif`` with orix
``Phase.from_cif``) in one orientation (orix rotations, uniformly random or near a
low-index zone axis). Its reflections come from diffsims ``SimulationGenerator``
(kinematic structure factors with Lobato scattering factors and room-temperature
Debye-Waller factors; precession through diffsims' precession option), its discs
from the probe (`detector.probe_kernel`). The scan adds a carbon support film,
vacuum, overlap bands, thickness variation, orientation gradients, descan and a
counting or integrating detector.

Intensity budget of one position (fractions of the dose ``D`` per pattern)
------------------------------------------------------------------------
* vacuum: the direct beam alone;
* film (film-only region, and under every grain when ``film_under_grains``): a
  share ``film_strength`` in the amorphous-carbon diffuse pattern
  (`detector.amorphous_carbon`);
* grain (at every grain position, thickness factor t): a share
  ``diffuse_fraction * t`` in a smooth diffuse halo (`specimen_diffuse`: the
  thermal-diffuse and inelastic background of the crystals, not their Kikuchi bands);
* grain g at thickness factor t: a share ``spot_fraction * t * e_g`` in its
  reflections, distributed as diffsims' kinematic intensities, where
  ``e_g = 1 - exp(-I_g / I_sat)`` saturates with the grain's total kinematic
  intensity ``I_g`` (``I_sat``: the median over 64 random orientations of the phase),
  so a grain far from any zone axis scatters less than one on a zone;
* the direct beam keeps the rest. Kinematic theory does not conserve electrons; this
  budget is the simplification that does (no dynamical intensity exchange, no
  Kikuchi bands, a structureless diffuse background).

Truth
-----
Truth indices: grains ``0..n_grains-1`` (each counted once, gradient or not), then
the film-only region (if ``film_fraction > 0``), then vacuum (if
``vacuum_fraction > 0``). In overlap bands the contribution of each grain is its
projected thickness share (`layout`). Grains are drawn until every pair differs
(misorientation >= ``min_misorientation_deg`` for the same phase and cosine of their
blurred spot images <= ``max_spot_cosine``) and each shows at least ``min_spots``
reflections in the frame with ``e_g >= 0.3``: a grain without visible reflections
is not a distinct pattern for a microscopist either.
"""
from __future__ import annotations

import warnings
from functools import lru_cache
import numpy as np

from . import detector as det
from .case import Case, stack_basis, truth_from_contributions
from .layout import draw_layout, smooth_field
from .paths import cif_dir

#: Room-temperature Debye-Waller B factors in Å² (approximate literature values).
DEBYE_WALLER = {"Al": 0.85, "Fe": 0.35, "Si": 0.46, "Ti": 0.60}
#: Low-index zone axes [uvw] used by ``orientation="zone"`` (three-index, lattice basis).
ZONES = {"cubic": [(0, 0, 1), (0, 1, 1), (1, 1, 1), (1, 1, 2), (0, 1, 3), (1, 2, 3),
                   (1, 1, 4), (0, 1, 2), (1, 3, 3)],
         "hexagonal": [(0, 0, 1), (1, 0, 0), (2, -1, 0), (1, 0, 1), (2, -1, 3), (1, 1, 1),
                       (0, 1, 2)]}

DEFAULTS = dict(
    phases=("al_fcc",), n_grains=5, scan=(48, 48), pattern=(128, 128),
    scale=0.02,                 # Å⁻¹ per pixel
    voltage=200.0,              # kV
    precession_deg=0.0,
    excitation_error=0.02,      # diffsims max_excitation_error (Å⁻¹), ~ 1/thickness
    probe_mrad=1.0,             # convergence semi-angle
    psf_sigma=0.8,              # detector point spread (px)
    centre_offset_px=1.5,       # random offset of the beam from the pattern centre
    spot_fraction=0.4,          # share in reflections of a well excited grain (t = 1)
    diffuse_fraction=0.05,      # share in the crystals' diffuse background (t = 1)
    film_strength=0.0,          # share in the carbon film's diffuse rings
    film_under_grains=True,
    film_fraction=0.0, vacuum_fraction=0.0, edge_roughness=0.3,
    band_width=0.0, band_profile="plateau", size_spread=0.3,
    thickness_variation=0.3,
    gradient_deg=0.0, gradient_steps=7,
    orientation="random",       # or "zone"
    zone_tilt_deg=2.0,
    min_misorientation_deg=5.0, max_spot_cosine=0.5, min_spots=3,
    descan_px=0.0,
    dose=2000.0,                # electrons per pattern
    detector=None,              # {"kind": "integrating", "gain":..., ...}; default counting
    scan_step_nm=5.0,
)


@lru_cache(maxsize=None)
def load_phase(name: str):
    """orix Phase of ``shared/cif/<name>.cif`` (name = file stem; see `paths`)."""
    from orix.crystal_map import Phase
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ph = Phase.from_cif(str(cif_dir() / f"{name}.cif"))
    ph.name = name
    return ph


def random_rotations(rng: np.random.Generator, n: int):
    """``n`` rotations uniform on SO(3) (normalised 4D Gaussians), orix Rotation."""
    from orix.quaternion import Rotation
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q[q[:, 0] < 0] *= -1
    return Rotation(q)


def _axis_angle(axis, angle_rad):
    from orix.quaternion import Rotation
    return Rotation.from_axes_angles(np.asarray(axis, float), angle_rad)


def zone_rotation(phase, uvw, phi1: float, tilt_rad: float, tilt_azimuth: float):
    """Rotation (crystal to lab) putting zone ``uvw`` along the beam, turned by ``phi1``
    about it, then tilted by ``tilt_rad`` about an in-plane axis at ``tilt_azimuth``."""
    from orix.quaternion import Rotation
    from orix.vector import Miller
    d = Miller(uvw=[uvw], phase=phase).unit.data[0]
    Phi = np.arccos(np.clip(d[2], -1, 1))
    phi2 = np.arctan2(d[0], d[1])
    R = Rotation.from_euler([[phi1, Phi, phi2]])
    if tilt_rad:
        R = _axis_angle([np.cos(tilt_azimuth), np.sin(tilt_azimuth), 0.0], tilt_rad) * R
    return R


def simulate_reflections(phase, rotation, *, voltage, precession_deg, excitation_error,
                         reciprocal_radius):
    """Kinematic reflections of ``phase`` for each rotation (no direct beam).

    Returns
    -------
    list of (xy, intensity, hkl): xy (n, 2) Å⁻¹ (x along columns, y along rows),
    intensity (n,), hkl (n, 3), one tuple per rotation.
    """
    from diffsims.generators.simulation_generator import SimulationGenerator
    gen = SimulationGenerator(accelerating_voltage=voltage, precession_angle=precession_deg,
                              minimum_intensity=1e-8)
    dw = {el: b for el, b in DEBYE_WALLER.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = gen.calculate_diffraction2d(phase, rotation, reciprocal_radius=reciprocal_radius,
                                          with_direct_beam=False,
                                          max_excitation_error=excitation_error,
                                          debye_waller_factors=dw)
    coords = sim.coordinates
    if rotation.size == 1:
        coords = [coords]
    out = []
    for c in coords:
        inten = np.asarray(c.intensity, np.float64)
        keep = inten > 1e-6 * max(inten.max(initial=0), 1e-300)
        out.append((np.asarray(c.data[keep, :2], np.float64), inten[keep],
                    np.asarray(c.hkl[keep], np.float64)))
    return out


def specimen_diffuse(s: np.ndarray) -> np.ndarray:
    """Diffuse background of a crystalline specimen vs s = 1/d (Å⁻¹), not normalised.

    A smooth halo falling off as the square of a screened atomic scattering factor
    (half width 0.3 Å⁻¹): thermal-diffuse and inelastic scattering, without Kikuchi
    bands or the crystal's structure.
    """
    return 1.0 / (1.0 + (s / 0.3) ** 2) ** 2


def _saturation(phase, p) -> float:
    """Median total kinematic intensity of 64 random orientations (a phase constant)."""
    key = (phase.name, tuple(sorted(p.items())))
    if key not in _SATURATION:
        rng = np.random.default_rng(0)      # fixed: not a draw of the case
        refl = simulate_reflections(phase, random_rotations(rng, 64), **p)
        _SATURATION[key] = float(np.median([r[1].sum() for r in refl]))
    return _SATURATION[key]


_SATURATION: dict = {}


def _blurred(img, sigma):
    from scipy.ndimage import gaussian_filter
    b = gaussian_filter(img, sigma)
    n = np.linalg.norm(b)
    return b / n if n > 0 else b


def _draw_grains(s, rng, canvas, centre, kernel, sim_p):
    """Phases, centre orientations, gradient steps and spot images of the grains."""
    from orix.quaternion import Orientation
    n, m = s["n_grains"], s["_margin"]
    phases = [load_phase(s["phases"][i % len(s["phases"])]) for i in range(n)]
    sat = {ph.name: _saturation(ph, sim_p) for ph in {p.name: p for p in phases}.values()}
    frame = (slice(m, canvas[0] - m), slice(m, canvas[1] - m))
    grains = []
    for i in range(n):
        ph = phases[i]
        for attempt in range(500):
            if s["orientation"] == "zone":
                fam = "hexagonal" if ph.point_group.name in ("6/mmm", "6", "622") else "cubic"
                zl = ZONES[fam]
                R = zone_rotation(ph, zl[rng.integers(len(zl))], rng.uniform(0, 2 * np.pi),
                                  np.deg2rad(s["zone_tilt_deg"]) * np.sqrt(rng.uniform()),
                                  rng.uniform(0, 2 * np.pi))
            else:
                R = random_rotations(rng, 1)
            xy, inten, _ = simulate_reflections(ph, R, **sim_p)[0]
            e = 1 - np.exp(-inten.sum() / sat[ph.name])
            img = det.render_spots(canvas, centre, xy, inten / max(inten.sum(), 1e-300),
                                   s["scale"], kernel)
            vis = img[frame]
            rows = centre[0] + xy[:, 1] / s["scale"] - m
            cols = centre[1] + xy[:, 0] / s["scale"] - m
            inside = (rows >= 0) & (rows < s["pattern"][0]) & (cols >= 0) & \
                (cols < s["pattern"][1]) & (inten > 0.01 * inten.max(initial=0))
            if inside.sum() < s["min_spots"] or e < 0.3:
                continue
            blur = _blurred(vis, 1.5)
            o = Orientation(R.data, symmetry=ph.point_group)
            ok = True
            for g in grains:
                if g["phase"] == ph.name and np.rad2deg(
                        o.angle_with(g["orientation"])[0]) < s["min_misorientation_deg"]:
                    ok = False
                    break
                if float(np.sum(blur * g["blur"])) > s["max_spot_cosine"]:
                    ok = False
                    break
            if ok:
                break
        else:
            raise ValueError(f"could not draw grain {i} distinct from the others in 500 tries")
        steps = [R]
        if s["gradient_deg"] > 0:
            axis = rng.normal(size=3)
            axis /= np.linalg.norm(axis)
            angles = np.deg2rad(np.linspace(-s["gradient_deg"] / 2, s["gradient_deg"] / 2,
                                            s["gradient_steps"]))
            steps = [_axis_angle(axis, a) * R for a in angles]
        imgs, es = [], []
        for Rj in steps:
            xy, inten, _ = simulate_reflections(ph, Rj, **sim_p)[0]
            es.append(1 - np.exp(-inten.sum() / sat[ph.name]))
            imgs.append(det.render_spots(canvas, centre, xy, inten / max(inten.sum(), 1e-300),
                                         s["scale"], kernel))
        grains.append(dict(phase=ph.name, orientation=o, rotation=R, blur=blur,
                           images=imgs, excitation=np.array(es),
                           euler=R.to_euler()[0]))
    return grains


def make_case(spec: dict, seed: int) -> Case:
    """Make one diffsims-corpus scan.

    Parameters
    ----------
    spec : dict
        Options overriding `DEFAULTS` (see there and the module docstring); ``name``
        and ``split`` are copied into the metadata.
    seed : int
        Seed of every random choice: sub-streams for the layout (0), the grains (1),
        the descan and detector frame (2) and the counting noise (3).

    Returns
    -------
    Case
        ``data`` (scan_y, scan_x, ky, kx) uint16 (counting) or float32 (integrating);
        ``truth.patterns`` (k_true, ky, kx): each index at thickness factor 1, the
        centre of its gradient, without descan.
    """
    s = dict(DEFAULTS)
    s.update({k: v for k, v in spec.items() if k not in ("name", "split", "generator")})
    s["phases"] = tuple(s["phases"])
    sy, sx = s["scan"]
    ky, kx = s["pattern"]
    m = int(np.ceil(s["descan_px"])) + 2 if s["descan_px"] > 0 else 0
    s["_margin"] = m
    canvas = (ky + 2 * m, kx + 2 * m)
    r_lay, r_gr, r_det, r_noise = (np.random.default_rng([seed, j]) for j in range(4))

    lam = det.electron_wavelength(s["voltage"])
    off = r_gr.uniform(-1, 1, 2) * s["centre_offset_px"]
    centre = ((ky - 1) / 2 + off[0] + m, (kx - 1) / 2 + off[1] + m)
    radius_px = s["probe_mrad"] * 1e-3 / lam / s["scale"]
    kernel = det.probe_kernel(canvas, radius_px, s["psf_sigma"])
    sim_p = dict(voltage=s["voltage"], precession_deg=s["precession_deg"],
                 excitation_error=s["excitation_error"],
                 reciprocal_radius=float(np.hypot(*canvas) / 2 * s["scale"]))
    grains = _draw_grains(s, r_gr, canvas, centre, kernel, sim_p)

    lay = draw_layout((sy, sx), r_lay, n_grains=s["n_grains"],
                      vacuum_fraction=s["vacuum_fraction"], film_fraction=s["film_fraction"],
                      band_width=s["band_width"], band_profile=s["band_profile"],
                      size_spread=s["size_spread"], edge_roughness=s["edge_roughness"])
    tv = s["thickness_variation"]
    thick = 1 + tv * (2 * smooth_field((sy, sx), r_lay) - 1)

    # basis: beam, film, then every (grain, step) spot image
    beam = det.convolve(det.splat(canvas, [centre[0]], [centre[1]], [1.0]), kernel)
    film = det.radial_image(canvas, centre, s["scale"], det.amorphous_carbon)
    film /= film.sum()
    diffuse = det.radial_image(canvas, centre, s["scale"], specimen_diffuse)
    diffuse /= diffuse.sum()
    basis, first_col, n_steps = stack_basis([beam, film, diffuse], grains)
    D, f = float(s["dose"]), float(s["film_strength"])
    coef = np.zeros((sy, sx, len(basis)))
    has_film = np.where(lay.region == 2, 0.0, f)
    if not s["film_under_grains"]:
        has_film[lay.region == 0] = 0.0
    grain_pos = lay.region == 0
    scat = np.where(grain_pos, s["diffuse_fraction"] * thick, 0.0)
    coef[..., 2] = D * scat
    for which, sh in ((lay.first, 1 - lay.share), (lay.second, lay.share)):
        for i, g in enumerate(grains):
            sel = (which == i) & (lay.region == 0) & (sh > 0)
            if not sel.any():
                continue
            step = np.rint((lay.gcoord[i][sel] + 1) / 2 * (n_steps - 1)).astype(int)
            frac = s["spot_fraction"] * thick[sel] * g["excitation"][step] * sh[sel]
            iy, ix = np.nonzero(sel)
            coef[iy, ix, first_col[i] + step] += D * frac
            scat[iy, ix] += frac
    if np.any(scat + has_film > 0.98):
        raise ValueError("spot_fraction, diffuse_fraction (times thickness) and "
                         "film_strength leave no direct beam")
    coef[..., 0] = D * (1 - scat - has_film)
    coef[..., 1] = D * has_film

    shifts = det.descan_field((sy, sx), s["descan_px"], r_det)
    dtr = det.detector_from_spec(s)
    dtr.prepare((ky, kx), r_det)
    data = det.record_scan(coef, basis, dtr, r_noise, shifts=shifts, margin=m)

    # truth
    n = s["n_grains"]
    film_idx = n if s["film_fraction"] > 0 else None
    vac_idx = (n + (film_idx is not None)) if s["vacuum_fraction"] > 0 else None
    contrib = lay.contributions(film_idx, vac_idx)
    pats, names, phase, euler = [], [], [], []
    fg = f if s["film_under_grains"] else 0.0
    for i, g in enumerate(grains):
        c = (n_steps - 1) // 2
        sf = s["spot_fraction"] * g["excitation"][c]
        df = s["diffuse_fraction"]
        pats.append((1 - sf - df - fg) * beam + fg * film + df * diffuse + sf * g["images"][c])
        names.append(f"grain {i} ({g['phase']})")
        phase.append(g["phase"])
        euler.append(g["euler"])
    if film_idx is not None:
        pats.append((1 - f) * beam + f * film)
        names.append("film")
        phase.append(None)
        euler.append([np.nan] * 3)
    if vac_idx is not None:
        pats.append(beam)
        names.append("vacuum")
        phase.append(None)
        euler.append([np.nan] * 3)
    pats = det.crop(np.array(pats), m)
    pats = (pats / pats.sum(axis=(1, 2), keepdims=True)).astype(np.float32)
    background = [b for b in (film_idx, vac_idx) if b is not None]
    truth = truth_from_contributions(
        contrib, background=background, names=names, phase=phase,
        euler=np.array(euler, np.float64), patterns=pats,
        extra={"gradient_deg": np.full(n, float(s["gradient_deg"])),
               "excitation": np.array([g["excitation"][(n_steps - 1) // 2] for g in grains]),
               "thickness": thick.astype(np.float32),
               "descan_px": shifts.astype(np.float32)})
    truth.check()
    meta = dict(generator="diffsims", name=spec.get("name"), split=spec.get("split"),
                spec={k: v for k, v in spec.items()}, seed=int(seed), k_true=truth.k_true,
                calibration=dict(reciprocal_scale=s["scale"], voltage_kV=s["voltage"],
                                 precession_deg=s["precession_deg"],
                                 beam_centre=[centre[0] - m, centre[1] - m],
                                 probe_radius_px=radius_px,
                                 scan_step_nm=s["scan_step_nm"]),
                detector=dtr.describe(), dose=D,
                descan_max_px=float(np.abs(shifts).max()),
                notes="kinematic diffsims reflections; intensity budget and truth in "
                      "benchmarks/corpus/diffsims_gen.py")
    return Case(data=data, truth=truth, meta=meta)
