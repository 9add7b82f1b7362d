"""Tests of nmf4d.pipeline: analyse() end to end on synthetic data, cluster comparison."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from conftest import cosine_matrix
from nmf4d.errors import InputError
from nmf4d.pipeline import analyse, cluster_comparison
from nmf4d.preprocess import PreprocessConfig
from nmf4d.synthetic import make_polycrystal

pytestmark = pytest.mark.usefixtures("one_blas_thread")

CFG = dict(scan_shape=(28, 28), pattern_shape=(32, 32), n_grains=3, vacuum=True,
           dose=2000.0, seed=3)


@pytest.fixture(scope="module")
def dataset():
    return make_polycrystal(**CFG)


@pytest.fixture(scope="module")
def auto(dataset):
    data, truth = dataset
    stages = []
    a = analyse(data, k="auto", k_range=(2, truth.k_true + 3), seed=0,
                progress=lambda stage, info=None: stages.append(stage))
    return a, stages


@pytest.fixture(scope="module")
def fixed(dataset):
    data, truth = dataset
    return analyse(data, k=truth.k_true, seed=0)


def test_auto_chooses_true_k(auto, dataset):
    data, truth = dataset
    a, stages = auto
    assert a.k == truth.k_true
    assert a.selection is not None and a.selection.k == a.k
    assert a.sweep is not None and a.sweep.k.tolist() == list(range(2, truth.k_true + 4))
    assert a.sweep.window[0] <= a.k <= a.sweep.window[1]
    for s in ("preprocess", "sweep", "select", "refine"):
        assert s in stages
    assert {"preprocess", "sweep", "select", "refine", "maps"} <= set(a.timings)


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
    assert a.rel_error < 0.3 and a.n_iter >= 1
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
    assert fixed.parameters["k"] == fixed.k and fixed.parameters["k_range"] is None


def test_parameters_are_json_with_seed(auto):
    a = auto[0]
    p = json.loads(json.dumps(a.parameters))
    assert p["seed"] == 0 and p["k"] == "auto" and p["k_range"] == [2, 7]
    assert p["init"] == "spa"


def test_same_seed_same_analysis(dataset, fixed):
    data, truth = dataset
    again = analyse(data, k=truth.k_true, seed=0)
    np.testing.assert_array_equal(again.components, fixed.components)
    np.testing.assert_array_equal(again.weights, fixed.weights)


def test_cluster_comparison(fixed, dataset):
    data, _ = dataset
    a = fixed
    cl = a.clusters
    k = a.k
    flat = data.reshape(-1, *data.shape[2:]).astype(np.float64)
    lab = a.labels.ravel()
    for c in range(k):
        np.testing.assert_allclose(cl["raw_mean"][c], flat[lab == c].mean(axis=0), rtol=1e-5,
                                   atol=1e-4)
        wmax = a.weights[c].max()
        np.testing.assert_allclose(cl["nmf_pattern"][c], a.components[c] * wmax, rtol=1e-5)
        y, x = cl["representative"][c]
        assert a.weights[c, y, x] == wmax
    assert cl["count"].tolist() == np.bincount(lab, minlength=k).tolist()
    for m in ("ssim", "psnr", "gmsd", "mdsi"):
        assert cl[f"iqa/{m}"].shape == (k,) and np.isfinite(cl[f"iqa/{m}"]).all()
    assert cl["nsd"].shape == (k,)
    # the NMF pattern of a cluster resembles its raw mean
    assert np.all(cl["iqa/ssim"] > 0.3)


def test_cluster_comparison_empty_cluster():
    rng = np.random.default_rng(0)
    patterns = rng.random((4, 5, 12, 12))
    comps = rng.random((3, 12, 12))
    comps /= comps.sum(axis=(1, 2), keepdims=True)
    weights = rng.random((3, 4, 5))
    labels = np.zeros((4, 5), int)
    labels[0, 0] = 1                                        # cluster 2 is empty
    out = cluster_comparison(patterns, comps, weights, labels)
    assert np.all(out["raw_mean"][2] == 0)
    np.testing.assert_allclose(out["raw_mean"][1], patterns[0, 0], rtol=1e-6)
    assert out["count"].tolist() == [19, 1, 0]


def test_binning_is_applied(dataset):
    data, truth = dataset
    a = analyse(data, k=truth.k_true, preprocessing=PreprocessConfig(bin=2), max_iter=100)
    assert a.components.shape == (truth.k_true, 16, 16)
    total = np.einsum("cyx,cij->", a.weights.astype(np.float64), a.components.astype(np.float64))
    assert total == pytest.approx(data.sum(dtype=np.float64), rel=0.03)   # binning sums


def test_dask_input_same_as_numpy(dataset, fixed):
    da = pytest.importorskip("dask.array")
    data, truth = dataset
    a = analyse(da.from_array(data, chunks=(7, 14, 32, 32)), k=truth.k_true, seed=0)
    np.testing.assert_array_equal(a.components, fixed.components)


@pytest.mark.parametrize("kw,match", [
    (dict(k="three"), "k"),
    (dict(k=0), "k"),
    (dict(k=10_000), "k"),
    (dict(k=2.5), "k"),
    (dict(k="auto", k_range=(5, 3)), "k-range"),
    (dict(k="auto", k_range=(2, 5000)), "k-range"),
])
def test_analyse_bad_parameters(dataset, kw, match):
    data, _ = dataset
    with pytest.raises(InputError, match=match):
        analyse(data[:8, :8], **kw)


def test_analyse_bad_data(dataset):
    data, _ = dataset
    with pytest.raises(InputError, match="4D"):
        analyse(data[0])
    neg = data[:6, :6].astype(np.float32)
    neg[1, 2, 3, 4] = -1
    with pytest.raises(InputError, match="negative"):
        analyse(neg, k=2)
    nan = data[:6, :6].astype(np.float32)
    nan[0, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        analyse(nan, k=2)
    with pytest.raises(InputError, match="zeros"):
        analyse(np.zeros((4, 4, 16, 16), np.float32), k=2)
    with pytest.raises(InputError):
        analyse(data.astype(np.complex64)[:4, :4], k=2)


def test_analyse_small_patterns_refused_up_front(dataset):
    """Patterns below SSIM's 11x11 window are refused before any factorisation."""
    data, truth = dataset
    with pytest.raises(InputError, match=r"8x8 pixels .* too small.*--bin"):
        analyse(data, k=truth.k_true, preprocessing=PreprocessConfig(bin=4), max_iter=50)
