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
    # under the null (one grain split at random) z is about N(0, 1): merged at z < 1 on
    # most draws; two distinct grains never
    merged, null_z = 0, []
    for draw in range(10):
        rng = np.random.default_rng(100 + draw)
        pats = _patterns(rng)
        truth = np.zeros((20, 20), int)
        truth[:, 10:] = 1                                # two grains, left and right
        X = _scan(rng, pats, truth.ravel(), dose=300)
        labels = truth.ravel().copy()
        labels[(labels == 0) & (rng.random(400) < 0.5)] = 2   # grain 0 split at random
        test = heldout_test(NumpySource(X, block_rows=64), labels, (20, 20), (16, 16), seed=0)
        assert test.applied
        assert test.z[0, 1] > 10 and test.z[1, 2] > 10
        null_z.append(test.z[0, 2])
        merged += test.merged == [[0, 2]]
    assert merged >= 7
    assert abs(np.mean(null_z)) < 0.6


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


def test_apply_heldout_merges_a_noise_split_of_the_decision(tmp_path):
    from types import SimpleNamespace

    from nmf4d.clustering import FitClusters
    from nmf4d.config import SelectionConfig
    from nmf4d.decision import Decision, apply_heldout

    rng = np.random.default_rng(6)
    pats = _patterns(rng)
    truth = np.zeros((20, 20), int)
    truth[:, 10:] = 1
    X = _scan(rng, pats, truth.ravel(), dose=300)
    labels = truth.ravel().copy()
    labels[(labels == 0) & (rng.random(400) < 0.5)] = 2        # grain 0 split at random
    f = FitClusters(rank=3, n_clusters=3, labels=labels, cluster_of=np.arange(4),
                    background=[], kinds={}, n_reflections=np.ones(3, int),
                    shared=np.zeros((3, 3)), presence=np.ones(3))
    d = Decision(k=3, rank=3, ranks=np.array([3]), n_clusters=np.array([3]),
                 considered=(3, 3), assessments={3: f}, explanation="x")
    data = SimpleNamespace(op=SimpleNamespace(source=NumpySource(X)), scan_shape=(20, 20),
                           pattern_shape=(16, 16))
    apply_heldout(d, data, SelectionConfig(), seed=0)
    assert d.k == 2 and f.n_clusters == 2
    assert f.cluster_of.tolist()[:3] == [0, 1, 0] and set(np.unique(f.labels)) == {0, 1}
    # kept apart from the orientation merges (the report labels the two differently)
    assert f.heldout_merged == [[0, 2]] and f.merged == []
    assert "0+2 do not differ on held-out counts" in d.explanation
    from nmf4d.report.text import decision_context
    from nmf4d.results import json_default
    import json
    r = {"decision/rank": d.ranks, "decision/n_clusters": d.n_clusters,
         "decision@attrs": {"chosen_rank": 3, "considered": [3, 3], "k": d.k,
                            "per_rank": json.dumps({"3": {"merged": f.merged,
                                                          "merged_heldout": f.heldout_merged}},
                                                   default=json_default)}}
    row = decision_context(r)["rows"][0]
    assert row["merged"] == "—" and row["heldout"] == "0+2"


def test_analyse_keeps_distinct_grains_and_records_the_test(tmp_path):
    from nmf4d.config import AnalysisConfig
    from nmf4d.pipeline import analyse
    from nmf4d.results import read_results, write_results
    from nmf4d.synthetic import make_polycrystal

    data, truth = make_polycrystal((20, 20), (32, 32), n_grains=3, vacuum=True, seed=1)
    a = analyse(data, AnalysisConfig.from_flat(k_range=(2, 8)))
    h = a.decision.heldout
    assert h.applied and h.merged == []
    off = analyse(data, AnalysisConfig.from_flat(k_range=(2, 8), heldout=False))
    assert off.decision.heldout is None and off.k == a.k
    write_results(tmp_path / "results.h5", a, input_path="memory:test")
    r = read_results(tmp_path / "results.h5")
    assert r["decision/heldout@attrs"]["applied"]
    np.testing.assert_allclose(r["decision/heldout/z"], h.z)


def test_heldout_option_is_checked():
    from nmf4d.config import SelectionConfig
    from nmf4d.errors import ConfigError

    with pytest.raises(ConfigError, match="selection.heldout"):
        SelectionConfig(heldout="yes")
    with pytest.raises(ConfigError, match="selection.heldout_z"):
        SelectionConfig(heldout_z="high")


def test_homogeneity_statistic_matches_scipy():
    from scipy.stats import chi2_contingency

    rng = np.random.default_rng(7)
    sa = rng.poisson(rng.gamma(2.0, 3.0, 300)).astype(float)
    sb = rng.poisson(rng.gamma(2.0, 3.0, 300)).astype(float)
    keep = (sa + sb) > 0
    x2, _, dof, _ = chi2_contingency(np.stack([sa[keep], sb[keep]]), correction=False)
    assert homogeneity_z(sa, sb) == pytest.approx((x2 - dof) / np.sqrt(2 * dof), rel=1e-10)


def test_thinning_draws_are_binomial_and_independent_of_blocks():
    from scipy import stats

    X = np.random.default_rng(8).poisson(2.0, (400, 500)).astype(np.uint16)
    X[:, 0] = 300                                      # several 64-count words per pixel
    A = thin(X, 11, 0)
    for n in (1, 3, 5):
        sel = X == n
        obs = np.bincount(A[sel].astype(int), minlength=n + 1)
        exp = stats.binom.pmf(np.arange(n + 1), n, 0.5) * sel.sum()
        assert stats.chisquare(obs, exp).pvalue > 1e-3
    big = A[:, 0]
    assert abs(big.mean() - 150) < 1.5 and abs(big.var() / 75 - 1) < 0.3
    B = X - A                                          # Poisson halves: uncorrelated
    assert abs(np.corrcoef(A[:, 1:].ravel(), B[:, 1:].ravel())[0, 1]) < 0.01
    np.testing.assert_array_equal(thin(X[137:300], 11, 137), A[137:300])


def test_a_cluster_with_little_signal_bridges_nothing():
    # two grains at 300 counts per position and a strip of almost empty positions: the
    # strip cannot be told from either (too few counts), and must not join the grains
    rng = np.random.default_rng(9)
    pats = _patterns(rng)
    scan = (24, 20)
    lab = np.zeros(scan, int)
    lab[:, 10:] = 1
    lab[20:, :] = 2
    mu = np.where((lab.ravel() == 2)[:, None], 0.002 * pats[0][None, :] * 256,
                  300 * pats[lab.ravel() % 2])
    X = rng.poisson(mu).astype(np.float32)
    test = heldout_test(NumpySource(X), lab.ravel(), scan, (16, 16), seed=1)
    assert test.applied and test.z[0, 1] > 10
    assert not any({0, 1} <= set(g) for g in test.merged)


def test_noise_clusters_at_the_top_do_not_widen_the_range():
    # a saturated count (a cluster per component at the top rank) whose clusters are one
    # grain split at random (noise) is not a range too short; three distinct grains are
    from types import SimpleNamespace

    from nmf4d.clustering import FitClusters
    from nmf4d.config import AnalysisConfig
    from nmf4d.decision import Decision
    from nmf4d.pipeline import _distinct_at_top

    rng = np.random.default_rng(8)
    pats = _patterns(rng, m=3)
    truth = np.repeat(np.arange(3), [140, 130, 130])
    rng.shuffle(truth)

    def top_decision(labels):
        f = FitClusters(rank=3, n_clusters=3, labels=labels, cluster_of=np.arange(4),
                        background=[], kinds={}, n_reflections=np.ones(3, int),
                        shared=np.zeros((3, 3)), presence=np.ones(3))
        return Decision(k=3, rank=3, ranks=np.array([2, 3]), n_clusters=np.array([2, 3]),
                        considered=(2, 3), assessments={3: f})

    noise = rng.integers(0, 3, 400)
    for lab, widen in ((truth, True), (noise, False)):
        X = _scan(rng, pats, truth if widen else np.zeros(400, int), dose=300)
        data = SimpleNamespace(op=SimpleNamespace(source=NumpySource(X)),
                               scan_shape=(20, 20), pattern_shape=(16, 16))
        ok, why = _distinct_at_top(top_decision(lab), data, AnalysisConfig(), (None, {}))
        assert ok == widen, why
        if not widen:
            assert "only 1 of the rank-3 fit's 3 clusters differ" in why and "not widened" in why


def test_a_rising_count_widens_the_range_only_on_held_out_evidence():
    # not saturated, but the top fit holds more than the median + 1 clusters: widened
    # when they differ on held-out counts (four grains), not when they are noise
    from types import SimpleNamespace

    from nmf4d.clustering import FitClusters
    from nmf4d.config import AnalysisConfig
    from nmf4d.decision import Decision
    from nmf4d.pipeline import _distinct_at_top

    rng = np.random.default_rng(9)
    pats = _patterns(rng, m=4)
    truth = np.repeat(np.arange(4), [100, 100, 100, 100])
    rng.shuffle(truth)

    def top_decision(labels):
        f = FitClusters(rank=5, n_clusters=4, labels=labels, cluster_of=np.arange(6),
                        background=[], kinds={}, n_reflections=np.ones(5, int),
                        shared=np.zeros((5, 5)), presence=np.ones(5))
        d = Decision(k=2, rank=3, ranks=np.array([3, 4, 5]), n_clusters=np.array([2, 2, 4]),
                     considered=(3, 5), assessments={5: f}, unsettled=True)
        assert not d.saturated
        return d

    two = (truth % 2).astype(int)                     # the scan holds two patterns
    for lab, grains, widen in ((truth, truth, True), (truth, two, False)):
        X = _scan(rng, pats, grains, dose=300)
        data = SimpleNamespace(op=SimpleNamespace(source=NumpySource(X)),
                               scan_shape=(20, 20), pattern_shape=(16, 16))
        ok, why = _distinct_at_top(top_decision(lab), data, AnalysisConfig(), (None, {}))
        assert ok == widen, why
        assert ("holds 4 clusters that differ" in why) == widen
        assert ("only 2 of the rank-5 fit's 4 clusters differ" in why) == (not widen)
    # without counts there is no held-out evidence: not widened
    X = _scan(rng, pats, truth, dose=300).astype(np.float32) * 1.37
    data = SimpleNamespace(op=SimpleNamespace(source=NumpySource(X)),
                           scan_shape=(20, 20), pattern_shape=(16, 16))
    ok, why = _distinct_at_top(top_decision(truth), data, AnalysisConfig(), (None, {}))
    assert not ok and "without held-out counts" in why
