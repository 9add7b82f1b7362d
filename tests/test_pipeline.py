"""Tests of nmf4d.pipeline: analyse() end to end on synthetic data, cluster comparison."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from conftest import cosine_matrix
from helpers import RecordingProgress
from nmf4d.config import AnalysisConfig
from nmf4d.errors import InputError
from nmf4d.pipeline import analyse
from nmf4d.synthetic import make_polycrystal


def run(data, **flat):
    """analyse() with a configuration given by flat names."""
    return analyse(data, AnalysisConfig.from_flat(**flat))

pytestmark = pytest.mark.usefixtures("one_blas_thread")

CFG = dict(scan_shape=(28, 28), pattern_shape=(32, 32), n_grains=3, vacuum=True,
           dose=2000.0, seed=3)


@pytest.fixture(scope="module")
def dataset():
    return make_polycrystal(**CFG)


@pytest.fixture(scope="module")
def auto(dataset):
    data, truth = dataset
    progress = RecordingProgress()
    a = analyse(data, AnalysisConfig.from_flat(k_range=(2, truth.k_true + 3), seed=0),
                progress=progress)
    return a, progress


@pytest.fixture(scope="module")
def fixed(dataset):
    data, truth = dataset
    return run(data, k=truth.k_true, seed=0)


def test_auto_chooses_true_k(auto, dataset):
    data, truth = dataset
    a, progress = auto
    stages = [stage for stage, _ in progress.events]
    assert a.k == truth.k_true
    assert a.selection is not None and a.selection.k == a.k
    assert a.sweep is not None and a.sweep.k.tolist() == list(range(2, truth.k_true + 4))
    assert a.sweep.window[0] <= a.k <= a.sweep.window[1]
    assert stages == ["load", "preprocess", "select", "refine", "maps"]
    assert dict(progress.events)["load"].startswith(a.execution["mode"] + ": ")
    assert a.decision is not None and a.decision.k == a.k and a.rank == a.decision.rank
    assert dict(progress.events)["select"] is a.decision
    assert dict(progress.events)["maps"] == a.relative_error      # the error in input units
    assert list(a.timings) == ["preprocess", "load", "sweep", "sweep: sketch", "sweep: fits",
                               "sweep: loss", "select", "refine", "maps"]
    for bar in ("check + statistics", "level one: passes over the data", "level one: k sweep",
                f"final fit (k = {a.k}, full data)", "maps: one pass over the data"):
        assert bar in progress.recorded, bar
    passes = progress.recorded["level one: passes over the data"]
    assert passes.n == passes.total == 7 * a.execution["blocks"]


@pytest.mark.parametrize("which", ["auto", "fixed"])
def test_analysis_recovers_truth(which, auto, fixed, dataset):
    data, truth = dataset
    a = auto[0] if which == "auto" else fixed
    sy, sx, ky, kx = data.shape
    k = truth.k_true
    assert a.components.shape == (k, ky, kx) and a.components.dtype == np.float32
    assert a.weights.shape == (k, sy, sx) and a.weights.dtype == np.float32
    np.testing.assert_allclose(a.components.sum(axis=(1, 2), dtype=np.float64), 1.0, rtol=1e-4)
    assert a.weights.min() >= 0 and a.components.min() >= 0
    np.testing.assert_array_equal(a.labels, np.argmax(a.weights, axis=0))
    outside = ~truth.in_band()
    assert adjusted_rand_score(truth.labels[outside], a.labels[outside]) >= 0.95
    # the background found is the vacuum pattern
    S = cosine_matrix(truth.patterns, a.components)
    assert a.background == [int(np.argmax(S[truth.vacuum_index]))]
    assert S[truth.vacuum_index].max() > 0.99
    # maps
    np.testing.assert_array_equal(a.masks, a.ratio[None] >= a.thresholds[:, None, None])
    assert a.thresholds.tolist() == pytest.approx([0.75, 0.8, 0.85, 0.9, 0.95])
    assert np.all(a.ratio[np.isin(a.labels, a.background)] == 0)
    assert a.n_iter >= 1 and 0 < a.relative_error < 0.3
    V = data.reshape(sy * sx, -1).astype(np.float64)
    WH = a.weights.reshape(k, -1).T.astype(np.float64) @ a.components.reshape(k, -1)
    assert a.relative_error == pytest.approx(np.linalg.norm(V - WH) / np.linalg.norm(V), rel=1e-4)
    np.testing.assert_allclose(a.virtual_image, data.sum(axis=(2, 3)), rtol=1e-6)
    np.testing.assert_allclose(a.mean_pattern, data.mean(axis=(0, 1)), rtol=1e-5)


def test_intensity_is_explained(fixed, dataset):
    data, _ = dataset
    a = fixed
    for c in range(a.k):
        explained = (a.weights[c][..., None, None].astype(np.float64) * a.components[c]).sum()
        assert explained == pytest.approx(a.weights[c].sum(dtype=np.float64), rel=1e-4)
    total = np.einsum("cyx,cij->", a.weights.astype(np.float64), a.components.astype(np.float64))
    assert total == pytest.approx(data.sum(dtype=np.float64), rel=0.03)


def test_fixed_k_skips_level_one(fixed):
    assert fixed.sweep is None and fixed.selection is None
    assert fixed.config.selection.k == fixed.k and fixed.config.sweep.k_range is None


def test_parameters_are_the_config(auto):
    a = auto[0]
    p = json.loads(json.dumps(a.parameters))
    assert AnalysisConfig.from_dict(p) == a.config
    assert p["seed"] == 0 and p["selection"]["k"] == "auto" and p["sweep"]["k_range"] == [2, 7]
    assert p["fit"]["init"] == "spa"


def test_same_seed_same_analysis(dataset, fixed):
    data, truth = dataset
    again = run(data, k=truth.k_true, seed=0)
    np.testing.assert_array_equal(again.components, fixed.components)
    np.testing.assert_array_equal(again.weights, fixed.weights)


def test_binning_is_applied(dataset):
    data, truth = dataset
    a = run(data, k=truth.k_true, bin=2, max_iter=100)
    assert a.components.shape == (truth.k_true, 16, 16)
    total = np.einsum("cyx,cij->", a.weights.astype(np.float64), a.components.astype(np.float64))
    assert total == pytest.approx(data.sum(dtype=np.float64), rel=0.03)   # binning sums


def test_dask_input_same_as_numpy(dataset, fixed):
    da = pytest.importorskip("dask.array")
    data, truth = dataset
    a = run(da.from_array(data, chunks=(7, 14, 32, 32)), k=truth.k_true, seed=0)
    np.testing.assert_array_equal(a.components, fixed.components)


@pytest.mark.parametrize("kw,match", [
    (dict(k="three"), "selection.k='three'"),
    (dict(k=0), "selection.k=0"),
    (dict(k=10_000), "selection.k=10000: is out of range: allowed 1..64"),
    (dict(k=2.5), "selection.k=2.5"),
    (dict(k="auto", k_range=(5, 3)), "sweep.k_range"),
    (dict(k="auto", k_range=(2, 5000)), r"sweep.k_range=\(2, 5000\): maximum 5000 exceeds"),
])
def test_analyse_bad_parameters(dataset, kw, match):
    data, _ = dataset
    with pytest.raises(InputError, match=match):
        run(data[:8, :8], **kw)


def test_analyse_bad_data(dataset):
    data, _ = dataset
    with pytest.raises(InputError, match="4D"):
        analyse(data[0])
    neg = data[:6, :6].astype(np.float32)
    neg[1, 2, 3, 4] = -1
    with pytest.raises(InputError, match="negative"):
        run(neg, k=2)
    nan = data[:6, :6].astype(np.float32)
    nan[0, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        run(nan, k=2)
    with pytest.raises(InputError, match="zeros"):
        run(np.zeros((4, 4, 16, 16), np.float32), k=2)
    with pytest.raises(InputError):
        run(data.astype(np.complex64)[:4, :4], k=2)


def test_analyse_small_patterns_refused_up_front(dataset):
    """Patterns below SSIM's 11x11 window are refused before any factorisation."""
    data, truth = dataset
    with pytest.raises(InputError, match=r"8x8 pixels .* too small.*--bin"):
        run(data, k=truth.k_true, bin=4, max_iter=50)


def test_explorer_pass_equals_the_array_path(fixed, dataset):
    """The explorer data made over row blocks in the maps pass are those of the array."""
    from nmf4d.explorer_data import explorer_from_array

    data, _ = dataset
    ref = explorer_from_array(data.astype(np.float32), components=fixed.components)
    got = fixed.explorer
    assert (got["bin"], got["step"]) == (ref["bin"], ref["step"])
    np.testing.assert_array_equal(got["patterns"], ref["patterns"])
    np.testing.assert_allclose(got["scale"], ref["scale"], rtol=1e-6)
    assert run(data[:4, :4], k=2, explorer=False).explorer is None


def test_maps_keep_the_assessed_fit_when_refinement_drifts(dataset, monkeypatch):
    # a refinement that ends at another factorisation (here: every component the mean
    # pattern, weights spread evenly) no longer holds the decided clusters; the maps must
    # then come from the components the decision assessed, weights refitted
    import nmf4d.pipeline as pipeline
    from nmf4d.nmf import NMFResult

    data, truth = dataset

    def drifted(fd, k, config, *, start=None, progress=None):
        H = np.repeat(start.components.mean(axis=0, keepdims=True), k, axis=0)
        W = np.repeat(start.weights.mean(axis=0, keepdims=True), k, axis=0)
        return NMFResult(weights=W, components=H, n_iter=7, converged=True)

    monkeypatch.setattr(pipeline, "refine", drifted)
    a = analyse(data, AnalysisConfig.from_flat(k_range=(2, truth.k_true + 3), seed=0))
    assert a.final_fit == "weights"
    assert a.k == a.decision.k == truth.k_true
    assert a.n_iter == 7                                 # the refinement's diagnostics
    band = truth.in_band()
    assert adjusted_rand_score(truth.labels[~band], a.labels[~band]) > 0.95
    assert "weights refitted to the full data" in a.decision.explanation
    np.testing.assert_allclose(a.nmf.components, a.sweep.fits[a.rank].components,
                               rtol=1e-4, atol=1e-7)


def test_refined_fit_is_kept_when_it_holds_the_decided_clusters(auto):
    a, _ = auto
    assert a.final_fit == "refined"


def test_a_count_the_maps_cannot_hold_is_said(dataset, monkeypatch):
    # neither the refined fit nor the assessed components with refitted weights hold the
    # decided clusters: the refined fit's maps are kept and the explanation says so
    import nmf4d.pipeline as pipeline
    from nmf4d.nmf import NMFResult

    data, truth = dataset

    def flat(fd, fit, **kw):
        H = np.repeat(fit.components.mean(axis=0, keepdims=True), fit.components.shape[0], 0)
        W = np.repeat(fit.weights.mean(axis=0, keepdims=True), fit.weights.shape[0], 0)
        return NMFResult(weights=W, components=H, n_iter=1, converged=True)

    monkeypatch.setattr(pipeline, "refine", lambda fd, k, config, *, start=None,
                        progress=None: flat(fd, start))
    monkeypatch.setattr(pipeline, "refit_weights", flat)
    a = analyse(data, AnalysisConfig.from_flat(k_range=(2, truth.k_true + 3), seed=0))
    assert a.final_fit == "refined" and a.k != a.decision.k
    assert f"the maps show the refined fit's {a.k}" in a.decision.explanation
