"""Tests of nmf4d.clusters: raw vs NMF per cluster."""
import numpy as np
import pytest

from nmf4d.clusters import compare_clusters
from nmf4d.config import AnalysisConfig
from nmf4d.pipeline import analyse
from nmf4d.synthetic import make_polycrystal
from test_pipeline import CFG


@pytest.fixture(scope="module")
def fixed():
    data, truth = make_polycrystal(**CFG)
    return analyse(data, AnalysisConfig.from_flat(k=truth.k_true))


def test_cluster_comparison(fixed):
    data, truth = make_polycrystal(**CFG)
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
    out = compare_clusters(patterns, comps, weights, labels)
    assert np.all(out["raw_mean"][2] == 0)
    np.testing.assert_allclose(out["raw_mean"][1], patterns[0, 0], rtol=1e-6)
    assert out["count"].tolist() == [19, 1, 0]
