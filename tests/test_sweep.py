"""Tests of decision level one (nmf4d.sweep): Kneedle vs kneed, window, k range, sweep."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from kneed import KneeLocator

from conftest import as_matrix
from helpers import RecordingProgress
from nmf4d.config import SweepConfig
from nmf4d.errors import InputError
from nmf4d.sweep import candidate_window, knee_point, loss_sweep
from nmf4d.synthetic import make_polycrystal

pytestmark = pytest.mark.usefixtures("one_blas_thread")

K = np.arange(2, 21)


def _curves():
    rng = np.random.default_rng(42)
    x = K.astype(float)
    two = np.where(x <= 5, 100 - 15 * (x - 2), np.where(x <= 11, 55 - 5 * (x - 5), 25 - 0.5 * (x - 11)))
    return {
        "exp-fast": np.exp(-x / 1.0),
        "exp-medium": np.exp(-x / 2.5),
        "exp-slow": np.exp(-x / 6.0),
        "exp-offset": 3.0 + 10 * np.exp(-(x - 2) / 1.7),
        "inverse": 1.0 / x,
        "inverse-square": 1.0 / x ** 2,
        "inverse-sqrt": 1.0 / np.sqrt(x),
        "exp-noisy": np.exp(-x / 2.0) + rng.normal(0, 0.01, x.size),
        "inverse-noisy": 1.0 / x + rng.normal(0, 0.005, x.size),
        "two-elbows": two,
        "piecewise-linear": np.where(x <= 7, 50 - 8 * (x - 2), 10 - 0.5 * (x - 7)),
        "loss-like": 0.05 + 0.3 * np.exp(-(x - 2) / 1.5) + 0.002 * (20 - x),
    }


CURVES = _curves()


def _kneed(x, y, S=1.0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                   # "No knee/elbow found"
        return KneeLocator(x, y, S=S, curve="convex", direction="decreasing").knee


@pytest.mark.parametrize("name", sorted(CURVES))
def test_knee_matches_kneed(name):
    y = CURVES[name]
    ref = _kneed(K, y)
    assert ref is not None, "reference curve without a knee: pick another curve"
    assert knee_point(K, y) == int(ref)


def test_knee_matches_kneed_other_sensitivities():
    for name, y in CURVES.items():
        for S in (0.5, 2.0, 3.0):
            ref = _kneed(K, y, S)
            if ref is not None:
                assert knee_point(K, y, sensitivity=S) == int(ref), (name, S)


def _difference_curve_argmax(x, y):
    xn = (x - x.min()) / (x.max() - x.min())
    yn = (y - y.min()) / (y.max() - y.min())
    return x[int(np.argmax((1 - yn) - xn))]


def test_knee_matches_kneed_on_random_curves():
    """Random decreasing-ish curves of random length; where kneed finds no knee the
    documented fallback (maximum of the difference curve) applies."""
    rng = np.random.default_rng(0)
    n_compared = 0
    for t in range(300):
        m = int(rng.integers(4, 25))
        x = np.arange(2, 2 + m)
        kind = t % 3
        if kind == 0:
            y = np.exp(-x / rng.uniform(0.5, 6)) + rng.normal(0, rng.uniform(0, 0.05), m)
        elif kind == 1:
            y = np.cumsum(-np.sort(rng.random(m))[::-1]) + rng.normal(0, 0.05, m)
        else:
            y = 1 / x ** rng.uniform(0.3, 3) + rng.normal(0, 0.01, m)
        ref = _kneed(x, y)
        ours = knee_point(x, y)
        if ref is None:
            assert ours == _difference_curve_argmax(x, y)
        else:
            n_compared += 1
            assert ours == int(ref), (t, y.tolist())
    assert n_compared > 200


def test_knee_without_knee_falls_back():
    y = 10.0 - 0.5 * K                                    # a straight line
    assert _kneed(K, y) is None
    assert knee_point(K, y) == _difference_curve_argmax(K, y)
    assert knee_point(K, np.full(K.shape, 3.0)) == K[0]    # flat: no span


def test_knee_non_unit_spacing():
    x = np.array([2, 4, 6, 8, 10, 14, 20])
    y = np.exp(-x / 3.0)
    assert knee_point(x, y) == int(_kneed(x, y))


@pytest.mark.parametrize("x,y", [([2, 3], [1.0, 0.5]), ([2, 3, 4], [1.0, 0.5]),
                                 (np.ones((3, 2)), np.ones((3, 2)))])
def test_knee_bad_input(x, y):
    with pytest.raises(InputError):
        knee_point(x, y)


# ------------------------------------------------------------------------ window, range
@pytest.mark.parametrize("knee,lo,hi,expected", [
    (10, 2, 20, (6, 14)),
    (3, 2, 20, (2, 7)),           # clipped below
    (2, 2, 20, (2, 6)),
    (18, 2, 20, (14, 20)),        # clipped above
    (20, 2, 20, (16, 20)),
    (5, 4, 7, (4, 7)),            # clipped both sides
])
def test_candidate_window(knee, lo, hi, expected):
    assert candidate_window(knee, lo, hi) == expected


def test_candidate_window_half_width():
    assert candidate_window(10, 2, 20, half_width=2) == (8, 12)
    assert candidate_window(10, 2, 20, half_width=0) == (10, 10)


# ------------------------------------------------------------------------ the sweep
@pytest.fixture(scope="module")
def sweep_case():
    data, truth = make_polycrystal(scan_shape=(28, 28), pattern_shape=(32, 32), n_grains=3,
                                   vacuum=True, dose=2000.0, seed=3)
    X = as_matrix(data)
    seen = RecordingProgress()
    res = loss_sweep(X, SweepConfig(k_range=(2, truth.k_true + 3), max_iter=200, tol=1e-4),
                     seed=0, progress=seen)
    return X, truth, res, seen


def test_sweep_structure(sweep_case):
    X, truth, res, seen = sweep_case
    ks = list(range(2, truth.k_true + 4))
    assert res.k.dtype == np.int32 and res.k.tolist() == ks
    bar = seen.recorded["level one: k sweep"]
    assert bar.total == bar.n == len(ks)                  # one step per k
    passes = seen.recorded["level one: passes over the data"]
    assert passes.total == passes.n == 7                  # range finder (6) + losses (1), 1 block
    assert sorted(res.fits) == ks
    assert res.loss.shape == res.relative_error.shape == res.n_iter.shape == (len(ks),)
    assert np.all(res.n_iter >= 1)
    assert res.losses() == dict(zip(ks, res.loss.tolist()))
    for k, fit in res.fits.items():
        assert fit.weights.shape == (k, X.shape[0]) and fit.components.shape == (k, X.shape[1])


def test_sweep_loss_is_mean_abs_residual(sweep_case):
    X, _, res, _ = sweep_case
    Xd = X.astype(np.float64)
    for i, k in enumerate(res.k):
        fit = res.fits[int(k)]
        R = Xd - fit.weights.T.astype(np.float64) @ fit.components.astype(np.float64)
        assert res.loss[i] == pytest.approx(np.abs(R).mean(), rel=1e-4)
        assert res.relative_error[i] == pytest.approx(np.linalg.norm(R) / np.linalg.norm(Xd), rel=1e-3)


def test_sweep_loss_decreases(sweep_case):
    _, _, res, _ = sweep_case
    span = res.loss[0] - res.loss[-1]
    assert span > 0
    assert np.all(np.diff(res.loss) <= 0.01 * span)       # (near) monotone
    assert res.loss[1] < res.loss[0]


def test_sweep_knee_and_window(sweep_case):
    _, truth, res, _ = sweep_case
    lo, hi = int(res.k[0]), int(res.k[-1])
    assert lo <= res.knee <= hi
    assert res.knee == knee_point(res.k, res.loss)
    assert res.window == candidate_window(res.knee, lo, hi)
    assert res.knee == truth.k_true                       # this scan has a clear elbow


def test_sweep_is_deterministic(sweep_case):
    X, _, _, _ = sweep_case
    cfg = SweepConfig(k_range=(2, 4), max_iter=50, tol=1e-4)
    a = loss_sweep(X, cfg, seed=5)
    b = loss_sweep(X, cfg, seed=5)
    np.testing.assert_array_equal(a.loss, b.loss)
    for k in (2, 3, 4):
        np.testing.assert_array_equal(a.fits[k].components, b.fits[k].components)


def test_sweep_range_errors(sweep_case):
    X, _, _, _ = sweep_case
    with pytest.raises(InputError, match="sweep.k_range.*exceeds"):
        loss_sweep(X, k_range=(2, X.shape[0] + 1))
    with pytest.raises(InputError, match="sweep.k_range"):
        loss_sweep(X, k_range="6:5")
    with pytest.raises(InputError, match="exceeds"):
        loss_sweep(X[:, :4], k_range=(2, 5))              # only 4 pixels
    with pytest.raises(InputError, match="is needed"):
        loss_sweep(X)                                     # no range at all


@pytest.mark.slow
def test_sketched_sweep_is_faithful():
    """The sketched level-one loss is within 1 % of full-data fits at every k."""
    data, truth = make_polycrystal((32, 32), (40, 40), n_grains=4, vacuum=True, dose=2000,
                                   seed=5)
    X = data.reshape(32 * 32, -1).astype(np.float32)
    kw = dict(scan_shape=(32, 32), seed=0, k_range=(2, 9))
    sk = loss_sweep(X, SweepConfig(max_iter=200, tol=1e-4), **kw)
    full = loss_sweep(X, SweepConfig(method="full", max_iter=1000, tol=1e-6), **kw)
    assert np.all(np.abs(sk.loss / full.loss - 1) < 0.01), sk.loss / full.loss - 1
    assert sk.knee == full.knee == truth.k_true
    assert set(sk.timings) == {"sketch", "fits", "loss"}


def test_relative_extrema_is_scipys_argrelextrema():
    from scipy.signal import argrelextrema

    from nmf4d.sweep import relative_extrema

    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 10, 50):
        for x in (rng.normal(size=n), rng.integers(0, 3, n).astype(float), np.ones(n)):
            for cmp in (np.greater_equal, np.less_equal, np.greater, np.less):
                np.testing.assert_array_equal(relative_extrema(x, cmp), argrelextrema(x, cmp)[0])
