"""Tests of nmf4d.maps: cluster map, overlap ratio and masks, background detection."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from conftest import cosine_matrix
from nmf4d.beam import beam_fraction, direct_beam_region
from nmf4d.config import AnalysisConfig, MapsConfig
from nmf4d.errors import InputError
from nmf4d.maps import (
    DEFAULT_THRESHOLDS,
    cluster_map,
    detect_background,
    make_maps,
    overlap_masks,
    overlap_ratio,
)

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def _random_weights(seed, k=5, shape=(9, 11), zero_fraction=0.3):
    rng = np.random.default_rng(seed)
    w = rng.random((k, *shape))
    w[rng.random(w.shape) < zero_fraction] = 0.0         # many second weights are 0
    w[:, 0, 0] = 0.0                                      # a position with no weight at all
    w[:, 0, 1] = 0.0
    w[2, 0, 1] = 0.7                                      # a single non-zero weight
    return w


def _reference_overlap(w, background=()):
    """Straightforward loop over positions (the documented definition)."""
    k, sy, sx = w.shape
    bg = set(int(b) for b in background)
    ratio = np.zeros((sy, sx))
    partner = np.full((sy, sx), -1)
    for y in range(sy):
        for x in range(sx):
            v = [float(a) for a in w[:, y, x]]
            top = max(range(k), key=lambda c: (v[c], -c))  # largest, first on ties
            if top in bg:
                continue                                  # background dominates: ratio 0
            cand = sorted((c for c in range(k) if c not in bg), key=lambda c: (-v[c], c))
            if len(cand) < 2:
                continue
            first, second = cand[0], cand[1]
            if v[first] > 0 and v[second] > 0:
                ratio[y, x] = v[second] / v[first]
                partner[y, x] = second
    return ratio, partner


def test_cluster_map_is_argmax():
    w = _random_weights(0, zero_fraction=0.0)
    labels = cluster_map(w)
    assert labels.dtype == np.int32 and labels.shape == w.shape[1:]
    for y in range(w.shape[1]):
        for x in range(w.shape[2]):
            assert w[labels[y, x], y, x] == w[:, y, x].max()
    with pytest.raises(InputError):
        cluster_map(w[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("background", [(), (0,), (1, 3), (4,)])
def test_overlap_ratio_matches_loop(seed, background):
    w = _random_weights(seed)
    ratio, partner = overlap_ratio(w, background=background)
    ref_ratio, ref_partner = _reference_overlap(w, background)
    assert ratio.dtype == np.float32 and partner.dtype == np.int32
    assert ratio.shape == partner.shape == w.shape[1:]
    np.testing.assert_allclose(ratio, ref_ratio, rtol=1e-6, atol=0)
    np.testing.assert_array_equal(partner, ref_partner)
    assert np.all((ratio >= 0) & (ratio <= 1))
    assert ratio[0, 0] == 0 and partner[0, 0] == -1       # largest weight is 0
    assert ratio[0, 1] == 0 and partner[0, 1] == -1       # no second weight
    # background is never the partner
    assert not np.isin(partner, list(background)).any()
    # where a background component dominates the ratio is 0
    if background:
        dominated = np.isin(np.argmax(w, axis=0), list(background))
        assert dominated.any()
        assert np.all(ratio[dominated] == 0) and np.all(partner[dominated] == -1)


def test_overlap_ratio_known_values():
    w = np.zeros((3, 1, 4))
    w[:, 0, 0] = [4.0, 2.0, 1.0]       # 0.5, partner 1
    w[:, 0, 1] = [1.0, 3.0, 3.0]       # tie: 1.0
    w[:, 0, 2] = [5.0, 0.0, 0.0]       # single component: 0
    w[:, 0, 3] = [9.0, 3.0, 6.0]       # background 0 dominates -> 0 (if background)
    ratio, partner = overlap_ratio(w)
    np.testing.assert_allclose(ratio[0], [0.5, 1.0, 0.0, 6 / 9], rtol=1e-6)
    assert partner[0].tolist() == [1, 2, -1, 2]
    ratio, partner = overlap_ratio(w, background=[0])
    np.testing.assert_allclose(ratio[0], [0.0, 1.0, 0.0, 0.0], rtol=1e-6)
    assert partner[0].tolist() == [-1, 2, -1, -1]
    # scaling every weight does not change the ratio
    np.testing.assert_allclose(overlap_ratio(7.5 * w)[0], overlap_ratio(w)[0], rtol=1e-6)


def test_overlap_ratio_single_component():
    ratio, partner = overlap_ratio(np.ones((1, 3, 3)))
    assert np.all(ratio == 0) and np.all(partner == -1)


def test_overlap_masks():
    rng = np.random.default_rng(3)
    ratio = rng.random((6, 7)).astype(np.float32)
    ratio[0, 0] = 0.75                                     # exactly at a threshold
    masks = overlap_masks(ratio)
    assert masks.dtype == bool and masks.shape == (len(DEFAULT_THRESHOLDS), 6, 7)
    for i, t in enumerate(DEFAULT_THRESHOLDS):
        np.testing.assert_array_equal(masks[i], ratio.astype(np.float64) >= t)
    assert masks[0, 0, 0] and not masks[1, 0, 0]           # ratio == threshold is included
    # float32 thresholds (as stored in results.h5) compare consistently with float32 ratios
    t32 = np.asarray(DEFAULT_THRESHOLDS, np.float32)
    ratio[0, :5] = t32
    m32 = overlap_masks(ratio, t32)
    for i in range(len(t32)):
        np.testing.assert_array_equal(m32[i], ratio >= t32[i])
        assert m32[i, 0, i]
    # higher thresholds give nested, smaller masks
    assert np.all(masks[1:] <= masks[:-1])
    custom = overlap_masks(ratio, [0.0, 1.0])
    assert custom[0].all() and custom[1].sum() == (ratio >= 1.0).sum()


@pytest.mark.parametrize("bad", [[1.5], [-0.1, 0.5], [[0.5]]])
def test_overlap_masks_bad_thresholds(bad):
    with pytest.raises(InputError):
        overlap_masks(np.zeros((3, 3)), bad)


# --------------------------------------------------------------------- background
def test_detect_background_on_true_patterns(fit_vac, fit_novac):
    truth = fit_vac.truth
    assert detect_background(truth.patterns) == [truth.vacuum_index]
    assert detect_background(fit_novac.truth.patterns) == []


def test_detect_background_on_fit(fit_vac, fit_novac):
    bg = detect_background(fit_vac.components)
    S = cosine_matrix(fit_vac.truth.patterns, fit_vac.components)
    vacuum_component = int(np.argmax(S[fit_vac.truth.vacuum_index]))
    assert bg == [vacuum_component]
    assert detect_background(fit_novac.components) == []


def test_beam_fraction_and_region(fit_vac):
    truth = fit_vac.truth
    ky, kx = truth.patterns.shape[1:]
    region = direct_beam_region(truth.patterns.mean(axis=0))
    assert region.shape == (ky, kx) and region.dtype == bool
    # centred on the pattern centre, a small disc
    cy, cx = np.argwhere(region).mean(axis=0)
    assert abs(cy - (ky - 1) / 2) < 1 and abs(cx - (kx - 1) / 2) < 1
    assert region.sum() < 0.1 * ky * kx
    frac = beam_fraction(truth.patterns, region)
    assert frac.shape == (truth.k_true,)
    assert frac[truth.vacuum_index] > 0.95
    grains = np.delete(frac, truth.vacuum_index)
    assert np.all(grains < 0.8)
    assert detect_background(truth.patterns, beam_mask=region) == [truth.vacuum_index]


def test_detect_background_bad_input():
    with pytest.raises(InputError):
        detect_background(np.ones((4, 4)))


# --------------------------------------------------------------------- overlap vs truth
def _overlap_iou(fit, threshold=0.75):
    bg = detect_background(fit.components)
    ratio, partner = overlap_ratio(fit.weights, background=bg)
    found = ratio >= threshold
    true = fit.truth.overlap_mask(threshold)
    assert true.sum() > 20, "test scan must have overlap bands"
    return (found & true).sum() / (found | true).sum()


def test_overlap_iou_without_vacuum(fit_novac):
    assert _overlap_iou(fit_novac) >= 0.7


def test_overlap_iou_with_vacuum_and_ortho(fit_vac_ortho):
    assert _overlap_iou(fit_vac_ortho) >= 0.7


def test_overlap_iou_with_vacuum_default_pipeline():
    """The default analysis (Poisson weighting) gets the overlaps right with vacuum."""
    from nmf4d.pipeline import analyse
    from nmf4d.synthetic import make_polycrystal

    data, truth = make_polycrystal((32, 32), (40, 40), n_grains=4, vacuum=True, dose=2000,
                                   seed=1)
    a = analyse(data, AnalysisConfig.from_flat(k=truth.k_true))
    true = truth.overlap_mask(0.75)
    found = a.ratio >= 0.75
    assert true.sum() > 20
    assert (found & true).sum() / (found | true).sum() >= 0.7


def test_overlap_partner_is_true_neighbour(fit_novac):
    """Where the truth has a strong overlap, the partner is the true second grain."""
    truth = fit_novac.truth
    S = cosine_matrix(truth.patterns, fit_novac.components)
    rows, cols = linear_sum_assignment(-S)
    to_true = np.empty(truth.k_true, int)
    to_true[cols] = rows
    labels = cluster_map(fit_novac.weights)
    ratio, partner = overlap_ratio(fit_novac.weights)
    sel = (truth.ratio >= 0.75) & (ratio >= 0.5)
    assert sel.sum() > 20
    found = [frozenset((to_true[a], to_true[b])) for a, b in zip(labels[sel], partner[sel])]
    true = [frozenset((c, d)) for c, d in zip(truth.labels[sel], truth.secondary[sel])]
    agree = np.mean([f == t for f, t in zip(found, true)])
    assert agree >= 0.95


def test_make_maps_is_the_maps_stage(fit_vac):
    """make_maps gathers the maps of one fit exactly as the functions give them."""
    m = make_maps(fit_vac.weights, fit_vac.components, MapsConfig(thresholds=(0.5, 0.9)))
    np.testing.assert_array_equal(m.labels, cluster_map(fit_vac.weights))
    assert m.background == detect_background(fit_vac.components)
    assert len(m.background) == 1                     # the vacuum
    ratio, partner = overlap_ratio(fit_vac.weights, background=m.background)
    np.testing.assert_array_equal(m.ratio, ratio)
    np.testing.assert_array_equal(m.partner, partner)
    assert m.thresholds.dtype == np.float32 and m.thresholds.tolist() == [0.5, np.float32(0.9)]
    np.testing.assert_array_equal(m.masks, overlap_masks(ratio, m.thresholds))
    assert m.masks[0].sum() > m.masks[1].sum() > 0
