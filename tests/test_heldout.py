"""The held-out (count-splitting) test of clusters: noise splits merge, distinct patterns stay."""
import numpy as np
import pytest

from nmf4d.execution.sources import NumpySource
from nmf4d.heldout import heldout_test, homogeneity_z, thin


def _patterns(rng, p=256, m=2):
    base = rng.gamma(2.0, 1.0, p)
    out = []
    for _ in range(m):
        q = base.copy()
        q[rng.choice(p, 8, replace=False)] += 15.0          # a few own "reflections"
        out.append(q / q.sum())
    return np.array(out)


def _scan(rng, pats, lab, dose):
    return rng.poisson(dose * pats[lab]).astype(np.float32)


def test_thin_is_binomial_half_and_seeded():
    X = np.random.default_rng(0).poisson(20.0, (50, 40)).astype(np.float32)
    a = thin(X, 3, 0)
    assert np.all((a >= 0) & (a <= X))
    assert abs(a.sum() / X.sum() - 0.5) < 0.01
    assert np.array_equal(a, thin(X, 3, 0)) and not np.array_equal(a, thin(X, 4, 0))


def test_homogeneity_z_is_standard_normal_under_the_null():
    rng = np.random.default_rng(1)
    mu = rng.gamma(2.0, 1.0, 400) * 5
    z = [homogeneity_z(rng.poisson(mu).astype(float), rng.poisson(2 * mu).astype(float))
         for _ in range(200)]
    assert abs(np.mean(z)) < 0.3 and 0.7 < np.std(z) < 1.3


def test_a_noise_split_merges_and_a_distinct_pattern_does_not():
    rng = np.random.default_rng(2)
    pats = _patterns(rng)
    scan = (20, 20)
    truth = np.zeros(scan, int)
    truth[:, 10:] = 1                                    # two grains, left and right
    X = _scan(rng, pats, truth.ravel(), dose=300)
    labels = truth.ravel().copy()
    noise = (truth.ravel() == 0) & (rng.random(400) < 0.5)
    labels[noise] = 2                                    # grain 0 split at random in two
    test = heldout_test(NumpySource(X, block_rows=64), labels, scan, (16, 16), seed=0)
    assert test.applied
    assert test.merged == [[0, 2]]
    z = test.z
    assert z[0, 2] < 1.0 and z[0, 1] > 10 and z[1, 2] > 10


def test_non_counts_are_skipped():
    rng = np.random.default_rng(3)
    X = rng.random((100, 64)).astype(np.float32)
    test = heldout_test(NumpySource(X), np.zeros(100, int), (10, 10), (8, 8))
    assert not test.applied and "not counts" in test.reason


@pytest.mark.parametrize("block_rows", [7, 400])
def test_blocks_do_not_change_the_result(block_rows):
    rng = np.random.default_rng(4)
    pats = _patterns(rng, m=3)
    lab = np.repeat([0, 1, 2, 0], 100)
    X = _scan(rng, pats, lab, dose=200)
    a = heldout_test(NumpySource(X, block_rows=block_rows), lab, (20, 20), (16, 16), seed=5)
    b = heldout_test(NumpySource(X, block_rows=50), lab, (20, 20), (16, 16), seed=5)
    assert a.merged == [] and b.merged == []
    np.testing.assert_allclose(a.z, b.z, rtol=1e-9)   # per-row seeds: blocks do not matter
