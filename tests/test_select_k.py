"""Tests of decision level two (nmf4d.select_k): redundancy flags and the choice of k."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import as_matrix
from nmf4d.config import SelectionConfig
from nmf4d.config import SweepConfig
from nmf4d.nmf import NMFResult
from nmf4d.options import METRIC_NAMES
from nmf4d.prepare import FittingData
from nmf4d.select_k import assess_k, choose_k, display_patterns, select
from nmf4d.sweep import loss_sweep
from nmf4d.synthetic import make_polycrystal

pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.mark.parametrize("which", ["fit_novac", "fit_vac"])
def test_true_k_fit_not_flagged(which, request):
    fit = request.getfixturevalue(which)
    a = assess_k(fit.components, fit.weights)
    k = fit.truth.k_true
    assert a.k == k
    assert not a.redundant and a.reasons == []
    assert a.cluster_sizes.sum() == fit.weights[0].size
    assert a.cluster_sizes.min() >= SelectionConfig().min_size(fit.weights[0].size)
    assert set(a.pairs) == set(METRIC_NAMES) and set(a.scores) == set(METRIC_NAMES)
    for m in METRIC_NAMES:
        assert a.pairs[m].shape == (k, k)
        assert np.isfinite(a.scores[m])
    assert a.scores["ssim"] < SelectionConfig().ssim_max
    assert a.max_corr < SelectionConfig().corr_max


def _with_duplicate(fit, c, split):
    """Append a copy of component c; its weight map is shared with the copy."""
    C = np.concatenate([fit.components, fit.components[c:c + 1]])
    W = np.concatenate([fit.weights, fit.weights[c:c + 1]]).astype(np.float64)
    if split == "halves":
        W[c] *= 0.5
        W[-1] *= 0.5
    else:                                   # spatial: left part to c, right part to the copy
        sx = W.shape[2]
        nz = np.flatnonzero(fit.weights[c].max(axis=0) > 0.5 * fit.weights[c].max())
        cut = int(np.median(nz)) if nz.size else sx // 2
        W[c][:, cut:] = 0
        W[-1][:, :cut] = 0
    return C, W


def test_duplicate_equal_halves_flagged(fit_novac):
    k = fit_novac.truth.k_true
    C, W = _with_duplicate(fit_novac, 1, "halves")
    a = assess_k(C, W)
    assert a.redundant and len(a.reasons) == 3          # empty, same pattern, same map
    assert set(a.max_ssim_pair) == {1, k}
    assert a.scores["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert a.max_corr == pytest.approx(1.0, abs=1e-6)
    assert a.cluster_sizes[k] == 0                       # ties go to the first component


def test_duplicate_split_spatially_flagged(fit_novac):
    k = fit_novac.truth.k_true
    C, W = _with_duplicate(fit_novac, 0, "spatial")
    a = assess_k(C, W)
    assert a.cluster_sizes[0] >= 3 and a.cluster_sizes[k] >= 3   # both own a region
    assert a.max_corr < 0.9                                      # maps are not alike
    assert a.redundant
    assert set(a.max_ssim_pair) == {0, k} and a.scores["ssim"] >= 0.99
    assert any("near-identical patterns" in r for r in a.reasons)


def test_component_with_zero_weight_flagged(fit_novac, fit_vac):
    k = fit_novac.truth.k_true
    other = fit_vac.truth.patterns[0]                    # a genuine, different pattern
    C = np.concatenate([fit_novac.components, other[None]])
    W = np.concatenate([fit_novac.weights, np.zeros_like(fit_novac.weights[:1])])
    a = assess_k(C, W)
    assert a.cluster_sizes[k] == 0
    assert a.redundant
    assert any("fewer than" in r for r in a.reasons)


def test_small_cluster_threshold(fit_novac):
    fit = fit_novac
    n = fit.weights[0].size
    assert SelectionConfig().min_size(n) == max(3, round(0.002 * n))
    assert SelectionConfig(min_cluster=10).min_size(n) == 10
    sizes = assess_k(fit.components, fit.weights).cluster_sizes
    strict = SelectionConfig(min_cluster=int(sizes.min()) + 1)
    assert assess_k(fit.components, fit.weights, strict).redundant
    assert not assess_k(fit.components, fit.weights, SelectionConfig(min_cluster=int(sizes.min()))).redundant


def test_display_patterns():
    rng = np.random.default_rng(0)
    c = rng.random((3, 8, 8)) * np.array([1.0, 100.0, 1e-4])[:, None, None]
    d = display_patterns(c)
    assert d.shape == c.shape and d.min() >= 0 and d.max() <= 1
    np.testing.assert_allclose(d.max(axis=(1, 2)), 1.0)
    np.testing.assert_allclose(d, np.sqrt(c / c.max(axis=(1, 2), keepdims=True)))
    assert np.all(display_patterns(np.zeros((1, 4, 4))) == 0)


# --------------------------------------------------------------------- choose_k
CHOOSE_CASES = {
    "3-grains-vacuum": dict(scan_shape=(32, 32), pattern_shape=(40, 40), n_grains=3,
                            vacuum=True, dose=2000.0, seed=1),
    "4-grains": dict(scan_shape=(32, 32), pattern_shape=(40, 40), n_grains=4, vacuum=False,
                     dose=2000.0, seed=2),
    "3-grains-small": dict(scan_shape=(28, 28), pattern_shape=(32, 32), n_grains=3,
                           vacuum=False, dose=1000.0, seed=5),
}


@pytest.fixture(scope="module", params=sorted(CHOOSE_CASES))
def swept(request):
    data, truth = make_polycrystal(**CHOOSE_CASES[request.param])
    sy, sx, ky, kx = data.shape
    sweep = loss_sweep(as_matrix(data), SweepConfig(k_range=(2, truth.k_true + 3)), seed=0)
    return truth, sweep, (sy, sx), (ky, kx)


def test_choose_k_finds_true_k(swept):
    truth, sweep, scan, pat = swept
    sel = choose_k(sweep.fits, scan, pat, sweep.window, sweep.knee)
    assert sel.k == truth.k_true, sel.explanation
    assert sel.window == tuple(sweep.window)
    lo, hi = sweep.window
    assert sorted(sel.assessments) == [k for k in range(lo, hi + 1) if k in sweep.fits]
    assert not sel.assessments[sel.k].redundant
    assert all(sel.assessments[k].redundant for k in sel.assessments if k > sel.k)
    assert str(sel.k) in sel.explanation
    # the stage function is choose_k on the sweep's fits, losses and window
    fd = FittingData.unweighted(np.zeros((scan[0] * scan[1], pat[0] * pat[1]), np.float32),
                                scan)
    fd.pattern_shape = pat
    staged = select(sweep, fd, SelectionConfig())
    assert staged.k == sel.k and staged.explanation == choose_k(
        sweep.fits, scan, pat, sweep.window, sweep.knee, losses=sweep.losses()).explanation


def test_choose_k_searches_below_window(swept):
    """No valid k in the window: the largest valid k below it is taken."""
    truth, sweep, scan, pat = swept
    k_true = truth.k_true
    window = (k_true + 1, k_true + 3)
    sel = choose_k(sweep.fits, scan, pat, window, knee=k_true + 2)
    assert sel.k == k_true
    assert all(sel.assessments[k].redundant for k in range(*window))


def test_choose_k_keeps_knee_when_all_redundant(fit_novac):
    """Every fit made of copies of one pattern: nothing passes, the knee is kept."""
    fit = fit_novac
    sy, sx, ky, kx = fit.data.shape
    fits = {}
    for k in (2, 3, 4):
        comps = np.repeat(fit.result.components[:1], k, axis=0)
        w = np.repeat(fit.result.weights[:1] / k, k, axis=0)
        fits[k] = NMFResult(weights=w, components=comps, n_iter=1, converged=True)
    sel = choose_k(fits, (sy, sx), (ky, kx), (2, 4), knee=3)
    assert sel.k == 3
    assert all(a.redundant for a in sel.assessments.values())
    assert "knee" in sel.explanation
