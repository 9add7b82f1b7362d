"""Tests of nmf4d.iqa: piq 0.8.0 reference values, scikit-image cross-checks, edge cases."""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from nmf4d import iqa
from nmf4d.errors import InputError

REF_DIR = Path(__file__).resolve().parents[2] / "shared" / "reference" / "iqa"
METRIC_NAMES = ["psnr", "ssim", "gmsd", "mdsi"]
IDENTICAL = {"psnr": 80.0, "ssim": 1.0, "gmsd": 0.0, "mdsi": 0.0}


@pytest.fixture(scope="module")
def ref():
    if not (REF_DIR / "results.json").is_file():
        pytest.skip(f"piq reference vectors not found at {REF_DIR} (../shared next to the repo)")
    images = {name: np.load(REF_DIR / f"{name}.npy") for name in "ABC"}
    results = json.loads((REF_DIR / "results.json").read_text())["results"]
    return images, results


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def _close(value, expected, rel=1e-4, abs_tol=1e-10):
    return math.isclose(value, expected, rel_tol=rel, abs_tol=abs_tol)


# --------------------------------------------------------------- piq reference values
@pytest.mark.parametrize("pair", ["(A,A)", "(A,B)", "(A,C)"])
@pytest.mark.parametrize("name", METRIC_NAMES)
def test_matches_piq_float64(ref, pair, name):
    images, results = ref
    x, y = images[pair[1]], images[pair[3]]
    expected = results[pair][f"piq.{name}[dr=1,f64]"]
    value = iqa.METRICS[name](x, y)
    assert isinstance(value, float)
    assert _close(value, expected), (name, pair, value, expected)


@pytest.mark.parametrize("pair", ["(A,A)", "(A,B)", "(A,C)"])
def test_mdsi_swapped_matches_piq(ref, pair):
    images, results = ref
    x, y = images[pair[1]], images[pair[3]]
    expected = results[pair]["piq.mdsi[dr=1,f64,args swapped (Y,X)]"]
    assert _close(iqa.mdsi(y, x), expected)


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_data_range_scaling(ref, name):
    images, _ = ref
    a, b = images["A"], images["B"]
    f = iqa.METRICS[name]
    assert _close(f(a * 255.0, b * 255.0, data_range=255.0), f(a, b), rel=1e-10)


def test_pairwise_reference_matrix(ref):
    images, results = ref
    stack = np.stack([images[n] for n in "ABC"])
    m = iqa.pairwise(stack, "mdsi")
    assert _close(m[0, 1], results["(A,B)"]["piq.mdsi[dr=1,f64]"])
    assert _close(m[1, 0], results["(A,B)"]["piq.mdsi[dr=1,f64,args swapped (Y,X)]"])
    assert _close(m[2, 0], results["(A,C)"]["piq.mdsi[dr=1,f64,args swapped (Y,X)]"])


def test_direction(ref):
    images, _ = ref
    a = images["A"]
    rng = np.random.default_rng(7)
    mild = np.clip(a + 0.02 * rng.standard_normal(a.shape), 0, 1)
    strong = np.clip(a + 0.2 * rng.standard_normal(a.shape), 0, 1)
    for name in METRIC_NAMES:
        closer, further = iqa.METRICS[name](mild, a), iqa.METRICS[name](strong, a)
        assert (closer > further) == iqa.HIGHER_IS_SIMILAR[name], name
    # (SSIM rates the noisy B no closer to A than the other lattice C: piq agrees.)


# ------------------------------------------------------------ scikit-image cross-check
def test_ssim_matches_skimage(rng):
    skm = pytest.importorskip("skimage.metrics")
    x = rng.random((40, 50))
    y = np.clip(x + 0.2 * rng.standard_normal((40, 50)), 0, 1)
    for a, b in [(x, y), (x, rng.random((40, 50)))]:
        expected = skm.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
                                             use_sample_covariance=False, data_range=1)
        assert math.isclose(iqa.ssim(a, b), expected, rel_tol=1e-10)


def test_ssim_downsamples_like_piq(rng):
    skm = pytest.importorskip("skimage.metrics")
    x, y = rng.random((2, 400, 402))          # round(400 / 256) = 2: 2x2 average pooling
    pool = lambda a: a.reshape(200, 2, 201, 2).mean(axis=(1, 3))  # noqa: E731
    expected = skm.structural_similarity(pool(x), pool(y), gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False, data_range=1)
    assert math.isclose(iqa.ssim(x, y), expected, rel_tol=1e-10)


def test_psnr_matches_skimage(rng):
    skm = pytest.importorskip("skimage.metrics")
    x = rng.random((33, 47))
    for y in (rng.random((33, 47)), np.clip(x + 0.01 * rng.standard_normal((33, 47)), 0, 1)):
        sk = skm.peak_signal_noise_ratio(y, x, data_range=1)   # 10 log10(1 / MSE), no eps
        expected = -10 * math.log10(10 ** (-sk / 10) + 1e-8)     # piq's MSE + 1e-8
        assert math.isclose(iqa.psnr(x, y), expected, rel_tol=1e-10)
        assert math.isclose(iqa.psnr(2 * x, 2 * y, data_range=2.0), expected, rel_tol=1e-10)
        assert math.isclose(iqa.psnr(x, y), sk, rel_tol=1e-4)


# ------------------------------------------------------------------------- edge cases
@pytest.mark.parametrize("name", METRIC_NAMES)
def test_identical_images(rng, name):
    x = rng.random((48, 37))
    assert iqa.METRICS[name](x, x) == pytest.approx(IDENTICAL[name], abs=1e-12)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("name", METRIC_NAMES)
def test_constant_images_are_finite(name):
    f = iqa.METRICS[name]
    zero, half, one = np.zeros((32, 32)), np.full((32, 32), 0.5), np.ones((32, 32))
    values = [f(zero, zero), f(one, one), f(zero, one), f(half, one), f(one, zero)]
    assert all(math.isfinite(v) for v in values), values
    assert f(half, half) == pytest.approx(IDENTICAL[name], abs=1e-12)


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_batch_equals_loop(rng, name):
    f = iqa.METRICS[name]
    x, y = rng.random((5, 30, 41)), rng.random((5, 30, 41))
    batch = f(x, y)
    assert isinstance(batch, np.ndarray) and batch.shape == (5,)
    np.testing.assert_allclose(batch, [f(a, b) for a, b in zip(x, y)], rtol=1e-12)
    # a single image against a batch, either way round
    np.testing.assert_allclose(f(x[0], y), [f(x[0], b) for b in y], rtol=1e-12)
    np.testing.assert_allclose(f(x, y[0]), [f(a, y[0]) for a in x], rtol=1e-12)
    assert f(x[:0], y[:0]).shape == (0,)


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_pairwise_equals_per_pair(rng, name):
    f = iqa.METRICS[name]
    base = rng.random((24, 26))
    images = np.stack([np.clip(base + s * rng.standard_normal(base.shape), 0, 1)
                       for s in (0.0, 0.05, 0.2, 0.5)] + [rng.random(base.shape)])
    k = len(images)
    m = iqa.pairwise(images, name)
    assert m.shape == (k, k)
    expected = np.array([[f(images[i], images[j]) for j in range(k)] for i in range(k)])
    np.testing.assert_allclose(m, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.diag(m), IDENTICAL[name], atol=1e-12)
    np.testing.assert_array_equal(iqa.pairwise(images, f), m)     # the callable itself
    custom = iqa.pairwise(images, lambda x, y, *, data_range: f(x, y, data_range=data_range))
    np.testing.assert_allclose(custom, m, rtol=1e-10, atol=1e-12)
    assert iqa.pairwise(images[:0], name).shape == (0, 0)


def test_mdsi_is_not_symmetric(rng):
    x = rng.random((32, 32))
    y = np.clip(x + 0.3 * rng.standard_normal((32, 32)), 0, 1)
    assert abs(iqa.mdsi(x, y) - iqa.mdsi(y, x)) > 1e-3
    m = iqa.pairwise(np.stack([x, y]), "mdsi")
    assert m[0, 1] == pytest.approx(iqa.mdsi(x, y), rel=1e-12)
    assert m[1, 0] == pytest.approx(iqa.mdsi(y, x), rel=1e-12)
    for name in ("psnr", "ssim", "gmsd"):
        assert iqa.METRICS[name](x, y) == pytest.approx(iqa.METRICS[name](y, x), rel=1e-12)


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_smallest_allowed_sizes(rng, name):
    shape = {"psnr": (1, 1), "ssim": (11, 11), "gmsd": (3, 3), "mdsi": (2, 2)}[name]
    x, y = rng.random((2,) + shape)
    assert math.isfinite(iqa.METRICS[name](x, y))
    smaller = (shape[0] - 1, shape[1] + 5)
    if min(smaller) >= 1:
        with pytest.raises(InputError, match=name):
            iqa.METRICS[name](rng.random(smaller), rng.random(smaller))


def test_large_images_are_pooled(rng):
    x, y = rng.random((2, 390, 400))
    for name in METRIC_NAMES:
        assert math.isfinite(iqa.METRICS[name](x, y))
        assert iqa.METRICS[name](x, x) == pytest.approx(IDENTICAL[name], abs=1e-12)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("name", METRIC_NAMES)
def test_errors(rng, name):
    f = iqa.METRICS[name]
    a = rng.random((64, 64))
    with pytest.raises(InputError, match=r"x and y must have the same shape, got \(64, 64\) "
                                         r"and \(32, 32\)"):
        f(a, rng.random((32, 32)))
    with pytest.raises(InputError, match="same shape"):
        f(rng.random((3, 64, 64)), rng.random((4, 64, 64)))
    bad = a.copy()
    bad[3, 4] = np.nan
    with pytest.raises(InputError, match="finite"):
        f(a, bad)
    bad[3, 4] = np.inf
    with pytest.raises(InputError, match="finite"):
        f(bad, a)
    with pytest.raises(InputError, match="shape"):
        f(a[0], a[0])
    with pytest.raises(InputError, match="shape"):
        f(a[None, None], a[None, None])
    for dr in (0, -1.0, float("nan"), "one"):
        with pytest.raises(InputError, match="data_range"):
            f(a, a, data_range=dr)
    with pytest.raises(ValueError):            # InputError is a ValueError
        f(a, a[:10])


def test_pairwise_errors(rng):
    stack = rng.random((3, 16, 16))
    with pytest.raises(InputError, match="metric must be one of 'psnr', 'ssim', 'gmsd', 'mdsi'"):
        iqa.pairwise(stack, "lpips")
    with pytest.raises(InputError, match="metric"):
        iqa.pairwise(stack, 3)
    with pytest.raises(InputError, match=r"images must have shape \(n, ky, kx\)"):
        iqa.pairwise(stack[0], "psnr")
    with pytest.raises(InputError, match="ssim needs images of at least 11x11"):
        iqa.pairwise(stack[:, :10, :], "ssim")
    with pytest.raises(InputError, match="data_range"):
        iqa.pairwise(stack, "gmsd", data_range=0)


def test_registries():
    assert set(iqa.METRICS) == set(iqa.HIGHER_IS_SIMILAR) == set(METRIC_NAMES)
    assert iqa.HIGHER_IS_SIMILAR == {"psnr": True, "ssim": True, "gmsd": False, "mdsi": False}
    for name, f in iqa.METRICS.items():
        assert f.__doc__ and "ndarray of shape (n, ky, kx)" in f.__doc__, name


# ------------------------------------------------------------------ noise estimators
def test_nsd(rng):
    a = np.array([[0.0, 1.0], [0.0, 1.0]])
    assert iqa.nsd(a) == pytest.approx(0.5)
    stack = rng.random((4, 20, 30))
    out = iqa.nsd(stack)
    assert out.shape == (4,)
    np.testing.assert_allclose(out, [np.sqrt(np.mean((s - s.mean()) ** 2)) for s in stack])
    assert iqa.nsd(np.full((5, 5), 3.0)) == 0.0
    with pytest.raises(InputError, match="finite"):
        iqa.nsd(np.array([[np.nan, 1.0]]))


def test_immerkaer_sigma(rng):
    for sigma in (0.01, 0.1, 2.0):
        noise = rng.normal(0.0, sigma, size=(256, 256))
        assert iqa.immerkaer_sigma(noise) == pytest.approx(sigma, rel=0.05)
    assert iqa.immerkaer_sigma(np.full((16, 16), 7.0)) == 0.0
    yy, xx = np.mgrid[0:32, 0:40]
    assert iqa.immerkaer_sigma(0.3 * yy - 0.2 * xx + 5.0) == pytest.approx(0.0, abs=1e-12)
    stack = np.stack([rng.normal(0, s, (128, 128)) for s in (0.05, 0.2)])
    np.testing.assert_allclose(iqa.immerkaer_sigma(stack), [0.05, 0.2], rtol=0.05)
    np.testing.assert_allclose(iqa.immerkaer_sigma(stack),
                               [iqa.immerkaer_sigma(s) for s in stack], rtol=1e-12)
    with pytest.raises(InputError, match="3x3"):
        iqa.immerkaer_sigma(np.zeros((2, 10)))
    with pytest.raises(InputError, match="finite"):
        iqa.immerkaer_sigma(np.full((8, 8), np.inf))
