"""Tests of nmf4d.refine: the final fit keeps the start's components in order, and the
weights-only refit keeps the components."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import cosine_matrix
from nmf4d.config import AnalysisConfig
from nmf4d.nmf import NMFResult
from nmf4d.prepare import load
from nmf4d.refine import refine, refit_weights
from nmf4d.synthetic import make_polycrystal

pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.fixture(scope="module")
def scan():
    data, truth = make_polycrystal(scan_shape=(20, 20), pattern_shape=(24, 24), n_grains=3,
                                   vacuum=False, dose=3000.0, seed=5)
    return load(data, weighting="poisson"), truth


def _start(truth, order):
    """A start in input units: the true patterns in ``order``, weights from the truth."""
    H = truth.patterns.reshape(truth.k_true, -1).astype(np.float64)
    H = H / H.sum(axis=1, keepdims=True)
    W = np.stack([(truth.labels.ravel() == g).astype(np.float64) * 3000.0 + 1.0
                  for g in range(truth.k_true)])
    return NMFResult(weights=W[order].astype(np.float32),
                     components=H[order].astype(np.float32), n_iter=0, converged=False)


def test_refine_keeps_the_start_order(scan):
    # the start's components in increasing order of weight: sorting by weight would
    # reverse them, and a decision's grouping (which names components by index) would
    # then be applied to the wrong components
    fd, truth = scan
    totals = np.array([(truth.labels == g).sum() for g in range(truth.k_true)])
    order = np.argsort(totals)                       # smallest grain first
    start = _start(truth, order)
    fit = refine(fd, truth.k_true, AnalysisConfig.from_flat(k=truth.k_true, ortho=0),
                 start=start)
    cos = cosine_matrix(fit.components, start.components)
    assert np.all(np.argmax(cos, axis=1) == np.arange(truth.k_true))
    assert np.all(np.diag(cos) > 0.99)
    assert not np.all(np.diff(fit.weights.sum(axis=1)) <= 0)   # not sorted by weight


def test_refine_without_start_sorts_by_weight(scan):
    fd, truth = scan
    fit = refine(fd, truth.k_true, AnalysisConfig.from_flat(k=truth.k_true))
    assert np.all(np.diff(fit.weights.sum(axis=1)) <= 0)


def test_refit_weights_keeps_components_and_recovers_the_map(scan):
    fd, truth = scan
    start = _start(truth, np.arange(truth.k_true)[::-1])
    # weights of the start scrambled: only the components are kept
    start = NMFResult(weights=np.ones_like(start.weights), components=start.components,
                      n_iter=0, converged=False)
    fit = refit_weights(fd, start)
    np.testing.assert_allclose(fit.components, start.components, rtol=1e-4, atol=1e-7)
    labels = np.argmax(fit.weights, axis=0).reshape(truth.labels.shape)
    inside = ~truth.in_band()
    assert np.mean(labels[inside] == (truth.k_true - 1 - truth.labels)[inside]) > 0.99
    # weights in intensity units: they explain the scan's total counts
    total = float(np.asarray(fd.stats["row_sums"]).sum())
    assert abs(float(fit.weights.sum()) / total - 1) < 0.05
