"""A few fast cases of the decision suite (benchmarks/decision_suite.py runs all 12)."""
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from nmf4d.config import AnalysisConfig
from nmf4d.pipeline import analyse
from nmf4d.synthetic import DECISION_SUITE, suite_case


def _check(name, k_range):
    data, truth = suite_case(name)
    a = analyse(data, AnalysisConfig.from_flat(k_range=k_range))
    band = truth.in_band()
    ari = adjusted_rand_score(truth.labels[~band], a.labels[~band])
    tm, pm = truth.overlap_mask(0.75), a.ratio >= 0.75
    iou = (tm & pm).sum() / max((tm | pm).sum(), 1)
    return a, truth, ari, iou


def test_suite_definition_spans_the_issue():
    ks = [c["n_grains"] + int(c["vacuum"]) for c in DECISION_SUITE]
    assert len(DECISION_SUITE) == 12
    assert min(ks) == 3 and max(ks) == 12
    assert any(c["vacuum"] for c in DECISION_SUITE) and not all(c["vacuum"] for c in DECISION_SUITE)
    assert min(c["dose"] for c in DECISION_SUITE) <= 300          # noisy cases present
    assert any(c["overlap_width"] == 0 for c in DECISION_SUITE)   # sharp boundaries too


@pytest.mark.parametrize("name", ["k3-vac-noisy", "k7-noisy", "k10-noisy"])
def test_auto_k_recovers_truth(name):
    a, truth, ari, iou = _check(name, (2, 14))
    assert a.k == truth.k_true, a.selection.explanation
    assert ari >= 0.95
    assert iou >= 0.7
    # every number the rule used is kept for the results file
    assert set(a.selection.assessments) >= set(range(a.sweep.window[0], a.sweep.window[1] + 1))


def test_vacuum_is_background_and_never_partner():
    a, truth, _, _ = _check("k7-demo-like", (2, 10))
    assert len(a.background) == 1
    bg = a.background[0]
    vac = truth.labels == truth.vacuum_index
    assert np.mean(a.labels[vac] == bg) > 0.99
    assert not np.any(a.partner == bg)
    assert np.all(a.ratio[a.labels == bg] == 0)
