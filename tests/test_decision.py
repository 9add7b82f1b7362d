"""nmf4d.decision: the count of distinct patterns over the sweep's fits."""
from types import SimpleNamespace

import numpy as np

from nmf4d.config import SelectionConfig
from nmf4d.decision import decide, noise_model
from test_clustering import SHAPE, _fit, _lattice, _pattern


def _sweep(fits: dict, knee: int):
    return SimpleNamespace(k=np.array(sorted(fits)), knee=knee, fits=fits)


def _data(rs, cm, n):
    return SimpleNamespace(scan_shape=(n // 20, 20), pattern_shape=SHAPE,
                           stats={"row_sums": rs, "col_sums": cm * n})


def test_decide_reports_the_lower_median_from_the_knee_up():
    n = 400
    grains = [_pattern(_lattice(a)) for a in (0, 20, 40)]
    variant = _pattern(_lattice(0.4))
    fits = {}
    # rank 2: two grains; 3: three; 4: three + a variant of the first (merged);
    # 5: four orientations (a fourth turn in a corner)
    layouts = {2: ([grains[0], grains[1]], [0] * 200 + [1] * 200),
               3: (grains, [0] * 150 + [1] * 130 + [2] * 120),
               4: (grains + [variant], [0] * 80 + [3] * 70 + [1] * 130 + [2] * 120),
               5: (grains + [_pattern(_lattice(60))], [0] * 150 + [1] * 130 + [2] * 60
                   + [3] * 60)}
    for r, (pats, owners) in layouts.items():
        W, H, rs, cm = _fit(pats, np.array(owners), n=n, seed=r)
        fits[r] = SimpleNamespace(weights=W, components=H)
    d = decide(_sweep(fits, knee=3), _data(rs, cm, n), {}, SelectionConfig())
    assert d.n_clusters.tolist() == [2, 3, 3, 4]
    assert d.k == 3 and d.rank == 3 and d.considered == (3, 5)
    assert "median, 3" in d.explanation
    # from a knee at 4: counts 3, 4 -> lower median 3, maps of the rank-4 fit (merged)
    d4 = decide(_sweep(fits, knee=4), _data(rs, cm, n), {}, SelectionConfig())
    assert d4.k == 3 and d4.rank == 4 and "share their reflections" in d4.explanation


def test_noise_model_from_the_dark_record():
    assert noise_model({}) == (1.0, 0.0)
    assert noise_model({"dark": {"offset": 10.0}}) == (1.0, 0.0)
    assert noise_model({"dark": {"gain": 2.5, "read_variance": 4.0}}) == (2.5, 4.0)


def test_paper_iqa_rule_keeps_one_cluster_per_component():
    from nmf4d.pipeline import analyse
    from nmf4d.synthetic import make_polycrystal
    from nmf4d.config import AnalysisConfig

    data, truth = make_polycrystal((20, 20), (32, 32), n_grains=3, vacuum=True, seed=1)
    a = analyse(data, AnalysisConfig.from_flat(rule="paper-iqa", k_range=(2, 6)))
    assert a.decision is None and a.selection is not None
    assert a.k == a.rank == a.selection.k == a.components.shape[0]
    assert all(len(m) == 1 for m in a.maps.members)


def test_a_count_still_rising_at_the_top_is_flagged(monkeypatch):
    import warnings

    import nmf4d.select_k
    from nmf4d.decision import decide_stage
    from nmf4d.errors import DataWarning

    n = 400
    a, b, c, d = (_pattern(_lattice(t)) for t in (0, 20, 40, 60))
    v1, v2 = _pattern(_lattice(0.4)), _pattern(_lattice(20.4))
    # ranks 2-4 hold two orientations (variants merged); rank 5 holds four
    layouts = {2: ([a, b], [0] * 200 + [1] * 200),
               3: ([a, b, v1], [0] * 120 + [2] * 80 + [1] * 200),
               4: ([a, b, v1, v2], [0] * 120 + [2] * 80 + [1] * 120 + [3] * 80),
               5: ([a, b, c, d], [0] * 100 + [1] * 100 + [2] * 100 + [3] * 100)}
    fits = {}
    for r, (pats, owners) in layouts.items():
        W, H, rs, cm = _fit(pats, np.array(owners), n=n, seed=r)
        fits[r] = SimpleNamespace(weights=W, components=H)
    dec = decide(_sweep(fits, knee=2), _data(rs, cm, n), {}, SelectionConfig())
    assert dec.n_clusters.tolist() == [2, 2, 2, 4] and dec.k == 2
    assert dec.unsettled and "has not settled inside the range" in dec.explanation
    # settled: from a knee at 2 over ranks 2-4 only
    settled = decide(_sweep({r: fits[r] for r in (2, 3, 4)}, knee=2), _data(rs, cm, n), {},
                     SelectionConfig())
    assert not settled.unsettled and "settled" not in settled.explanation
    # the select stage warns (once per run) when the count is unsettled
    monkeypatch.setattr(nmf4d.select_k, "select", lambda *args: SimpleNamespace(k=2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        decide_stage(_sweep(fits, knee=2), _data(rs, cm, n), {}, SelectionConfig(heldout=False))
    msgs = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(msgs) == 1 and "distinct patterns is uncertain (median 2" in msgs[0]
    assert "--k-range" in msgs[0]


def test_saturated_counts_and_the_widened_range():
    from nmf4d.decision import saturated, widened_range

    ranks = np.arange(2, 21)
    assert saturated(ranks, ranks)                            # one cluster per component
    assert saturated(ranks, np.r_[ranks[:-2], 18, 19])         # N(k) = k - 1 still counts
    assert not saturated(ranks, np.r_[ranks[:-2], 17, 17])     # the count has levelled off
    assert not saturated(ranks, np.minimum(ranks, 6))
    assert widened_range((2, 20), 1000) == (2, 30)
    assert widened_range((2, 20), 24) == (2, 24)               # capped at the data
    assert widened_range((2, 20), 20) is None


def test_a_default_range_too_short_is_widened(monkeypatch, tmp_path):
    import nmf4d.config
    from nmf4d.config import AnalysisConfig
    from nmf4d.pipeline import analyse
    from nmf4d.results import read_results, write_results
    from nmf4d.synthetic import make_polycrystal

    data, truth = make_polycrystal((24, 24), (32, 32), n_grains=6, seed=3)
    k_true = len(np.unique(truth.labels))
    # a default range of 2..4 is too short for six grains: 4 -> 6 -> 9
    monkeypatch.setattr(nmf4d.config, "DEFAULT_K_RANGE", (2, 4))
    a = analyse(data, AnalysisConfig.from_flat(seed=0))
    assert a.decision.widened_from == [4, 6] and a.sweep.k.max() == 9
    assert a.k == k_true and "widened to 2..9" in a.decision.explanation
    write_results(tmp_path / "results.h5", a, input_path="memory:test")
    r = read_results(tmp_path / "results.h5")
    assert list(r["decision@attrs"]["widened_from"]) == [4, 6]
    assert r["sweep/k"].tolist() == list(range(2, 10))
    # a range the user gave is kept: the count is then flagged as unsettled
    given = analyse(data, AnalysisConfig.from_flat(seed=0, k_range=(2, 4)))
    assert given.decision.widened_from == [] and given.sweep.k.max() == 4


def test_a_rising_count_widens_the_range_once_and_only_with_the_held_out_test(monkeypatch):
    import nmf4d.config
    import nmf4d.pipeline as pipeline
    from nmf4d.config import AnalysisConfig
    from nmf4d.decision import Decision
    from nmf4d.synthetic import make_polycrystal

    data, _ = make_polycrystal((24, 24), (32, 32), n_grains=6, seed=3)
    monkeypatch.setattr(nmf4d.config, "DEFAULT_K_RANGE", (2, 4))
    monkeypatch.setattr(Decision, "saturated", property(lambda self: False))
    decide = pipeline.decide

    def unsettled(*args, **kwargs):          # every count rising at the top
        d = decide(*args, **kwargs)
        d.unsettled = True
        return d
    monkeypatch.setattr(pipeline, "decide", unsettled)
    asked = []

    def evidence(decision, fd, config, held):
        asked.append(int(decision.ranks[-1]))
        return True, "the count still rises on held-out counts"
    monkeypatch.setattr(pipeline, "_distinct_at_top", evidence)
    a = pipeline.analyse(data, AnalysisConfig.from_flat(seed=0))
    # widened once (4 -> 6), not again although the wider count is still "rising"
    assert asked == [4] and a.decision.widened_from == [4] and a.sweep.k.max() == 6
    assert a.decision.explanation.startswith("the count still rises on held-out counts")
    # without the held-out test there is no evidence: not widened
    off = pipeline.analyse(data, AnalysisConfig.from_flat(seed=0, heldout=False))
    assert asked == [4] and off.decision.widened_from == [] and off.sweep.k.max() == 4
