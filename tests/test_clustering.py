"""nmf4d.clustering: reflections, shared reflections, weight significance, assess_fit."""
import numpy as np
import pytest

from nmf4d.clustering import (Reflections, assess_fit, own_share, reflection_strength,
                              reflections, shared_reflections, weight_z)

SHAPE = (64, 64)
CENTRE = (32.0, 32.0)


def _beam_mask(radius=4.0):
    yy, xx = np.indices(SHAPE)
    return np.hypot(yy - CENTRE[0], xx - CENTRE[1]) <= radius


def _pattern(spots, sigma=1.0, beam=50.0, amp=1.0):
    """A direct beam plus Gaussian spots at (row, col), summing to 1."""
    yy, xx = np.indices(SHAPE).astype(float)
    p = beam * np.exp(-((yy - CENTRE[0]) ** 2 + (xx - CENTRE[1]) ** 2) / (2 * 1.5 ** 2))
    for y, x in spots:
        p += amp * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma ** 2))
    return p / p.sum()


def _lattice(angle_deg, a=9.0, reach=26.0):
    """Spots of a square lattice turned by angle about the centre, outside the beam."""
    t = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    out = []
    for i in range(-3, 4):
        for j in range(-3, 4):
            v = rot @ (a * np.array([i, j], float))
            if 6 < np.hypot(*v) < reach:
                out.append((CENTRE[0] + v[0], CENTRE[1] + v[1]))
    return out


def test_reflections_found_where_the_spots_are():
    spots = _lattice(0)
    r = reflections(_pattern(spots), _beam_mask(), CENTRE)
    assert len(r) == len(spots)
    d = np.linalg.norm(r.positions[:, None, :] - np.array(spots)[None], axis=2)
    assert d.min(axis=1).max() <= 1.0                      # every maximum on a spot
    assert d.min(axis=0).max() <= 1.0                      # every spot found


def test_spot_radius_is_the_half_width_at_half_maximum():
    # Gaussian spots of sigma s, smoothed by sigma 1: HWHM = 1.1774 sqrt(s^2 + 1)
    for s in (1.0, 2.0):
        r = reflections(_pattern(_lattice(0, a=12.0), sigma=s), _beam_mask(), CENTRE)
        assert r.radius == pytest.approx(1.1774 * np.sqrt(s * s + 1), abs=0.35)


def test_no_reflections_at_the_beam_disc_edge():
    """A vacuum pattern (a beam with a tail that the disc mask cuts) has no reflections."""
    yy, xx = np.indices(SHAPE).astype(float)
    rr = np.hypot(yy - CENTRE[0], xx - CENTRE[1])
    p = np.exp(-rr ** 2 / 8.0) + 1e-3 * np.exp(-(rr - 4.5) ** 2) * (1 + 0.3 * (xx > 32))
    assert len(reflections(p / p.sum(), _beam_mask(4.0), CENTRE)) == 0


def test_shared_reflections_tell_orientations_apart():
    area = float((~_beam_mask()).sum())
    a = reflections(_pattern(_lattice(0)), _beam_mask(), CENTRE)
    same = reflections(_pattern(_lattice(0.5)), _beam_mask(), CENTRE)   # a gradient
    other = reflections(_pattern(_lattice(12)), _beam_mask(), CENTRE)   # another grain
    assert shared_reflections(a, same, area=area) > 0.9
    assert shared_reflections(a, other, area=area) < 0.3
    # a tolerance wider than the lattice's turn at its inner spots merges them: the
    # default follows the spot width instead
    assert shared_reflections(a, other, tol=6.0, area=area) > \
        shared_reflections(a, other, area=area)
    assert reflection_strength(a, same) > 0.8


def test_own_share_and_strength_of_leaked_copies():
    a = reflections(_pattern(_lattice(0)), _beam_mask(), CENTRE)
    b = reflections(_pattern(_lattice(30, a=13.0)), _beam_mask(), CENTRE)   # another phase
    assert own_share(a, [b]) > 0.8
    leak = Reflections(a.positions[:3], a.intensity[:3] * 0.01, a.radius)
    assert own_share(leak, [a, b]) == 0.0
    assert reflection_strength(leak, a) == pytest.approx(0.01)


def test_weight_z_scales_with_the_signal():
    rng = np.random.default_rng(0)
    H = np.stack([_pattern(_lattice(0)).ravel(), _pattern(_lattice(30)).ravel()])
    W = np.zeros((2, 100))
    W[0, :50] = 1000.0
    W[1, 50:] = 1000.0
    W[1, :50] = rng.uniform(0, 1, 50)
    X = W.T @ H
    z = weight_z(W, H, X.sum(axis=1), X.mean(axis=0))
    assert np.all(z[0, :50] > 20) and np.all(z[1, 50:] > 20)
    assert np.all(z[1, :50] < 5)
    z4 = weight_z(4 * W, H, 4 * X.sum(axis=1), 4 * X.mean(axis=0))
    np.testing.assert_allclose(z4[0, :50], 2 * z[0, :50], rtol=1e-6)    # sqrt(dose)


def _fit(patterns, owners, n=400, dose=5000.0, beam_everywhere=False, seed=0):
    """Weights (k, n) in intensity units: position i belongs to owners[i]."""
    rng = np.random.default_rng(seed)
    H = np.stack([p.ravel() for p in patterns])
    W = np.zeros((len(patterns), n))
    W[owners, np.arange(n)] = dose
    if beam_everywhere:
        W[-1] = dose * 2
    W += rng.uniform(0, 1e-3 * dose, W.shape)
    X = W.T @ H
    return W, H, X.sum(axis=1), X.mean(axis=0)


def test_assess_fit_merges_variants_and_keeps_orientations():
    pats = [_pattern(_lattice(0)), _pattern(_lattice(0.4)), _pattern(_lattice(20))]
    owners = np.repeat([0, 1, 2], [150, 100, 150])
    W, H, rs, cm = _fit(pats, owners)
    f = assess_fit(W, H, SHAPE, row_sums=rs, col_means=cm)
    assert f.n_clusters == 2 and f.merged == [[0, 1]] and f.background == []
    assert len(np.unique(f.labels[:250])) == 1 and f.labels[0] != f.labels[-1]
    kept = assess_fit(W, H, SHAPE, row_sums=rs, col_means=cm, keep_all=True)
    assert kept.n_clusters == 3
    # an imposed grouping (the decision's) is kept whatever the reflections say
    g = np.array([0, 1, 2, 3])
    forced = assess_fit(W, H, SHAPE, row_sums=rs, col_means=cm, grouping=g)
    assert forced.n_clusters == 3 and forced.merged == []


def test_assess_fit_finds_a_ubiquitous_background_and_drops_tiny_clusters():
    beam = _pattern([], beam=1.0)
    pats = [_pattern(_lattice(0)), _pattern(_lattice(25)), _pattern(_lattice(50)), beam]
    owners = np.repeat([0, 1, 2], [200, 198, 2])
    W, H, rs, cm = _fit(pats, owners, beam_everywhere=True)
    f = assess_fit(W, H, SHAPE, row_sums=rs, col_means=cm, min_size=3)
    assert 3 in f.background and f.kinds[3] == "ubiquitous"
    assert 2 in f.dropped                 # owns 2 positions: fits noise
    assert f.n_clusters == 2              # two crystals; the beam is not a label anywhere
    assert set(np.unique(f.labels)) == {0, 1}


def test_a_crystal_that_took_up_the_shared_background_is_no_background():
    """At high dose, a crystal component holding part of the background every pattern
    shares is significant everywhere; its share still has a grain of its own (contrast),
    a background's (flat share) does not."""
    beam = _pattern([], beam=1.0)
    flat = _pattern(_lattice(70, a=11.0), beam=0.0)          # own reflections, flat share
    pats = [_pattern(_lattice(0)), _pattern(_lattice(25)), _pattern(_lattice(50)), flat, beam]
    owners = np.repeat([0, 1, 2], [150, 130, 120])
    W, H, rs, cm = _fit(pats, owners, dose=20000.0, beam_everywhere=True)
    W[:3] += 0.15 * 20000.0                                    # the part each took up
    W[3] = 0.3 * 20000.0
    X = W.T @ H
    rs, cm = X.sum(axis=1), X.mean(axis=0)
    f = assess_fit(W, H, SHAPE, row_sums=rs, col_means=cm)
    assert np.all(f.presence[:3] >= 0.9)                       # significant everywhere
    assert f.background == [3, 4] and f.kinds == {3: "ubiquitous", 4: "ubiquitous"}
    assert f.readmitted == [0, 1, 2] and all(f.contrast[c] > 5 for c in range(3))
    assert 3 not in f.contrast and 4 not in f.contrast     # never largest / no reflections
    np.testing.assert_array_equal(f.labels, owners)
    assert f.n_clusters == 3
    # without the contrast test the three grains are backgrounds: the map is one colour
    f0 = assess_fit(W, H, SHAPE, row_sums=rs, col_means=cm, contrast=1e9)
    assert f0.background == [0, 1, 2, 3, 4] and len(np.unique(f0.labels)) == 1
