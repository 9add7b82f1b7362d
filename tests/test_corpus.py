"""The validation corpus (benchmarks/corpus): small cases of each generator.

Each generator makes data of the right shape and dtype, whose truth is self-consistent
(k_true = number of distinct labels, secondary set exactly where ratio > 0) and which is
a deterministic function of the seed; the diffsims generator puts reflections where
diffsims computes them. Generators whose simulators are missing are skipped (pyxem is
not a test dependency: it pins zarr < 3 and lives in its own environment).
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from corpus import make_case  # noqa: E402
from corpus.case import load_case, save_case  # noqa: E402
from corpus.paths import shared_dir  # noqa: E402
from corpus.specs import CORPUS, GENERATORS  # noqa: E402


def _need(*modules):
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (the 'validate' extra)")


def _need_shared(sub):
    d = shared_dir()
    if d is None or not (d / sub).is_dir():
        pytest.skip(f"shared/{sub} not available beside the repository")


def _need_pyxem():
    from corpus.pyxem_gen import available
    if not available():
        pytest.skip("pyxem not importable here (it needs its own environment, zarr < 3)")


SMALL = {
    "diffsims": dict(phases=("al_fcc", "fe_bcc"), n_grains=3, scan=(14, 12), pattern=(64, 64),
                     scale=0.035, film_strength=0.15, film_fraction=0.15,
                     vacuum_fraction=0.15, band_width=3, dose=800),
    "real": dict(source="nbed", n_grains=3, scan=(14, 12), pattern=(64, 64), zoom=0.75,
                 vacuum_fraction=0.15, band_width=3, descan_px=1.5, dose=800),
    "synthetic": dict(scan=(20, 18), pattern=(32, 32), n_grains=3, extra_beam=0.4,
                      descan_px=1.5, detector=dict(kind="integrating", gain=2.0,
                                                   dark_offset=30.0, read_noise=3.0),
                      dose=800),
    "pyxem": dict(mode="nanocrystals", phase="fe_fcc", n_grains=3, scan=32, pattern=48,
                  crystal_size=6, vacuum_beam=True, dose=500),
}
NEEDS = {"diffsims": (("diffsims", "orix"), "cif"), "real": (("rsciio",), "formats"),
         "synthetic": ((), None), "pyxem": (("diffsims", "orix"), "cif")}


@pytest.fixture(scope="module", params=list(SMALL))
def made(request):
    gen = request.param
    mods, shared = NEEDS[gen]
    _need(*mods)
    if shared:
        _need_shared(shared)
    if gen == "pyxem":
        _need_pyxem()
    spec = dict(SMALL[gen], name=f"test-{gen}", split="design")
    return gen, spec, make_case(gen, spec, 7)


def test_shape_dtype_and_truth(made):
    gen, spec, case = made
    d, t = case.data, case.truth
    scan = spec["scan"] if gen != "pyxem" else (spec["scan"],) * 2
    pat = spec["pattern"] if gen != "pyxem" else (spec["pattern"],) * 2
    assert d.shape == (*scan, *pat)
    integrating = (spec.get("detector") or {}).get("kind") == "integrating"
    pyxem_float = gen == "pyxem" and spec.get("noise_level", 0.1) > 0
    assert d.dtype == (np.float32 if integrating or pyxem_float else np.uint16)
    assert np.all(np.asarray(d) >= 0)
    t.check()
    assert t.k_true == len(np.unique(t.labels)) == case.meta["k_true"]
    band = t.ratio > 0
    assert np.array_equal(t.secondary >= 0, band)
    assert np.all(t.secondary[band] != t.labels[band])
    assert t.patterns.shape == (t.k_true, *pat)
    assert all(0 <= b < t.k_true for b in t.background)
    assert t.euler.shape == (t.k_true, 3)
    assert np.all(np.isnan(t.euler[t.background]))


def test_expected_counts_follow_dose(made):
    gen, spec, case = made
    if gen == "pyxem":
        return                      # pyxem's own intensity scale (dose = crystals' mean)
    d = np.asarray(case.data, np.float64).sum(axis=(2, 3))
    det = case.meta["detector"]
    if det["kind"] == "integrating":
        npx = np.prod(case.data.shape[2:])
        d = (d - det["dark_offset"] * npx) / det["gain"]
    assert 0.6 * spec["dose"] < np.median(d) < 1.3 * spec["dose"]


def test_truth_matches_the_mean_pattern_of_each_region(made):
    """Each region's mean pattern differs from the others the way its truth pattern does."""
    gen, spec, case = made
    if spec.get("descan_px"):       # descan blurs the mean: check the same scan without it
        case = make_case(gen, dict(spec, descan_px=0.0), 7)
        assert np.abs(case.truth.extra["descan_px"]).max() == 0
    t = case.truth
    data = np.asarray(case.data, np.float64)
    regions = [c for c in range(t.k_true) if ((t.labels == c) & (t.ratio == 0)).sum() >= 4]
    means = np.array([data[(t.labels == c) & (t.ratio == 0)].mean(axis=0) for c in regions])
    means /= means.sum(axis=(1, 2), keepdims=True)       # dark offset cancels below
    pats = t.patterns[regions].astype(np.float64)
    dm = (means - means.mean(axis=0)).reshape(len(regions), -1)
    dp = (pats - pats.mean(axis=0)).reshape(len(regions), -1)
    dm /= np.linalg.norm(dm, axis=1, keepdims=True)
    dp /= np.linalg.norm(dp, axis=1, keepdims=True)
    cos = dm @ dp.T
    assert len(regions) >= 3
    assert np.array_equal(np.argmax(cos, axis=1), np.arange(len(regions))), cos
    assert np.diag(cos).min() > 0.5, np.diag(cos)


def test_deterministic(made, tmp_path):
    gen, spec, case = made
    again = make_case(gen, spec, 7)
    assert np.array_equal(case.data, again.data)
    assert np.array_equal(case.truth.labels, again.truth.labels)
    assert np.array_equal(case.truth.ratio, again.truth.ratio)
    save_case(case, tmp_path / "a")
    save_case(again, tmp_path / "b")
    for name in ("data.npy", "truth.npz", "meta.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    back = load_case(tmp_path / "a")
    assert np.array_equal(back.data, case.data)
    assert back.truth.k_true == case.truth.k_true
    assert back.truth.names == case.truth.names
    other = make_case(gen, spec, 8)
    assert not np.array_equal(other.data, case.data)


def test_diffsims_spots_where_diffsims_puts_them():
    """Reflections of a known orientation land at centre + (y, x) / scale."""
    _need("diffsims", "orix")
    _need_shared("cif")
    from diffsims.generators.simulation_generator import SimulationGenerator
    from orix.quaternion import Rotation
    from scipy import ndimage

    from corpus.diffsims_gen import DEBYE_WALLER, load_phase

    spec = dict(phases=("al_fcc",), n_grains=1, scan=(8, 8), pattern=(64, 64),
                scale=0.035, orientation="zone", zone_tilt_deg=0.0, spot_fraction=0.5,
                probe_mrad=0.5, thickness_variation=0.0, dose=1000, name="t", split="design")
    case = make_case("diffsims", spec, 3)
    cal = case.meta["calibration"]
    euler = case.truth.euler[0]
    pattern = case.truth.patterns[0].astype(np.float64)
    cy, cx = cal["beam_centre"]
    # the direct beam is the brightest pixel, at the recorded centre
    by, bx = np.unravel_index(np.argmax(pattern), pattern.shape)
    assert abs(by - cy) <= 1 and abs(bx - cx) <= 1
    gen = SimulationGenerator(accelerating_voltage=200.0)
    sim = gen.calculate_diffraction2d(load_phase("al_fcc"), Rotation.from_euler(euler),
                                      reciprocal_radius=1.6, with_direct_beam=False,
                                      max_excitation_error=0.02,
                                      debye_waller_factors=DEBYE_WALLER)
    xy, inten = sim.coordinates.data[:, :2], np.asarray(sim.coordinates.intensity)
    rows, cols = cy + xy[:, 1] / cal["reciprocal_scale"], cx + xy[:, 0] / cal["reciprocal_scale"]
    strong = (inten > 0.2 * inten.max()) & (rows > 4) & (rows < 59) & (cols > 4) & (cols < 59)
    assert strong.sum() >= 4
    # the beam-free pattern's local maxima sit on the simulated reflections
    spots = pattern - ndimage.median_filter(pattern, 9)
    for r, c in zip(rows[strong], cols[strong]):
        r0, c0 = int(round(r)), int(round(c))
        win = np.maximum(spots[r0 - 3:r0 + 4, c0 - 3:c0 + 4], 0)
        yy, xx = np.mgrid[r0 - 3:r0 + 4, c0 - 3:c0 + 4]
        assert win.sum() > 0
        assert abs((win * yy).sum() / win.sum() - r) < 0.35
        assert abs((win * xx).sum() / win.sum() - c) < 0.35
    # and diffsims' own renderer (x along columns, y along rows) has its peaks there
    own = sim.get_diffraction_pattern(shape=(64, 64), sigma=1.0, calibration=0.035,
                                      direct_beam_position=(cx, cy), fast=False,
                                      normalize=False, clip_threshold=1e-9)
    for r, c in zip(rows[strong], cols[strong]):
        r0, c0 = int(round(r)), int(round(c))
        win = own[r0 - 2:r0 + 3, c0 - 2:c0 + 3]
        py, px = np.unravel_index(np.argmax(win), win.shape)
        assert abs(r0 - 2 + py - r) <= 1 and abs(c0 - 2 + px - c) <= 1


def test_corpus_spec_list():
    names = {(c.name, c.split) for c in CORPUS}
    assert len(names) == len(CORPUS)                     # no duplicate case
    seeds = [c.seed for c in CORPUS]
    assert len(set(seeds)) == len(seeds)                 # halves share no random draw
    design = [c for c in CORPUS if c.split == "design"]
    holdout = [c for c in CORPUS if c.split == "holdout"]
    assert len(design) >= 40 and len(holdout) >= len(design)
    held_names = {c.name for c in holdout}
    for c in design:                                     # each design case is paired
        assert c.name in held_names
        twin = next(h for h in holdout if h.name == c.name)
        assert twin.params == c.params and twin.generator == c.generator
    for gen in GENERATORS:
        assert sum(c.generator == gen for c in design) >= 10
    ks = [c.k_true for c in design if c.k_true is not None]
    assert min(ks) == 3 and max(ks) == 20
