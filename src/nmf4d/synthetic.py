"""Synthetic 4D-STEM polycrystal scans with known ground truth.

A scan is a Voronoi tessellation of ``n_grains`` grains, each with its own spot lattice
(distinct in-plane rotation, lattice lengths and spot intensities), an optional vacuum
region that shows the direct beam alone, bands along grain boundaries in which the two
neighbouring grains overlap with a known mixing fraction, a smooth thickness variation
of the scattered intensity, and Poisson counting noise at a chosen dose.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError


@dataclass
class SyntheticTruth:
    """The known answer of a synthetic scan.

    Attributes
    ----------
    labels : ndarray of shape (scan_y, scan_x), int32
        Index of the pattern with the largest contribution (vacuum is index ``k_true-1``
        when present).
    secondary : ndarray of shape (scan_y, scan_x), int32
        Index of the second contributing pattern, -1 where there is none.
    ratio : ndarray of shape (scan_y, scan_x), float32
        Second / first contribution (0 where a single pattern is present).
    patterns : ndarray of shape (k_true, ky, kx), float32
        Noise-free patterns, each summing to 1.
    fractions : ndarray of shape (k_true, scan_y, scan_x), float32
        Intensity (expected counts) that each pattern contributes at each position.
    k_true : int
        Number of distinct patterns (grains plus vacuum).
    vacuum_index : int
        Index of the vacuum pattern, -1 when there is no vacuum.
    clean : ndarray of shape (scan_y, scan_x, ky, kx), float32, or None
        Expected counts before Poisson noise (only with ``return_clean=True``).
    """

    labels: np.ndarray
    secondary: np.ndarray
    ratio: np.ndarray
    patterns: np.ndarray
    fractions: np.ndarray
    k_true: int
    vacuum_index: int
    clean: np.ndarray | None = None

    def overlap_mask(self, threshold: float = 0.75) -> np.ndarray:
        """Positions where the second/first mixing ratio is at least ``threshold``."""
        return self.ratio >= threshold

    def in_band(self) -> np.ndarray:
        """Positions where two grains contribute (any ratio > 0)."""
        return self.ratio > 0


def _spot_image(shape, centres, amps, sigma):
    ky, kx = shape
    img = np.zeros(shape, dtype=np.float64)
    r = int(np.ceil(4 * sigma))
    for (cy, cx), a in zip(centres, amps):
        y0, y1 = max(0, int(cy) - r), min(ky, int(cy) + r + 2)
        x0, x1 = max(0, int(cx) - r), min(kx, int(cx) + r + 2)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        img[y0:y1, x0:x1] += a * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma ** 2))
    return img


def make_grain_pattern(shape, rng, *, spot_sigma=1.0, direct_fraction=0.35,
                       background_fraction=0.05, angle=None):
    """One grain's noise-free diffraction pattern (sums to 1).

    A 2D lattice of reflections with random in-plane rotation ``angle`` (radians),
    lattice lengths, inter-axis angle and structure-factor-like intensities, decaying
    with scattering vector; a direct beam carrying ``direct_fraction`` of the intensity
    and a weak diffuse background.
    """
    ky, kx = shape
    c = np.array([(ky - 1) / 2.0, (kx - 1) / 2.0])
    size = min(ky, kx)
    if angle is None:
        angle = rng.uniform(0, np.pi)
    a1 = rng.uniform(0.11, 0.2) * size
    a2 = a1 * rng.uniform(0.8, 1.3)
    gamma = rng.uniform(np.deg2rad(60), np.deg2rad(110))
    g1 = a1 * np.array([np.sin(angle), np.cos(angle)])
    g2 = a2 * np.array([np.sin(angle + gamma), np.cos(angle + gamma)])
    rmax = 0.45 * size
    centres, amps = [], []
    n = int(np.ceil(rmax / min(a1, a2))) + 2
    for i in range(-n, n + 1):
        for j in range(-n, n + 1):
            if i == 0 and j == 0:
                continue
            v = i * g1 + j * g2
            r = np.hypot(*v)
            if r > rmax:
                continue
            centres.append(c + v)
            amps.append(rng.uniform(0.3, 1.0) * np.exp(-(r / (0.3 * size)) ** 2))
    spots = _spot_image(shape, centres, amps, spot_sigma)
    spots /= spots.sum()
    beam = _spot_image(shape, [c], [1.0], spot_sigma * 1.3)
    beam /= beam.sum()
    yy, xx = np.mgrid[0:ky, 0:kx]
    diffuse = 1.0 / (1.0 + ((yy - c[0]) ** 2 + (xx - c[1]) ** 2) / (0.15 * size) ** 2)
    diffuse /= diffuse.sum()
    pat = (direct_fraction * beam + background_fraction * diffuse
           + (1 - direct_fraction - background_fraction) * spots)
    return pat / pat.sum(), angle


def _smooth_field(shape, rng, n_waves=3):
    sy, sx = shape
    yy, xx = np.mgrid[0:sy, 0:sx] / max(sy, sx)
    f = np.zeros(shape)
    for _ in range(n_waves):
        ky, kx = rng.uniform(0.5, 2.0, size=2)
        ph = rng.uniform(0, 2 * np.pi)
        f += np.sin(2 * np.pi * (ky * yy + kx * xx) + ph)
    f -= f.min()
    mx = f.max()
    return f / mx if mx > 0 else f


@dataclass
class _Layout:
    """Everything about a scan but its counts: patterns, contributions and truth labels."""

    patterns: np.ndarray      # (k_true, ky, kx) float64, each summing to 1
    fractions: np.ndarray     # (k_true, sy, sx) float64, in units of the dose
    labels: np.ndarray
    secondary: np.ndarray
    ratio: np.ndarray         # float64
    k_true: int
    vacuum_index: int

    def truth(self, dose_val: float, clean=None) -> SyntheticTruth:
        return SyntheticTruth(labels=self.labels, secondary=self.secondary,
                              ratio=self.ratio.astype(np.float32),
                              patterns=self.patterns.astype(np.float32),
                              fractions=(self.fractions * dose_val).astype(np.float32),
                              k_true=self.k_true, vacuum_index=self.vacuum_index, clean=clean)


def _check_options(n_grains, dose, thickness_variation) -> None:
    if n_grains < 1:
        raise InputError(f"n_grains must be >= 1, got {n_grains}")
    if dose is not None and dose <= 0:
        raise InputError(f"dose must be > 0 or None, got {dose}")
    if not 0 <= thickness_variation < 1:
        raise InputError(f"thickness_variation must be in [0, 1), got {thickness_variation}")


def _layout(scan_shape, pattern_shape, rng, *, n_grains: int = 5, vacuum: bool = True,
            vacuum_fraction: float = 0.15, overlap_width: float = 4.0,
            thickness_variation: float = 0.3, spot_sigma: float = 1.0,
            min_angle_deg: float = 12.0) -> _Layout:
    """Draw a scan's layout from ``rng`` (see `make_polycrystal` for the options).

    Memory is O(n_grains x scan), never O(scan x pattern).
    """
    sy, sx = scan_shape

    # Orientations: rotations at least min_angle apart (mod 180 deg).
    angles: list[float] = []
    tries = 0
    while len(angles) < n_grains:
        a = rng.uniform(0, np.pi)
        d = [min(abs(a - b), np.pi - abs(a - b)) for b in angles]
        if not d or min(d) >= np.deg2rad(min_angle_deg) or tries > 10000:
            angles.append(a)
        tries += 1
    patterns = [make_grain_pattern(pattern_shape, rng, spot_sigma=spot_sigma,
                                   angle=a)[0] for a in angles]

    # Vacuum first (a straight edge cutting one corner), so grains are placed beside it.
    yy, xx = np.mgrid[0:sy, 0:sx].astype(np.float64)
    vac = np.zeros((sy, sx), bool)
    if vacuum:
        corner = rng.integers(4)
        uy = (yy / sy) if corner in (0, 1) else (1 - yy / sy)
        ux = (xx / sx) if corner in (0, 2) else (1 - xx / sx)
        u = uy + ux
        vac = u <= np.quantile(u, vacuum_fraction)
    solid = ~vac
    # Grain map: Voronoi cells of seeds in the solid part, redrawn until every grain
    # owns a fair share of it (at least 40 % of the mean grain area) away from bands.
    area = solid.sum() / n_grains
    pts = np.argwhere(solid).astype(np.float64)
    for attempt in range(200):
        # Mitchell's best-candidate sampling spreads the seeds evenly but randomly.
        seeds = [pts[rng.integers(len(pts))]]
        for _ in range(n_grains - 1):
            cand = pts[rng.integers(len(pts), size=15)]
            dmin = np.min(np.linalg.norm(cand[:, None] - np.array(seeds)[None], axis=-1), axis=1)
            seeds.append(cand[np.argmax(dmin)])
        seeds = np.array(seeds) + rng.uniform(0, 1, (n_grains, 2))
        dist = np.sqrt((yy[None] - seeds[:, 0, None, None]) ** 2
                       + (xx[None] - seeds[:, 1, None, None]) ** 2)
        order = np.argsort(dist, axis=0)
        first = order[0]
        second = order[1] if n_grains > 1 else order[0]
        d1 = np.take_along_axis(dist, first[None], 0)[0]
        d2 = np.take_along_axis(dist, second[None], 0)[0]
        sep = np.linalg.norm(seeds[first] - seeds[second], axis=-1)
        dist_boundary = (d2 ** 2 - d1 ** 2) / (2 * np.maximum(sep, 1e-9))
        if overlap_width > 0 and n_grains > 1:
            # trapezoid: full overlap (share 1/2) over the central half of the band,
            # linear ramps over the outer quarters (an inclined boundary)
            share = 0.5 * np.clip((overlap_width / 2 - dist_boundary) / (overlap_width / 4), 0.0, 1.0)
        else:
            share = np.zeros((sy, sx))
        pure = solid & (share == 0)
        counts = np.bincount(first[pure], minlength=n_grains)
        if n_grains == 1 or counts.min() >= 0.4 * area:
            break
    else:
        raise InputError(f"cannot place n_grains={n_grains} grains of fair size in a "
                         f"{sy}x{sx} scan with overlap_width={overlap_width}: use fewer "
                         "grains, a larger scan or narrower bands")

    thick = 1.0 + thickness_variation * (2 * _smooth_field((sy, sx), rng) - 1)

    k_true = n_grains + (1 if vacuum else 0)
    fractions = np.zeros((k_true, sy, sx))
    iy, ix = np.mgrid[0:sy, 0:sx]
    fractions[first, iy, ix] += (1 - share) * thick
    fractions[second, iy, ix] += share * thick

    vacuum_index = -1
    if vacuum:
        vacuum_index = n_grains
        beam = _spot_image(pattern_shape, [((pattern_shape[0] - 1) / 2, (pattern_shape[1] - 1) / 2)],
                           [1.0], spot_sigma * 1.3)
        patterns.append(beam / beam.sum())
        fractions[:, vac] = 0.0
        fractions[vacuum_index, vac] = 1.0

    # Truth labels from the contributions.
    srt = np.sort(fractions, axis=0)
    arg = np.argsort(-fractions, axis=0, kind="stable")
    labels = arg[0].astype(np.int32)
    top, nxt = srt[-1], srt[-2] if k_true > 1 else np.zeros_like(srt[-1])
    ratio = np.where(top > 0, nxt / np.where(top > 0, top, 1), 0.0)
    secondary = np.where(nxt > 0, arg[1], -1).astype(np.int32) if k_true > 1 else \
        np.full((sy, sx), -1, np.int32)
    return _Layout(patterns=np.array(patterns), fractions=fractions, labels=labels,
                   secondary=secondary, ratio=ratio, k_true=k_true, vacuum_index=vacuum_index)


def make_polycrystal(scan_shape=(48, 48), pattern_shape=(64, 64), *, n_grains: int = 5,
                     vacuum: bool = True, vacuum_fraction: float = 0.15,
                     overlap_width: float = 4.0, thickness_variation: float = 0.3,
                     dose: float | None = 5000.0, spot_sigma: float = 1.0,
                     min_angle_deg: float = 12.0, seed: int = 0,
                     return_clean: bool = False, dtype=None):
    """Make a synthetic polycrystal 4D-STEM scan with known ground truth.

    Parameters
    ----------
    scan_shape : (int, int)
        (scan_y, scan_x).
    pattern_shape : (int, int)
        (ky, kx) detector pixels.
    n_grains : int
        Number of grains, each with a distinct orientation (>= 1).
    vacuum : bool
        Add a vacuum region (direct beam only) over about ``vacuum_fraction`` of the scan,
        cut off one corner by a straight edge.
    overlap_width : float
        Width in scan pixels of the bands along grain boundaries where the two grains
        overlap (an inclined boundary seen in projection): over the central half of a
        band both grains contribute equally; over the outer quarters the share of the
        neighbouring grain rises linearly from 0 to 1/2. 0 for sharp boundaries.
    thickness_variation : float
        Relative amplitude of the smooth thickness variation of the grains' intensity
        (intensity factor in [1 - tv, 1 + tv]).
    dose : float or None
        Mean electron counts per pattern (at thickness factor 1) before Poisson noise;
        None for noise-free expected counts.
    spot_sigma : float
        Spot size (Gaussian sigma, detector pixels).
    min_angle_deg : float
        Minimum in-plane rotation between any two grain lattices.
    seed : int
        Seed of every random choice.
    return_clean : bool
        Also store the noise-free expected counts in ``truth.clean``.
    dtype : numpy dtype, optional
        Output dtype; default uint16 counts (uint32 if the counts do not fit), float32
        when ``dose`` is None.

    Returns
    -------
    data : ndarray of shape (scan_y, scan_x, ky, kx)
    truth : SyntheticTruth
    """
    _check_options(n_grains, dose, thickness_variation)
    rng = np.random.default_rng(seed)
    lay = _layout(scan_shape, pattern_shape, rng, n_grains=n_grains, vacuum=vacuum,
                  vacuum_fraction=vacuum_fraction, overlap_width=overlap_width,
                  thickness_variation=thickness_variation, spot_sigma=spot_sigma,
                  min_angle_deg=min_angle_deg)
    dose_val = 1.0 if dose is None else float(dose)
    clean = np.einsum("cyx,cij->yxij", lay.fractions * dose_val, lay.patterns)
    if dose is None:
        data = clean.astype(dtype or np.float32)
    else:
        counts = rng.poisson(clean)
        if dtype is None:
            dtype = np.uint16 if counts.max() < 2**16 else np.uint32
        data = counts.astype(dtype)
    return data, lay.truth(dose_val, clean.astype(np.float32) if return_clean else None)


def write_polycrystal_zarr(path, scan_shape=(256, 256), pattern_shape=(128, 128), *,
                           chunks=(8, 64), dtype="float32", overwrite: bool = False,
                           progress: bool = False, **layout_options) -> SyntheticTruth:
    """Write a synthetic polycrystal scan to a zarr array without holding it in memory.

    The layout (patterns, grain map, bands, thickness, vacuum, truth) is exactly that of
    `make_polycrystal` with the same options and seed; only the counting noise differs.
    The data are made block by block over scan rows: for rows ``[b*cy, (b+1)*cy)`` the
    expected counts come from that block's fractions and the patterns, and Poisson counts
    are drawn by a generator seeded with ``SeedSequence(seed, spawn_key=(b,))`` (that is
    ``SeedSequence(seed).spawn(n_blocks)[b]``), one chunk (``cy x cx`` positions) at a
    time in x order. Memory therefore stays O(one chunk) on top of the O(k_true x scan)
    layout. The noise (not the layout or truth) depends on ``chunks``: the same seed and
    chunks give the same data.

    Parameters
    ----------
    path : str or path-like
        Destination zarr store (a folder). Written under a hidden temporary name beside
        it and renamed at the end, so it is either complete or absent.
    scan_shape, pattern_shape : (int, int)
        (scan_y, scan_x) and (ky, kx).
    chunks : (int, int)
        Scan-axis chunk shape (cy, cx); each chunk holds whole patterns, so the stored
        chunk shape is ``(cy, cx, ky, kx)``. Clipped to the scan shape.
    dtype : numpy dtype, default float32
        Stored dtype. An integer dtype needs a dose and must hold every count.
    overwrite : bool
        Replace an existing ``path``; otherwise an existing path is refused.
    progress : bool
        Show a tqdm bar over row blocks (on stderr).
    **layout_options
        ``n_grains``, ``vacuum``, ``vacuum_fraction``, ``overlap_width``,
        ``thickness_variation``, ``dose`` (None: write the expected counts, no noise),
        ``spot_sigma``, ``min_angle_deg``, ``seed``; defaults as in `make_polycrystal`.
        They, ``k_true``, ``vacuum_index`` and the chunking are stored in the array's
        ``.attrs``.

    Returns
    -------
    truth : SyntheticTruth
        As from `make_polycrystal`, without ``clean``.
    """
    import os
    import sys
    from pathlib import Path

    import zarr
    from tqdm.auto import tqdm

    from ._version import __version__
    from .outputs import atomic_path

    opts = dict(n_grains=5, vacuum=True, vacuum_fraction=0.15, overlap_width=4.0,
                thickness_variation=0.3, dose=5000.0, spot_sigma=1.0, min_angle_deg=12.0,
                seed=0)
    unknown = sorted(set(layout_options) - set(opts))
    if unknown:
        raise TypeError(f"write_polycrystal_zarr got unexpected options {unknown}; "
                        f"allowed: {sorted(opts)}")
    opts.update(layout_options)
    dose, seed = opts.pop("dose"), opts.pop("seed")
    _check_options(opts["n_grains"], dose, opts["thickness_variation"])
    sy, sx = (int(n) for n in scan_shape)
    ky, kx = (int(n) for n in pattern_shape)
    try:
        cy, cx = (int(c) for c in chunks)
    except (TypeError, ValueError):
        cy = cx = 0
    if cy < 1 or cx < 1 or len(tuple(chunks)) != 2:
        raise InputError(f"chunks={chunks!r}: expected two positive integers (scan y, x)")
    cy, cx = min(cy, sy), min(cx, sx)
    dtype = np.dtype(dtype)
    is_int = np.issubdtype(dtype, np.integer)
    if not (is_int or np.issubdtype(dtype, np.floating)):
        raise InputError(f"dtype={dtype}: expected an integer or floating dtype")
    if is_int and dose is None:
        raise InputError(f"dtype={dtype}: expected counts without noise (dose=None) "
                         "need a floating dtype")
    path = Path(path)
    if os.path.lexists(path) and not overwrite:
        raise InputError(f"{str(path)!r} exists: choose another path or pass overwrite=True")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise InputError(f"{str(path)!r}: folder {str(parent)!r} does not exist")

    rng = np.random.default_rng(seed)
    lay = _layout((sy, sx), (ky, kx), rng, **opts)
    dose_val = 1.0 if dose is None else float(dose)
    k = lay.k_true
    pats = lay.patterns.reshape(k, ky * kx)
    n_blocks = -(-sy // cy)
    attrs = dict(generator="nmf4d.synthetic.write_polycrystal_zarr", nmf4d_version=__version__,
                 k_true=int(k), vacuum_index=int(lay.vacuum_index), scan_shape=[sy, sx],
                 pattern_shape=[ky, kx], chunks=[cy, cx], dtype=str(dtype), seed=int(seed),
                 dose=None if dose is None else float(dose),
                 noise_seeding="Poisson counts of scan-row block b (chunks[0] rows) drawn "
                               "with default_rng(SeedSequence(seed, spawn_key=(b,))), "
                               "chunk by chunk along x",
                 **{key: (val.item() if isinstance(val, np.generic) else val)
                    for key, val in opts.items()})

    with atomic_path(path, overwrite=overwrite) as tmp:
        out = zarr.open_array(str(tmp), mode="w", shape=(sy, sx, ky, kx),
                              chunks=(cy, cx, ky, kx), dtype=dtype)
        out.attrs.update(attrs)
        for b in tqdm(range(n_blocks), desc="synthetic", unit="block", file=sys.stderr,
                      disable=not progress):
            r0, r1 = b * cy, min((b + 1) * cy, sy)
            noise = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(b,)))
            for c0 in range(0, sx, cx):
                c1 = min(c0 + cx, sx)
                fr = lay.fractions[:, r0:r1, c0:c1].reshape(k, -1) * dose_val
                lam = np.maximum(fr.T @ pats, 0.0).reshape(r1 - r0, c1 - c0, ky, kx)
                if dose is None:
                    piece = lam.astype(dtype)
                else:
                    counts = noise.poisson(lam)
                    del lam
                    if is_int and counts.max() > np.iinfo(dtype).max:
                        raise InputError(f"dtype={dtype}: counts up to {counts.max()} do "
                                         "not fit; use a wider dtype or float32")
                    piece = counts.astype(dtype)
                    del counts
                out[r0:r1, c0:c1] = piece
    return lay.truth(dose_val)


#: The decision suite: 12 scans with k_true from 3 to 12, varied dose (including noisy
#: ones), grain size (scan size / grain count), vacuum present or not, and overlap bands.
#: ``benchmarks/decision_suite.py`` runs them all; the tests run a few.
DECISION_SUITE = (
    dict(name="k3-clean", scan_shape=(40, 40), n_grains=3, vacuum=False, dose=2000, overlap_width=4, seed=101),
    dict(name="k3-vac-noisy", scan_shape=(40, 40), n_grains=2, vacuum=True, dose=300, overlap_width=4, seed=102),
    dict(name="k4-wide-bands", scan_shape=(40, 40), n_grains=4, vacuum=False, dose=1000, overlap_width=7, seed=103),
    dict(name="k5-sharp", scan_shape=(48, 48), n_grains=4, vacuum=True, dose=5000, overlap_width=0, seed=104),
    dict(name="k6-very-noisy", scan_shape=(48, 48), n_grains=5, vacuum=True, dose=200, overlap_width=4, seed=105),
    dict(name="k7-demo-like", scan_shape=(48, 48), n_grains=6, vacuum=True, dose=2000, overlap_width=4, seed=106),
    dict(name="k7-noisy", scan_shape=(48, 48), n_grains=7, vacuum=False, dose=500, overlap_width=4, seed=107),
    dict(name="k8-paper-like", scan_shape=(56, 56), n_grains=7, vacuum=True, dose=1000, overlap_width=4, seed=108),
    dict(name="k9-small-grains", scan_shape=(48, 48), n_grains=9, vacuum=False, dose=3000, overlap_width=3, seed=109),
    dict(name="k10-noisy", scan_shape=(56, 56), n_grains=9, vacuum=True, dose=500, overlap_width=4, seed=110),
    dict(name="k11", scan_shape=(64, 64), n_grains=10, vacuum=True, dose=2000, overlap_width=4, seed=111),
    dict(name="k12", scan_shape=(64, 64), n_grains=12, vacuum=False, dose=1000, overlap_width=4, seed=112),
)


def suite_case(name: str, **overrides):
    """Make one decision-suite scan by name: returns (data, truth)."""
    for case in DECISION_SUITE:
        if case["name"] == name:
            cfg = {k: v for k, v in case.items() if k != "name"}
            cfg.update(overrides)
            return make_polycrystal(**cfg)
    raise InputError(f"unknown suite case {name!r}: choose one of "
                     + ", ".join(c["name"] for c in DECISION_SUITE))
