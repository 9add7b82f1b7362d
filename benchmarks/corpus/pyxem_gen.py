"""Generator 2: pyxem's dummy-data simulators (needs pyxem; see `build.py`).

pyxem pins zarr < 3, so it lives in its own environment (``/work/venv-pyxem``); the
builder re-invokes itself there for these cases. Three modes, each returning known
truth:

``mode="nanocrystals"`` — ``pyxem.data.dummy_data.CrystalSTEMSimulation``
    Blob-shaped nanocrystals (pyxem's ``create_blob``) of one phase, each a kinematic
    diffsims pattern of flat-topped discs (``add_disk``), summed where crystals
    overlap, made into counts by pyxem's ``make_4d_stem`` (Poisson counts times a
    gain plus uniform noise in ``[0, noise_level)``). Choices made here rather than by
    pyxem: the rotations (near low-index zone axes, so crystals show reflections; a
    uniformly random orientation at pyxem's excitation error usually shows almost
    none), one rotation per crystal, crystal centres spread so every crystal keeps a
    pure region, the in-plane angles (drawn until the crystals' reflection images
    differ, cosine <= ``max_spot_cosine``), and ``num_electrons`` from the dose.
    pyxem's crystals carry their direct beam (kinematic F(000), about 20-50 times all
    reflections together) and positions outside every crystal are empty (no beam);
    ``vacuum_beam=True`` adds the direct beam disc of one crystal there (Poisson, same
    gain) so that they look like vacuum, ``beam_scale`` scales the direct beam of
    every crystal before the counts are drawn. Contribution of a crystal (truth
    ratio): the total expected intensity of its pattern where its blob covers the
    position.
``mode="si_grains"`` — ``pyxem.data.simulated_si.si_grains_from_orientations``
    A tiling (``skimage.segmentation.expand_labels`` of random seeds) of silicon grains
    in the given orientations, noise-free Gaussian spots (sigma 5 px, calibration
    0.01 Å⁻¹/px), each pattern normalised to a maximum of 1 (the direct beam). Here:
    orientations near low-index zone axes, and counts (Poisson at ``dose`` mean counts
    per pattern) by `detector`. Grains whose seeds coincide vanish; truth comes from
    the patterns actually present.
``mode="fe_multiphase"`` — ``pyxem.data.simulated_fe.fe_multi_phase_grains``
    The same tiling with ``num_grains`` bcc and ``num_grains`` fcc iron grains in
    random orientations (``Rotation.random``, seeded through ``numpy.random.seed``),
    calibration 0.02 Å⁻¹/px, then counts as above.

k_true: the crystals/grains present as the dominant pattern somewhere, plus the empty
(or vacuum) region when there is one (nanocrystals).
"""
from __future__ import annotations

import random
import warnings

import numpy as np

from . import detector as det
from .case import Case, truth_from_contributions

DEFAULTS = dict(
    mode="nanocrystals", phase="fe_fcc", n_grains=6, scan=64, pattern=64,
    crystal_size=10, k_range=1.0, excitation_error=0.015, precession_deg=0.0,
    disk_radius=3, dose=2000.0, noise_level=0.1, electron_gain=1.0, vacuum_beam=False,
    beam_scale=1.0, zone_tilt_deg=1.0, max_spot_cosine=0.6, min_pure=0.5,
    detector=None, scan_step_nm=2.0,
)


def available() -> bool:
    """True when pyxem can be imported here."""
    try:
        import pyxem  # noqa: F401
    except Exception:
        return False
    return True


def _seed_globals(seed: int) -> None:
    np.random.seed(seed % 2 ** 32)
    random.seed(seed)


def _clean_pattern(coords, shape, scale, centre, radius, with_beam=True):
    from pyxem.data.dummy_data.make_overlapping_nanocrystals import add_disk
    im = np.zeros(shape)
    for v in coords:
        if not with_beam and np.hypot(v[0], v[1]) < 1e-9:
            continue
        im = add_disk(im, center=v[:2] * scale + centre, radius=radius, intensity=v[2])
    return im


def _nanocrystals(s, seed):
    from diffsims.generators.simulation_generator import SimulationGenerator
    from orix.quaternion import Rotation
    from pyxem.data.dummy_data import CrystalSTEMSimulation

    from .diffsims_gen import ZONES, load_phase, zone_rotation

    rng = np.random.default_rng([seed, 1])
    _seed_globals(seed)
    n, N, P, size = s["n_grains"], s["scan"], s["pattern"], s["crystal_size"]
    phase = load_phase(s["phase"])
    fam = "hexagonal" if phase.point_group.name in ("6/mmm", "6", "622") else "cubic"
    zones = ZONES[fam]
    order = rng.permutation(len(zones))
    uvw = [zones[order[i % len(zones)]] for i in range(n)]
    rots = [zone_rotation(phase, z, 0.0, np.deg2rad(s["zone_tilt_deg"]) * rng.uniform(),
                          rng.uniform(0, 2 * np.pi)) for z in uvw]
    R = Rotation.stack(rots).flatten()
    gen = SimulationGenerator(accelerating_voltage=200, minimum_intensity=1e-10,
                              precession_angle=s["precession_deg"])
    sim = CrystalSTEMSimulation(phase, num_crystals=n, k_range=s["k_range"],
                                crystal_size=size, real_space_pixels=N,
                                recip_space_pixels=P, generator=gen,
                                max_excitation_error=s["excitation_error"], rotations=R)
    scale, centre = (P / 2) / s["k_range"], P / 2
    sim.random_rotations = np.arange(n)
    base = [np.array(sim.simulation.irot[i].coordinates.data[:, :2]) for i in range(n)]
    inten = [np.array(sim.simulation.irot[i].coordinates.intensity) for i in range(n)]
    for i in range(n):           # beam_scale: the zero vector(s) of every crystal
        zero = np.hypot(base[i][:, 0], base[i][:, 1]) < 1e-9
        inten[i][zero] *= s["beam_scale"]

    def crystal_coords(i, a):
        x, y = base[i][:, 0], base[i][:, 1]
        return np.stack([x * np.cos(a) - y * np.sin(a), x * np.sin(a) + y * np.cos(a),
                         inten[i]], axis=1)

    inplane, blurs = np.zeros(n), []
    for i in range(n):
        for _ in range(500):
            a = rng.uniform(0, np.pi)
            img = _clean_pattern(crystal_coords(i, a), (P, P), scale, centre,
                                 s["disk_radius"], with_beam=False)
            nrm = np.linalg.norm(img)
            b = img / nrm if nrm > 0 else img
            if nrm > 0 and all(float(np.sum(b * q)) <= s["max_spot_cosine"] for q in blurs):
                break
        else:
            raise ValueError(f"crystal {i}: no in-plane angle distinct from the others")
        inplane[i] = a
        blurs.append(b)
    sim.random_inplane = inplane
    lo, hi = size + 5, N - (size + 5)
    for attempt in range(300):
        cand = [rng.integers(lo, hi, 2)]
        for _ in range(n - 1):
            c = rng.integers(lo, hi, (12, 2))
            d = np.min(np.linalg.norm(c[:, None] - np.array(cand)[None], axis=-1), axis=1)
            cand.append(c[np.argmax(d)])
        sim.centers = np.array(cand)
        sim.vectors, sim.coordinates, sim.real_space_vectors, sim.intensities = \
            sim.get_nano_crystal_vectors()
        masks = np.zeros((n, N, N), bool)
        for i, pos in enumerate(sim.real_space_vectors):
            masks[i][pos[:, 0], pos[:, 1]] = True
        cover = masks.sum(axis=0)
        pure = [(m & (cover == 1)).sum() for m in masks]
        if all(p >= s["min_pure"] * m.sum() for p, m in zip(pure, masks)):
            break
    else:
        raise ValueError("could not place the crystals with pure regions")
    # pyxem built sim.coordinates from its own intensities: apply beam_scale there too
    for i in range(n):
        sim.coordinates[i][:, 2] = crystal_coords(i, inplane[i])[:, 2]
    sim.vectors = np.array([list(v) + list(c) for i in range(n)
                            for v in sim.real_space_vectors[i] for c in sim.coordinates[i]])
    clean = [_clean_pattern(sim.coordinates[i], (P, P), scale, centre, s["disk_radius"])
             for i in range(n)]
    totals = np.array([c.sum() for c in clean])
    num_e = s["dose"] / totals.mean()
    _seed_globals(seed + 1)
    arr = sim.make_4d_stem(num_electrons=num_e, electron_gain=s["electron_gain"],
                           noise_level=s["noise_level"], radius=s["disk_radius"])
    empty = cover == 0
    vac = _clean_pattern(sim.coordinates[0][np.hypot(*sim.coordinates[0][:, :2].T) < 1e-9],
                         (P, P), scale, centre, s["disk_radius"])
    if s["vacuum_beam"] and empty.any():
        r = np.random.default_rng([seed, 3])
        arr[empty] += r.poisson(vac * num_e, size=(int(empty.sum()), P, P)) * s["electron_gain"]
    contrib = [masks[i] * totals[i] for i in range(n)]
    names = [f"crystal {i} ({s['phase']} [{''.join(str(u) for u in uvw[i])}])"
             for i in range(n)]
    pats = list(clean)
    euler = [(Rotation.from_axes_angles([0, 0, 1], inplane[i]) * rots[i]).to_euler()[0]
             for i in range(n)]
    phase_names = [s["phase"]] * n
    background = []
    if empty.any():
        contrib.append(empty.astype(float))
        names.append("vacuum" if s["vacuum_beam"] else "empty")
        pats.append(vac if s["vacuum_beam"] else np.full((P, P), 1.0))
        euler.append([np.nan] * 3)
        phase_names.append(None)
        background = [n]
    dtype = np.float32 if (s["noise_level"] > 0 or s["electron_gain"] != 1) else np.uint16
    return dict(data=arr.astype(dtype), contrib=np.array(contrib), names=names,
                patterns=np.array(pats), euler=euler, phase=phase_names,
                background=background, scale=s["k_range"] / (P / 2),
                centre=[centre, centre], detector={"kind": "pyxem make_4d_stem",
                "dtype": np.dtype(dtype).name, "gain": s["electron_gain"],
                "uniform_noise": s["noise_level"], "num_electrons": num_e},
                note="pyxem convention: reciprocal x along rows")


def _draw_tiling(s, rng):
    """One pyxem tiling: (data (N, N, P, P), euler (n, 3), phases, scale, beam sigma, sub-seed)."""
    from orix.quaternion import Orientation

    N, P = s["scan"], s["pattern"]
    sub = int(rng.integers(2 ** 31))
    if s["mode"] == "si_grains":
        from pyxem.data.simulated_si import si_grains_from_orientations, si_phase

        from .diffsims_gen import ZONES, zone_rotation
        ph = si_phase()
        ph.name = "si_diamond"
        order = rng.permutation(len(ZONES["cubic"]))
        rots = [zone_rotation(ph, ZONES["cubic"][order[i % len(order)]],
                              rng.uniform(0, 2 * np.pi),
                              np.deg2rad(s["zone_tilt_deg"]) * rng.uniform(),
                              rng.uniform(0, 2 * np.pi)) for i in range(s["n_grains"])]
        eul = np.array([r.to_euler()[0] for r in rots])
        oris = Orientation.from_euler(eul, symmetry=ph.point_group)
        sig = si_grains_from_orientations(oris, seed=sub, size=N, recip_pixels=P)
        return (np.asarray(sig.data, np.float64), eul, ["si_diamond"] * s["n_grains"], 0.01,
                5.0, sub)
    from orix.quaternion import Rotation
    from pyxem.data.simulated_fe import fe_multi_phase_grains
    ng = s["n_grains"] // 2
    _seed_globals(sub)
    sig = fe_multi_phase_grains(num_grains=ng, seed=sub, size=N, recip_pixels=P)
    _seed_globals(sub)         # the same draws as inside: rotations of bcc, then fcc
    r1, r2 = Rotation.random(ng), Rotation.random(ng)
    eul = np.concatenate([r1.to_euler(), r2.to_euler()])
    return (np.asarray(sig.data, np.float64), eul, ["fe_bcc"] * ng + ["fe_fcc"] * ng, 0.02,
            3.0, sub)


def _tiled(s, seed):
    """si_grains / fe_multiphase: noise-free pyxem tilings, counted here.

    Tilings are redrawn (pyxem seed and, for silicon, orientations) until every grain
    present covers at least 0.3 of the mean grain area, shows at least 3 % of its intensity outside the direct beam (4 beam sigmas) and
    differs from every other grain there (cosine <= 0.8): pyxem's random orientations
    often leave a grain with nothing but the direct beam, which no one could tell apart.
    """
    rng = np.random.default_rng([seed, 1])
    N, P = s["scan"], s["pattern"]
    yy, xx = np.indices((P, P))
    for attempt in range(50):
        data, eul, phases, scale, sigma, sub = _draw_tiling(s, rng)
        flat = data.reshape(N * N, P * P)
        uniq, first_pos, inv = np.unique(flat, axis=0, return_index=True,
                                         return_inverse=True)
        rank = np.argsort(first_pos)      # truth indices in order of first appearance
        relabel = np.empty_like(rank)
        relabel[rank] = np.arange(len(rank))
        labels = relabel[inv.ravel()].reshape(N, N)
        pats = uniq[rank].reshape(-1, P, P)
        k = len(pats)
        outer = np.hypot(yy - P / 2, xx - P / 2) > 4 * sigma
        spots = pats[:, outer]
        frac = spots.sum(axis=1) / pats.sum(axis=(1, 2))
        u = spots / np.maximum(np.linalg.norm(spots, axis=1, keepdims=True), 1e-300)
        cos = u @ u.T - 2 * np.eye(k)
        area = np.bincount(labels.ravel(), minlength=k)
        if frac.min() >= 0.03 and cos.max() <= 0.8 and area.min() >= 0.3 * N * N / k:
            break
    else:
        raise ValueError("no pyxem tiling with distinguishable grains in 50 draws")
    contrib = np.stack([(labels == i).astype(float) for i in range(k)])
    scale_counts = s["dose"] / flat.sum(axis=1).mean()
    r_det, r_noise = np.random.default_rng([seed, 2]), np.random.default_rng([seed, 3])
    dtr = det.detector_from_spec(s)
    dtr.prepare((P, P), r_det)
    coef = np.zeros((N, N, k))
    coef[np.arange(N)[:, None], np.arange(N)[None, :], labels] = scale_counts * \
        flat.sum(axis=1).reshape(N, N)
    basis = pats / pats.sum(axis=(1, 2), keepdims=True)
    out = det.record_scan(coef, basis, dtr, r_noise)
    # grain identity: the navigator used index i+1 for grain i; recover by matching
    ids = _match_grains(labels, sub, eul.shape[0])
    names = [f"grain {g} ({phases[g]})" if g >= 0 else f"grain ? ({i})"
             for i, g in enumerate(ids)]
    return dict(data=out, contrib=contrib, names=names, patterns=pats,
                euler=[eul[g] if g >= 0 else [np.nan] * 3 for g in ids],
                phase=[phases[g] if g >= 0 else None for g in ids], background=[],
                scale=scale, centre=[P / 2, P / 2], detector=dtr.describe(),
                note="noise-free pyxem tiling; counts by benchmarks/corpus/detector.py")


def _match_grains(labels, tiling_seed, n_drawn):
    """Index of the drawn grain behind each truth index (-1 when not identified).

    pyxem's tilings seed grain i at ``(x[i], y[i])`` drawn by
    ``default_rng(seed).integers(0, size, n)`` (x first, then y) and label it i + 1; a
    later grain with the same seed point overwrites it. The grain owning a seed point
    is the one whose pattern is found there.
    """
    N = labels.shape[0]
    r = np.random.default_rng(tiling_seed)
    x, y = r.integers(0, N, n_drawn), r.integers(0, N, n_drawn)
    ids = [-1] * (int(labels.max()) + 1)
    for i in range(n_drawn):
        later = [j for j in range(i + 1, n_drawn) if (x[j], y[j]) == (x[i], y[i])]
        if not later:
            ids[labels[x[i], y[i]]] = i
    return ids


def make_case(spec: dict, seed: int) -> Case:
    """Make one pyxem-corpus scan (see the module docstring for the modes).

    Parameters
    ----------
    spec : dict
        Options overriding `DEFAULTS`; ``scan`` and ``pattern`` are side lengths
        (pyxem's simulators make square scans of square patterns).
    seed : int
        Seed of every random choice (numpy's and Python's global generators, which
        pyxem uses, are seeded from it too).

    Returns
    -------
    Case
        ``data`` (scan, scan, pattern, pattern): float32 for ``make_4d_stem`` with
        uniform noise, uint16 counts otherwise.
    """
    s = dict(DEFAULTS)
    s.update({k: v for k, v in spec.items() if k not in ("name", "split", "generator")})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = _nanocrystals(s, seed) if s["mode"] == "nanocrystals" else _tiled(s, seed)
    pats = np.asarray(out["patterns"], np.float64)
    pats = (pats / pats.sum(axis=(1, 2), keepdims=True)).astype(np.float32)
    truth = truth_from_contributions(out["contrib"], background=out["background"],
                                     names=out["names"], phase=out["phase"],
                                     euler=np.array(out["euler"], np.float64), patterns=pats)
    # drop truth indices that are never dominant (hidden crystals): relabel compactly
    present = np.unique(truth.labels)
    if len(present) < truth.k_true:
        keep = present.tolist()
        contrib = out["contrib"][keep]
        truth = truth_from_contributions(
            contrib, background=[keep.index(b) for b in out["background"] if b in keep],
            names=[out["names"][i] for i in keep], phase=[out["phase"][i] for i in keep],
            euler=np.array(out["euler"], np.float64)[keep], patterns=pats[keep])
    truth.check()
    import pyxem
    meta = dict(generator="pyxem", name=spec.get("name"), split=spec.get("split"),
                spec=dict(spec), seed=int(seed), k_true=truth.k_true,
                pyxem_version=pyxem.__version__,
                calibration=dict(reciprocal_scale=out["scale"], voltage_kV=200.0,
                                 precession_deg=s["precession_deg"]
                                 if s["mode"] == "nanocrystals" else 0.0,
                                 beam_centre=out["centre"], scan_step_nm=s["scan_step_nm"]),
                detector=out["detector"], dose=float(s["dose"]), notes=out["note"])
    return Case(data=out["data"], truth=truth, meta=meta)
